using System.Runtime.InteropServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>F32 rows: 4 little-endian bytes per value. Dot products run against F32 activations.</summary>
internal static class F32
{
    public const GgmlType Type = GgmlType.F32;

    /// <summary>Copies the floats. src: [n × 4] bytes; dst: at least [n] floats.</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int n = CheckDequantize(Type, src.Length, dst.Length);
        MemoryMarshal.Cast<byte, float>(src.Slice(0, n * 4)).CopyTo(dst);
    }

    /// <summary>Copies the floats (F32 "quantization" is the identity). src: [n] floats; dst: at least [n × 4] bytes.</summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        CheckQuantize(Type, src.Length, dst.Length);
        MemoryMarshal.AsBytes(src).CopyTo(dst);
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml's scalar ggml_vec_dot_f32: each product rounded to f32, accumulated in f64, result
    /// rounded to f32. weightRow and activationRow: [n × 4] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
        => DotScalar(weightRow, activationRow, CheckDot(Type, Type, weightRow.Length, activationRow.Length, n));

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="n"/> elements, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
    {
        ReadOnlySpan<float> x = MemoryMarshal.Cast<byte, float>(weightRow.Slice(0, n * 4));
        ReadOnlySpan<float> y = MemoryMarshal.Cast<byte, float>(activationRow.Slice(0, n * 4));
        double sumf = 0.0;
        for (int i = 0; i < n; i++)
            sumf += (double)(x[i] * y[i]);
        return (float)sumf;
    }
}
