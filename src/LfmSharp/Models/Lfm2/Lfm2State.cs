using LfmSharp.Kernels.Quant;

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
        int attnLayers = c.KvHeadCounts.Count(k => k != 0);
        KvDims = new int[attnLayers];
        K32 = new float[attnLayers][];
        V32 = new float[attnLayers][];
        K16 = new Half[attnLayers][];
        V16 = new Half[attnLayers][];
        K8 = new byte[attnLayers][];
        V8 = new byte[attnLayers][];
        if (kvType == KvCacheType.Q8_0 && hd % 32 != 0)
            throw new NotSupportedException($"lfm2: a Q8_0 KV cache needs a head size that is a multiple of 32; this model's is {hd}.");
        ConvStates = new float[c.LayerCount - attnLayers][];
        for (int i = 0, a = 0, s = 0; i < c.LayerCount; i++)
        {
            if (c.IsAttentionLayer(i))
            {
                int kvDim = KvDims[a] = c.KvHeadCount(i) * hd;
                long n = (long)contextLength * kvDim;                        // [kvHeads, ContextLength, hd], head-major (see Attention)
                (K32[a], V32[a], K16[a], V16[a], K8[a], V8[a]) = ([], [], [], [], [], []);
                if (kvType == KvCacheType.F32)
                    (K32[a], V32[a]) = (new float[n], new float[n]);
                else if (kvType == KvCacheType.F16)
                    (K16[a], V16[a]) = (new Half[n], new Half[n]);
                else                                                         // [kvHeads, ContextLength, hd/32 blocks of 34 bytes]
                    (K8[a], V8[a]) = (new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, n)], new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, n)]);
                a++;
            }
            else
            {
                ConvStates[s++] = new float[(c.ConvKernelSize - 1) * dim];   // [k−1, dim], oldest row first
            }
        }
        Scratch = new Lfm2Scratch(model, batchSize);
        Scores = GC.AllocateArray<float>(model.Pool.ThreadCount * contextLength, pinned: true); // [threads, ContextLength] attention scores
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

    internal readonly int[] KvDims;
    internal readonly float[][] K32, V32;
    internal readonly Half[][] K16, V16;
    internal readonly byte[][] K8, V8;
    internal readonly float[][] ConvStates;
    internal readonly float[] Scores;
    internal readonly Lfm2Scratch Scratch;
    internal readonly Lfm2Segment[] Self;      // [1] this state as the only segment of its own steps

    /// <summary>Forgets the sequence: position 0, conv history zero (KV rows are simply overwritten later).</summary>
    public void Reset()
    {
        Position = 0;
        foreach (var s in ConvStates)
            Array.Clear(s);
    }

    /// <summary>Copies the whole sequence state (position, conv histories, the used KV rows).</summary>
    public Lfm2StateSnapshot Snapshot()
    {
        var kv = new Array[KvDims.Length * 2];
        for (int a = 0; a < KvDims.Length; a++)
        {
            var (k, v) = Cache(a);
            // The used rows of each head (the cache is [kvHeads, ContextLength, row]), packed as [kvHeads, Position, row].
            int heads = KvDims[a] / Config.HeadSize;
            long row = HeadRowElements(), used = Position * row, run = ContextLength * row;
            // From the array type, not its element type: NativeAOT has that array type compiled already.
            kv[2 * a] = Array.CreateInstanceFromArrayType(k.GetType(), checked((int)(heads * used)));
            kv[2 * a + 1] = Array.CreateInstanceFromArrayType(v.GetType(), checked((int)(heads * used)));
            for (int g = 0; g < heads; g++)
            {
                Array.Copy(k, g * run, kv[2 * a], g * used, used);
                Array.Copy(v, g * run, kv[2 * a + 1], g * used, used);
            }
        }
        return new Lfm2StateSnapshot(this, Position, ConvStates.Select(s => (float[])s.Clone()).ToArray(), kv);
    }

    /// <summary>
    /// Writes rows <paramref name="k"/>, <paramref name="v"/> ([n, kvHeads·hd], position-major as the projections
    /// produce them) at positions pos0.. of attention layer <paramref name="a"/>'s cache, in the cache's type. The cache
    /// is head-major: row t of head g goes to row pos0 + t of that head's run of ContextLength rows.
    /// </summary>
    internal void AppendKv(int a, int pos0, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        int hd = Config.HeadSize, kvDim = KvDims[a], heads = kvDim / hd, n = k.Length / kvDim;
        int row = (int)HeadRowElements();
        for (int t = 0; t < n; t++)
        {
            for (int g = 0; g < heads; g++)
            {
                var ks = k.Slice(t * kvDim + g * hd, hd);
                var vs = v.Slice(t * kvDim + g * hd, hd);
                int at = (g * ContextLength + pos0 + t) * row;
                switch (KvCacheType)
                {
                    case KvCacheType.F32:
                        ks.CopyTo(K32[a].AsSpan(at, row));
                        vs.CopyTo(V32[a].AsSpan(at, row));
                        break;
                    case KvCacheType.F16:
                        ToHalf(ks, K16[a].AsSpan(at, row));
                        ToHalf(vs, V16[a].AsSpan(at, row));
                        break;
                    default:   // a head's row of hd values is hd/32 whole Q8_0 blocks
                        Q8_0.QuantizeRow(ks, K8[a].AsSpan(at, row));
                        Q8_0.QuantizeRow(vs, V8[a].AsSpan(at, row));
                        break;
                }
            }
        }
    }

    private static void ToHalf(ReadOnlySpan<float> src, Span<Half> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = (Half)src[i];
    }

    /// <summary>Array elements of one head's cache row: hd values (F32/F16) or hd/32 Q8_0 blocks of 34 bytes.</summary>
    private long HeadRowElements() => KvCacheType == KvCacheType.Q8_0 ? Config.HeadSize / 32 * 34 : Config.HeadSize;

    /// <summary>Attention layer <paramref name="a"/>'s K and V arrays of this state's cache type.</summary>
    private (Array K, Array V) Cache(int a) => KvCacheType switch
    {
        KvCacheType.F32 => (K32[a], V32[a]),
        KvCacheType.F16 => (K16[a], V16[a]),
        _ => (K8[a], V8[a]),
    };

    /// <summary>Returns the state to <paramref name="snapshot"/>, which must come from a state of the same shape.</summary>
    public void Restore(Lfm2StateSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot.Config != Config || snapshot.KvCacheType != KvCacheType || snapshot.Position > ContextLength)
            throw new ArgumentException("Snapshot comes from a state of another model, KV type or a larger context.", nameof(snapshot));
        for (int s = 0; s < ConvStates.Length; s++)
            snapshot.ConvStates[s].CopyTo(ConvStates[s], 0);
        for (int a = 0; a < KvDims.Length; a++)
        {
            var (k, v) = Cache(a);
            int heads = KvDims[a] / Config.HeadSize;
            long row = HeadRowElements(), used = snapshot.Position * row, run = ContextLength * row;
            for (int g = 0; g < heads; g++)
            {
                Array.Copy(snapshot.Kv[2 * a], g * used, k, g * run, used);
                Array.Copy(snapshot.Kv[2 * a + 1], g * used, v, g * run, used);
            }
        }
        Position = snapshot.Position;
    }
}
