namespace LfmSharp.Kernels.Quant;

/// <summary>Quantizes f32 rows to a block format (dispatches to the per-format classes).</summary>
internal static class Quantize
{
    /// <summary>True when <see cref="RowReference"/> handles <paramref name="type"/>.</summary>
    public static bool IsReferenceSupported(GgmlType type) => Dequantize.IsSupported(type);

    /// <summary>
    /// llama.cpp's reference quantizer (quantize_row_*_ref, i.e. llama-quantize without an imatrix) for
    /// <paramref name="type"/>: the same bytes llama.cpp writes. src.Length must be a multiple of the block size and
    /// dst must hold src.Length/BlockSize blocks; otherwise <see cref="ArgumentException"/>. Unsupported types throw
    /// <see cref="NotSupportedException"/>.
    /// </summary>
    public static void RowReference(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case GgmlType.F32: F32.QuantizeRowReference(src, dst); break;
            case GgmlType.F16: F16.QuantizeRowReference(src, dst); break;
            case GgmlType.BF16: BF16.QuantizeRowReference(src, dst); break;
            case GgmlType.Q4_0: Q4_0.QuantizeRowReference(src, dst); break;
            case GgmlType.Q4_1: Q4_1.QuantizeRowReference(src, dst); break;
            case GgmlType.Q5_0: Q5_0.QuantizeRowReference(src, dst); break;
            case GgmlType.Q5_1: Q5_1.QuantizeRowReference(src, dst); break;
            case GgmlType.Q8_0: Q8_0.QuantizeRowReference(src, dst); break;
            case GgmlType.Q8_1: Q8_1.QuantizeRowReference(src, dst); break;
            case GgmlType.Q4_K: Q4K.QuantizeRowReference(src, dst); break;
            case GgmlType.Q5_K: Q5K.QuantizeRowReference(src, dst); break;
            case GgmlType.Q6_K: Q6K.QuantizeRowReference(src, dst); break;
            case GgmlType.Q8_K: Q8K.QuantizeRowReference(src, dst); break;
            default: throw QuantTraits.Unsupported(type, "for quantization");
        }
    }

    /// <summary>
    /// Activation quantizer: converts an input vector to a dot-product format (a <see cref="QuantTraits.VecDotType"/>:
    /// F32, F16, BF16, Q8_0, Q8_1 or Q8_K) the way llama.cpp's matmul does before its integer dot products.
    /// Same length rules as <see cref="RowReference"/>; other types throw <see cref="NotSupportedException"/>.
    /// </summary>
    public static void Row(GgmlType vecDotType, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (vecDotType)
        {
            case GgmlType.F32: F32.QuantizeRowReference(src, dst); break;
            case GgmlType.F16: F16.QuantizeRow(src, dst); break;
            case GgmlType.BF16: BF16.QuantizeRow(src, dst); break;
            case GgmlType.Q8_0: Q8_0.QuantizeRow(src, dst); break;
            case GgmlType.Q8_1: Q8_1.QuantizeRow(src, dst); break;
            case GgmlType.Q8_K: Q8K.QuantizeRow(src, dst); break;
            default: throw QuantTraits.Unsupported(vecDotType, "as an activation (vec_dot) format");
        }
    }
}
