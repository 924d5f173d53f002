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

    /// <summary>Forgets the sequence: position 0, conv history zero (KV rows are simply overwritten later).</summary>
    public void Reset()
    {
        Position = 0;
        foreach (var s in ConvStates)
            Array.Clear(s);
    }

    /// <summary>Copies the whole sequence state (position, conv histories, the used KV rows); it shares no buffer with this state.</summary>
    public Lfm2StateSnapshot Snapshot()
    {
        var conv = new float[ConvStates.Length][];
        for (int s = 0; s < conv.Length; s++)
            conv[s] = (float[])ConvStates[s].Clone();
        var kv = new KvCacheSnapshot[KvCaches.Length];
        for (int a = 0; a < kv.Length; a++)
            kv[a] = KvCaches[a].Snapshot(Position);
        return new Lfm2StateSnapshot(this, Position, conv, kv);
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
    }
}
