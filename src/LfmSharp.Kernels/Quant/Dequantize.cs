namespace LfmSharp.Kernels.Quant;

/// <summary>Dequantizes a row of any supported block format to f32 (dispatches to the per-format classes).</summary>
internal static class Dequantize
{
    /// <summary>True when <see cref="Row"/> handles <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => type is
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.Q8_1 or
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K;

    /// <summary>
    /// Effectively dst[0..n) = to_float(src) with n = (src.Length / TypeSize)·BlockSize, bit-identical to ggml.
    /// src must be whole blocks of <paramref name="type"/> and dst must hold n floats (extra room is left untouched);
    /// otherwise <see cref="ArgumentException"/>. Unsupported types throw <see cref="NotSupportedException"/>.
    /// </summary>
    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32: F32.DequantizeRow(src, dst); break;
            case GgmlType.F16: F16.DequantizeRow(src, dst); break;
            case GgmlType.BF16: BF16.DequantizeRow(src, dst); break;
            case GgmlType.Q4_0: Q4_0.DequantizeRow(src, dst); break;
            case GgmlType.Q4_1: Q4_1.DequantizeRow(src, dst); break;
            case GgmlType.Q5_0: Q5_0.DequantizeRow(src, dst); break;
            case GgmlType.Q5_1: Q5_1.DequantizeRow(src, dst); break;
            case GgmlType.Q8_0: Q8_0.DequantizeRow(src, dst); break;
            case GgmlType.Q8_1: Q8_1.DequantizeRow(src, dst); break;
            case GgmlType.Q4_K: Q4K.DequantizeRow(src, dst); break;
            case GgmlType.Q5_K: Q5K.DequantizeRow(src, dst); break;
            case GgmlType.Q6_K: Q6K.DequantizeRow(src, dst); break;
            case GgmlType.Q8_K: Q8K.DequantizeRow(src, dst); break;
            default: throw QuantTraits.Unsupported(type, "for dequantization");
        }
    }
}
