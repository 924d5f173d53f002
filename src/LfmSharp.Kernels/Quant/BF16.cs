using System.Runtime.InteropServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>BF16 rows: the top 16 bits of an f32, 2 bytes per value. Dot products run against BF16 activations.</summary>
public static class BF16
{
    public const GgmlType Type = GgmlType.BF16;

    /// <summary>f32 bits = bf16 « 16 (exact). src: [n × 2] bytes; dst: at least [n] floats.</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = CheckDequantize(Type, src.Length, dst.Length);
        ReadOnlySpan<ushort> x = MemoryMarshal.Cast<byte, ushort>(src.Slice(0, n * 2));
        for (int i = 0; i < n; i++)
            dst[i] = FromBFloat16Bits(x[i]);
    }

    /// <summary>
    /// ggml_fp32_to_bf16_row_ref: round to nearest even on the top 16 bits, NaN kept (made quiet), subnormals kept.
    /// src: [n] floats; dst: at least [n × 2] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckQuantize(Type, src.Length, dst.Length);
        Span<ushort> y = MemoryMarshal.Cast<byte, ushort>(dst.Slice(0, src.Length * 2));
        for (int i = 0; i < src.Length; i++)
            y[i] = ToBFloat16Bits(src[i]);
    }

    /// <summary>Activation quantizer for BF16 matmuls; same bytes as <see cref="QuantizeRowReference"/>.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRowReference(src, dst);

    /// <summary>
    /// Σ w[i]·a[i] like ggml's scalar ggml_vec_dot_bf16: bf16·bf16 products (exact in f32) accumulated in f64.
    /// weightRow and bf16Row: [n × 2] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> bf16Row, int n)
        => DotScalar(weightRow, bf16Row, CheckDot(Type, Type, weightRow.Length, bf16Row.Length, n));

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="n"/> elements, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> bf16Row, int n)
    {
        ReadOnlySpan<ushort> x = MemoryMarshal.Cast<byte, ushort>(weightRow.Slice(0, n * 2));
        ReadOnlySpan<ushort> y = MemoryMarshal.Cast<byte, ushort>(bf16Row.Slice(0, n * 2));
        double sumf = 0.0;
        for (int i = 0; i < n; i++)
            sumf += (double)(FromBFloat16Bits(x[i]) * FromBFloat16Bits(y[i]));
        return (float)sumf;
    }
}
