using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>How a tensor's random values are scaled (HOW-MADE §1.3).</summary>
internal enum SyntheticTensorKind
{
    /// <summary><c>token_embd</c>: z · e / sqrt(n_embd).</summary>
    Embedding,

    /// <summary>A 2-D projection: z · g / sqrt(fan_in), fan_in = row length.</summary>
    Matrix,

    /// <summary><c>shortconv.conv</c> [l_cache, n_embd]: z · g / sqrt(l_cache).</summary>
    Conv,

    /// <summary>An RMSNorm weight: 1 + 0.1 · z.</summary>
    Norm,
}

/// <summary>One tensor of a synthetic model: name, ggml shape (<c>ne</c>, row length first), storage type and scaling.</summary>
internal sealed record SyntheticTensor(string Name, long[] Dimensions, GgmlType Type, SyntheticTensorKind Kind)
{
    public long ElementCount => Dimensions.Aggregate(1L, (a, b) => a * b);

    public long RowLength => Dimensions[0];

    public long RowCount => ElementCount / RowLength;

    public long ByteSize => GgmlTypes.RowBytes(Type, ElementCount);
}

/// <summary>
/// Which tensors an LFM2 GGUF holds and which ggml type each gets for a file type. The float types follow the HF
/// converter; the quantized ones reproduce llama-quantize (<c>llama_tensor_get_type</c>, no imatrix) so that a
/// synthetic Q4_K_M has the same per-tensor mix as one made by llama.cpp.
/// </summary>
internal static class TensorPlanner
{
    public static List<SyntheticTensor> Plan(ModelShape s, SyntheticFileType fileType) => Plan(s, fileType, [], untiedOutput: false);

    /// <summary>
    /// The tensors of <paramref name="s"/> in <paramref name="fileType"/>; <paramref name="overrides"/> (first match
    /// wins, as llama-quantize's <c>--tensor-type</c>) replace the recipe's type of every quantizable tensor whose name
    /// they match; <paramref name="untiedOutput"/> adds a separate <c>output.weight</c> head.
    /// </summary>
    public static List<SyntheticTensor> Plan(ModelShape s, SyntheticFileType fileType, IReadOnlyList<TensorTypeOverride> overrides, bool untiedOutput)
    {
        long n = s.EmbeddingLength, ff = s.FeedForwardLength, hd = s.HeadDim;
        var list = new List<(string Name, long[] Ne, SyntheticTensorKind Kind)>();
        // Generator order (HOW-MADE §1.2): token_embd, each block, then the final norm (and the untied head).
        list.Add(("token_embd.weight", [n, s.VocabSize], SyntheticTensorKind.Embedding));
        for (int i = 0; i < s.BlockCount; i++)
        {
            string p = $"blk.{i}.";
            list.Add((p + "attn_norm.weight", [n], SyntheticTensorKind.Norm));
            if (s.IsAttentionLayer(i))
            {
                list.Add((p + "attn_q.weight", [n, s.HeadCount * hd], SyntheticTensorKind.Matrix));
                list.Add((p + "attn_k.weight", [n, s.KvHeadCount * hd], SyntheticTensorKind.Matrix));
                list.Add((p + "attn_v.weight", [n, s.KvHeadCount * hd], SyntheticTensorKind.Matrix));
                list.Add((p + "attn_output.weight", [s.HeadCount * hd, n], SyntheticTensorKind.Matrix));
                list.Add((p + "attn_q_norm.weight", [hd], SyntheticTensorKind.Norm));
                list.Add((p + "attn_k_norm.weight", [hd], SyntheticTensorKind.Norm));
            }
            else
            {
                list.Add((p + "shortconv.conv.weight", [s.ConvCache, n], SyntheticTensorKind.Conv));
                list.Add((p + "shortconv.in_proj.weight", [n, 3 * n], SyntheticTensorKind.Matrix));
                list.Add((p + "shortconv.out_proj.weight", [n, n], SyntheticTensorKind.Matrix));
            }
            list.Add((p + "ffn_norm.weight", [n], SyntheticTensorKind.Norm));
            list.Add((p + "ffn_gate.weight", [n, ff], SyntheticTensorKind.Matrix));
            list.Add((p + "ffn_up.weight", [n, ff], SyntheticTensorKind.Matrix));
            list.Add((p + "ffn_down.weight", [ff, n], SyntheticTensorKind.Matrix));
        }
        list.Add(("token_embd_norm.weight", [n], SyntheticTensorKind.Norm));
        if (untiedOutput)
            list.Add(("output.weight", [n, s.VocabSize], SyntheticTensorKind.Matrix));

        var result = new List<SyntheticTensor>(list.Count);
        var state = new RecipeState(s, fileType, untiedOutput);
        foreach (var (name, ne, kind) in list)
        {
            GgmlType type;
            if (ne.Length < 2 || kind is SyntheticTensorKind.Norm or SyntheticTensorKind.Conv)
                type = GgmlType.F32;   // tensor_allows_quantization: copied as they are (the source is F32)
            else if (Override(name, overrides) is { } manual)
                type = Fallback(name, ne[0], manual);
            else
                type = fileType.IsQuantized() ? state.QuantizedType(name, ne) : fileType.DefaultTensorType();
            result.Add(new SyntheticTensor(name, ne, type, kind));
        }
        return result;
    }

    private static GgmlType? Override(string name, IReadOnlyList<TensorTypeOverride> overrides)
    {
        foreach (var o in overrides)
            if (o.Matches(name))
                return o.Type;
        return null;
    }

    /// <summary>llama_tensor_get_type_impl for an LFM2 model without an imatrix (n_gqa() is 0: layer 0 is a conv layer).</summary>
    private sealed class RecipeState(ModelShape s, SyntheticFileType ft, bool untied)
    {
        private int _attentionV;   // i_attention_wv: attn_v tensors seen so far
        private int _ffnDown;      // i_ffn_down: ffn_down tensors seen so far (llama.cpp's layer index for them)

        public GgmlType QuantizedType(string name, long[] ne)
        {
            GgmlType type = ft.DefaultTensorType();
            int nLayers = s.BlockCount;
            bool output = name == "output.weight" || (!untied && name == "token_embd.weight");
            if (output)
            {
                // The output head (or the tied embedding standing in for it): Q8_0 where the row cannot be blocked,
                // else Q6_K unless the default is already Q8_0.
                if (ne[0] % GgmlTypes.BlockSize(type) != 0)
                    type = GgmlType.Q8_0;
                else if (type != GgmlType.Q8_0)
                    type = GgmlType.Q6_K;
            }
            else if (name.EndsWith(".attn_v.weight", StringComparison.Ordinal))
            {
                int i = _attentionV++;
                int nv = s.AttentionLayers.Count;
                type = ft switch
                {
                    SyntheticFileType.Q2_K => GgmlType.Q3_K,
                    SyntheticFileType.Q3_K_M => i < 2 ? GgmlType.Q5_K : GgmlType.Q4_K,
                    SyntheticFileType.Q3_K_L => GgmlType.Q5_K,
                    SyntheticFileType.Q4_K_M or SyntheticFileType.Q5_K_M when UseMoreBits(i, nv) => GgmlType.Q6_K,
                    SyntheticFileType.Q4_K_S when i < 4 => GgmlType.Q5_K,
                    _ => type,
                };
            }
            else if (name.EndsWith(".ffn_down.weight", StringComparison.Ordinal))
            {
                int i = _ffnDown++;
                type = ft switch
                {
                    SyntheticFileType.Q2_K => GgmlType.Q3_K,
                    SyntheticFileType.Q3_K_M => i < nLayers / 16 ? GgmlType.Q5_K : GgmlType.Q4_K,
                    SyntheticFileType.Q3_K_L => GgmlType.Q5_K,
                    SyntheticFileType.Q4_K_M when UseMoreBits(i, nLayers) => GgmlType.Q6_K,
                    SyntheticFileType.IQ4_NL or SyntheticFileType.IQ4_XS when i < nLayers / 8 => GgmlType.Q5_K,
                    SyntheticFileType.Q5_K_M when UseMoreBits(i, nLayers) => GgmlType.Q6_K,
                    SyntheticFileType.Q4_K_S when i < nLayers / 8 => GgmlType.Q5_K,
                    // (Q4_0/Q5_0 would use Q4_1/Q5_1 for the first layers only with an imatrix; synthetic files have none.)
                    _ => type,
                };
            }
            else if (name.EndsWith(".attn_output.weight", StringComparison.Ordinal))
            {
                type = ft switch
                {
                    SyntheticFileType.Q2_K => GgmlType.Q3_K,
                    SyntheticFileType.Q3_K_M => GgmlType.Q4_K,
                    SyntheticFileType.Q3_K_L => GgmlType.Q5_K,
                    _ => type,
                };
            }
            return Fallback(name, ne[0], type);
        }
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers plus every third one between.</summary>
    internal static bool UseMoreBits(int i, int n) => i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;

    /// <summary>tensor_type_fallback: a row length the type cannot block falls back to a 32-block type, else F16.</summary>
    private static GgmlType Fallback(string name, long rowLength, GgmlType type)
    {
        if (rowLength % GgmlTypes.BlockSize(type) == 0)
            return type;
        GgmlType fallback = type switch
        {
            GgmlType.IQ1_S or GgmlType.IQ1_M or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS
                or GgmlType.IQ3_S or GgmlType.IQ4_XS => GgmlType.IQ4_NL,
            GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.TQ1_0 or GgmlType.TQ2_0 => GgmlType.Q4_0,
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ when GgmlTypes.BlockSize(type) <= 32 => type,
            _ => throw new ArgumentException(
                $"tensor '{name}': row length {rowLength} is not a multiple of the {GgmlTypes.Name(type)} block size {GgmlTypes.BlockSize(type)} and llama-quantize has no fallback for it"),
        };
        return rowLength % GgmlTypes.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }
}

/// <summary>
/// One <c>--tensor-type NAME=TYPE</c> override as llama-quantize takes it: tensors whose name contains a match of the
/// regular expression <see cref="Pattern"/> are stored as <see cref="Type"/> (the first matching override wins).
/// </summary>
public sealed record TensorTypeOverride(string Pattern, GgmlType Type)
{
    private readonly System.Text.RegularExpressions.Regex _regex = new(Pattern, System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));

    /// <summary>True when the pattern matches somewhere in <paramref name="tensorName"/>.</summary>
    public bool Matches(string tensorName) => _regex.IsMatch(tensorName);

    /// <summary>
    /// Parses <c>NAME=TYPE</c> (TYPE as ggml names it, any case: q4_k, Q8_0, iq4_nl, f16). Throws
    /// <see cref="ArgumentException"/> naming the problem for a missing '=', an empty name, a bad regular expression
    /// or an unknown type.
    /// </summary>
    public static TensorTypeOverride Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int eq = text.LastIndexOf('=');
        if (eq <= 0 || eq == text.Length - 1)
            throw new ArgumentException($"tensor type override '{text}' is not NAME=TYPE (e.g. ffn_up=q4_1)");
        string pattern = text[..eq].Trim(), typeName = text[(eq + 1)..].Trim();
        if (!Enum.TryParse<GgmlType>(typeName, ignoreCase: true, out var type) || !Enum.IsDefined(type) || int.TryParse(typeName, out _))
            throw new ArgumentException($"tensor type override '{text}': unknown ggml type '{typeName}'");
        try
        {
            return new TensorTypeOverride(pattern, type);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"tensor type override '{text}': '{pattern}' is not a valid regular expression ({e.Message})");
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Pattern}={GgmlTypes.Name(Type)}";
}
