using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q8_0 rows (<see cref="BlockQ8_0"/>): 32 values per 34-byte block, y = q·d. A weight format and also the activation
/// format that Q4_0, Q5_0 and Q8_0 weights are dotted against.
/// </summary>
internal static unsafe class Q8_0
{
    public const GgmlType Type = GgmlType.Q8_0;

    /// <summary>
    /// Effectively y[32b + j] = qs[j]·d. src: [blocks × 34] bytes; dst: at least [blocks × 32] floats.
    /// Bit-identical to ggml's dequantize_row_q8_0.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        if (Vector256.IsHardwareAccelerated)
        {
            fixed (byte* ps = src)
            fixed (float* pd = dst)
                DequantizeVector256(ps, nb, pd);
            return;
        }
        DequantizeScalar(src, nb, dst);
    }

    internal static void DequantizeScalar(ReadOnlySpan<byte> src, int nb, Span<float> dst)
    {
        var blocks = Blocks<BlockQ8_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ8_0 b = ref blocks[i];
            float d = FromHalf(b.D);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 32; j++)
                y[j] = b.Qs[j] * d;
        }
    }

    /// <summary>The same 32 products per block, eight at a time (int8 → int32 → f32 is exact, then one f32 multiply each).</summary>
    internal static void DequantizeVector256(byte* src, int nb, float* dst)
    {
        for (int i = 0; i < nb; i++, src += 34, dst += 32)
        {
            var d = Vector256.Create(FromHalf(*(Half*)src));
            var q = Vector256.Load((sbyte*)(src + 2));
            var lo = Vector256.WidenLower(q);
            var hi = Vector256.WidenUpper(q);
            (Vector256.ConvertToSingle(Vector256.WidenLower(lo)) * d).Store(dst);
            (Vector256.ConvertToSingle(Vector256.WidenUpper(lo)) * d).Store(dst + 8);
            (Vector256.ConvertToSingle(Vector256.WidenLower(hi)) * d).Store(dst + 16);
            (Vector256.ConvertToSingle(Vector256.WidenUpper(hi)) * d).Store(dst + 24);
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q8_0_ref: d = amax/127, q = roundf(x · (1/d)) (half away from zero).
    /// src: [blocks × 32] floats; dst: at least [blocks × 34] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8_0>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float amax = 0f;
            for (int j = 0; j < 32; j++)
                amax = MathF.Max(amax, MathF.Abs(x[j]));

            float d = amax / 127f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ8_0 y = ref blocks[i];
            y.D = ToHalf(d);
            for (int j = 0; j < 32; j++)
                y.Qs[j] = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>
    /// Activation quantizer for the matmul (llama.cpp's quantize_row_q8_0, the from_float of Q8_0's vec_dot_type).
    /// Gives the same bytes as <see cref="QuantizeRowReference"/>, which is what ggml's generic build does.
    /// (llama.cpp's AVX path instead uses id = 127/amax and round-half-even, so it can differ from both in the last
    /// quant on ties.) src: [blocks × 32] floats; dst: at least [blocks × 34] bytes.
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (!Avx2.IsSupported)
        {
            QuantizeRowReference(src, dst);
            return;
        }
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        fixed (float* x = src)
        fixed (byte* y = dst)
            QuantizeRowAvx2(x, y, nb);
    }

    /// <summary>
    /// AVX2 twin of <see cref="QuantizeRowReference"/>, byte-identical: the same amax, d = amax/127 and x·(1/d) in
    /// f32, and roundf's ties-away-from-zero rebuilt from truncation (the fraction x − trunc(x) is exact). Blocks
    /// holding Inf or NaN (or so tiny that 1/d overflows) go through the reference, whose saturating conversions differ from cvttps2dq.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRowAvx2(float* x, byte* y, int nb)
    {
        var absMask = Vector256.Create(0x7fffffff);
        for (int i = 0; i < nb; i++, x += 32, y += 34)
        {
            var v0 = Avx.LoadVector256(x);
            var v1 = Avx.LoadVector256(x + 8);
            var v2 = Avx.LoadVector256(x + 16);
            var v3 = Avx.LoadVector256(x + 24);
            // |x| as integers order like the floats and put Inf/NaN above every finite value.
            var m = Avx2.Max(Avx2.Max(v0.AsInt32() & absMask, v1.AsInt32() & absMask), Avx2.Max(v2.AsInt32() & absMask, v3.AsInt32() & absMask));
            m = Avx2.Max(m, Avx2.Permute2x128(m, m, 1));
            m = Avx2.Max(m, Avx2.Shuffle(m, 0b_01_00_11_10));
            m = Avx2.Max(m, Avx2.Shuffle(m, 0b_10_11_00_01));
            float amax = BitConverter.Int32BitsToSingle(m.ToScalar());
            float d = amax / 127f;
            float id = d != 0f ? 1.0f / d : 0.0f;
            if (!float.IsFinite(amax) || !float.IsFinite(id))   // Inf/NaN input, or a subnormal amax whose 1/d overflows
            {
                QuantizeRowReference(new ReadOnlySpan<float>(x, 32), new Span<byte>(y, 34));
                continue;
            }
            *(Half*)y = ToHalf(d);
            var vid = Vector256.Create(id);
            var i0 = RoundAway(v0 * vid);
            var i1 = RoundAway(v1 * vid);
            var i2 = RoundAway(v2 * vid);
            var i3 = RoundAway(v3 * vid);
            PackToBytes(i0, i1, i2, i3).Store((sbyte*)(y + 2));
        }
    }

    /// <summary>roundf (half away from zero) of finite floats of magnitude below 2^31, as int32 lanes.</summary>
    internal static Vector256<int> RoundAway(Vector256<float> v)
    {
        var t = Avx.RoundToZero(v);
        var frac = v - t;                                              // exact
        var half = Avx.CompareGreaterThanOrEqual(frac & Vector256.Create(0x7fffffff).AsSingle(), Vector256.Create(0.5f));
        var step = (v & Vector256.Create(unchecked((int)0x80000000)).AsSingle()) | Vector256.Create(1f);   // ±1
        return Avx.ConvertToVector256Int32WithTruncation(t + (step & half));
    }

    /// <summary>32 int32 lanes in [−128, 127] (four vectors, in order) → 32 signed bytes in order.</summary>
    internal static Vector256<sbyte> PackToBytes(Vector256<int> i0, Vector256<int> i1, Vector256<int> i2, Vector256<int> i3)
    {
        // packs work per 128-bit lane: bytes come out as [i0.lo i1.lo i2.lo i3.lo | i0.hi i1.hi i2.hi i3.hi] in dwords.
        var s01 = Avx2.PackSignedSaturate(i0, i1);
        var s23 = Avx2.PackSignedSaturate(i2, i3);
        var b = Avx2.PackSignedSaturate(s01, s23);
        return Avx2.PermuteVar8x32(b.AsInt32(), Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7)).AsSByte();
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q8_0_q8_0_generic: per block sumf += Σ(q_w·q_a)·(d_w·d_a).
    /// weightRow: [n/32 × 34] Q8_0 bytes; q8_0Row: [n/32 × 34] Q8_0 bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_0, weightRow.Length, q8_0Row.Length, n);
        return Simd.Dot(weightRow, q8_0Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/> in the canonical order of <see cref="Q4_0.DotAvx2"/>: exact block sums, one fma per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x0 = w + ib * 34, y0 = a + ib * 34;
            int sumi = Simd.HorizontalSum(Simd.DotSigned(Vector256.Load((sbyte*)(x0 + 2)), Vector256.Load((sbyte*)(y0 + 2))));
            acc = MathF.FusedMultiplyAdd(sumi, HalfToSingle(*(ushort*)x0) * HalfToSingle(*(ushort*)y0), acc);
        }
        return acc;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: products widened to int32 before any
    /// addition, so every byte pair (−128·−128 included) is exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x0 = w + ib * 34, y0 = a + ib * 34;
            var s = Simd.DotBytesExact(Vector128.Load((sbyte*)(x0 + 2)), Vector128.Load((sbyte*)(y0 + 2)))
                  + Simd.DotBytesExact(Vector128.Load((sbyte*)(x0 + 18)), Vector128.Load((sbyte*)(y0 + 18)));
            acc = MathF.FusedMultiplyAdd(Vector128.Sum(s), HalfToSingle(*(ushort*)x0) * HalfToSingle(*(ushort*)y0), acc);
        }
        return acc;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int nb)
    {
        var x = Blocks<BlockQ8_0>(weightRow, nb);
        var y = Blocks<BlockQ8_0>(q8_0Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ8_0 xb = ref x[ib];
            ref readonly BlockQ8_0 yb = ref y[ib];
            int sumi = 0;
            for (int j = 0; j < 32; j++)
                sumi += xb.Qs[j] * yb.Qs[j];
            sumf += sumi * (FromHalf(xb.D) * FromHalf(yb.D));
        }
        return sumf;
    }
}
