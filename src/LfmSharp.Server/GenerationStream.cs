using System.Threading.Channels;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary>
/// Queues a generation and hands its events to an endpoint. A non-streamed answer awaits the first event before any
/// response is written, so failures that happen before generating (context overflow, options the session refuses)
/// still become a 4xx with a body. A streamed one does not wait: its first event (the role chunk) goes out at once,
/// before the prompt is prefilled, as OpenAI and llama-server do; the endpoint checks the options first
/// (<see cref="CheckOptions"/>) so the caller's mistakes are still a 4xx, and later failures are reported in-band.
/// </summary>
internal sealed class GenerationStream : IDisposable
{
    private readonly ChannelReader<GenerationEvent> _reader;
    private readonly CancellationTokenSource _cts;
    private readonly ServerContext _server;

    private GenerationStream(ChannelReader<GenerationEvent> reader, CancellationTokenSource cts, ServerContext server)
    {
        _reader = reader;
        _cts = cts;
        _server = server;
    }

    public CancellationToken Token => _cts.Token;

    public static async Task<GenerationStream> StartAsync(HttpContext ctx, ServerContext server, GenerationScheduler scheduler,
        Func<GenerationSlot, CancellationToken, IEnumerable<GenerationEvent>> start, bool awaitFirst = true)
    {
        // A client that goes away cancels its generation; so does server shutdown.
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, server.Stopping);
        ChannelReader<GenerationEvent> reader;
        try
        {
            var token = cts.Token;
            reader = scheduler.Enqueue(slot => start(slot, token), token);
        }
        catch (QueueFullException e)
        {
            cts.Dispose();
            server.Metrics.Rejected();
            throw new ApiException(429, e.Message, "rate_limit_error", code: "queue_full");
        }
        var stream = new GenerationStream(reader, cts, server);
        if (!awaitFirst)
            return stream;
        try
        {
            await stream.WaitFirstAsync().ConfigureAwait(false);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    private NumericalFaultException? _fault;

    /// <summary>
    /// The checks the session makes on <paramref name="options"/> before generating, made here so a streamed request
    /// that does not wait for its first event still gets a 400 for them (the prompt's length is checked by the endpoint).
    /// </summary>
    public static void CheckOptions(ChatRequestOptions options, ServerContext server)
    {
        try
        {
            options.Validate();
        }
        catch (ArgumentException e)
        {
            throw Translate(e, server);
        }
    }

    private async Task WaitFirstAsync()
    {
        try
        {
            await _reader.WaitToReadAsync(_cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // NaN logits end the answer with finish_reason "error" (ReadAllAsync yields it), not a bare 500.
            if (AsFault(e) is { } fault)
            {
                _fault = fault;
                return;
            }
            throw Translate(e, _server);
        }
    }

    private static NumericalFaultException? AsFault(Exception e) =>
        (e as NumericalFaultException) ?? (e as ChannelClosedException)?.InnerException as NumericalFaultException;

    /// <summary>The events in order; a failure mid-way is thrown as <see cref="ApiException"/>.</summary>
    public async IAsyncEnumerable<GenerationEvent> ReadAllAsync()
    {
        while (true)
        {
            bool more;
            try
            {
                more = _fault is null && await _reader.WaitToReadAsync(_cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException && AsFault(e) is not null)
            {
                _fault = AsFault(e);
                more = false;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw Translate(e, _server);
            }
            if (_fault is not null)
            {
                _server.Metrics.Failed();
                yield return new GenerationFault(_fault.Message);
                yield break;
            }
            if (!more)
                yield break;
            while (_reader.TryRead(out var ev))
            {
                if (ev is Done done)
                {
                    if (done.Reason == FinishReason.Cancelled)
                        throw new OperationCanceledException(_cts.Token);
                    _server.Metrics.Completed(done.Usage);
                }
                yield return ev;
            }
        }
    }

    /// <summary>Errors a generation can end with: the caller's fault → 4xx; anything else → 500.</summary>
    public static Exception Translate(Exception e, ServerContext server)
    {
        if (e is ChannelClosedException { InnerException: Exception inner })
            e = inner;
        switch (e)
        {
            case ApiException or OperationCanceledException:
                return e;
            case ContextOverflowException overflow:
                server.Metrics.BadRequest();
                return ContextTooLong(overflow.PromptTokens, overflow.ContextLength);
            case ArgumentException or NotSupportedException or FormatException:
                server.Metrics.BadRequest();
                return ApiException.BadRequest(e.Message);
            case ObjectDisposedException:
                return new ApiException(503, "The server is shutting down.", "unavailable_error", code: "shutting_down");
            default:
                server.Metrics.Failed();
                return new ApiException(500, "The generation failed: " + e.Message, "server_error", code: "generation_failed");
        }
    }

    public static ApiException ContextTooLong(int promptTokens, int contextLength) =>
        new(400, $"This model's maximum context length is {contextLength} tokens. However, your messages resulted in {promptTokens} tokens.",
            "invalid_request_error", "messages", "context_length_exceeded");

    /// <summary>The generation stopped on a numerical fault: endpoints end the answer with finish_reason "error".</summary>
    internal sealed record GenerationFault(string Message) : GenerationEvent;

    public void Dispose()
    {
        // Leaving early (client gone, error) must stop the generation; a finished one ignores this.
        _cts.Cancel();
        _cts.Dispose();
    }
}
