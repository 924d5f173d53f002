using LfmSharp.Models;

namespace LfmSharp.Generation;

/// <summary>
/// Continuous batching: gathers the next inputs of several <see cref="GenerationSequence"/>s — single decode tokens
/// of running ones and prefill chunks of new ones — and runs them as one <see cref="Lfm2Model.ForwardBatch(ReadOnlySpan{int}, ReadOnlySpan{int}, ReadOnlySpan{Lfm2State}, Span{float})"/>,
/// so the weights are read once per step for all of them, within a per-step token budget.
/// </summary>
/// <remarks>
/// A step: <see cref="TryAdd"/> each sequence (decode ones first, so a prefill only takes what budget is left), then
/// <see cref="RunPending"/>, then hand each queued sequence its row with <see cref="Accept"/> (the driver does that,
/// so one sequence's failure stays its own). Each sequence then finds its logits as if it had run the input alone.
/// Not thread-safe: one thread drives the batcher and all of its sequences.
/// </remarks>
internal sealed class DecodeBatcher
{
    /// <summary>Default most tokens per step: a prefill chunk this long keeps the GEMM's per-call weight packing a
    /// few percent of the prefill, while the running sequences wait at most one such step for their next token.</summary>
    public const int DefaultTokenBudget = 256;

    private readonly LanguageModel _model;
    private readonly int[] _tokens;                  // [TokenBudget] the step's inputs, sequence after sequence
    private readonly int[] _counts;                  // [Capacity] tokens per queued sequence
    private readonly Lfm2State[] _states;            // [Capacity]
    private readonly GenerationSequence?[] _queued;  // [Capacity]
    private readonly float[] _logits;                // [Capacity, vocab] the batched forward's output
    private int _count, _tokenCount;

    /// <param name="model">The model every queued state belongs to.</param>
    /// <param name="capacity">Most sequences per step (the number of concurrent generations).</param>
    /// <param name="tokenBudget">Most tokens per step (decode tokens plus prefill chunks); at least
    /// <paramref name="capacity"/>, so a new sequence always finds room next to the others' decode tokens.</param>
    public DecodeBatcher(LanguageModel model, int capacity, int tokenBudget = DefaultTokenBudget)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        if (tokenBudget < capacity)
            throw new ArgumentOutOfRangeException(nameof(tokenBudget), tokenBudget, $"the token budget per step must be at least the number of sequences ({capacity})");
        _model = model;
        _tokens = new int[tokenBudget];
        _counts = new int[capacity];
        _states = new Lfm2State[capacity];
        _queued = new GenerationSequence[capacity];
        _logits = new float[(long)capacity * model.Config.VocabSize];
    }

    public int Capacity => _counts.Length;

    /// <summary>Most tokens one step feeds.</summary>
    public int TokenBudget => _tokens.Length;

    /// <summary>Sequences queued since the last <see cref="RunPending"/>.</summary>
    public int Pending => _count;

    /// <summary>Tokens queued since the last <see cref="RunPending"/> (never above <see cref="TokenBudget"/>).</summary>
    public int PendingTokens => _tokenCount;

    /// <summary>
    /// Queues <paramref name="sequence"/>'s next input, cut to the budget left. False when nothing was queued: the
    /// sequence is over (its last events, <see cref="Done"/> last, are in <paramref name="events"/>) or no budget is
    /// left this step (<paramref name="events"/> untouched; it will be asked again next step).
    /// </summary>
    public bool TryAdd(GenerationSequence sequence, List<GenerationEvent> events)
    {
        ArgumentNullException.ThrowIfNull(sequence);
        if (sequence.State.Model != _model.Model)
            throw new ArgumentException("The sequence's state belongs to another model than the batcher's.", nameof(sequence));
        for (int i = 0; i < _count; i++)
        {
            if (ReferenceEquals(_queued[i], sequence) || ReferenceEquals(_states[i], sequence.State))
                throw new InvalidOperationException("This sequence already has an input in this step; run the pending step first.");
        }
        if (_count == _counts.Length)
            throw new InvalidOperationException($"The decode batcher is full ({_counts.Length} sequences); run the pending step first.");
        int left = _tokens.Length - _tokenCount;
        if (left == 0 && !sequence.IsFinished)
            return false;
        if (!sequence.TryGetInput(Math.Max(left, 1), events, out var input))
            return false;
        input.AsSpan().CopyTo(_tokens.AsSpan(_tokenCount));
        _tokenCount += input.Count;
        _counts[_count] = input.Count;
        _states[_count] = sequence.State;
        _queued[_count] = sequence;
        _count++;
        return true;
    }

    /// <summary>Runs the queued inputs as one forward pass. On failure every queued sequence is in an unknown state.</summary>
    /// <returns>The number of sequences stepped; read their rows with <see cref="SequenceAt"/> and <see cref="Accept"/>.</returns>
    public int RunPending()
    {
        int n = _count;
        if (n == 0)
            return 0;
        _model.Model.ForwardBatch(_tokens.AsSpan(0, _tokenCount), _counts.AsSpan(0, n), _states.AsSpan(0, n), _logits.AsSpan(0, n * _model.Config.VocabSize));
        return n;
    }

    /// <summary>The <paramref name="index"/>-th sequence of the step just run.</summary>
    public GenerationSequence SequenceAt(int index) => _queued[index] ?? throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Hands the <paramref name="index"/>-th sequence its logits row (no copy: the sampler works on the
    /// batch's own row) and runs its per-token cycle.</summary>
    public void Accept(int index, List<GenerationEvent> events)
    {
        int vocab = _model.Config.VocabSize;
        SequenceAt(index).Accept(_logits.AsSpan(index * vocab, vocab), events);
    }

    /// <summary>Drops the queued inputs (call after the rows were accepted, or to abandon a step).</summary>
    public void Clear()
    {
        Array.Clear(_states, 0, _count);
        Array.Clear(_queued, 0, _count);
        _count = 0;
        _tokenCount = 0;
    }

    /// <summary>Passes over the sequences in one step: see <see cref="IsTurn"/>.</summary>
    public const int Passes = 2;

    /// <summary>
    /// Whether <paramref name="sequence"/> queues its input in <paramref name="pass"/> of a step: decode tokens in
    /// pass 0, prefill chunks in pass 1, so the prefill chunks only take what budget the running sequences leave. The
    /// one place that order is decided, for the scheduler and <see cref="Step"/> alike.
    /// </summary>
    public static bool IsTurn(GenerationSequence sequence, int pass) => sequence.IsPrefilling == (pass == 1);

    /// <summary>Runs one step over <paramref name="sequences"/> (those not finished), decode inputs first, and
    /// collects each one's events into <paramref name="events"/> (same index). For drivers that own all the sequences
    /// (tests, a synchronous batch); the server's scheduler does the same with per-sequence error handling.</summary>
    /// <returns>False when every sequence is over.</returns>
    public bool Step(IReadOnlyList<GenerationSequence> sequences, IReadOnlyList<List<GenerationEvent>> events)
    {
        for (int pass = 0; pass < Passes; pass++)
        {
            for (int i = 0; i < sequences.Count; i++)
            {
                var s = sequences[i];
                if (s.IsFinished || !IsTurn(s, pass))
                    continue;
                TryAdd(s, events[i]);
            }
        }
        try
        {
            int n = RunPending();
            for (int i = 0; i < n; i++)
            {
                var s = SequenceAt(i);
                for (int j = 0; j < sequences.Count; j++)
                {
                    if (ReferenceEquals(sequences[j], s))
                        Accept(i, events[j]);
                }
            }
        }
        finally
        {
            Clear();
        }
        for (int i = 0; i < sequences.Count; i++)
        {
            if (!sequences[i].IsFinished)
                return true;
        }
        return false;
    }
}
