// LFM2 / LFM2.5 (Liquid AI), GGUF general.architecture = "lfm2": a hybrid of gated short-convolution blocks
// and grouped-query attention blocks, every layer pre-norm with a SwiGLU feed-forward. Which layers are
// attention is stored only in lfm2.attention.head_count_kv (one entry per layer, 0 = conv layer).
//
// Checked against: llama.cpp src/models/lfm2.cpp (the goldens in tests/TestData/fixtures come from it),
// HF transformers models/lfm2/modeling_lfm2.py, mlx-lm models/lfm2.py.
//
// Field            GGUF tensor                          ne (ggml order)        type
// TokenEmbedding   token_embd.weight                    [dim, vocab]           any
// FinalNorm        token_embd_norm.weight (or           [dim]                  F32 (any float)
//                  output_norm.weight, Ollama's name)
// Output           output.weight (optional; absent =    [dim, vocab]           any
//                  tied to token_embd)
// per layer i:
// OperatorNorm     blk.i.attn_norm.weight               [dim]
// FfnNorm          blk.i.ffn_norm.weight                [dim]
// W1 / W3 / W2     blk.i.ffn_gate / ffn_up / ffn_down   [dim, ff] [dim, ff] [ff, dim]
// conv layers:
// InProj           blk.i.shortconv.in_proj.weight       [dim, 3·dim]           rows: B | C | X
// Conv             blk.i.shortconv.conv.weight          [k, dim]               F32, taps oldest first
// OutProj          blk.i.shortconv.out_proj.weight      [dim, dim]
// attention layers:
// QProj/KProj/VProj blk.i.attn_q / attn_k / attn_v      [dim, heads·hd] [dim, kv·hd] [dim, kv·hd]
// OutProj          blk.i.attn_output.weight             [heads·hd, dim]
// QLayerNorm       blk.i.attn_q_norm.weight             [hd]
// KLayerNorm       blk.i.attn_k_norm.weight             [hd]
//
// Quirks: the FINAL norm is stored as token_embd_norm (llama.cpp's "fix for wrong tensor name"); RoPE is NEOX
// (pairs j and j + hd/2), rotating the whole head; q/k RMSNorm is per head, before RoPE; no biases anywhere;
// the conv state is the last k−1 rows of B·x (not x), has no notion of position and cannot be rewound, so
// rollback goes through Snapshot/Restore.

using System.Runtime.InteropServices;
using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Models;

/// <summary>Hyper-parameters of a dense LFM2 / LFM2.5 model, read from GGUF metadata.</summary>
public sealed record Lfm2Config
{
    /// <summary>The GGUF <c>general.architecture</c> of LFM2 / LFM2.5 models.</summary>
    public const string Architecture = "lfm2";

    /// <summary>Number of blocks (attention and short-convolution layers).</summary>
    public required int LayerCount { get; init; }
    /// <summary>Width of the residual stream.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Width of the SwiGLU feed-forward layer.</summary>
    public required int FeedForwardSize { get; init; }
    /// <summary>Query heads of the attention layers.</summary>
    public required int HeadCount { get; init; }
    /// <summary>KV heads per layer; 0 marks a short-conv layer.</summary>
    public required IReadOnlyList<int> KvHeadCounts { get; init; }
    /// <summary>Vocabulary size (rows of the embedding).</summary>
    public required int VocabSize { get; init; }
    /// <summary>The training context length from the file (the state's context is chosen separately).</summary>
    public required int ContextLength { get; init; }
    /// <summary>Length of the short convolution (L_cache).</summary>
    public required int ConvKernelSize { get; init; }
    /// <summary>Epsilon of the RMS norms.</summary>
    public required float RmsNormEps { get; init; }
    /// <summary>RoPE frequency base.</summary>
    public required float RopeTheta { get; init; }

    /// <summary>Width of one attention head.</summary>
    public int HeadSize => HiddenSize / HeadCount;
    /// <summary>Whether <paramref name="layer"/> is an attention layer (otherwise a short convolution).</summary>
    public bool IsAttentionLayer(int layer) => KvHeadCounts[layer] != 0;
    /// <summary>Key/value heads of <paramref name="layer"/> (0 for convolution layers).</summary>
    public int KvHeadCount(int layer) => KvHeadCounts[layer];

    /// <summary>Reads the hyper-parameters from GGUF metadata; throws <see cref="InvalidDataException"/> naming a missing or inconsistent key.</summary>
    public static Lfm2Config FromGguf(GgufMetadata md)
    {
        ArgumentNullException.ThrowIfNull(md);
        string arch = md.GetStringOrDefault("general.architecture") ?? throw new InvalidDataException("GGUF has no 'general.architecture' key.");
        if (arch != Architecture)
            throw new NotSupportedException($"unsupported architecture '{arch}' (supported: {Architecture})");

        int Int(string key, int min = 1)
        {
            string full = $"{Architecture}.{key}";
            if (!md.Contains(full))
                throw new InvalidDataException($"lfm2: metadata key '{full}' is missing.");
            long v = md.GetInt64(full);
            return v >= min && v <= int.MaxValue ? (int)v : throw new InvalidDataException($"lfm2: '{full}' = {v} is out of range (≥ {min}).");
        }
        float Float(string key)
        {
            string full = $"{Architecture}.{key}";
            float v = md.Contains(full) ? md.GetFloat32(full) : throw new InvalidDataException($"lfm2: metadata key '{full}' is missing.");
            return float.IsFinite(v) && v > 0 ? v : throw new InvalidDataException($"lfm2: '{full}' = {v} must be positive and finite.");
        }

        int layers = Int("block_count"), dim = Int("embedding_length"), heads = Int("attention.head_count");
        const string kvKey = Architecture + ".attention.head_count_kv";
        if (!md.TryGetValue(kvKey, out var kvValue))
            throw new InvalidDataException($"lfm2: metadata key '{kvKey}' is missing.");
        if (!kvValue.IsArray)
            throw new InvalidDataException($"lfm2: '{kvKey}' must be a per-layer array (0 = conv layer), found a scalar; the layer pattern is stored nowhere else.");
        int[] kv = md.GetInt32Array(kvKey);
        if (kv.Length != layers)
            throw new InvalidDataException($"lfm2: '{kvKey}' has {kv.Length} entries but block_count is {layers}.");
        if (dim % heads != 0 || (dim / heads) % 2 != 0)
            throw new InvalidDataException($"lfm2: embedding_length {dim} must split into {heads} heads of even size.");
        for (int i = 0; i < layers; i++)
        {
            if (kv[i] < 0 || (kv[i] > 0 && heads % kv[i] != 0))
                throw new InvalidDataException($"lfm2: head_count_kv[{i}] = {kv[i]} must be 0 (conv) or divide head_count {heads}.");
        }

        int vocab = md.Contains(Architecture + ".vocab_size") ? Int("vocab_size")
            : md.Contains("tokenizer.ggml.tokens") ? md.GetStringArray("tokenizer.ggml.tokens").Length
            : throw new InvalidDataException("lfm2: neither 'lfm2.vocab_size' nor 'tokenizer.ggml.tokens' gives the vocabulary size.");

        return new Lfm2Config
        {
            LayerCount = layers,
            HiddenSize = dim,
            FeedForwardSize = Int("feed_forward_length"),
            HeadCount = heads,
            KvHeadCounts = kv,
            VocabSize = vocab,
            ContextLength = Int("context_length"),
            ConvKernelSize = Int("shortconv.l_cache"),
            RmsNormEps = Float("attention.layer_norm_rms_epsilon"),
            RopeTheta = Float("rope.freq_base"),
        };
    }
}

/// <summary>Weights of one layer: the norms and FFN every layer has, plus either attention or short-conv weights.</summary>
internal sealed class Lfm2Layer
{
    public required float[] OperatorNorm { get; init; }   // [dim]
    public required float[] FfnNorm { get; init; }        // [dim]
    public required WeightMatrix W1 { get; init; }        // gate [ff, dim]
    public required WeightMatrix W3 { get; init; }        // up   [ff, dim]
    public required WeightMatrix W2 { get; init; }        // down [dim, ff]
    public Lfm2Attention? Attention { get; init; }
    public Lfm2ShortConv? ShortConv { get; init; }
}

internal sealed class Lfm2Attention
{
    public required WeightMatrix QProj { get; init; }     // [heads·hd, dim]
    public required WeightMatrix KProj { get; init; }     // [kv·hd, dim]
    public required WeightMatrix VProj { get; init; }     // [kv·hd, dim]
    public required WeightMatrix OutProj { get; init; }   // [dim, heads·hd]
    public required float[] QLayerNorm { get; init; }     // [hd]
    public required float[] KLayerNorm { get; init; }     // [hd]
    public required int KvHeads { get; init; }
    public required int Index { get; init; }              // slot in the state's KV cache
}

internal sealed class Lfm2ShortConv
{
    public required WeightMatrix InProj { get; init; }    // [3·dim, dim], output rows B | C | X
    public required float[] Conv { get; init; }           // [dim, k] taps per channel, oldest first
    public required WeightMatrix OutProj { get; init; }   // [dim, dim]
    public required int Index { get; init; }              // slot in the state's conv states
}

/// <summary>
/// All weights, bound by exact GGUF names to views over the memory map (nothing is copied but 1-D tensors), and, when
/// asked, Q4_0/Q8_0/Q4_K/Q6_K matrices also copied into the kernels' interleaved layout (<see cref="InterleavedCopies"/>).
/// </summary>
internal sealed unsafe class Lfm2Weights
{
    /// <summary>Native memory of the interleaved copies (freed by <see cref="Lfm2Model.Dispose"/>).</summary>
    public required InterleavedCopies Copies { get; init; }

    public required WeightMatrix TokenEmbedding { get; init; }   // [vocab, dim]
    public required float[] FinalNorm { get; init; }             // [dim]
    public required WeightMatrix Output { get; init; }           // [vocab, dim], = TokenEmbedding when tied
    public required Lfm2Layer[] Layers { get; init; }

    /// <param name="threads">Threads for filling the interleaved copies.</param>
    public static Lfm2Weights Bind(GgufFile file, Lfm2Config c, bool interleave, int threads)
    {
        var copies = new InterleavedCopies();
        try
        {
            return Bind(file, c, interleave ? copies : null, threads);
        }
        catch
        {
            copies.Free();
            throw;
        }
    }

    private static Lfm2Weights Bind(GgufFile file, Lfm2Config c, InterleavedCopies? copies, int threads)
    {
        int dim = c.HiddenSize, hd = c.HeadSize;
        WeightMatrix Matrix(string name, int cols, int rows)
        {
            var t = Find(file, name);
            var m = ToMatrix(file, t, cols, rows);
            return copies is not null && WeightMatrix.CanInterleave(m.Type, m.Rows) ? copies.Add(t, m) : m;
        }
        float[] Vector(string name, int n) => ToFloats(file, Find(file, name), n);

        var embedding = Matrix("token_embd.weight", dim, c.VocabSize);
        string finalNorm = file.TryGetTensor("token_embd_norm.weight", out _) ? "token_embd_norm.weight"
            : file.TryGetTensor("output_norm.weight", out _) ? "output_norm.weight"
            : throw new InvalidDataException("lfm2: final norm tensor 'token_embd_norm.weight' (or 'output_norm.weight') not found in the GGUF file.");
        var output = file.TryGetTensor("output.weight", out _) ? Matrix("output.weight", dim, c.VocabSize) : embedding;

        var layers = new Lfm2Layer[c.LayerCount];
        int attnIndex = 0, convIndex = 0;
        for (int i = 0; i < c.LayerCount; i++)
        {
            string p = $"blk.{i}.";
            int kv = c.KvHeadCount(i);
            layers[i] = new Lfm2Layer
            {
                OperatorNorm = Vector(p + "attn_norm.weight", dim),
                FfnNorm = Vector(p + "ffn_norm.weight", dim),
                W1 = Matrix(p + "ffn_gate.weight", dim, c.FeedForwardSize),
                W3 = Matrix(p + "ffn_up.weight", dim, c.FeedForwardSize),
                W2 = Matrix(p + "ffn_down.weight", c.FeedForwardSize, dim),
                Attention = kv == 0 ? null : new Lfm2Attention
                {
                    QProj = Matrix(p + "attn_q.weight", dim, c.HeadCount * hd),
                    KProj = Matrix(p + "attn_k.weight", dim, kv * hd),
                    VProj = Matrix(p + "attn_v.weight", dim, kv * hd),
                    OutProj = Matrix(p + "attn_output.weight", c.HeadCount * hd, dim),
                    QLayerNorm = Vector(p + "attn_q_norm.weight", hd),
                    KLayerNorm = Vector(p + "attn_k_norm.weight", hd),
                    KvHeads = kv,
                    Index = attnIndex++,
                },
                ShortConv = kv != 0 ? null : new Lfm2ShortConv
                {
                    InProj = Matrix(p + "shortconv.in_proj.weight", dim, 3 * dim),
                    Conv = ToFloats(file, Find(file, p + "shortconv.conv.weight"), c.ConvKernelSize * dim, [c.ConvKernelSize, dim]),
                    OutProj = Matrix(p + "shortconv.out_proj.weight", dim, dim),
                    Index = convIndex++,
                },
            };
        }
        copies?.Fill(file, threads);
        return new Lfm2Weights { TokenEmbedding = embedding, FinalNorm = Vector(finalNorm, dim), Output = output, Layers = layers, Copies = copies ?? new InterleavedCopies() };
    }

    private static GgufTensorInfo Find(GgufFile file, string name) =>
        file.TryGetTensor(name, out var t) ? t : throw new InvalidDataException($"lfm2: tensor '{name}' not found in the GGUF file.");

    private static WeightMatrix ToMatrix(GgufFile file, GgufTensorInfo t, int cols, int rows)
    {
        CheckShape(t, [cols, rows]);
        if (!GgmlTypes.IsComputeSupported(t.Type))
            throw new NotSupportedException($"lfm2: tensor '{t.Name}' has unsupported type {GgmlTypes.Name(t.Type)}.");
        return new WeightMatrix(t.Type, rows, cols, file.GetTensorPointer(t));
    }

    private static float[] ToFloats(GgufFile file, GgufTensorInfo t, int n, long[]? shape = null)
    {
        CheckShape(t, shape ?? [n]);
        if (t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
            throw new NotSupportedException($"lfm2: tensor '{t.Name}' has type {GgmlTypes.Name(t.Type)}; expected a float type (F32/F16/BF16).");
        var dst = new float[n];
        var table = new WeightMatrix(t.Type, 1, n, file.GetTensorPointer(t));
        Embedding.Lookup(table, 0, dst);
        return dst;
    }

    private static void CheckShape(GgufTensorInfo t, long[] expected)
    {
        var d = t.Dimensions;
        // A trailing 1 (e.g. [n, 1]) is the same tensor to ggml.
        int rank = d.Length;
        while (rank > expected.Length && d[rank - 1] == 1)
            rank--;
        bool ok = rank == expected.Length;
        for (int i = 0; ok && i < rank; i++)
            ok = d[i] == expected[i];
        if (!ok)
            throw new InvalidDataException($"lfm2: tensor '{t.Name}' has shape {t.ShapeString}, expected [{string.Join(", ", expected)}].");
    }
}

/// <summary>
/// Activations of one forward step over up to <see cref="Tokens"/> rows: the residual stream and every block's
/// intermediate buffers, plus the matmul workspace. A state owns one for its own steps; the model owns one for
/// batched decode steps over several states.
/// </summary>
internal sealed class Lfm2Scratch
{
    public Lfm2Scratch(Lfm2Model model, int tokens)
    {
        var c = model.Config;
        int dim = c.HiddenSize, q = c.HeadCount * c.HeadSize, kv = c.KvHeadCounts.Max() * c.HeadSize, T = tokens;
        Tokens = tokens;
        X = Pinned(T * dim);                                   // [T, dim] residual stream
        Xb = Pinned(T * dim);                                  // [T, dim] normed input of a block
        Out = Pinned(T * dim);                                 // [T, dim] block output before the residual add
        // A block's own buffers are dead once it has written Out, so the conv block, the attention block and the
        // feed-forward share one region (a third of the scratch at the 1.2B shape's batch sizes):
        //   conv      [T, 3·dim] B | C | x,  [T, dim] B·x then C·conv,  [T, dim] conv output
        //   attention [T, heads·hd] q,  [T, kv·hd] k,  [T, kv·hd] v,  [T, heads·hd] attention output
        //   ffn       [T, ff] gate then silu(gate)·up,  [T, ff] up
        int perToken = Math.Max(5 * dim, Math.Max(2 * q + 2 * kv, 2 * c.FeedForwardSize));
        Work = Pinned(T * perToken);
        int maxCols = Math.Max(Math.Max(dim, q), c.FeedForwardSize);
        Workspace = new MatMulWorkspace(model.Pool, T, maxCols, model.Precision);
    }

    public int Tokens { get; }
    public readonly float[] X, Xb, Out, Work;
    public readonly MatMulWorkspace Workspace;

    private static float[] Pinned(int n) => GC.AllocateArray<float>(n, pinned: true);
}

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

/// <summary>Rows [Row, Row + Count) of a forward step belong to <see cref="State"/>, at its positions Position.. .</summary>
internal readonly record struct Lfm2Segment(Lfm2State State, int Row, int Count);

/// <summary>An immutable copy of an <see cref="Lfm2State"/> (see <see cref="Lfm2State.Snapshot"/>).</summary>
internal sealed class Lfm2StateSnapshot
{
    internal Lfm2StateSnapshot(Lfm2State from, int position, float[][] convStates, Array[] kv)
    {
        Config = from.Config;
        KvCacheType = from.KvCacheType;
        Position = position;
        ConvStates = convStates;
        Kv = kv;
    }

    public int Position { get; }
    internal Lfm2Config Config { get; }
    internal KvCacheType KvCacheType { get; }
    internal float[][] ConvStates { get; }
    internal Array[] Kv { get; }   // per attention layer: K then V, [Position, kvDim] each
}

/// <summary>The LFM2 network: immutable weights plus the forward pass. One forward pass runs at a time.</summary>
/// <summary>
/// Interleaved copies of weight matrices (<see cref="WeightMatrix.InterleaveRows"/>) in native memory. Each is filled
/// from the file with ordinary reads (<see cref="GgufFile.ReadTensorData"/>), a few rows at a time, so the mapped
/// pages of those tensors are never touched by the matmuls and never become resident: the copy takes their place.
/// </summary>
internal sealed unsafe class InterleavedCopies
{
    private readonly List<nint> _blocks = [];
    private readonly List<(GgufTensorInfo Tensor, WeightMatrix Matrix)> _pending = [];

    /// <summary>Bytes held.</summary>
    public long Bytes { get; private set; }

    /// <summary>Allocates the copy of <paramref name="m"/> and returns the matrix using it; <see cref="Fill(GgufFile, int)"/> writes it.</summary>
    public WeightMatrix Add(GgufTensorInfo t, in WeightMatrix m)
    {
        long size = (long)m.Rows * m.RowBytes;
        byte* dst = (byte*)NativeMemory.AlignedAlloc((nuint)size, 64);
        _blocks.Add((nint)dst);
        Bytes += size;
        var result = m.WithInterleaved(dst);
        _pending.Add((t, result));
        return result;
    }

    /// <summary>Reads every added tensor from <paramref name="file"/> into its copy, on up to <paramref name="threads"/> threads.</summary>
    public void Fill(GgufFile file, int threads)
    {
        Parallel.ForEach(_pending, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) }, p => Fill(file, p.Tensor, p.Matrix));
        _pending.Clear();
    }

    private static void Fill(GgufFile file, GgufTensorInfo t, WeightMatrix m)
    {
        long size = (long)m.Rows * m.RowBytes;
        // 64 rows (a multiple of the 8-row group) per read: large enough for few system calls, small enough to stay in cache.
        long chunk = 64L * m.RowBytes;
        var staging = System.Buffers.ArrayPool<byte>.Shared.Rent((int)chunk);
        try
        {
            for (long off = 0; off < size; off += chunk)
            {
                int n = (int)Math.Min(chunk, size - off);
                file.ReadTensorData(t, off, staging.AsSpan(0, n));
                WeightMatrix.InterleaveRows(m.Type, m.Columns, staging.AsSpan(0, n), new Span<byte>(m.Interleaved + off, n));
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(staging);
        }
    }

    public void Free()
    {
        foreach (var p in _blocks)
            NativeMemory.AlignedFree((void*)p);
        _blocks.Clear();
        _pending.Clear();
        Bytes = 0;
    }
}

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
    /// <param name="repackWeights">Copy Q4_0/Q8_0/Q4_K/Q6_K matrices into the kernels' interleaved layout (see
    /// <see cref="ModelLoadOptions.RepackWeights"/>); only done where those kernels run.</param>
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
            seg.State.Position += seg.Count;

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
            st.AppendKv(w.Index, pos0, sk, sv);
            if (st.KvCacheType == KvCacheType.F32)
                Attention.Causal(Pool, sq, st.K32[w.Index], st.V32[w.Index], n, pos0, c.HeadCount, w.KvHeads, hd, scale, st.Scores, satt);
            else if (st.KvCacheType == KvCacheType.Q8_0)
                Attention.CausalQ8_0(Pool, sq, st.K8[w.Index], st.V8[w.Index], n, pos0, c.HeadCount, w.KvHeads, hd, scale, st.Scores, satt);
            else
                Attention.Causal(Pool, sq, st.K16[w.Index], st.V16[w.Index], n, pos0, c.HeadCount, w.KvHeads, hd, scale, st.Scores, satt);
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
