using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.KQuantMath;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q5_K rows (<see cref="BlockQ5K"/>): as Q4_K with a fifth bit per weight (176 bytes per 256 weights).
/// Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class Q5K
{
    public const GgmlType Type = GgmlType.Q5_K;

    /// <summary>
    /// For chunk c = 0..3: y[64c+l] = (d·sc_{2c})·((ql[l]&amp;0xF) + (qh[l] bit 2c ? 16 : 0)) − dmin·m_{2c}, and the high
    /// nibble with bit 2c+1 for y[64c+32+l]. src: [blocks × 176] bytes; dst: at least [blocks × 256] floats.
    /// Bit-identical to ggml's dequantize_row_q5_K.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5K>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ5K b = ref blocks[i];
            float d = FromHalf(b.D);
            float min = FromHalf(b.DMin);
            ReadOnlySpan<byte> scales = b.Scales;
            ReadOnlySpan<byte> qs = b.Qs;
            ReadOnlySpan<byte> qh = b.Qh;
            Span<float> y = dst.Slice(i * 256, 256);
            for (int c = 0; c < 4; c++)
            {
                GetScaleMinK4(2 * c, scales, out int sc, out int m);
                float d1 = d * sc, m1 = min * m;
                GetScaleMinK4(2 * c + 1, scales, out sc, out m);
                float d2 = d * sc, m2 = min * m;
                int u1 = 1 << (2 * c), u2 = 2 << (2 * c);
                ReadOnlySpan<byte> ql = qs.Slice(32 * c, 32);
                Span<float> yc = y.Slice(64 * c, 64);
                for (int l = 0; l < 32; l++)
                    yc[l] = d1 * ((ql[l] & 0xF) + ((qh[l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++)
                    yc[32 + l] = d2 * ((ql[l] >> 4) + ((qh[l] & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q5_K_ref: as Q4_K with nmax 31 and the make_qkx2_quants search rmin −0.5,
    /// rdelta 0.1, 15 steps. src: [blocks × 256] floats; dst: at least [blocks × 176] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5K>(dst, nb);

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
            ref BlockQ5K y = ref blocks[i];

            float maxScale = 0f;
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
                scales[j] = MakeQkx2Quants(32, 31, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, -0.5f, 0.1f, 15, false);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }

            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++)
            {
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
                    continue;
                float dm = dminAll * m;
                for (int ii = 0; ii < 32; ii++)
                {
                    int l = NearestInt((x[32 * j + ii] + dm) / d);
                    L[32 * j + ii] = (byte)Math.Max(0, Math.Min(31, l));
                }
            }

            Span<byte> qh = y.Qh;
            Span<byte> ql = y.Qs;
            qh.Clear();
            byte m1 = 1, m2 = 2;
            for (int c = 0; c < 4; c++)
            {
                for (int j = 0; j < 32; j++)
                {
                    int l1 = L[64 * c + j];
                    if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                    int l2 = L[64 * c + j + 32];
                    if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                    ql[32 * c + j] = (byte)(l1 | (l2 << 4));
                }
                m1 <<= 2;
                m2 <<= 2;
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q5_K_q8_K_generic (same lane structure as <see cref="Q4K.Dot"/>).
    /// weightRow: [n/256 × 176] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the canonical order of <see cref="Q4K.DotAvx2"/>: per super-block the exact
    /// integers sumi = Σ sc_j·q·a (5-bit q = nibble | fifth bit·16 through maddubs, pair sums ≤ 2·31·128, then a madd by
    /// the sub-block scale) and msum = Σ m_j·bsum, then acc = fma(sumi, d·d_a, acc) and acc = fma(−msum, dmin·d_a, acc).
    /// Differs from the generic order only by float rounding. w: [nb × 176] bytes; a: [nb × 292] Q8_K bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 176, y = a + i * 292;
            float dy = *(float*)y;
            float d = HalfToSingle(*(ushort*)x) * dy;
            float dmin = HalfToSingle(*(ushort*)(x + 2)) * dy;
            var sumi = BlockSum(x, y, out var mins);
            int msum = Simd.HorizontalSum(mins);
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(sumi), d, acc);
            acc = MathF.FusedMultiplyAdd(-msum, dmin, acc);
        }
        return acc;
    }

    /// <summary>
    /// The exact integers of one super-block (x: the Q5_K block, y: the Q8_K block) in 8 int32 lanes each: Σ sc_j·q·a
    /// (returned) and Σ m_j·bsum (<paramref name="mins"/>) — shared by <see cref="DotAvx2"/> and <see cref="MatVec8K"/>.
    /// </summary>
    /// <remarks>Only the block's integer totals matter to both callers (they sum the lanes exactly), so the AVX-512 path may spread them over the lanes differently.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y, out Vector256<int> mins)
        => Avx512BW.IsSupported ? BlockSum512(x, y, out mins) : BlockSum256(x, y, out mins);

    /// <summary>
    /// The AVX-512 <see cref="BlockSum"/>: a 64-weight chunk per step, its low-nibble and high-nibble sub-blocks in
    /// the two 256-bit halves (the chunk's quant bytes broadcast, shifted by [0 | 4]; qh's bits by [4 | 3] to bit 4),
    /// against 64 consecutive activations; the two sub-block scales picked by one vpermw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum512(byte* x, byte* y, out Vector256<int> mins)
    {
        Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mn);
        var m8 = Vector128.CreateScalar(mn).AsByte();
        mins = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), Avx2.ConvertToVector256Int16(Sse2.UnpackLow(m8, m8)));
        var sc = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(scales).AsByte()).ToVector256Unsafe().ToVector512Unsafe();
        var qh = Vector256.Load(x + 16).AsUInt16();
        var qhz = Vector512.Create(qh, qh);
        var nibbleShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)4));
        var bitShift = Vector512.Create(Vector256.Create((ushort)4), Vector256.Create((ushort)3));
        var sumi = Vector512<int>.Zero;
        byte* qs = x + 48;
        sbyte* q8 = (sbyte*)(y + 4);
        for (int j = 0; j < 4; j++)
        {
            var q4 = Vector256.Load(qs + 32 * j).AsUInt16();
            var v = (Avx512BW.ShiftRightLogicalVariable(Vector512.Create(q4, q4), nibbleShift).AsByte() & Vector512.Create((byte)0x0F))
                | (Avx512BW.ShiftLeftLogicalVariable(qhz, bitShift).AsByte() & Vector512.Create((byte)0x10));
            qhz = Vector512.ShiftRightLogical(qhz, 2);
            var p = Avx512BW.MultiplyAddAdjacent(v, Vector512.Load(q8 + 64 * j));
            var idx = Vector512.Create(Vector256.Create((short)(2 * j)), Vector256.Create((short)(2 * j + 1)));
            sumi += Avx512BW.MultiplyAddAdjacent(p, Avx512BW.PermuteVar32x16(sc, idx));
        }
        return sumi.GetLower() + sumi.GetUpper();
    }

    /// <summary>The AVX2 <see cref="BlockSum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum256(byte* x, byte* y, out Vector256<int> mins)
    {
        var low = Vector256.Create((byte)0x0F);
        var bit0 = Vector256.Create((byte)0x01);
        var bit1 = Vector256.Create((byte)0x02);
        Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mn);
        var m8 = Vector128.CreateScalar(mn).AsByte();
        var m16 = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(m8, m8));
        mins = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), m16);

        // qh byte l holds the fifth bit of weight l of sub-block j in bit j; consumed two bits per 64-weight chunk.
        // The 16-bit shifts pull the neighbouring byte's bits into the top of each byte, but only bits 0..1 are read
        // and at most 6 bits have been shifted out by the last chunk.
        var qh = Vector256.Load(x + 16);
        var sumi = Vector256<int>.Zero;
        byte* qs = x + 48;
        sbyte* q8 = (sbyte*)(y + 4);
        for (int j = 0; j < 4; j++)
        {
            var q4 = Vector256.Load(qs + 32 * j);
            var lo = (q4 & low) | Avx2.ShiftLeftLogical((qh & bit0).AsUInt16(), 4).AsByte();
            var hi = (Avx2.ShiftRightLogical(q4.AsUInt16(), 4).AsByte() & low) | Avx2.ShiftLeftLogical((qh & bit1).AsUInt16(), 3).AsByte();
            qh = Avx2.ShiftRightLogical(qh.AsUInt16(), 2).AsByte();
            var p0 = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(q8 + 64 * j));
            var p1 = Avx2.MultiplyAddAdjacent(hi, Vector256.Load(q8 + 64 * j + 32));
            sumi += Avx2.MultiplyAddAdjacent(p0, Vector256.Create((short)(byte)(scales >> (16 * j))))
                  + Avx2.MultiplyAddAdjacent(p1, Vector256.Create((short)(byte)(scales >> (16 * j + 8))));
        }
        return sumi;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it (same exact sumi and msum, same fmas);
    /// 5-bit products fold in int16 with lane sums ≤ 4·31·128.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        var one = Vector128.Create((byte)0x01);
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 176, y = a + i * 292;
            float dy = *(float*)y;
            float d = HalfToSingle(*(ushort*)x) * dy;
            float dmin = HalfToSingle(*(ushort*)(x + 2)) * dy;
            Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
            int msum = Q4K.MinSum(mins, (short*)(y + 4 + 256));

            var qh0 = Vector128.Load(x + 16);
            var qh1 = Vector128.Load(x + 32);
            var sumi = Vector128<int>.Zero;
            byte* qs = x + 48;
            sbyte* q8 = (sbyte*)(y + 4);
            for (int j = 0; j < 4; j++)
            {
                var (l0, h0) = Simd.Nibbles128(Vector128.Load(qs + 32 * j));
                var (l1, h1) = Simd.Nibbles128(Vector128.Load(qs + 32 * j + 16));
                l0 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(qh0, 2 * j) & one, 4).AsSByte();
                l1 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(qh1, 2 * j) & one, 4).AsSByte();
                h0 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(qh0, 2 * j + 1) & one, 4).AsSByte();
                h1 |= Vector128.ShiftLeft(Vector128.ShiftRightLogical(qh1, 2 * j + 1) & one, 4).AsSByte();
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

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockQ5K>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);

        Span<float> sums = stackalloc float[8];
        Span<int> aux32 = stackalloc int[8];
        sums.Clear();
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ5K xb = ref x[i];
            ref readonly BlockQ8K yb = ref y[i];
            ReadOnlySpan<byte> scales = xb.Scales;
            ReadOnlySpan<byte> q4 = xb.Qs;
            ReadOnlySpan<byte> qh = xb.Qh;
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
                ReadOnlySpan<byte> q = q4.Slice(32 * (j / 2), 32);
                int shift = (j & 1) * 4;
                int hbit = 1 << j;
                for (int l = 0; l < 32; l++)
                {
                    int w = ((q[l] >> shift) & 0xF) + ((qh[l] & hbit) != 0 ? 16 : 0);
                    aux32[l & 7] += scale * (q8[32 * j + l] * w);
                }
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
