using System.Runtime.InteropServices;

namespace LfmSharp.Cli;

/// <summary>
/// SIGTERM and SIGINT request a graceful stop (docker stop, systemd, Kubernetes, Ctrl+C). A process started in the
/// background by a non-interactive shell inherits SIGINT as ignored, and .NET then leaves it ignored; the disposition
/// is reset to the default first, so <c>kill -INT</c> stops such a server too.
/// </summary>
internal sealed class ShutdownSignals : IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];

    private ShutdownSignals(CancellationTokenSource stop)
    {
        foreach (var signal in (ReadOnlySpan<PosixSignal>)[PosixSignal.SIGTERM, PosixSignal.SIGINT])
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, ctx =>
            {
                ctx.Cancel = true;   // no immediate exit: the caller drains and returns 0
                try
                {
                    stop.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // Already stopping.
                }
            }));
        }
    }

    /// <summary>Cancels <paramref name="stop"/> on SIGTERM or SIGINT until disposed.</summary>
    public static ShutdownSignals Register(CancellationTokenSource stop) => new(stop);

    public void Dispose()
    {
        foreach (var r in _registrations)
            r.Dispose();
    }

    /// <summary>
    /// Undoes an inherited "SIGINT ignored". Must run first thing in <c>Main</c>: .NET records each signal's disposition
    /// when its own handling starts (on first console use) and keeps ignoring a signal that was ignored then.
    /// </summary>
    public static void RestoreInterruptEarly()
    {
        const int SIGINT = 2;
        if (OperatingSystem.IsWindows())
            return;
        try
        {
            Signal(SIGINT, IntPtr.Zero);   // SIG_DFL
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No libc signal(): keep what the runtime does.
        }
    }

    // DllImport, not LibraryImport: the generated stub would need unsafe code for this one blittable call.
#pragma warning disable SYSLIB1054
    [DllImport("libc", EntryPoint = "signal")]
    private static extern IntPtr Signal(int signum, IntPtr handler);
#pragma warning restore SYSLIB1054
}
