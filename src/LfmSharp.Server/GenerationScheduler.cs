using System.Diagnostics;
using System.Threading.Channels;
using LfmSharp.Generation;
using LfmSharp.Models;

namespace LfmSharp.Server;

/// <summary>The scheduler's queue is full; answer 429.</summary>
internal sealed class QueueFullException(int capacity)
    : Exception($"The server is busy: {capacity} requests are already waiting. Retry later.")
{
    public int Capacity { get; } = capacity;
}

/// <summary>One generation slot: a chat session and a raw state, each made on first use and reused afterwards. Both
/// restore prompt prefixes from, and checkpoint into, the scheduler's <see cref="PrefixCache"/>, shared by all slots.</summary>
internal sealed class GenerationSlot : IDisposable
{
    private readonly LanguageModel _model;
    private readonly int _contextLength;
    private readonly KvCacheType _kv;
    private ChatSession? _session;
    private Lfm2State? _state;

    internal GenerationSlot(int id, LanguageModel model, int contextLength, KvCacheType kv, DecodeBatcher batcher, PrefixCache cache)
    {
        Cache = cache;
        Id = id;
        _model = model;
        _contextLength = contextLength;
        _kv = kv;
        Batcher = batcher;
    }

    /// <summary>The scheduler's batcher: generations in this slot must use it (the session already does), so their
    /// decode steps run together with the other slots'.</summary>
    public DecodeBatcher Batcher { get; }

    public int Id { get; }

    /// <summary>The prefix cache every slot of the scheduler shares.</summary>
    public PrefixCache Cache { get; }

    public int ContextLength => _contextLength;

    /// <summary>The slot's chat session (stateless <c>Complete</c> calls reuse its cached prefixes).</summary>
    public ChatSession Session => _session ??= CreateSession();

    private ChatSession CreateSession()
    {
        var session = new ChatSession(_model, _contextLength, _kv, Cache);
        session.Batcher = Batcher;
        return session;
    }

    /// <summary>A raw model state for text completions.</summary>
    public Lfm2State State => _state ??= _model.CreateState(_contextLength, _kv);

    public void Dispose() => _session?.Dispose();
}

/// <summary>
/// Runs many generations on one model: a fixed number of slots (each with its own state), a bounded wait queue
/// (<see cref="QueueFullException"/> past it), and one decode thread running rounds.
/// <para>
/// <b>Continuous batching.</b> In a round every active sequence is advanced to its next decode step (its stream
/// yields <see cref="DecodePending"/>), then one <see cref="DecodeBatcher.RunPending"/> runs all those steps as a
/// single batched forward pass: the weights are read once per round, so total throughput rises with the number of
/// active sequences. Sequences join (after their prefill, which runs inside their first advances) and leave between
/// rounds. Cancellation is checked before every advance, so an aborted request stops within one token (or one prefill
/// chunk) and its slot
/// goes to the next waiting request at once.
/// </para>
/// <para>
/// A new request's prefill runs inside its advances in chunks of <see cref="Generator.PrefillChunk"/> tokens, one chunk
/// per round, so a long prompt delays the others' next token by one chunk rather than by its whole length (prefills
/// are not batched with each other or with the decode steps).
/// </para>
/// </summary>
internal sealed class GenerationScheduler : IDisposable
{
    private readonly object _lock = new();
    private readonly Queue<Job> _waiting = new();
    private readonly Stack<GenerationSlot> _free = new();
    private readonly List<GenerationSlot> _slots = new();
    private readonly List<Job> _active = new();
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly Thread _thread;
    private readonly int _queueCapacity;
    private readonly DecodeBatcher _batcher;
    private volatile bool _stopping;

    /// <param name="model">The model every slot runs.</param>
    /// <param name="slots">Sequences generated at once.</param>
    /// <param name="queueCapacity">Requests that may wait for a slot; one more is refused.</param>
    /// <param name="contextLength">Tokens per slot.</param>
    /// <param name="kv">KV cache element type.</param>
    /// <param name="cache">The prompt-prefix cache all slots share; null: none (every prompt is prefilled in full).</param>
    public GenerationScheduler(LanguageModel model, int slots, int queueCapacity, int contextLength, KvCacheType kv = KvCacheType.F16, PrefixCache? cache = null)
    {
        Cache = cache ?? new PrefixCache(0);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(queueCapacity);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        _queueCapacity = queueCapacity;
        _batcher = new DecodeBatcher(model, slots);
        for (int i = slots - 1; i >= 0; i--)
        {
            var slot = new GenerationSlot(i, model, contextLength, kv, _batcher, Cache);
            _slots.Add(slot);
            _free.Push(slot);
        }
        _thread = new Thread(Run) { IsBackground = true, Name = "lfm-decode" };
        _thread.Start();
    }

    public int SlotCount => _slots.Count;

    /// <summary>The prompt-prefix cache shared by the slots (disabled when the server runs without one).</summary>
    public PrefixCache Cache { get; }

    public int QueueCapacity => _queueCapacity;

    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting { get { lock (_lock) return _waiting.Count; } }

    /// <summary>Requests generating now.</summary>
    public int Active { get { lock (_lock) return _active.Count; } }

    /// <summary>Sequence steps run so far (≈ tokens, plus one prefill per request).</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Batched forward passes run so far (one per round with pending decode steps).</summary>
    public long BatchedSteps => Interlocked.Read(ref _batchedSteps);

    /// <summary>Largest number of sequences stepped by one batched forward pass so far.</summary>
    public int LargestBatch => Volatile.Read(ref _largestBatch);

    private long _steps, _batchedSteps;
    private int _largestBatch;

    /// <summary>Delay after each step (tests use it to make a generation slow enough to abort mid-way).</summary>
    internal TimeSpan StepDelay { get; set; }

    /// <summary>
    /// Queues a generation. <paramref name="start"/> runs on the decode thread with a free slot and returns the
    /// sequence's event stream; the returned reader yields its events and completes after the last one (with the
    /// exception the stream threw, or <see cref="OperationCanceledException"/> when <paramref name="ct"/> fired).
    /// </summary>
    /// <exception cref="QueueFullException">All slots are busy and the queue is full.</exception>
    public ChannelReader<GenerationEvent> Enqueue(Func<GenerationSlot, IEnumerable<GenerationEvent>> start, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(start);
        ObjectDisposedException.ThrowIf(_stopping, this);
        var job = new Job(start, ct);
        lock (_lock)
        {
            // A request that can start at once never counts against the queue.
            int free = _free.Count - _waiting.Count;
            if (free <= 0 && _waiting.Count >= _queueCapacity)
                throw new QueueFullException(_queueCapacity);
            _waiting.Enqueue(job);
        }
        job.Registration = ct.Register(static s => ((GenerationScheduler)s!).Wake(), this);
        Wake();
        return job.Output.Reader;
    }

    private void Wake() => _wake.Release();

    private void Run()
    {
        while (!_stopping)
        {
            Admit();
            if (_active.Count == 0)
            {
                _wake.Wait();
                continue;
            }
            // Advance every active sequence to its next decode step, in admission order...
            for (int i = 0; i < _active.Count && !_stopping; i++)
            {
                if (!Advance(_active[i]))
                {
                    Retire(i);
                    i--;
                }
            }
            // ...then run all those steps as one batched forward pass.
            if (_batcher.Pending > 0)
                RunBatch();
            if (StepDelay > TimeSpan.Zero)
                Thread.Sleep(StepDelay);
        }
        _batcher.Clear();
        lock (_lock)
        {
            foreach (var job in _active)
            {
                try { job.Events?.Dispose(); } catch (Exception) { /* shutting down: the sequence is abandoned anyway */ }
                Finish(job, new ObjectDisposedException(nameof(GenerationScheduler), "The server is shutting down."));
            }
            foreach (var job in _waiting)
                Finish(job, new ObjectDisposedException(nameof(GenerationScheduler), "The server is shutting down."));
            _active.Clear();
            _waiting.Clear();
        }
    }

    private void Admit()
    {
        lock (_lock)
        {
            // Drop requests cancelled while waiting, wherever they are in the queue.
            if (_waiting.Count > 0 && _waiting.Any(j => j.Ct.IsCancellationRequested))
            {
                var keep = new List<Job>(_waiting.Count);
                foreach (var job in _waiting)
                {
                    if (job.Ct.IsCancellationRequested)
                        Finish(job, new OperationCanceledException(job.Ct));
                    else
                        keep.Add(job);
                }
                _waiting.Clear();
                foreach (var job in keep)
                    _waiting.Enqueue(job);
            }
            while (_free.Count > 0 && _waiting.Count > 0)
            {
                var job = _waiting.Dequeue();
                job.Slot = _free.Pop();
                _active.Add(job);
            }
        }
    }

    // An advance that yields this many events without reaching a decode step gives the others a turn (a stream that
    // does not use the batcher must not hold the decode thread for a whole generation).
    private const int MaxEventsPerAdvance = 64;

    /// <summary>Moves a sequence on to its next pending decode step (or its end); false when it is over (its output
    /// is then completed by <see cref="Retire"/>).</summary>
    private bool Advance(Job job)
    {
        if (job.Ct.IsCancellationRequested)
        {
            job.Error = new OperationCanceledException(job.Ct);
            return false;
        }
        try
        {
            job.Events ??= job.Start(job.Slot!).GetEnumerator();
            Interlocked.Increment(ref _steps);
            for (int n = 0; n < MaxEventsPerAdvance; n++)
            {
                if (!job.Events.MoveNext())
                    return false;
                var ev = job.Events.Current;
                if (ev is DecodePending)
                    return true;
                job.Output.Writer.TryWrite(ev);
                if (ev is Done)
                    return false;
            }
            return true;
        }
        catch (Exception e)
        {
            job.Error = e is OperationCanceledException && job.Ct.IsCancellationRequested ? new OperationCanceledException(job.Ct) : e;
            return false;
        }
    }

    private void RunBatch()
    {
        try
        {
            int n = _batcher.RunPending();
            Interlocked.Increment(ref _batchedSteps);
            if (n > _largestBatch)
                Volatile.Write(ref _largestBatch, n);
        }
        catch (Exception e)
        {
            // The batched pass failed part-way: every sequence in it has an unknown state, so all active ones end
            // with the error (none may be resumed on stale logits).
            for (int i = _active.Count - 1; i >= 0; i--)
            {
                _active[i].Error ??= e;
                Retire(i);
            }
        }
    }

    private void Retire(int index)
    {
        var job = _active[index];
        try
        {
            job.Events?.Dispose();
        }
        catch (Exception e)
        {
            job.Error ??= e;
        }
        lock (_lock)
        {
            _active.RemoveAt(index);
            _free.Push(job.Slot!);
        }
        Finish(job, job.Error);
    }

    private static void Finish(Job job, Exception? error)
    {
        job.Registration.Dispose();
        job.Output.Writer.TryComplete(error);
    }

    public void Dispose()
    {
        if (_stopping)
            return;
        _stopping = true;
        Wake();
        if (Thread.CurrentThread != _thread)
            _thread.Join();
        foreach (var slot in _slots)
            slot.Dispose();
        _wake.Dispose();
    }

    private sealed class Job(Func<GenerationSlot, IEnumerable<GenerationEvent>> start, CancellationToken ct)
    {
        public readonly Func<GenerationSlot, IEnumerable<GenerationEvent>> Start = start;
        public readonly CancellationToken Ct = ct;
        public readonly Channel<GenerationEvent> Output = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        public readonly long EnqueuedTimestamp = Stopwatch.GetTimestamp();
        public CancellationTokenRegistration Registration;
        public GenerationSlot? Slot;
        public IEnumerator<GenerationEvent>? Events;
        public Exception? Error;
    }
}
