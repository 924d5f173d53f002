using System.Diagnostics;
using Microsoft.Extensions.Hosting;

namespace LfmSharp.Server;

/// <summary>
/// Graceful shutdown: counts the requests in flight, and once <see cref="DrainAsync"/> starts, new requests get 503
/// (and <c>/health</c> says 503, so a load balancer stops sending) while the running ones may finish within the
/// grace period.
/// </summary>
internal sealed class RequestDrain
{
    private int _inFlight;
    private volatile bool _draining;

    public bool Draining => _draining;

    public int InFlight => Volatile.Read(ref _inFlight);

    public void Enter() => Interlocked.Increment(ref _inFlight);

    public void Exit() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Refuses new requests and waits until none is in flight or <paramref name="grace"/> has passed;
    /// true when all finished.</summary>
    public async Task<bool> DrainAsync(TimeSpan grace)
    {
        _draining = true;
        var clock = Stopwatch.StartNew();
        while (InFlight > 0)
        {
            if (clock.Elapsed >= grace)
                return false;
            await Task.Delay(TimeSpan.FromMilliseconds(20)).ConfigureAwait(false);
        }
        return true;
    }
}

/// <summary>
/// Leaves signals to whoever runs the server (<c>lfm serve</c> handles SIGTERM/SIGINT itself): ASP.NET Core's console
/// lifetime would otherwise take them and stop the web host underneath a caller that is still waiting.
/// </summary>
internal sealed class CallerOwnedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
