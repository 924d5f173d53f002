using LfmSharp.Kernels;

namespace LfmSharp.Models;

/// <summary>
/// Per-sequence state: position, KV cache of the attention layers, B·x history of the conv layers, and the
/// scratch buffers of a forward pass, all preallocated for <see cref="ContextLength"/> tokens and batches of up
/// to <see cref="BatchSize"/> tokens. Not thread-safe; one sequence per state.
/// </summary>
internal sealed class Lfm2State
{
    internal Lfm2State(Lfm2Model model, int contextLength, KvCacheType kvType, int batchSize)
    {
        var c = model.Config;
        Model = model;
        ContextLength = contextLength;
        KvCacheType = kvType;
        BatchSize = batchSize;
        int dim = c.HiddenSize, hd = c.HeadSize;
        if (KvCacheTypes.HeadSizeMultiple(kvType) is var multiple && hd % multiple != 0)
            throw new NotSupportedException($"lfm2: a {kvType} KV cache needs a head size that is a multiple of {multiple}; this model's is {hd}.");
        int attnLayers = 0;
        for (int i = 0; i < c.LayerCount; i++)
            attnLayers += c.IsAttentionLayer(i) ? 1 : 0;
        KvCaches = new KvCache[attnLayers];
        ConvStates = new float[c.LayerCount - attnLayers][];
        for (int i = 0, a = 0, s = 0; i < c.LayerCount; i++)
        {
            if (c.IsAttentionLayer(i))
                KvCaches[a++] = KvCacheTypes.Create(kvType, c.KvHeadCount(i), hd, contextLength);
            else
                ConvStates[s++] = new float[(c.ConvKernelSize - 1) * dim];   // [k−1, dim], oldest row first
        }
        Scratch = new Lfm2Scratch(model, batchSize);
        Self = [new Lfm2Segment(this, 0, 0)];
    }

    internal Lfm2Model Model { get; }
    public Lfm2Config Config => Model.Config;
    public int ContextLength { get; }
    public KvCacheType KvCacheType { get; }
    /// <summary>Largest number of tokens one internal step processes; longer inputs are split.</summary>
    public int BatchSize { get; }
    /// <summary>Tokens consumed so far (= the position of the next token).</summary>
    public int Position { get; internal set; }

    internal readonly KvCache[] KvCaches;      // per attention layer (Lfm2Attention.Index), all of KvCacheType's format
    internal readonly float[][] ConvStates;    // per conv layer (Lfm2ShortConv.Index)
    internal readonly Lfm2Scratch Scratch;
    internal readonly Lfm2Segment[] Self;      // [1] this state as the only segment of its own steps

    /// <summary>Conv histories to copy inside the next forward passes, at positions they run through (see
    /// <see cref="CaptureAt"/>); filled in by the pass, taken by <see cref="Snapshot(int)"/>.</summary>
    private readonly List<ConvCapture> _captures = [];

    /// <summary>True while a capture waits for the forward pass that runs through its position (the pass checks
    /// this per sequence, so a state without one costs it nothing).</summary>
    internal bool HasPendingCaptures { get; private set; }

    /// <summary>Forgets the sequence: position 0, conv history zero (KV rows are simply overwritten later).</summary>
    public void Reset()
    {
        Position = 0;
        foreach (var s in ConvStates)
            Array.Clear(s);
        ClearCaptures();
    }

    /// <summary>
    /// Asks the forward passes to come to copy the conv histories as they are after <paramref name="position"/>
    /// tokens (Position &lt; position), so that <see cref="Snapshot(int)"/> can copy the state at that position once
    /// the pass has run past it: a prefix-cache checkpoint inside a prefill chunk, without cutting the chunk there
    /// (each cut costs the sequence a whole forward pass of its own). The KV rows of the earlier positions stay in
    /// place and are copied by the snapshot.
    /// </summary>
    internal void CaptureAt(int position)
    {
        if (position <= Position)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"a capture must lie ahead of the state's position {Position}");
        var conv = new float[ConvStates.Length][];
        for (int s = 0; s < conv.Length; s++)
            conv[s] = new float[ConvStates[s].Length];
        _captures.Add(new ConvCapture(position, conv));
        HasPendingCaptures = true;
    }

    /// <summary>Drops every capture (taken or not).</summary>
    internal void ClearCaptures()
    {
        _captures.Clear();
        HasPendingCaptures = false;
    }

    /// <summary>
    /// Called by a forward pass for conv layer <paramref name="index"/> before it runs the segment's rows: copies the
    /// history after each pending capture position in (Position, Position + rows] from <paramref name="history"/>
    /// (the layer's history before the segment, [k−1, dim]) and <paramref name="input"/> (the segment's conv input
    /// rows, [rows, dim]) — the same rows <see cref="ShortConv"/> leaves in the history when a pass ends there.
    /// </summary>
    internal void Capture(int index, ReadOnlySpan<float> history, ReadOnlySpan<float> input, int dim)
    {
        int rows = input.Length / dim, k1 = history.Length / dim, pos0 = Position;
        foreach (var c in _captures)
        {
            if (c.Position <= pos0 || c.Position > pos0 + rows)
                continue;
            var dst = c.ConvStates[index];
            for (int j = 0; j < k1; j++)
            {
                int q = c.Position - k1 + j;   // the absolute position whose input row lands in history row j
                var src = q >= pos0 ? input.Slice((q - pos0) * dim, dim) : history.Slice((q - pos0 + k1) * dim, dim);
                src.CopyTo(dst.AsSpan(j * dim, dim));
            }
            if (index == ConvStates.Length - 1)
                c.Filled = true;
        }
    }

    /// <summary>After a pass: a capture is pending while some capture has not been filled yet.</summary>
    internal void CapturesRan()
    {
        bool pending = false;
        foreach (var c in _captures)
            pending |= !c.Filled;
        HasPendingCaptures = pending;
    }

    /// <summary>Copies the whole sequence state (position, conv histories, the used KV rows); it shares no buffer with this state.</summary>
    public Lfm2StateSnapshot Snapshot() => Snapshot(Position);

    /// <summary>
    /// A copy of the state after its first <paramref name="position"/> tokens: the current state, or an earlier
    /// position the last passes ran through with a filled <see cref="CaptureAt"/> (its conv copy moves into the
    /// snapshot; the KV rows before it are copied). It shares no buffer with this state.
    /// </summary>
    public Lfm2StateSnapshot Snapshot(int position)
    {
        float[][] conv;
        if (position == Position)
        {
            conv = new float[ConvStates.Length][];
            for (int s = 0; s < conv.Length; s++)
                conv[s] = (float[])ConvStates[s].Clone();
        }
        else
        {
            int i = _captures.FindIndex(c => c.Position == position && c.Filled);
            if (i < 0 || position > Position)
                throw new InvalidOperationException($"no conv history was captured at position {position} (the state is at {Position})");
            conv = _captures[i].ConvStates;
            _captures.RemoveAt(i);
        }
        var kv = new KvCacheSnapshot[KvCaches.Length];
        for (int a = 0; a < kv.Length; a++)
            kv[a] = KvCaches[a].Snapshot(position);
        return new Lfm2StateSnapshot(this, position, conv, kv);
    }

    /// <summary>Returns the state to <paramref name="snapshot"/>, which must come from a state of the same shape.</summary>
    public void Restore(Lfm2StateSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Config != Config || snapshot.KvCacheType != KvCacheType || snapshot.Position > ContextLength)
            throw new ArgumentException("Snapshot comes from a state of another model, KV type or a larger context.", nameof(snapshot));
        for (int s = 0; s < ConvStates.Length; s++)
            snapshot.ConvStates[s].CopyTo(ConvStates[s], 0);
        for (int a = 0; a < KvCaches.Length; a++)
            KvCaches[a].Restore(snapshot.Kv[a]);
        Position = snapshot.Position;
        ClearCaptures();
    }

    /// <summary>The conv histories after <see cref="Position"/> tokens, once a pass has run through it.</summary>
    private sealed class ConvCapture(int position, float[][] convStates)
    {
        public int Position { get; } = position;
        public float[][] ConvStates { get; } = convStates;
        public bool Filled { get; set; }
    }
}
