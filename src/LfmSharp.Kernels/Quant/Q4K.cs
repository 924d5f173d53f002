using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.KQuantMath;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q4_K rows (<see cref="BlockQ4K"/>): super-blocks of 256 weights (8 sub-blocks of 32) in 144 bytes,
/// y = d·sc_j·q − dmin·m_j with 4-bit q and 6-bit sub-block scale/min. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class Q4K
{
    public const GgmlType Type = GgmlType.Q4_K;

    /// <summary>
    /// For chunk c = 0..3 of 64 weights, with q = qs[32c..32c+31]:
    /// y[64c + l] = (d·sc_{2c})·(q[l] &amp; 0xF) − dmin·m_{2c}, y[64c + 32 + l] = (d·sc_{2c+1})·(q[l] » 4) − dmin·m_{2c+1}.
    /// src: [blocks × 144] bytes; dst: at least [blocks × 256] floats. Bit-identical to ggml's dequantize_row_q4_K.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4K>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ4K b = ref blocks[i];
            float d = FromHalf(b.D);
            float min = FromHalf(b.DMin);
            ReadOnlySpan<byte> scales = b.Scales;
            ReadOnlySpan<byte> qs = b.Qs;
            Span<float> y = dst.Slice(i * 256, 256);
            for (int c = 0; c < 4; c++)
            {
                GetScaleMinK4(2 * c, scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                GetScaleMinK4(2 * c + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                ReadOnlySpan<byte> q = qs.Slice(32 * c, 32);
                Span<float> yc = y.Slice(64 * c, 64);
                for (int l = 0; l < 32; l++)
                    yc[l] = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++)
                    yc[32 + l] = d2 * (q[l] >> 4) - m2;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q4_K_ref (llama-quantize's Q4_K without an imatrix): per sub-block of 32 a
    /// make_qkx2_quants fit (weights av_x + |x|, nmax 15, rmin −1, rdelta 0.1, 20 steps); scales and mins are then
    /// quantized to 6 bits against the block maxima (d = max_scale/63, dmin = max_min/63) and every weight is
    /// re-quantized against the rounded scales. src: [blocks × 256] floats; dst: at least [blocks × 144] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4K>(dst, nb);

        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        Span<byte> ls = stackalloc byte[8];
        Span<byte> lm = stackalloc byte[8];

        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 256, 256);
            ref BlockQ4K y = ref blocks[i];

            float maxScale = 0f; // scales are positive once the min is taken out
            float maxMin = 0f;
            for (int j = 0; j < 8; j++)
            {
                ReadOnlySpan<float> xs = x.Slice(32 * j, 32);
                float sumX2 = 0f;
                for (int l = 0; l < 32; l++)
                    sumX2 += xs[l] * xs[l];
                float avX = MathF.Sqrt(sumX2 / 32);
                for (int l = 0; l < 32; l++)
                    weights[l] = avX + MathF.Abs(xs[l]);
                scales[j] = MakeQkx2Quants(32, 15, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, -1f, 0.1f, 20, false);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }

            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++)
            {
                // (uint8_t)nearest_int(...) then MIN(63, ·), as in C.
                ls[j] = Math.Min((byte)63, (byte)NearestInt(invScale * scales[j]));
                lm[j] = Math.Min((byte)63, (byte)NearestInt(invMin * mins[j]));
            }
            PackScaleMinK4(ls, lm, y.Scales);
            y.D = ToHalf(maxScale / 63f);
            y.DMin = ToHalf(maxMin / 63f);

            float dAll = FromHalf(y.D), dminAll = FromHalf(y.DMin);
            for (int j = 0; j < 8; j++)
            {
                GetScaleMinK4(j, y.Scales, out int sc, out int m);
                float d = dAll * sc;
                if (d == 0f)
                    continue; // L keeps the make_qkx2_quants levels, as in C
                float dm = dminAll * m;
                for (int ii = 0; ii < 32; ii++)
                {
                    int l = NearestInt((x[32 * j + ii] + dm) / d);
                    L[32 * j + ii] = (byte)Math.Max(0, Math.Min(15, l));
                }
            }

            Span<byte> q = y.Qs;
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++)
                    q[32 * c + l] = (byte)(L[64 * c + l] | (L[64 * c + l + 32] << 4));
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q4_K_q8_K_generic: per super-block, 8 lane sums of sc_j·q_w·q_a (int32), scaled
    /// by d_w·d_a into 8 float lanes; the mins come off through the Q8_K bsums (sumf −= dmin_w·d_a·Σ bsum·m); the 8
    /// lanes are added to sumf at the end. weightRow: [n/256 × 144] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// The eight 6-bit scales and mins of a Q4_K/Q5_K block (12 bytes at <paramref name="p"/>) as two 8-byte words:
    /// byte j of <paramref name="scales"/> / <paramref name="mins"/> = get_scale_min_k4(j) for j = 0..7.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScaleMin(byte* p, out ulong scales, out ulong mins)
    {
        uint u0 = *(uint*)p, u1 = *(uint*)(p + 4), u2 = *(uint*)(p + 8);
        uint scLo = u0 & 0x3f3f3f3fu;                                              // j < 4: q[j] & 63
        uint scHi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);        // j ≥ 4: low nibble of q[j+4], top bits of q[j−4]
        uint mnLo = u1 & 0x3f3f3f3fu;                                              // j < 4: q[j+4] & 63
        uint mnHi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);  // j ≥ 4: high nibble of q[j+4], top bits of q[j]
        scales = scLo | ((ulong)scHi << 32);
        mins = mnLo | ((ulong)mnHi << 32);
    }

    /// <summary>The inverse of <see cref="UnpackScaleMin"/>: the 12-byte GGUF field at <paramref name="p"/> from the 6-bit values (bytes of <paramref name="scales"/> / <paramref name="mins"/>).</summary>
    internal static void PackScaleMin(ulong scales, ulong mins, byte* p)
    {
        for (int j = 0; j < 4; j++)
        {
            int s = (byte)(scales >> (8 * j)), sHi = (byte)(scales >> (8 * j + 32));
            int m = (byte)(mins >> (8 * j)), mHi = (byte)(mins >> (8 * j + 32));
            p[j] = (byte)((s & 63) | (sHi >> 4) << 6);        // q[j]: s_j, top bits of s_{j+4}
            p[j + 4] = (byte)((m & 63) | (mHi >> 4) << 6);    // q[j+4]: m_j, top bits of m_{j+4}
            p[j + 8] = (byte)((sHi & 15) | (mHi & 15) << 4);  // q[j+8]: low nibbles of s_{j+4} and m_{j+4}
        }
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the engine's canonical order (<see cref="PackedGemm"/>): per super-block
    /// the exact integers sumi = Σ sc_j·q·a (maddubs, then madd by the sub-block scale) and msum = Σ m_j·bsum, then
    /// acc = fma(sumi, d·d_a, acc) and acc = fma(−msum, dmin·d_a, acc). Differs from the generic order only by rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        var low = Vector256.Create((byte)0x0F);
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 144, y = a + i * 292;
            float dy = *(float*)y;
            float d = HalfToSingle(*(ushort*)x) * dy;
            float dmin = HalfToSingle(*(ushort*)(x + 2)) * dy;
            UnpackScaleMin(x + 4, out ulong scales, out ulong mins);

            // Σ_j m_j·(bsum[2j] + bsum[2j+1]): each min repeated over its two groups of 16.
            var m8 = Vector128.CreateScalar(mins).AsByte();
            var m16 = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(m8, m8));
            int msum = Simd.HorizontalSum(Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), m16));

            var sumi = Vector256<int>.Zero;
            byte* qs = x + 16;
            sbyte* q8 = (sbyte*)(y + 4);
            for (int j = 0; j < 4; j++)
            {
                var q4 = Vector256.Load(qs + 32 * j);
                var lo = q4 & low;
                var hi = Avx2.ShiftRightLogical(q4.AsUInt16(), 4).AsByte() & low;
                var p0 = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(q8 + 64 * j));
                var p1 = Avx2.MultiplyAddAdjacent(hi, Vector256.Load(q8 + 64 * j + 32));
                sumi += Avx2.MultiplyAddAdjacent(p0, Vector256.Create((short)(byte)(scales >> (16 * j))))
                      + Avx2.MultiplyAddAdjacent(p1, Vector256.Create((short)(byte)(scales >> (16 * j + 8))));
            }
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(sumi), d, acc);
            acc = MathF.FusedMultiplyAdd(-msum, dmin, acc);
        }
        return acc;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: the same exact integers sumi and msum per
    /// super-block (nibble·activation products folded in int16, lane sums ≤ 4·15·128, then widened and scaled in
    /// int32), the same two fmas.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 144, y = a + i * 292;
            float dy = *(float*)y;
            float d = HalfToSingle(*(ushort*)x) * dy;
            float dmin = HalfToSingle(*(ushort*)(x + 2)) * dy;
            UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
            int msum = MinSum(mins, (short*)(y + 4 + 256));

            var sumi = Vector128<int>.Zero;
            byte* qs = x + 16;
            sbyte* q8 = (sbyte*)(y + 4);
            for (int j = 0; j < 4; j++)
            {
                var (l0, h0) = Simd.Nibbles128(Vector128.Load(qs + 32 * j));
                var (l1, h1) = Simd.Nibbles128(Vector128.Load(qs + 32 * j + 16));
                var sLo = Simd.DotPairs(l0, Vector128.Load(q8 + 64 * j), l1, Vector128.Load(q8 + 64 * j + 16));
                var sHi = Simd.DotPairs(h0, Vector128.Load(q8 + 64 * j + 32), h1, Vector128.Load(q8 + 64 * j + 48));
                sumi += sLo * Vector128.Create((int)(byte)(scales >> (16 * j)))
                      + sHi * Vector128.Create((int)(byte)(scales >> (16 * j + 8)));
            }
            acc = MathF.FusedMultiplyAdd(Vector128.Sum(sumi), d, acc);
            acc = MathF.FusedMultiplyAdd(-msum, dmin, acc);
        }
        return acc;
    }

    /// <summary>Σ_j m_j·(bsum[2j] + bsum[2j+1]): the exact min term of a Q4_K/Q5_K super-block (mins as from <see cref="UnpackScaleMin"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int MinSum(ulong mins, short* bsums)
    {
        int msum = 0;
        for (int j = 0; j < 8; j++)
            msum += (int)(byte)(mins >> (8 * j)) * (bsums[2 * j] + bsums[2 * j + 1]);
        return msum;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockQ4K>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);

        Span<float> sums = stackalloc float[8];
        Span<int> aux32 = stackalloc int[8];
        sums.Clear();
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ4K xb = ref x[i];
            ref readonly BlockQ8K yb = ref y[i];
            ReadOnlySpan<byte> scales = xb.Scales;
            ReadOnlySpan<byte> q4 = xb.Qs;
            ReadOnlySpan<sbyte> q8 = yb.Qs;
            aux32.Clear();

            int sumi = 0;
            for (int j = 0; j < 16; j++)
            {
                GetScaleMinK4(j / 2, scales, out _, out int m);
                sumi += yb.BSums[j] * m;
            }

            for (int j = 0; j < 8; j++)
            {
                GetScaleMinK4(j, scales, out int scale, out _);
                // sub-block j: weights 32j..32j+31 are the low (even j) or high (odd j) nibbles of bytes 32(j/2)..
                ReadOnlySpan<byte> q = q4.Slice(32 * (j / 2), 32);
                int shift = (j & 1) * 4;
                for (int l = 0; l < 32; l++)
                    aux32[l & 7] += scale * (q8[32 * j + l] * ((q[l] >> shift) & 0xF));
            }

            float d = FromHalf(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
                sums[l] += d * aux32[l];
            float dmin = FromHalf(xb.DMin) * yb.D;
            sumf -= dmin * sumi;
        }
        for (int l = 0; l < 8; l++)
            sumf += sums[l];
        return sumf;
    }
}
