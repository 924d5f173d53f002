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

    internal GenerationSlot(int id, LanguageModel model, int contextLength, KvCacheType kv, PrefixCache cache)
    {
        Cache = cache;
        Id = id;
        _model = model;
        _contextLength = contextLength;
        _kv = kv;
    }

    public int Id { get; }

    /// <summary>The prefix cache every slot of the scheduler shares.</summary>
    public PrefixCache Cache { get; }

    public int ContextLength => _contextLength;

    /// <summary>The slot's chat session (stateless <c>Complete</c> calls reuse its cached prefixes).</summary>
    public ChatSession Session => _session ??= new ChatSession(_model, _contextLength, _kv, Cache);

    /// <summary>A raw model state for text completions.</summary>
    public Lfm2State State => _state ??= _model.CreateState(_contextLength, _kv);

    public void Dispose() => _session?.Dispose();
}

/// <summary>
/// Runs many generations on one model: a fixed number of slots (each with its own state), a bounded wait queue
/// (<see cref="QueueFullException"/> past it), and one decode thread running steps.
/// <para>
/// <b>Continuous batching with prefill inside the batch.</b> A generation is a <see cref="GenerationSequence"/> (the
/// endpoints' streams are <see cref="IGenerationSource"/>s, started here on the decode thread). Each step gathers the
/// next decode token of every running sequence, then fills what is left of the per-step token budget with prefill
/// chunks of new ones, and runs all of it as one forward pass (<see cref="DecodeBatcher"/>): the weights are read once
/// per step, a new request starts within a step or two, and the running ones keep streaming while it prefills.
/// Sequences join and leave between steps. Cancellation is checked before every step, so an aborted request stops
/// within one token (or one prefill chunk) and its slot goes to the next waiting request at once.
/// </para>
/// <para>
/// A stream that is not a generation (no model work) is advanced one event per step, so it never holds the decode
/// thread for long.
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
    private readonly Job?[] _stepJobs;           // [slots] the job of each sequence in the step being run
    private volatile bool _stopping;

    /// <param name="model">The model every slot runs.</param>
    /// <param name="slots">Sequences generated at once.</param>
    /// <param name="queueCapacity">Requests that may wait for a slot; one more is refused.</param>
    /// <param name="contextLength">Tokens per slot.</param>
    /// <param name="kv">KV cache element type.</param>
    /// <param name="tokensPerStep">Most tokens one forward pass feeds: every running sequence's decode token, then
    /// prefill chunks of new ones up to this budget (at least <paramref name="slots"/>). Larger starts long prompts
    /// sooner; smaller keeps the running sequences' steps shorter while a prompt prefills.</param>
    /// <param name="cache">The prompt-prefix cache all slots share; null: none (every prompt is prefilled in full).</param>
    public GenerationScheduler(LanguageModel model, int slots, int queueCapacity, int contextLength, KvCacheType kv = KvCacheType.F16,
        int tokensPerStep = DecodeBatcher.DefaultTokenBudget, PrefixCache? cache = null)
    {
        Cache = cache ?? new PrefixCache(0);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(queueCapacity);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 1);
        _queueCapacity = queueCapacity;
        _batcher = new DecodeBatcher(model, slots, Math.Max(tokensPerStep, slots));
        _stepJobs = new Job?[slots];
        for (int i = slots - 1; i >= 0; i--)
        {
            var slot = new GenerationSlot(i, model, contextLength, kv, Cache);
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

    /// <summary>Most tokens one forward pass feeds.</summary>
    public int TokensPerStep => _batcher.TokenBudget;

    /// <summary>Requests waiting for a slot.</summary>
    public int Waiting { get { lock (_lock) return _waiting.Count; } }

    /// <summary>Requests generating now.</summary>
    public int Active { get { lock (_lock) return _active.Count; } }

    /// <summary>Sequence steps run so far (≈ tokens, plus one per prefill chunk).</summary>
    public long Steps => Interlocked.Read(ref _steps);

    /// <summary>Batched forward passes run so far (one per step with queued inputs).</summary>
    public long BatchedSteps => Interlocked.Read(ref _batchedSteps);

    /// <summary>Largest number of sequences stepped by one batched forward pass so far.</summary>
    public int LargestBatch => Volatile.Read(ref _largestBatch);

    /// <summary>Largest number of tokens fed by one forward pass so far (never above <see cref="TokensPerStep"/>).</summary>
    public int LargestStepTokens => Volatile.Read(ref _largestStepTokens);

    private long _steps, _batchedSteps;
    private int _largestBatch, _largestStepTokens;

    /// <summary>Delay after each step (tests use it to make a generation slow enough to abort mid-way).</summary>
    internal TimeSpan StepDelay { get; set; }

    /// <summary>
    /// Queues a generation. <paramref name="start"/> runs on the decode thread with a free slot and returns the
    /// sequence's event stream (a generation is stepped in batches, see the class remarks); the returned reader
    /// yields its events and completes after the last one (with the exception the stream threw, or
    /// <see cref="OperationCanceledException"/> when <paramref name="ct"/> fired).
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
            Step();
            for (int i = _active.Count - 1; i >= 0; i--)
            {
                if (_active[i].Over)
                    Retire(i);
            }
            if (StepDelay > TimeSpan.Zero)
                Thread.Sleep(StepDelay);
        }
        _batcher.Clear();
        lock (_lock)
        {
            foreach (var job in _active)
            {
                try { Release(job); } catch (Exception) { /* shutting down: the sequence is abandoned anyway */ }
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

    /// <summary>One step: start new jobs, queue every decode token, then prefill chunks within the budget, run
    /// them as one pass and hand each sequence its logits. Jobs that ended are marked <see cref="Job.Over"/>.</summary>
    private void Step()
    {
        int queued = 0;
        for (int pass = 0; pass < DecodeBatcher.Passes; pass++)
        {
            for (int i = 0; i < _active.Count && !_stopping; i++)
            {
                var job = _active[i];
                if (pass == 0 && !Prepare(job))
                    continue;
                if (job.Over || job.Sequence is not { } seq || !DecodeBatcher.IsTurn(seq, pass))
                    continue;
                try
                {
                    if (_batcher.TryAdd(seq, job.Buffer))
                        _stepJobs[queued++] = job;
                    else
                        job.Over = seq.IsFinished;
                }
                catch (Exception e)
                {
                    Fail(job, e);
                }
                Flush(job);
            }
        }
        if (queued > 0)
            RunBatch(queued);
    }

    /// <summary>Starts the job on its first step, checks cancellation, and advances a plain stream by one event.
    /// False when the job has nothing to queue this step.</summary>
    private bool Prepare(Job job)
    {
        if (job.Ct.IsCancellationRequested)
        {
            job.Error = new OperationCanceledException(job.Ct);
            job.Over = true;
            return false;
        }
        try
        {
            if (job.Sequence is null && job.Stream is null)
            {
                var produced = job.Start(job.Slot!);
                if (produced is IGenerationSource source)
                    job.Sequence = source.Start();
                else
                    job.Stream = produced.GetEnumerator();
            }
            if (job.Stream is { } stream)
            {
                Interlocked.Increment(ref _steps);
                if (!stream.MoveNext())
                {
                    job.Over = true;
                    return false;
                }
                job.Output.Writer.TryWrite(stream.Current);
                job.Over = stream.Current is Done;
                return false;
            }
            return true;
        }
        catch (Exception e)
        {
            Fail(job, e);
            return false;
        }
    }

    private void RunBatch(int queued)
    {
        try
        {
            int n = _batcher.RunPending();
            Interlocked.Increment(ref _batchedSteps);
            if (n > _largestBatch)
                Volatile.Write(ref _largestBatch, n);
            if (_batcher.PendingTokens > _largestStepTokens)
                Volatile.Write(ref _largestStepTokens, _batcher.PendingTokens);
        }
        catch (Exception e)
        {
            // The pass failed part-way: every sequence in it has an unknown state, so all of them end with the
            // error (none may be resumed on stale logits).
            for (int i = 0; i < queued; i++)
                Fail(_stepJobs[i]!, e);
            queued = 0;
        }
        for (int i = 0; i < queued; i++)
        {
            var job = _stepJobs[i]!;
            try
            {
                Interlocked.Increment(ref _steps);
                _batcher.Accept(i, job.Buffer);
                job.Over = job.Sequence!.IsFinished;
            }
            catch (Exception e)
            {
                Fail(job, e);
            }
            Flush(job);
        }
        _batcher.Clear();
        Array.Clear(_stepJobs, 0, _stepJobs.Length);
    }

    private static void Fail(Job job, Exception e)
    {
        job.Error ??= e is OperationCanceledException && job.Ct.IsCancellationRequested ? new OperationCanceledException(job.Ct) : e;
        job.Over = true;
    }

    private static void Flush(Job job)
    {
        var buffer = job.Buffer;
        for (int i = 0; i < buffer.Count; i++)
            job.Output.Writer.TryWrite(buffer[i]);
        buffer.Clear();
    }

    private static void Release(Job job)
    {
        job.Sequence?.Dispose();
        job.Stream?.Dispose();
    }

    private void Retire(int index)
    {
        var job = _active[index];
        try
        {
            Release(job);
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
        // A cancelled request's reader wants the cancellation, not a backlog: undelivered events would hold back
        // its Completion until read.
        if (error is OperationCanceledException && job.Ct.IsCancellationRequested)
        {
            while (job.Output.Reader.TryRead(out _)) { }
        }
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
        public readonly Channel<GenerationEvent> Output = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = true });   // two readers: the scheduler drops a cancelled request's backlog
        public readonly List<GenerationEvent> Buffer = [];
        public readonly long EnqueuedTimestamp = Stopwatch.GetTimestamp();
        public CancellationTokenRegistration Registration;
        public GenerationSlot? Slot;
        public GenerationSequence? Sequence;     // a generation, stepped in batches
        public IEnumerator<GenerationEvent>? Stream;  // anything else, one event per step
        public bool Over;
        public Exception? Error;
    }
}
