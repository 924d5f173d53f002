using System.Runtime.InteropServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// F16 rows: IEEE binary16, 2 bytes per value. llama.cpp dots F16 weights against activations that were themselves
/// rounded to F16 (F16 is its own vec_dot_type), which is why an F16 model's logits move by ~5e-3 against f32 math.
/// </summary>
public static class F16
{
    public const GgmlType Type = GgmlType.F16;

    /// <summary>Widens each f16 to f32 (exact). src: [n × 2] bytes; dst: at least [n] floats.</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = CheckDequantize(Type, src.Length, dst.Length);
        ReadOnlySpan<Half> x = MemoryMarshal.Cast<byte, Half>(src.Slice(0, n * 2));
        for (int i = 0; i < n; i++)
            dst[i] = FromHalf(x[i]);
    }

    /// <summary>
    /// Rounds each f32 to the nearest f16, ties to even (ggml_fp32_to_fp16_row; also what numpy's astype(float16)
    /// gives). src: [n] floats; dst: at least [n × 2] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckQuantize(Type, src.Length, dst.Length);
        Span<Half> y = MemoryMarshal.Cast<byte, Half>(dst.Slice(0, src.Length * 2));
        for (int i = 0; i < src.Length; i++)
            y[i] = ToHalf(src[i]);
    }

    /// <summary>Activation quantizer for F16 matmuls (the from_float of F16); same bytes as <see cref="QuantizeRowReference"/>.</summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRowReference(src, dst);

    /// <summary>
    /// Σ w[i]·a[i] like ggml's scalar ggml_vec_dot_f16: each f16·f16 product is exact in f32, the sum is accumulated
    /// in f64 and rounded to f32 once. weightRow and f16Row: [n × 2] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> f16Row, int n)
        => DotScalar(weightRow, f16Row, CheckDot(Type, Type, weightRow.Length, f16Row.Length, n));

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="n"/> elements, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> f16Row, int n)
    {
        ReadOnlySpan<Half> x = MemoryMarshal.Cast<byte, Half>(weightRow.Slice(0, n * 2));
        ReadOnlySpan<Half> y = MemoryMarshal.Cast<byte, Half>(f16Row.Slice(0, n * 2));
        double sumf = 0.0;
        for (int i = 0; i < n; i++)
            sumf += (double)(FromHalf(x[i]) * FromHalf(y[i]));
        return (float)sumf;
    }
}
