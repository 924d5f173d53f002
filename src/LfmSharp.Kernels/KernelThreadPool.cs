namespace LfmSharp.Kernels;

/// <summary>
/// A unit of parallel work: process the index range [<c>start</c>, <c>end</c>) on thread
/// <c>thread</c> (0 = the calling thread, up to ThreadCount − 1; use it to pick per-thread scratch).
/// Implemented by long-lived job objects whose fields are set before each region, so a region allocates nothing.
/// </summary>
internal interface IParallelWork
{
    void Execute(int start, int end, int thread);
}

/// <summary>
/// A fixed set of worker threads for the many short parallel regions of a forward pass.
/// </summary>
/// <remarks>
/// Decoding one token runs ~100 parallel regions (one per matmul); Task/Parallel.For costs tens of
/// microseconds and allocates per region, which would dominate a small model. Here the caller publishes a
/// region, takes part itself, and waits until every index is done. Chunks are claimed with one compare-exchange
/// on a 64-bit word holding (generation, next index), so a worker that wakes late, or lost its core to another
/// process, simply finds nothing left: a region never waits for a thread that is not running.
/// Workers spin briefly for the next region (regions come back-to-back during a forward pass), then block, so
/// an idle model does not burn CPU.
/// Not re-entrant: one region at a time (callers serialise, e.g. one forward pass at a time per model).
/// </remarks>
internal sealed class KernelThreadPool : IDisposable
{
    // How many SpinOnce rounds a worker polls for the next region before blocking. SpinWait starts
    // yielding after ~10 rounds, so this is a few tens of microseconds on a busy machine.
    private const int WorkerSpinRounds = 60;

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private int _sleepers;
    private volatile bool _disposed;

    // High 32 bits: generation, odd while the caller is writing the region fields below (a seqlock), even while
    // they are stable. Low 32 bits: next unclaimed index of the current region.
    private long _state;

    // The current region; written only while the generation is odd.
    private IParallelWork? _work;
    private int _count;
    private int _chunk;
    private int _done;          // indices finished in the current region
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
            _workers[i] = new Thread(() => WorkerLoop(thread)) { IsBackground = true, Name = $"LfmSharp kernel worker {thread}" };
            _workers[i].Start();
        }
    }

    /// <summary>Chunks a region is cut into per thread (at least its grain each): more = a shorter tail where one
    /// thread waits for the other's last chunk, fewer = fewer atomics.</summary>
    /// <remarks>
    /// Decode runs ~90 regions per token of a few hundred µs each, and a thread often reaches a region late (woken
    /// from its spin, or its core taken by the hypervisor for a moment); with 4 chunks per thread the last eighth of
    /// a region could run on one thread alone. At 24, interleaved A/B runs of <c>lfm bench -n 100</c> on the 1.2B
    /// shape (2 threads, 2-core VM) were faster in 13 of 13 pairs for Q4_K_M (mean +10%) and by ~5% for Q4_0,
    /// with prefill unchanged within noise; 48 was no better. The extra compare-exchanges cost well under 1%.
    /// </remarks>
    private const int ChunksPerThread = 24;

    /// <summary>Threads taking part in a region, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>
    /// Runs <paramref name="work"/> over [0, <paramref name="count"/>) split into chunks of at least
    /// <paramref name="grain"/> indices, on all threads, and returns when every chunk is done.
    /// An exception thrown by any chunk is rethrown here (after all chunks finished).
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

        // A few chunks per thread balance the load without many atomics.
        int chunk = Math.Max(grain, (count + ThreadCount * ChunksPerThread - 1) / (ThreadCount * ChunksPerThread));
        long gen = Volatile.Read(ref _state) >> 32;
        Interlocked.Exchange(ref _state, ((gen + 1) << 32) | int.MaxValue);   // odd: fields in flux, nothing claimable
        _work = work;
        _count = count;
        _chunk = chunk;
        _done = 0;
        _error = null;
        Interlocked.Exchange(ref _state, (gen + 2) << 32);                      // even, next = 0: publish
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_sleepLock)
                Monitor.PulseAll(_sleepLock);
        }

        _ = RunChunks(0);

        var spin = new SpinWait();
        while (Volatile.Read(ref _done) < count)
            spin.SpinOnce(sleep1Threshold: -1);

        if (_error is { } error)
            throw new AggregateException("A parallel kernel region failed.", error);
    }

    /// <summary>Claims and runs chunks of the current region until none are left; returns the generation it found exhausted.</summary>
    private long RunChunks(int thread)
    {
        var spin = new SpinWait();
        while (true)
        {
            long s = Volatile.Read(ref _state);
            long gen = s >> 32;
            if ((gen & 1) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);   // the caller is publishing a region: a few stores away
                continue;
            }
            int next = (int)(uint)s;
            var work = _work;
            int count = _count, chunk = _chunk;
            if (work is null || next >= count)
                return gen;
            int end = Math.Min(count, next + chunk);
            // Succeeds only if no new region started since `s` was read, so the fields above belong to it.
            if (Interlocked.CompareExchange(ref _state, (gen << 32) | (uint)end, s) != s)
                continue;
            try
            {
                work.Execute(next, end, thread);
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _error, ex, null);
            }
            Interlocked.Add(ref _done, end - next);
        }
    }

    private void WorkerLoop(int thread)
    {
        long seen = 0;
        while (true)
        {
            // Wait for a new generation: spin first, then sleep on the monitor.
            var spin = new SpinWait();
            long gen;
            while ((gen = Volatile.Read(ref _state) >> 32) == seen && spin.Count < WorkerSpinRounds && !_disposed)
                spin.SpinOnce(sleep1Threshold: -1);
            if (gen == seen && !_disposed)
            {
                lock (_sleepLock)
                {
                    // Increment before re-reading the generation: the publisher bumps the generation before
                    // reading _sleepers, so one of the two always sees the other (no lost wake-up).
                    Interlocked.Increment(ref _sleepers);
                    // _disposed too: a worker whose last RunChunks already saw Dispose's final generation would
                    // otherwise wait for a region that never comes (Dispose sets the flag before its PulseAll).
                    while ((gen = Volatile.Read(ref _state) >> 32) == seen && !_disposed)
                        Monitor.Wait(_sleepLock);
                    Interlocked.Decrement(ref _sleepers);
                }
            }
            if (_disposed)
                return;
            // Wait for the generation after the one RunChunks found exhausted (a region published meanwhile
            // has a newer generation, so it is not slept through).
            seen = RunChunks(thread);
        }
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        long gen = Volatile.Read(ref _state) >> 32;
        Interlocked.Exchange(ref _state, ((gen + 1) << 32) | int.MaxValue);
        _work = null;   // nothing claimable any more
        _count = 0;
        Interlocked.Exchange(ref _state, (gen + 2) << 32);
        lock (_sleepLock)
            Monitor.PulseAll(_sleepLock);
        foreach (var t in _workers)
            t.Join();
    }
}
