using LfmSharp.Models;

namespace LfmSharp.Generation;

/// <summary>
/// Continuous batching: gathers the single-token decode steps of several generations and runs them as one
/// <see cref="Lfm2Model.ForwardBatch"/>, so the weights are read once per step for all of them.
/// </summary>
/// <remarks>
/// A generation whose <see cref="GenerationOptions.Batcher"/> (or <see cref="ChatSession.Batcher"/>) is set does not
/// run its decode steps itself: it queues the step here and yields <see cref="DecodePending"/>. Its owner advances
/// every stream up to that event, calls <see cref="RunPending"/> once, then resumes them all; each stream finds its
/// logits in place as if it had run the step alone. Prefill runs inside the stream, one sequence at a time, in chunks
/// of <see cref="Generator.PrefillChunk"/> tokens with a <see cref="DecodePending"/> (nothing queued) between chunks.
/// Not thread-safe: one thread drives the batcher and all of its streams.
/// </remarks>
internal sealed class DecodeBatcher
{
    private readonly LanguageModel _model;
    private readonly int[] _tokens;          // [Capacity] one token per pending sequence
    private readonly Lfm2State[] _states;    // [Capacity]
    private readonly float[]?[] _targets;    // [Capacity] each sequence's own logits buffer, [vocab]
    private readonly float[] _logits;        // [Capacity, vocab] the batched forward's output
    private int _count;

    /// <param name="model">The model every queued state belongs to.</param>
    /// <param name="capacity">Most sequences per batched step (the number of concurrent generations).</param>
    public DecodeBatcher(LanguageModel model, int capacity)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _model = model;
        _tokens = new int[capacity];
        _states = new Lfm2State[capacity];
        _targets = new float[capacity][];
        _logits = new float[(long)capacity * model.Config.VocabSize];
    }

    public int Capacity => _tokens.Length;

    /// <summary>Steps queued since the last <see cref="RunPending"/>.</summary>
    public int Pending => _count;

    /// <summary>Queues feeding <paramref name="token"/> to <paramref name="state"/>; its next-token logits will be written to <paramref name="logits"/>.</summary>
    internal void Enqueue(Lfm2State state, int token, float[] logits)
    {
        if (state.Model != _model.Model)
            throw new ArgumentException("The state belongs to another model than the batcher's.", nameof(state));
        if (_count == _tokens.Length)
            throw new InvalidOperationException($"The decode batcher is full ({_tokens.Length} sequences); run the pending steps first.");
        for (int i = 0; i < _count; i++)
        {
            if (ReferenceEquals(_states[i], state))
                throw new InvalidOperationException("This state already has a decode step pending; run the pending steps first.");
        }
        _tokens[_count] = token;
        _states[_count] = state;
        _targets[_count] = logits;
        _count++;
    }

    /// <summary>Runs every queued step as one batched forward pass and hands each sequence its logits.</summary>
    /// <returns>The number of sequences stepped.</returns>
    public int RunPending()
    {
        int n = _count;
        if (n == 0)
            return 0;
        int vocab = _model.Config.VocabSize;
        try
        {
            _model.ForwardBatch(_tokens.AsSpan(0, n), _states.AsSpan(0, n), _logits.AsSpan(0, n * vocab));
            for (int i = 0; i < n; i++)
                _logits.AsSpan(i * vocab, vocab).CopyTo(_targets[i]);
        }
        finally
        {
            Clear();
        }
        return n;
    }

    /// <summary>Drops the queued steps (their streams must not be resumed).</summary>
    public void Clear()
    {
        Array.Clear(_states, 0, _count);
        Array.Clear(_targets, 0, _count);
        _count = 0;
    }
}
