using LfmSharp.Gguf;

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
