namespace LfmSharp.Kernels.Quant;

/// <summary>Dequantizes a row of any supported block format to f32 (dispatches to the per-format classes).</summary>
public static class Dequantize
{
    /// <summary>True when <see cref="Row"/> handles <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => type is
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 or
        GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q8_0 or GgmlType.Q8_1 or
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K or
        GgmlType.IQ4_NL or GgmlType.IQ4_XS or GgmlType.TQ1_0 or GgmlType.TQ2_0 or
        GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS or GgmlType.IQ3_S or GgmlType.IQ1_S or GgmlType.IQ1_M;

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
            case GgmlType.IQ4_NL: IQ4NL.DequantizeRow(src, dst); break;
            case GgmlType.IQ4_XS: IQ4XS.DequantizeRow(src, dst); break;
            case GgmlType.TQ1_0: TQ1_0.DequantizeRow(src, dst); break;
            case GgmlType.TQ2_0: TQ2_0.DequantizeRow(src, dst); break;
            case GgmlType.IQ2_XXS: IQ2XXS.DequantizeRow(src, dst); break;
            case GgmlType.IQ2_XS: IQ2XS.DequantizeRow(src, dst); break;
            case GgmlType.IQ2_S: IQ2S.DequantizeRow(src, dst); break;
            case GgmlType.IQ3_XXS: IQ3XXS.DequantizeRow(src, dst); break;
            case GgmlType.IQ3_S: IQ3S.DequantizeRow(src, dst); break;
            case GgmlType.IQ1_S: IQ1S.DequantizeRow(src, dst); break;
            case GgmlType.IQ1_M: IQ1M.DequantizeRow(src, dst); break;
            default: throw QuantTraits.Unsupported(type, "for dequantization");
        }
    }
}
