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
    public static List<SyntheticTensor> Plan(ModelShape s, SyntheticFileType fileType)
    {
        long n = s.EmbeddingLength, ff = s.FeedForwardLength, hd = s.HeadDim;
        var list = new List<(string Name, long[] Ne, SyntheticTensorKind Kind)>();
        // Generator order (HOW-MADE §1.2): token_embd, each block, then the final norm.
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

        var result = new List<SyntheticTensor>(list.Count);
        int nAttentionV = s.AttentionLayers.Count;
        int nFfnDown = s.BlockCount;
        foreach (var (name, ne, kind) in list)
        {
            GgmlType type = fileType.IsQuantized()
                ? QuantizedType(name, ne, kind, fileType, nAttentionV, nFfnDown, s)
                : FloatType(ne, kind, fileType);
            result.Add(new SyntheticTensor(name, ne, type, kind));
        }
        return result;
    }

    // convert_hf_to_gguf: 1-D tensors, norms and shortconv.conv stay F32; every other tensor takes the out type.
    private static GgmlType FloatType(long[] ne, SyntheticTensorKind kind, SyntheticFileType ft) =>
        ne.Length < 2 || kind is SyntheticTensorKind.Norm or SyntheticTensorKind.Conv ? GgmlType.F32 : ft.DefaultTensorType();

    private static GgmlType QuantizedType(string name, long[] ne, SyntheticTensorKind kind, SyntheticFileType ft, int nAttentionV, int nFfnDown, ModelShape s)
    {
        // tensor_allows_quantization: 1-D tensors, *_norm.weight and shortconv.conv.weight are copied as they are
        // (F32, since the synthetic source is F32).
        if (ne.Length < 2 || kind is SyntheticTensorKind.Norm or SyntheticTensorKind.Conv)
            return GgmlType.F32;

        GgmlType type = ft.DefaultTensorType();
        if (name == "token_embd.weight")
        {
            // No output.weight: the tied embedding is quantized as the output head. A row length that the default
            // type cannot block goes to Q8_0; otherwise Q6_K unless the default is already Q8_0.
            if (ne[0] % GgmlTypes.BlockSize(type) != 0)
                type = GgmlType.Q8_0;
            else if (type != GgmlType.Q8_0)
                type = GgmlType.Q6_K;
        }
        else if (name.EndsWith(".attn_v.weight", StringComparison.Ordinal))
        {
            // i_attention_wv counts attn_v tensors in layer order.
            int layer = LayerOf(name);
            int i = s.AttentionLayers.Count(l => l < layer);
            if ((ft is SyntheticFileType.Q4_K_M or SyntheticFileType.Q5_K_M) && UseMoreBits(i, nAttentionV))
                type = GgmlType.Q6_K;
        }
        else if (name.EndsWith(".ffn_down.weight", StringComparison.Ordinal))
        {
            int i = LayerOf(name);
            if ((ft is SyntheticFileType.Q4_K_M or SyntheticFileType.Q5_K_M) && UseMoreBits(i, nFfnDown))
                type = GgmlType.Q6_K;
            // (Q4_0/Q5_0 would use Q4_1/Q5_1 for the first layers only with an imatrix; synthetic files have none.)
        }
        return Fallback(name, ne[0], type);
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
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => throw new ArgumentException(
                $"tensor '{name}': row length {rowLength} is not a multiple of the {GgmlTypes.Name(type)} block size {GgmlTypes.BlockSize(type)} and llama-quantize has no fallback for it"),
        };
        return rowLength % GgmlTypes.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }

    private static int LayerOf(string name)
    {
        // "blk.<i>.<rest>"
        int start = "blk.".Length;
        int end = name.IndexOf('.', start);
        return int.Parse(name.AsSpan(start, end - start), System.Globalization.CultureInfo.InvariantCulture);
    }
}
