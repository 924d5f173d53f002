using System.Globalization;
using System.Text;

namespace LfmSharp.Synthetic;

/// <summary>Which chat template a synthetic model embeds.</summary>
internal enum ChatTemplateStyle
{
    /// <summary>LFM2 (v1) layout, as in the test fixtures: tool list wrapped in tool-list tokens, tool results in tool-response tokens.</summary>
    Lfm2,

    /// <summary>LFM2.5 layout: <c>List of tools: [...]</c> without tool-list tokens, past thinking stripped unless <c>keep_past_thinking</c>.</summary>
    Lfm25,
}

/// <summary>
/// The hyper-parameters of an LFM2 model: what a GGUF stores under <c>lfm2.*</c>. Presets cover the fixture shapes
/// (<c>tiny</c>, <c>small</c>) and the published family; any other shape can be described explicitly and checked
/// with <see cref="Validate"/>.
/// </summary>
internal sealed record ModelShape
{
    /// <summary>Short id (a preset name, or <c>custom</c>); used in cache file names.</summary>
    public string Name { get; init; } = "custom";

    /// <summary><c>general.name</c> written into the file.</summary>
    public string GeneralName { get; init; } = "lfm2-synthetic";

    /// <summary>Hidden size, <c>lfm2.embedding_length</c>.</summary>
    public int EmbeddingLength { get; init; }

    /// <summary>SwiGLU inner size, <c>lfm2.feed_forward_length</c>.</summary>
    public int FeedForwardLength { get; init; }

    /// <summary>Query heads, <c>lfm2.attention.head_count</c>.</summary>
    public int HeadCount { get; init; }

    /// <summary>Key/value heads of every attention layer (written per layer in <c>head_count_kv</c>, 0 for conv layers).</summary>
    public int KvHeadCount { get; init; }

    /// <summary>Number of layers, <c>lfm2.block_count</c>.</summary>
    public int BlockCount { get; init; }

    /// <summary>Indices of the attention layers; every other layer is a short-conv layer.</summary>
    public IReadOnlyList<int> AttentionLayers { get; init; } = [];

    public int VocabSize { get; init; }

    public int ContextLength { get; init; }

    public float RopeFreqBase { get; init; } = 1_000_000f;

    /// <summary>Short-conv kernel length, <c>lfm2.shortconv.l_cache</c>.</summary>
    public int ConvCache { get; init; } = 3;

    public float NormEpsilon { get; init; } = 1e-5f;

    /// <summary>BPE merges the synthetic tokenizer is trained to (HOW-MADE: 200 for tiny, 600 for small, 2000 otherwise).</summary>
    public int MergeCount { get; init; } = 2000;

    /// <summary>Template used when the caller does not choose one.</summary>
    public ChatTemplateStyle DefaultChatTemplate { get; init; } = ChatTemplateStyle.Lfm2;

    public int HeadDim => HeadCount == 0 ? 0 : EmbeddingLength / HeadCount;

    public bool IsAttentionLayer(int layer) => AttentionLayers.Contains(layer);

    /// <summary>One character per layer: <c>c</c> for short-conv, <c>A</c> for attention (e.g. <c>ccAcAc</c>).</summary>
    public string LayerPattern
    {
        get
        {
            var sb = new StringBuilder(BlockCount);
            for (int i = 0; i < BlockCount; i++)
                sb.Append(IsAttentionLayer(i) ? 'A' : 'c');
            return sb.ToString();
        }
    }

    /// <summary>Total number of weights (all tensors), e.g. 1,170,340,608 for the LFM2.5-1.2B shape.</summary>
    public long ParameterCount => SyntheticModel.PlanTensors(this, SyntheticFileType.F32).Sum(t => t.ElementCount);

    // ---- presets ------------------------------------------------------------------------------------------

    private static readonly int[] s_family16 = [2, 5, 8, 10, 12, 14];

    /// <summary>Fixture <c>tiny</c> (HOW-MADE §1.1): hidden 64, 6 layers <c>ccAcAc</c>, vocab 512.</summary>
    public static ModelShape Tiny { get; } = new()
    {
        Name = "tiny", GeneralName = "lfm2-tiny", EmbeddingLength = 64, FeedForwardLength = 192, HeadCount = 4,
        KvHeadCount = 2, BlockCount = 6, AttentionLayers = [2, 4], VocabSize = 512, ContextLength = 2048, MergeCount = 200,
    };

    /// <summary>Fixture <c>small</c>: hidden 256 (so K-quants apply), 5 layers <c>cAcAc</c>, vocab 1024.</summary>
    public static ModelShape Small { get; } = new()
    {
        Name = "small", GeneralName = "lfm2-small", EmbeddingLength = 256, FeedForwardLength = 768, HeadCount = 4,
        KvHeadCount = 1, BlockCount = 5, AttentionLayers = [1, 3], VocabSize = 1024, ContextLength = 2048, MergeCount = 600,
    };

    /// <summary>LFM2-350M: hidden 1024, 16/8 heads, ffn 4608.</summary>
    public static ModelShape Lfm2_350M { get; } = Family("lfm2-350m", "lfm2-350m-synthetic", 1024, 4608, 16, 8, 16, s_family16, 32768, ChatTemplateStyle.Lfm2);

    /// <summary>LFM2-700M: hidden 1536, 24/8 heads, ffn 6912.</summary>
    public static ModelShape Lfm2_700M { get; } = Family("lfm2-700m", "lfm2-700m-synthetic", 1536, 6912, 24, 8, 16, s_family16, 32768, ChatTemplateStyle.Lfm2);

    /// <summary>LFM2.5-1.2B (= HOW-MADE preset <c>full</c>): hidden 2048, 32/8 heads, ffn 8192, 1.17 B parameters.</summary>
    public static ModelShape Lfm25_1_2B { get; } = Family("lfm2.5-1.2b", "lfm2-1.2b-synthetic", 2048, 8192, 32, 8, 16, s_family16, 32768, ChatTemplateStyle.Lfm25);

    /// <summary>LFM2-2.6B: hidden 2048, 30 layers with attention at 2,5,9,13,17,21,24,27, ffn 10752.</summary>
    public static ModelShape Lfm2_2_6B { get; } = Family("lfm2-2.6b", "lfm2-2.6b-synthetic", 2048, 10752, 32, 8, 30, [2, 5, 9, 13, 17, 21, 24, 27], 128000, ChatTemplateStyle.Lfm2);

    private static ModelShape Family(string name, string generalName, int hidden, int ffn, int heads, int kv, int layers, int[] attn, int ctx, ChatTemplateStyle template) => new()
    {
        Name = name, GeneralName = generalName, EmbeddingLength = hidden, FeedForwardLength = ffn, HeadCount = heads,
        KvHeadCount = kv, BlockCount = layers, AttentionLayers = attn, VocabSize = 65536, ContextLength = ctx,
        DefaultChatTemplate = template,
    };

    public static IReadOnlyList<ModelShape> Presets { get; } = [Tiny, Small, Lfm2_350M, Lfm2_700M, Lfm25_1_2B, Lfm2_2_6B];

    public static IReadOnlyList<string> PresetNames { get; } = Presets.Select(p => p.Name).ToArray();

    /// <summary>Looks a preset up by name (case-insensitive; <c>full</c> is accepted for <c>lfm2.5-1.2b</c>).</summary>
    public static ModelShape Preset(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (string.Equals(name, "full", StringComparison.OrdinalIgnoreCase))
            return Lfm25_1_2B;
        foreach (var p in Presets)
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                return p;
        throw new ArgumentException($"unknown model shape '{name}' (known: {string.Join(", ", PresetNames)})", nameof(name));
    }

    /// <summary>
    /// Parses a layer pattern: either one character per layer (<c>c</c>/<c>A</c>, e.g. <c>ccAcAc</c>) or a
    /// comma-separated list of attention layer indices (then <paramref name="blockCount"/> is required).
    /// </summary>
    public static (int BlockCount, int[] AttentionLayers) ParseLayers(string pattern, int? blockCount = null)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        pattern = pattern.Trim();
        if (pattern.Length > 0 && pattern.All(ch => ch is 'c' or 'C' or 'a' or 'A'))
        {
            if (blockCount is { } n && n != pattern.Length)
                throw new ArgumentException($"layer pattern '{pattern}' has {pattern.Length} layers but {n} were asked for");
            var attn = new List<int>();
            for (int i = 0; i < pattern.Length; i++)
                if (pattern[i] is 'a' or 'A')
                    attn.Add(i);
            return (pattern.Length, attn.ToArray());
        }
        if (blockCount is null)
            throw new ArgumentException($"layer pattern '{pattern}' is not a c/A string; a list of attention indices needs the layer count too");
        var idx = new List<int>();
        foreach (string part in pattern.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i))
                throw new ArgumentException($"attention layer index '{part}' is not an integer");
            idx.Add(i);
        }
        return (blockCount.Value, idx.ToArray());
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first inconsistent hyper-parameter.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok)
                throw new ArgumentException(message);
        }
        Check(EmbeddingLength > 0, $"hidden size must be positive (got {EmbeddingLength})");
        Check(FeedForwardLength > 0, $"ffn size must be positive (got {FeedForwardLength})");
        Check(HeadCount > 0, $"head count must be positive (got {HeadCount})");
        Check(EmbeddingLength % HeadCount == 0, $"hidden size {EmbeddingLength} is not divisible by the head count {HeadCount}");
        Check(HeadDim % 2 == 0, $"head dim {HeadDim} (= {EmbeddingLength}/{HeadCount}) must be even for NEOX RoPE");
        Check(KvHeadCount > 0, $"kv head count must be positive (got {KvHeadCount})");
        Check(HeadCount % KvHeadCount == 0, $"head count {HeadCount} is not divisible by the kv head count {KvHeadCount}");
        Check(BlockCount > 0, $"layer count must be positive (got {BlockCount})");
        Check(AttentionLayers.All(i => i >= 0 && i < BlockCount), $"attention layer indices [{string.Join(",", AttentionLayers)}] must lie in 0..{BlockCount - 1}");
        Check(AttentionLayers.Distinct().Count() == AttentionLayers.Count, $"attention layer indices [{string.Join(",", AttentionLayers)}] repeat");
        Check(VocabSize >= VocabularySpec.MinimumSize, $"vocab size {VocabSize} is below {VocabularySpec.MinimumSize} (16 special + 256 byte tokens)");
        Check(MergeCount >= 0, $"merge count must not be negative (got {MergeCount})");
        Check(ContextLength > 0, $"context length must be positive (got {ContextLength})");
        Check(ConvCache >= 1, $"l_cache must be at least 1 (got {ConvCache})");
        Check(float.IsFinite(RopeFreqBase) && RopeFreqBase > 0, $"rope base must be a positive number (got {RopeFreqBase})");
        Check(float.IsFinite(NormEpsilon) && NormEpsilon > 0, $"rms eps must be a positive number (got {NormEpsilon})");
        Check(!string.IsNullOrWhiteSpace(Name) && Name.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.'), $"shape name '{Name}' must be letters, digits, '-', '_' or '.'");
    }

    /// <summary>Canonical one-line description (every field that changes the file), used for cache keys and summaries.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"hidden={EmbeddingLength} ffn={FeedForwardLength} heads={HeadCount}/{KvHeadCount} layers={LayerPattern} vocab={VocabSize} ctx={ContextLength} rope={RopeFreqBase:R} l_cache={ConvCache} eps={NormEpsilon:R} merges={MergeCount} name={GeneralName} template={DefaultChatTemplate}");

    public override string ToString() => $"{Name} ({Describe()})";
}
