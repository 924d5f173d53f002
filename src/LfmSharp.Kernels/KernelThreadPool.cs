namespace LfmSharp.Kernels;

/// <summary>
/// A unit of parallel work: process the index range [<paramref name="start"/>, <paramref name="end"/>) on thread
/// <paramref name="thread"/> (0 = the calling thread, up to ThreadCount − 1; use it to pick per-thread scratch).
/// Implemented by long-lived job objects whose fields are set before each region, so a region allocates nothing.
/// </summary>
public interface IParallelWork
{
    void Execute(int start, int end, int thread);
}

/// <summary>
/// A fixed set of worker threads for the many short parallel regions of a forward pass.
/// </summary>
/// <remarks>
/// Decoding one token runs ~100 parallel regions (one per matmul); Task/Parallel.For costs tens of
/// microseconds and allocates per region, which would dominate a small model. Here the caller thread
/// publishes the work by bumping a generation counter, takes part itself, and spin-waits for the others.
/// Workers spin briefly for the next region (regions come back-to-back during a forward pass), then block,
/// so an idle model does not burn CPU. Chunks are handed out dynamically (one atomic add each) so a worker
/// that lost its core to another process does not stall the region.
/// Not re-entrant: one region at a time (callers serialise, e.g. one forward pass at a time per model).
/// </remarks>
public sealed class KernelThreadPool : IDisposable
{
    // How many SpinOnce rounds a worker polls for the next region before blocking. SpinWait starts
    // yielding after ~10 rounds, so this is a few tens of microseconds on a busy machine.
    private const int WorkerSpinRounds = 60;

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private int _sleepers;
    private int _generation;
    private volatile bool _disposed;

    // The current region (written by the caller before the generation bump, read by workers after it).
    private IParallelWork? _work;
    private int _count;
    private int _chunk;
    private int _next;
    private int _active;
    private Exception? _error;

    /// <param name="threadCount">Total threads taking part in a region, the calling thread included (1 = run inline).</param>
    public KernelThreadPool(int threadCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threadCount, 1);
        ThreadCount = threadCount;
        _workers = new Thread[threadCount - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int thread = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(thread)) { IsBackground = true, Name = $"LfmSharp kernel worker {i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads taking part in a region, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>A pool sized for this machine: one thread per logical processor.</summary>
    public static KernelThreadPool CreateDefault() => new(Environment.ProcessorCount);

    /// <summary>
    /// Runs <paramref name="work"/> over [0, <paramref name="count"/>) split into chunks of at least
    /// <paramref name="grain"/> indices, on all threads, and returns when every chunk is done.
    /// An exception thrown by any chunk is rethrown here (after all threads stopped).
    /// </summary>
    public void For(int count, int grain, IParallelWork work)
    {
        ArgumentNullException.ThrowIfNull(work);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count <= 0)
            return;
        grain = Math.Max(1, grain);
        if (ThreadCount == 1 || count <= grain)
        {
            work.Execute(0, count, 0);
            return;
        }

        // ~4 chunks per thread balances load without many atomics.
        int chunk = Math.Max(grain, (count + ThreadCount * 4 - 1) / (ThreadCount * 4));
        _work = work;
        _count = count;
        _chunk = chunk;
        _next = 0;
        _error = null;
        _active = _workers.Length;
        Interlocked.Increment(ref _generation); // full fence: publishes the fields above
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_sleepLock)
                Monitor.PulseAll(_sleepLock);
        }

        RunChunks(0);

        var spin = new SpinWait();
        while (Volatile.Read(ref _active) != 0)
            spin.SpinOnce(sleep1Threshold: -1);
        _work = null;

        if (_error is { } error)
            throw new AggregateException("A parallel kernel region failed.", error);
    }

    private void RunChunks(int thread)
    {
        var work = _work!;
        int count = _count, chunk = _chunk;
        try
        {
            while (true)
            {
                int start = Interlocked.Add(ref _next, chunk) - chunk;
                if (start >= count)
                    break;
                work.Execute(start, Math.Min(count, start + chunk), thread);
            }
        }
        catch (Exception ex)
        {
            Interlocked.CompareExchange(ref _error, ex, null);
            // Stop handing out chunks; the others finish the one they hold.
            Volatile.Write(ref _next, count);
        }
    }

    private void WorkerLoop(int thread)
    {
        int seen = 0;
        while (true)
        {
            // Wait for the next generation: spin first, then sleep on the monitor.
            var spin = new SpinWait();
            int gen;
            while ((gen = Volatile.Read(ref _generation)) == seen && spin.Count < WorkerSpinRounds)
                spin.SpinOnce(sleep1Threshold: -1);
            if (gen == seen)
            {
                lock (_sleepLock)
                {
                    // Increment before re-reading the generation: the publisher bumps the generation
                    // before reading _sleepers, so one of the two always sees the other (no lost wake-up).
                    Interlocked.Increment(ref _sleepers);
                    while ((gen = Volatile.Read(ref _generation)) == seen)
                        Monitor.Wait(_sleepLock);
                    Interlocked.Decrement(ref _sleepers);
                }
            }
            seen = gen;
            if (_disposed)
                return;
            RunChunks(thread);
            Interlocked.Decrement(ref _active);
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Interlocked.Increment(ref _generation);
        lock (_sleepLock)
            Monitor.PulseAll(_sleepLock);
        foreach (var t in _workers)
            t.Join();
    }
}
