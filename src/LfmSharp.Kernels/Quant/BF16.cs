using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>BF16 rows: the top 16 bits of an f32, 2 bytes per value. Dot products run against BF16 activations.</summary>
internal static unsafe class BF16
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
    /// Σ w[i]·a[i]: bf16·bf16 products (exact in f32) accumulated in f64 by the scalar path (ggml's scalar
    /// ggml_vec_dot_bf16), in f32 lanes by the SIMD paths (summation rounding apart, the same).
    /// weightRow and bf16Row: [n × 2] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> bf16Row, int n)
    {
        CheckDot(Type, Type, weightRow.Length, bf16Row.Length, n);
        return Simd.Dot(weightRow, bf16Row, n, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>: bf16 → f32 is a 16-bit shift (an unpack with zero; exact, Inf/NaN
    /// included), products are exact in f32 (8-bit significands), accumulated by fma in 4×8 f32 lanes and summed at the
    /// end: equal to the scalar's f64 sum up to f32 summation rounding (and f32 overflow of partial sums past 3.4e38,
    /// which the f64 sum would survive). w, a: [n × 2] bytes; any n (the tail runs scalar).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var zero = Vector256<ushort>.Zero;
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var x0 = Vector256.Load(x + i);
            var x1 = Vector256.Load(x + i + 16);
            var y0 = Vector256.Load(y + i);
            var y1 = Vector256.Load(y + i + 16);
            // Same interleaved lane order for both operands, so the pairs still line up.
            acc0 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, x0).AsSingle(), Avx2.UnpackLow(zero, y0).AsSingle(), acc0);
            acc1 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, x0).AsSingle(), Avx2.UnpackHigh(zero, y0).AsSingle(), acc1);
            acc2 = Fma.MultiplyAdd(Avx2.UnpackLow(zero, x1).AsSingle(), Avx2.UnpackLow(zero, y1).AsSingle(), acc2);
            acc3 = Fma.MultiplyAdd(Avx2.UnpackHigh(zero, x1).AsSingle(), Avx2.UnpackHigh(zero, y1).AsSingle(), acc3);
        }
        float sum = Simd.HorizontalSum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
            sum += FromBFloat16Bits(x[i]) * FromBFloat16Bits(y[i]);
        return sum;
    }

    /// <summary>Portable Vector128 twin of <see cref="DotScalar"/>: as <see cref="DotAvx2"/> in 4×4 f32 lanes (multiply then add; the products are exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        Vector128<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var x0 = Vector128.Load(x + i);
            var x1 = Vector128.Load(x + i + 8);
            var y0 = Vector128.Load(y + i);
            var y1 = Vector128.Load(y + i + 8);
            acc0 += Widen(Vector128.WidenLower(x0)) * Widen(Vector128.WidenLower(y0));
            acc1 += Widen(Vector128.WidenUpper(x0)) * Widen(Vector128.WidenUpper(y0));
            acc2 += Widen(Vector128.WidenLower(x1)) * Widen(Vector128.WidenLower(y1));
            acc3 += Widen(Vector128.WidenUpper(x1)) * Widen(Vector128.WidenUpper(y1));
        }
        float sum = Vector128.Sum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
            sum += FromBFloat16Bits(x[i]) * FromBFloat16Bits(y[i]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen(Vector128<uint> h) => Vector128.ShiftLeft(h, 16).AsSingle();

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
