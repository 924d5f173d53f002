// LFM2 / LFM2.5 (Liquid AI), GGUF general.architecture = "lfm2": a hybrid of gated short-convolution blocks
// and grouped-query attention blocks, every layer pre-norm with a SwiGLU feed-forward. Which layers are
// attention is stored only in lfm2.attention.head_count_kv (one entry per layer, 0 = conv layer).
//
// Checked against: llama.cpp src/models/lfm2.cpp (the goldens in tests/TestData/fixtures come from it),
// HF transformers models/lfm2/modeling_lfm2.py, mlx-lm models/lfm2.py.
//
// Quirks: the FINAL norm is stored as token_embd_norm (llama.cpp's "fix for wrong tensor name"); RoPE is NEOX
// (pairs j and j + hd/2), rotating the whole head; q/k RMSNorm is per head, before RoPE; no biases anywhere;
// the conv state is the last k−1 rows of B·x (not x), has no notion of position and cannot be rewound, so
// rollback goes through Snapshot/Restore.

using LfmSharp.Gguf;
using LfmSharp.Kernels;

namespace LfmSharp.Models;

/// <summary>The LFM2 network: immutable weights plus the forward pass. One forward pass runs at a time.</summary>
internal sealed class Lfm2Model : IDisposable
{
    private readonly Lfm2Weights _weights;
    private readonly object _gate = new();
    private bool _disposed;
    private Lfm2Scratch? _batchScratch;                 // [rows ≥ largest ForwardBatch so far] activations of batched steps
    private Lfm2Segment[] _batchSegments = [];

    internal Lfm2Model(Lfm2Config config, Lfm2Weights weights, KernelThreadPool pool, MatMulPrecision precision)
    {
        Config = config;
        _weights = weights;
        Pool = pool;
        Precision = precision;
    }

    public Lfm2Config Config { get; }
    internal KernelThreadPool Pool { get; }
    internal MatMulPrecision Precision { get; }

    /// <summary>Binds the weights of <paramref name="file"/> (which must stay open while the model is used).</summary>
    /// <param name="repackWeights">Copy Q4_0/Q8_0/Q4_K/Q6_K matrices into the kernels' interleaved layout, TQ1_0 ones
    /// into TQ2_0 blocks (see <see cref="ModelLoadOptions.RepackWeights"/>); only done where those kernels run.</param>
    public static Lfm2Model Load(GgufFile file, KernelThreadPool pool, MatMulPrecision precision = MatMulPrecision.LlamaCpp, bool repackWeights = true)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(pool);
        var config = Lfm2Config.FromGguf(file.Metadata);
        // The Float precision dequantizes rows from the map and never reads an interleaved copy.
        return new Lfm2Model(config, Lfm2Weights.Bind(file, config, repackWeights && precision == MatMulPrecision.LlamaCpp, pool.ThreadCount), pool, precision);
    }

    /// <summary>Bytes of weights held in the interleaved layout (native memory, in addition to the map).</summary>
    public long InterleavedBytes => _weights.Copies.Bytes;

    /// <summary>A fresh sequence state.</summary>
    /// <param name="contextLength">Tokens the KV cache holds (preallocated).</param>
    /// <param name="kvCacheType">KV cache precision.</param>
    /// <param name="batchSize">Tokens per internal step; longer inputs are split. Scratch memory is about
    /// batchSize · (3·HiddenSize + max(5·HiddenSize, 2·FeedForwardSize)) floats, plus the matmul workspace. The
    /// default, 128, prefills as fast as 256–512 at short prompts and faster at long ones (its scratch stays in
    /// cache; the whole 32K context of the 1.2B: 45 vs 39 tokens/s), with 11 MiB less scratch than 256.</param>
    public Lfm2State CreateState(int contextLength = 4096, KvCacheType kvCacheType = KvCacheType.F16, int batchSize = 128)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (!Enum.IsDefined(kvCacheType))
            throw new ArgumentOutOfRangeException(nameof(kvCacheType), kvCacheType, "unknown KV cache type");
        if (contextLength < RuntimeLimits.MinContextLength || contextLength > Config.ContextLength)
            RuntimeLimits.CheckContextLength(Config, contextLength, kvCacheType, 1, Pool.ThreadCount);   // the shared, clear error
        return new Lfm2State(this, contextLength, kvCacheType, Math.Min(batchSize, contextLength));
    }

    /// <summary>
    /// Feeds <paramref name="tokens"/> at positions state.Position.. and writes logits: for
    /// <see cref="LogitPositions.All"/> one row of VocabSize per token (row i = after tokens[0..i]) into
    /// logits[tokens.Length · VocabSize]; for <see cref="LogitPositions.Last"/> only the last token's row into logits[VocabSize].
    /// Inputs are validated before the state changes.
    /// </summary>
    public void Forward(ReadOnlySpan<int> tokens, Lfm2State state, Span<float> logits, LogitPositions positions = LogitPositions.Last)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Model != this)
            throw new ArgumentException("The state was created by another model.", nameof(state));
        if (tokens.IsEmpty)
            throw new ArgumentException("No tokens to process.", nameof(tokens));
        int vocab = Config.VocabSize;
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {tokens[i]} at index {i} is outside the vocabulary [0, {vocab}).");
        }
        if (state.Position + tokens.Length > state.ContextLength)
            throw new ArgumentException($"context full: {state.Position} tokens in the state + {tokens.Length} new > context length {state.ContextLength}.", nameof(tokens));
        long need = positions == LogitPositions.All ? (long)tokens.Length * vocab : vocab;
        if (logits.Length < need)
            throw new ArgumentException($"logits buffer holds {logits.Length} floats; {need} needed.", nameof(logits));

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var segments = state.Self;
            for (int start = 0; start < tokens.Length; start += state.BatchSize)
            {
                int n = Math.Min(state.BatchSize, tokens.Length - start);
                bool last = start + n == tokens.Length;
                segments[0] = new Lfm2Segment(state, 0, n);
                if (positions == LogitPositions.All)
                    Step(tokens.Slice(start, n), segments, state.Scratch, logits.Slice(start * vocab, n * vocab), allRows: true);
                else
                    Step(tokens.Slice(start, n), segments, state.Scratch, last ? logits[..vocab] : default, allRows: false);
            }
        }
    }

    /// <summary>
    /// One decode step for several sequences at once (continuous batching): <paramref name="tokens"/>[i] is fed to
    /// <paramref name="states"/>[i] at its own position, and the next-token logits of sequence i go to row i of
    /// <paramref name="logits"/> ([states.Length, VocabSize]). The weights are read once for the whole batch, so a
    /// batch of n costs far less than n single steps; per sequence the result equals <see cref="Forward"/> with one
    /// token. Inputs are validated before any state changes.
    /// </summary>
    public void ForwardBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<Lfm2State> states, Span<float> logits)
    {
        if (tokens.Length != states.Length)
            throw new ArgumentException($"{tokens.Length} tokens for {states.Length} states; one token per state.", nameof(tokens));
        int[]? rented = states.Length > 256 ? new int[states.Length] : null;
        Span<int> ones = rented ?? stackalloc int[states.Length];
        ones.Fill(1);
        ForwardBatch(tokens, ones, states, logits);
    }

    /// <summary>
    /// One forward pass over several sequences, each fed its own number of tokens: <paramref name="counts"/>[i]
    /// tokens of <paramref name="tokens"/> (taken in order) go to <paramref name="states"/>[i] at its own position, so
    /// prefill chunks of new sequences and single decode tokens of running ones share one pass (the weights are read
    /// once). Row i of <paramref name="logits"/> ([states.Length, VocabSize]) gets the logits after the last token of
    /// sequence i; per sequence the result equals <see cref="Forward"/> with the same tokens. Inputs are validated
    /// before any state changes.
    /// </summary>
    public void ForwardBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<int> counts, ReadOnlySpan<Lfm2State> states, Span<float> logits)
    {
        if (counts.Length != states.Length)
            throw new ArgumentException($"{counts.Length} token counts for {states.Length} states; one count per state.", nameof(counts));
        if (states.IsEmpty)
            throw new ArgumentException("No tokens to process.", nameof(tokens));
        int vocab = Config.VocabSize;
        long total = 0;
        for (int i = 0; i < states.Length; i++)
        {
            var st = states[i] ?? throw new ArgumentNullException(nameof(states), $"states[{i}] is null.");
            if (st.Model != this)
                throw new ArgumentException($"states[{i}] was created by another model.", nameof(states));
            if (counts[i] < 1)
                throw new ArgumentOutOfRangeException(nameof(counts), $"counts[{i}] is {counts[i]}; every sequence takes at least one token.");
            if ((long)st.Position + counts[i] > st.ContextLength)
                throw new ArgumentException($"context full: states[{i}] holds {st.Position} tokens + {counts[i]} new > its context length {st.ContextLength}.", nameof(states));
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(states[j], st))
                    throw new ArgumentException($"states[{j}] and states[{i}] are the same state; a sequence takes one segment per step.", nameof(states));
            }
            total += counts[i];
        }
        if (total != tokens.Length)
            throw new ArgumentException($"{tokens.Length} tokens but the counts add up to {total}.", nameof(tokens));
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token id {tokens[i]} at index {i} is outside the vocabulary [0, {vocab}).");
        }
        if (logits.Length < (long)states.Length * vocab)
            throw new ArgumentException($"logits buffer holds {logits.Length} floats; {(long)states.Length * vocab} needed.", nameof(logits));

        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // Grown only when a larger step than ever before arrives, so steady decoding allocates nothing.
            if (_batchScratch is null || _batchScratch.Tokens < tokens.Length)
            {
                int size = Math.Max(tokens.Length, _batchScratch is null ? 4 : 2 * _batchScratch.Tokens);
                _batchScratch = new Lfm2Scratch(this, size);
            }
            if (_batchSegments.Length < states.Length)
                _batchSegments = new Lfm2Segment[Math.Max(states.Length, 2 * _batchSegments.Length)];
            var segments = _batchSegments.AsSpan(0, states.Length);
            for (int i = 0, row = 0; i < states.Length; row += counts[i], i++)
                segments[i] = new Lfm2Segment(states[i], row, counts[i]);
            Step(tokens, segments, _batchScratch, logits[..(states.Length * vocab)], allRows: false);
            segments.Clear();   // do not keep the states alive from here
        }
    }

    /// <summary>
    /// One step over tokens.Length rows (at most the scratch's size) split into per-sequence segments. Logits go to
    /// <paramref name="logits"/>: every row ([rows, vocab], allRows) or the last row of each segment
    /// ([segments, vocab]); empty = none.
    /// </summary>
    private void Step(ReadOnlySpan<int> tokens, ReadOnlySpan<Lfm2Segment> segments, Lfm2Scratch s, Span<float> logits, bool allRows)
    {
        var c = Config;
        int T = tokens.Length, dim = c.HiddenSize;
        var x = s.X.AsSpan(0, T * dim);
        var xb = s.Xb.AsSpan(0, T * dim);
        var o = s.Out.AsSpan(0, T * dim);

        for (int t = 0; t < T; t++)
            Embedding.Lookup(_weights.TokenEmbedding, tokens[t], x.Slice(t * dim, dim));

        foreach (var layer in _weights.Layers)
        {
            RmsNorm.ApplyRows(x, layer.OperatorNorm, c.RmsNormEps, xb);
            if (layer.Attention is { } attn)
                AttentionBlock(attn, s, segments, T, xb, o);
            else
                ShortConvBlock(layer.ShortConv!, s, segments, T, xb, o);
            VectorMath.Add(x, o, x);

            RmsNorm.ApplyRows(x, layer.FfnNorm, c.RmsNormEps, xb);
            FeedForward(layer, s, T, xb, o);
            VectorMath.Add(x, o, x);
        }
        foreach (var seg in segments)
        {
            if (seg.State.HasPendingCaptures)
                seg.State.CapturesRan();
            seg.State.Position += seg.Count;
        }

        if (logits.IsEmpty)
            return;
        // Final norm and head only for the rows asked for (llama.cpp's inp_out_ids).
        int rows;
        if (allRows)
        {
            rows = T;
            RmsNorm.ApplyRows(x, _weights.FinalNorm, c.RmsNormEps, xb);
        }
        else
        {
            rows = segments.Length;
            for (int i = 0; i < rows; i++)
            {
                int last = segments[i].Row + segments[i].Count - 1;
                RmsNorm.ApplyRows(x.Slice(last * dim, dim), _weights.FinalNorm, c.RmsNormEps, xb.Slice(i * dim, dim));
            }
        }
        MatMul.Compute(_weights.Output, xb[..(rows * dim)], logits[..(rows * c.VocabSize)], s.Workspace);
    }

    private void ShortConvBlock(Lfm2ShortConv w, Lfm2Scratch s, ReadOnlySpan<Lfm2Segment> segments, int T, ReadOnlySpan<float> xb, Span<float> o)
    {
        int dim = Config.HiddenSize;
        var bcx = s.Work.AsSpan(0, T * 3 * dim);              // [T, 3·dim] B | C | x
        var bx = s.Work.AsSpan(T * 3 * dim, T * dim);         // [T, dim] B·x, then C·conv
        var conv = s.Work.AsSpan(T * 4 * dim, T * dim);       // [T, dim]
        MatMul.Compute(w.InProj, xb, bcx, s.Workspace);
        for (int t = 0; t < T; t++)
        {
            var row = bcx.Slice(t * 3 * dim, 3 * dim);
            VectorMath.Multiply(row[..dim], row[(2 * dim)..], bx.Slice(t * dim, dim));     // B ⊙ x
        }
        // The convolution runs along each sequence's own history.
        foreach (var seg in segments)
        {
            var rows = new Range(seg.Row * dim, (seg.Row + seg.Count) * dim);
            if (seg.State.HasPendingCaptures)
                seg.State.Capture(w.Index, seg.State.ConvStates[w.Index], bx[rows], dim);
            ShortConv.Apply(bx[rows], seg.State.ConvStates[w.Index], w.Conv, dim, Config.ConvKernelSize, conv[rows]);
        }
        for (int t = 0; t < T; t++)
            VectorMath.Multiply(bcx.Slice(t * 3 * dim + dim, dim), conv.Slice(t * dim, dim), bx.Slice(t * dim, dim)); // C ⊙ conv
        MatMul.Compute(w.OutProj, bx, o, s.Workspace);
    }

    private void AttentionBlock(Lfm2Attention w, Lfm2Scratch s, ReadOnlySpan<Lfm2Segment> segments, int T, ReadOnlySpan<float> xb, Span<float> o)
    {
        var c = Config;
        int hd = c.HeadSize, qDim = c.HeadCount * hd, kvDim = w.KvHeads * hd;
        var q = s.Work.AsSpan(0, T * qDim);                                  // [T, heads·hd]
        var k = s.Work.AsSpan(T * qDim, T * kvDim);                          // [T, kv·hd]
        var v = s.Work.AsSpan(T * (qDim + kvDim), T * kvDim);                // [T, kv·hd]
        var att = s.Work.AsSpan(T * (qDim + 2 * kvDim), T * qDim);           // [T, heads·hd] attention output
        MatMul.Compute(w.QProj, xb, q, s.Workspace);
        MatMul.Compute(w.KProj, xb, k, s.Workspace);
        MatMul.Compute(w.VProj, xb, v, s.Workspace);

        RmsNorm.ApplyRows(q, w.QLayerNorm, c.RmsNormEps, q);   // per head, before RoPE
        RmsNorm.ApplyRows(k, w.KLayerNorm, c.RmsNormEps, k);
        float scale = 1f / MathF.Sqrt(hd);
        // RoPE, the cache append and attention run per sequence: own positions, own cache.
        foreach (var seg in segments)
        {
            var st = seg.State;
            int pos0 = st.Position, n = seg.Count;
            var sq = q.Slice(seg.Row * qDim, n * qDim);
            var sk = k.Slice(seg.Row * kvDim, n * kvDim);
            var sv = v.Slice(seg.Row * kvDim, n * kvDim);
            var satt = att.Slice(seg.Row * qDim, n * qDim);
            for (int t = 0; t < n; t++)
            {
                Rope.Neox(sq.Slice(t * qDim, qDim), hd, pos0 + t, c.RopeTheta);
                Rope.Neox(sk.Slice(t * kvDim, kvDim), hd, pos0 + t, c.RopeTheta);
            }
            var cache = st.KvCaches[w.Index];
            cache.Append(pos0, sk, sv);
            Attention.Causal(Pool, sq, cache, n, pos0, c.HeadCount, scale, satt);
        }
        MatMul.Compute(w.OutProj, att, o, s.Workspace);
    }

    private void FeedForward(Lfm2Layer w, Lfm2Scratch s, int T, ReadOnlySpan<float> xb, Span<float> o)
    {
        int ff = Config.FeedForwardSize;
        var gate = s.Work.AsSpan(0, T * ff);          // [T, ff] gate, then silu(gate)·up
        var up = s.Work.AsSpan(T * ff, T * ff);       // [T, ff] up
        MatMul.ComputeSwiGlu(w.W1, w.W3, xb, gate, up, s.Workspace);   // gate = silu(W1·x) ⊙ (W3·x)
        MatMul.Compute(w.W2, gate, o, s.Workspace);
    }

    /// <summary>Blocks until no forward pass runs, then refuses new ones (the weights' memory map may go away next).</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            _weights.Copies.Free();   // no forward pass runs (the gate) and none can start
        }
    }
}
