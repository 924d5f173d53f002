namespace LfmSharp.Server;

/// <summary>What every endpoint needs: the model host, the metrics, the options and the shutdown signal.</summary>
internal sealed class ServerContext(LfmServerOptions options, ModelHost host, ServerMetrics metrics, CancellationToken stopping)
{
    public LfmServerOptions Options { get; } = options;

    public ModelHost Host { get; } = host;

    public ServerMetrics Metrics { get; } = metrics;

    public CancellationToken Stopping { get; } = stopping;

    /// <summary>In-flight requests and the draining flag of a graceful shutdown.</summary>
    public RequestDrain Drain { get; } = new();

    /// <summary>Responses kept for <c>previous_response_id</c>.</summary>
    public Responses.ResponseStore Responses { get; } = new(options.StoredResponses);
}
