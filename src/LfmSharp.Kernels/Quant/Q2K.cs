using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.KQuantMath;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q2_K rows (<see cref="BlockQ2K"/>): super-blocks of 256 weights (16 sub-blocks of 16) in 84 bytes,
/// y = d·(sc &amp; 15)·q − dmin·(sc » 4) with 2-bit q. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class Q2K
{
    public const GgmlType Type = GgmlType.Q2_K;

    /// <summary>
    /// For chunk c = 0..1 of 128 weights and k = 0..3: weights 128c + 32k + l take bits 2k..2k+1 of qs[32c + l], with
    /// sub-block scale/min byte 8c + 2k + (l ≥ 16). src: [blocks × 84] bytes; dst: at least [blocks × 256] floats.
    /// Bit-identical to ggml's dequantize_row_q2_K.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ2K>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ2K b = ref blocks[i];
            float d = FromHalf(b.D), min = FromHalf(b.DMin);
            ReadOnlySpan<byte> sc = b.Scales;
            ReadOnlySpan<byte> qs = b.Qs;
            Span<float> y = dst.Slice(i * 256, 256);
            int o = 0, s = 0;
            for (int c = 0; c < 2; c++)
            {
                ReadOnlySpan<byte> q = qs.Slice(32 * c, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    for (int half = 0; half < 2; half++)
                    {
                        byte scale = sc[s++];
                        float dl = d * (scale & 0xF), ml = min * (scale >> 4);
                        for (int l = 0; l < 16; l++)
                            y[o++] = dl * ((q[16 * half + l] >> shift) & 3) - ml;
                    }
                }
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q2_K_ref (llama-quantize's Q2_K without an imatrix): per sub-block of 16 a
    /// make_qkx2_quants fit (weights |x|, nmax 3, rmin −0.5, rdelta 0.1, 15 steps, MAD), scales and mins quantized to
    /// 4 bits against the block maxima, then every weight re-quantized against the rounded values.
    /// src: [blocks × 256] floats; dst: at least [blocks × 84] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ2K>(dst, nb);
        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        const float q4scale = 15f;

        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 256, 256);
            ref BlockQ2K y = ref blocks[i];
            float maxScale = 0f, maxMin = 0f;
            for (int j = 0; j < 16; j++)
            {
                ReadOnlySpan<float> xs = x.Slice(16 * j, 16);
                for (int l = 0; l < 16; l++)
                    weights[l] = MathF.Abs(xs[l]);
                scales[j] = MakeQkx2Quants(16, 3, xs, weights, L.Slice(16 * j, 16), out mins[j], laux, -0.5f, 0.1f, 15, true);
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }

            Span<byte> sc = y.Scales;
            if (maxScale > 0)
            {
                float iscale = q4scale / maxScale;
                for (int j = 0; j < 16; j++)
                    sc[j] = (byte)NearestInt(iscale * scales[j]);
                y.D = ToHalf(maxScale / q4scale);
            }
            else
            {
                sc.Clear();
                y.D = ToHalf(0f);
            }
            if (maxMin > 0)
            {
                float iscale = q4scale / maxMin;
                for (int j = 0; j < 16; j++)
                    sc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
                y.DMin = ToHalf(maxMin / q4scale);
            }
            else
            {
                y.DMin = ToHalf(0f);
            }

            float dAll = FromHalf(y.D), dminAll = FromHalf(y.DMin);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * (sc[j] & 0xF);
                if (d == 0f)
                    continue;
                float dm = dminAll * (sc[j] >> 4);
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt((x[16 * j + ii] + dm) / d);
                    L[16 * j + ii] = (byte)Math.Max(0, Math.Min(3, l));
                }
            }

            Span<byte> qs = y.Qs;
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q2_K_q8_K_generic: per super-block the exact integers isum = Σ (sc &amp; 15)·q·a and
    /// summs = Σ (sc » 4)·bsum, then sumf += d_a·d·isum − d_a·dmin·summs. weightRow: [n/256 × 84] bytes;
    /// q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked.</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockQ2K>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ2K xb = ref x[i];
            ref readonly BlockQ8K yb = ref y[i];
            ReadOnlySpan<byte> sc = xb.Scales;
            ReadOnlySpan<byte> q2 = xb.Qs;
            ReadOnlySpan<sbyte> q8 = yb.Qs;
            int summs = 0;
            for (int j = 0; j < 16; j++)
                summs += yb.BSums[j] * (sc[j] >> 4);
            float dall = yb.D * FromHalf(xb.D);
            float dmin = yb.D * FromHalf(xb.DMin);

            int isum = 0, s = 0, a = 0;
            for (int c = 0; c < 2; c++)
            {
                ReadOnlySpan<byte> q = q2.Slice(32 * c, 32);
                for (int shift = 0; shift < 8; shift += 2)
                {
                    int isuml = 0;
                    for (int l = 0; l < 16; l++)
                        isuml += q8[a + l] * ((q[l] >> shift) & 3);
                    isum += (sc[s++] & 0xF) * isuml;
                    isuml = 0;
                    for (int l = 16; l < 32; l++)
                        isuml += q8[a + l] * ((q[l] >> shift) & 3);
                    isum += (sc[s++] & 0xF) * isuml;
                    a += 32;
                }
            }
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it: the same exact integers isum and summs per super-block
    /// (maddubs of the 2-bit quants against the activations, madd by the 4-bit scales), the same float operations.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 84, y = a + i * 292;
            var acc = BlockSum(x, y, out var mins);
            int summs = Simd.HorizontalSum(mins);
            int isum = Simd.HorizontalSum(acc);
            float dy = *(float*)y;
            float dall = dy * HalfToSingle(*(ushort*)(x + 80));
            float dmin = dy * HalfToSingle(*(ushort*)(x + 82));
            sumf += dall * isum - dmin * summs;
        }
        return sumf;
    }

    /// <summary>
    /// The exact integers of one super-block (x: the Q2_K block, y: the Q8_K block) in 8 int32 lanes each: Σ sc·q·a
    /// (returned) and Σ m·bsum (<paramref name="mins"/>) — shared by <see cref="DotAvx2"/> and <see cref="MatVec8K"/>.
    /// </summary>
    /// <remarks>Only the block's integer totals matter to both callers (they sum the lanes exactly), so the AVX-512 path may spread them over the lanes differently.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y, out Vector256<int> mins)
        => Avx512BW.IsSupported ? BlockSum512(x, y, out mins) : BlockSum256(x, y, out mins);

    /// <summary>
    /// The AVX-512 <see cref="BlockSum"/>: two runs per step (runs 2j and 2j + 1 of a chunk are 64 consecutive
    /// activations; their quants are the chunk's 32 bytes shifted by [4j | 4j + 2]), the four scales by one vpermw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum512(byte* x, byte* y, out Vector256<int> mins)
    {
        var lowNibble = Vector128.Create((byte)0x0F);
        var sc = Vector128.Load(x);
        mins = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 260)),
            Avx2.ConvertToVector256Int16(Sse2.ShiftRightLogical(sc.AsUInt16(), 4).AsByte() & lowNibble));
        var all = Avx2.ConvertToVector256Int16(sc & lowNibble);
        var scales = Vector512.Create(all, all);
        var two = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
        var q0 = Vector256.Load(x + 16).AsUInt16();
        var q1 = Vector256.Load(x + 48).AsUInt16();
        var t0 = Avx512BW.ShiftRightLogicalVariable(Vector512.Create(q0, q0), two);
        var t1 = Avx512BW.ShiftRightLogicalVariable(Vector512.Create(q1, q1), two);
        sbyte* q8 = (sbyte*)(y + 4);
        var acc = Run512(t0, q8, scales, 0, Vector512<int>.Zero);
        acc = Run512(Vector512.ShiftRightLogical(t0, 4), q8 + 64, scales, 4, acc);
        acc = Run512(t1, q8 + 128, scales, 8, acc);
        acc = Run512(Vector512.ShiftRightLogical(t1, 4), q8 + 192, scales, 12, acc);
        return acc.GetLower() + acc.GetUpper();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Run512(Vector512<ushort> q, sbyte* a, Vector512<short> scales, int first, Vector512<int> acc)
        {
            var p = Avx512BW.MultiplyAddAdjacent(q.AsByte() & Vector512.Create((byte)3), Vector512.Load(a));
            var idx = Vector512.Create(
                Vector256.Create(Vector128.Create((short)first), Vector128.Create((short)(first + 1))),
                Vector256.Create(Vector128.Create((short)(first + 2)), Vector128.Create((short)(first + 3))));
            return acc + Avx512BW.MultiplyAddAdjacent(p, Avx512BW.PermuteVar32x16(scales, idx));
        }
    }

    /// <summary>The AVX2 <see cref="BlockSum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum256(byte* x, byte* y, out Vector256<int> mins)
    {
        var three = Vector256.Create((byte)3);
        var lowNibble = Vector128.Create((byte)0x0F);
        var sc = Vector128.Load(x);
        // Mins · bsums: 16 int16 products summed pairwise, exact.
        mins = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 260)),
            Avx2.ConvertToVector256Int16(Sse2.ShiftRightLogical(sc.AsUInt16(), 4).AsByte() & lowNibble));
        // Scales as int16 in both halves; run k of chunk c takes 8c + 2k (low 128 bits) and 8c + 2k + 1 (high).
        var all = Avx2.ConvertToVector256Int16(sc & lowNibble);
        var acc = Vector256<int>.Zero;
        sbyte* q8 = (sbyte*)(y + 4);
        for (int c = 0; c < 2; c++)
        {
            var q = Vector256.Load(x + 16 + 32 * c);
            var half = (c == 0 ? Avx2.Permute2x128(all, all, 0x00) : Avx2.Permute2x128(all, all, 0x11)).AsByte();
            for (int k = 0; k < 4; k++)
            {
                var qk = Vector256.ShiftRightLogical(q.AsUInt16(), 2 * k).AsByte() & three;
                var p = Avx2.MultiplyAddAdjacent(qk, Vector256.Load(q8 + 128 * c + 32 * k));
                acc += Avx2.MultiplyAddAdjacent(p, Avx2.Shuffle(half, Q3K.PairShuffle(k)).AsInt16());
            }
        }
        return acc;
    }
}
