using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// F16 rows: IEEE binary16, 2 bytes per value. llama.cpp dots F16 weights against activations that were themselves
/// rounded to F16 (F16 is its own vec_dot_type), which is why an F16 model's logits move by ~5e-3 against f32 math.
/// </summary>
internal static unsafe class F16
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
    /// Σ w[i]·a[i]. Each f16·f16 product is exact in f32; the scalar path (ggml's scalar ggml_vec_dot_f16) accumulates
    /// them in f64 and rounds once, the SIMD paths in f32 lanes (as ggml's SIMD build does), which differs only by
    /// summation rounding. weightRow and f16Row: [n × 2] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> f16Row, int n)
    {
        CheckDot(Type, Type, weightRow.Length, f16Row.Length, n);
        return Simd.Dot(weightRow, f16Row, n, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>: f16 → f32 by bit placement (exact for every finite value, subnormals
    /// included), products exact in f32, accumulated by fma in 4×8 f32 lanes (as ggml's AVX2 F16 dot does) and summed
    /// at the end: equal to the scalar's f64 sum up to f32 summation rounding. Rows holding Inf/NaN (any exponent of all
    /// ones, in either operand) are handed to the scalar so they propagate exactly as there.
    /// w, a: [n × 2] bytes; <paramref name="n"/> elements (any count: the tail runs scalar).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var top = Vector256<ushort>.Zero;   // max of 2·h (sign dropped): ≥ 0xF800 means an Inf/NaN somewhere
        int i = 0;
        for (; i + 32 <= n; i += 32)
        {
            var x0 = Vector256.Load(x + i);
            var x1 = Vector256.Load(x + i + 16);
            var y0 = Vector256.Load(y + i);
            var y1 = Vector256.Load(y + i + 16);
            top = Avx2.Max(Avx2.Max(top, Avx2.Max(x0 + x0, x1 + x1)), Avx2.Max(y0 + y0, y1 + y1));
            // Unpacking with zero puts each half in the top 16 bits of a dword; both operands get the same lane order.
            acc0 = Fma.MultiplyAdd(WidenLowAvx2(x0), WidenLowAvx2(y0), acc0);
            acc1 = Fma.MultiplyAdd(WidenHighAvx2(x0), WidenHighAvx2(y0), acc1);
            acc2 = Fma.MultiplyAdd(WidenLowAvx2(x1), WidenLowAvx2(y1), acc2);
            acc3 = Fma.MultiplyAdd(WidenHighAvx2(x1), WidenHighAvx2(y1), acc3);
        }
        if (Vector256.GreaterThanOrEqualAny(top, Vector256.Create((ushort)0xF800)))
            return DotScalar(new ReadOnlySpan<byte>(w, n * 2), new ReadOnlySpan<byte>(a, n * 2), n);
        float sum = Simd.HorizontalSum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
            sum += HalfToSingle(x[i]) * HalfToSingle(y[i]);
        return sum;
    }

    // Interleaving with zeros puts each f16 in the top half of a dword, where FromTopHalves takes it (finite values).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WidenLowAvx2(Vector256<ushort> h) => HalfConversion.FromTopHalves(Avx2.UnpackLow(Vector256<ushort>.Zero, h).AsInt32());

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WidenHighAvx2(Vector256<ushort> h) => HalfConversion.FromTopHalves(Avx2.UnpackHigh(Vector256<ushort>.Zero, h).AsInt32());

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotScalar"/> (same method as <see cref="DotAvx2"/> in 4×4 f32 lanes; plain
    /// multiply and add, which equal an fma here because every f16·f16 product is exact in f32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int n)
    {
        ushort* x = (ushort*)w, y = (ushort*)a;
        Vector128<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var top = Vector128<ushort>.Zero;
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var x0 = Vector128.Load(x + i);
            var x1 = Vector128.Load(x + i + 8);
            var y0 = Vector128.Load(y + i);
            var y1 = Vector128.Load(y + i + 8);
            top = Vector128.Max(Vector128.Max(top, Vector128.Max(x0 + x0, x1 + x1)), Vector128.Max(y0 + y0, y1 + y1));
            acc0 += Widen128(Vector128.WidenLower(x0)) * Widen128(Vector128.WidenLower(y0));
            acc1 += Widen128(Vector128.WidenUpper(x0)) * Widen128(Vector128.WidenUpper(y0));
            acc2 += Widen128(Vector128.WidenLower(x1)) * Widen128(Vector128.WidenLower(y1));
            acc3 += Widen128(Vector128.WidenUpper(x1)) * Widen128(Vector128.WidenUpper(y1));
        }
        if (Vector128.GreaterThanOrEqualAny(top, Vector128.Create((ushort)0xF800)))
            return DotScalar(new ReadOnlySpan<byte>(w, n * 2), new ReadOnlySpan<byte>(a, n * 2), n);
        float sum = Vector128.Sum((acc0 + acc1) + (acc2 + acc3));
        for (; i < n; i++)
            sum += HalfToSingle(x[i]) * HalfToSingle(y[i]);
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen128(Vector128<uint> h) => HalfConversion.FromTopHalves(Vector128.ShiftLeft(h, 16).AsInt32());

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
