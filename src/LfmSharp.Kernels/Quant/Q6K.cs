using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.KQuantMath;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q6_K rows (<see cref="BlockQ6K"/>): super-blocks of 256 weights (16 sub-blocks of 16 with int8 scales) in 210 bytes,
/// y = d·scale_j·(q − 32) with 6-bit q. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class Q6K
{
    public const GgmlType Type = GgmlType.Q6_K;

    /// <summary>
    /// Two halves n = 0, 1 of 128 weights with L = ql+64n, H = qh+32n, S = scales+8n; for l = 0..31, is = l/16:
    /// y[128n+l] = d·S[is]·q1, y[+32] = d·S[is+2]·q2, y[+64] = d·S[is+4]·q3, y[+96] = d·S[is+6]·q4 where q1..q4 are the
    /// low/high nibbles of L[l], L[l+32] joined with successive bit pairs of H[l], minus 32.
    /// src: [blocks × 210] bytes; dst: at least [blocks × 256] floats. Bit-identical to ggml's dequantize_row_q6_K.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ6K>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ6K b = ref blocks[i];
            float d = FromHalf(b.D);
            ReadOnlySpan<byte> qlAll = b.Ql;
            ReadOnlySpan<byte> qhAll = b.Qh;
            ReadOnlySpan<sbyte> scAll = b.Scales;
            for (int n = 0; n < 2; n++)
            {
                ReadOnlySpan<byte> ql = qlAll.Slice(64 * n, 64);
                ReadOnlySpan<byte> qh = qhAll.Slice(32 * n, 32);
                ReadOnlySpan<sbyte> sc = scAll.Slice(8 * n, 8);
                Span<float> y = dst.Slice(i * 256 + 128 * n, 128);
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[s] * q1;
                    y[l + 32] = d * sc[s + 2] * q2;
                    y[l + 64] = d * sc[s + 4] * q3;
                    y[l + 96] = d * sc[s + 6] * q4;
                }
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q6_K_ref (llama-quantize's Q6_K without an imatrix): per sub-block of 16 a
    /// make_qx_quants fit (nmax 32, weights x²); the 16 scales become int8 against the largest-magnitude one
    /// (iscale = −128/max_scale, d = 1/iscale) and every weight is re-quantized against the rounded scale.
    /// src: [blocks × 256] floats; dst: at least [blocks × 210] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ6K>(dst, nb);

        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];

        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 256, 256);
            ref BlockQ6K y = ref blocks[i];

            float maxScale = 0f, maxAbsScale = 0f;
            for (int ib = 0; ib < 16; ib++)
            {
                float scale = MakeQxQuantsRmse1(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
                scales[ib] = scale;
                float absScale = MathF.Abs(scale);
                if (absScale > maxAbsScale)
                {
                    maxAbsScale = absScale;
                    maxScale = scale;
                }
            }

            if (maxAbsScale < GroupMaxEps)
            {
                // An all-zero block: every byte zero (d = +0 is also f16 bits 0).
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<BlockQ6K>(ref y)).Clear();
                continue;
            }

            float iscale = -128f / maxScale;
            y.D = ToHalf(1 / iscale);
            for (int ib = 0; ib < 16; ib++)
                y.Scales[ib] = (sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));

            float dAll = FromHalf(y.D);
            for (int j = 0; j < 16; j++)
            {
                float d = dAll * y.Scales[j];
                if (d == 0f)
                    continue; // L keeps the make_qx_quants levels, as in C
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    l = Math.Max(-32, Math.Min(31, l));
                    L[16 * j + ii] = (sbyte)(l + 32);
                }
            }

            Span<byte> qlAll = y.Ql;
            Span<byte> qhAll = y.Qh;
            for (int half = 0; half < 2; half++)
            {
                Span<byte> ql = qlAll.Slice(64 * half, 64);
                Span<byte> qh = qhAll.Slice(32 * half, 32);
                int j = 128 * half;
                for (int l = 0; l < 32; l++)
                {
                    int l0 = L[j + l], l1 = L[j + l + 32], l2 = L[j + l + 64], l3 = L[j + l + 96];
                    ql[l] = (byte)((l0 & 0xF) | ((l2 & 0xF) << 4));
                    ql[l + 32] = (byte)((l1 & 0xF) | ((l3 & 0xF) << 4));
                    qh[l] = (byte)((l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6));
                }
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q6_K_q8_K_generic: 8 int32 lanes of scale_j·(q − 32)·q_a per super-block, scaled
    /// by d_w·d_a into 8 float lanes that are added at the end. weightRow: [n/256 × 210] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the engine's canonical order (<see cref="PackedGemm"/>): the unsigned 6-bit
    /// q (0..63) go through maddubs and a madd by the sub-block scales, the −32 offset comes off exactly as
    /// 32·Σ scale_j·bsum_j, then one acc = fma(sumi, d·d_a, acc) per super-block (only float rounding differs).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 210, y = a + i * 292;
            sbyte* sc = (sbyte*)(x + 192);
            float d = HalfToSingle(*(ushort*)(x + 208)) * *(float*)y;
            sbyte* q8 = (sbyte*)(y + 4);

            // 32·Σ_j scale_j·bsum_j: the offset of q − 32, exact in int32.
            var sc16 = Avx2.ConvertToVector256Int16(Vector128.Load(sc));
            var offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), sc16);

            var sumi = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                DecodeHalf(x, h, out var v1, out var v2, out var v3, out var v4);
                var (q1, q2, q3, q4) = (v1.AsByte(), v2.AsByte(), v3.AsByte(), v4.AsByte());
                sbyte* ys = q8 + 128 * h;
                sbyte* s = sc + 8 * h;
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(ys)), Scales(s[0], s[1]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q2, Vector256.Load(ys + 32)), Scales(s[2], s[3]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3, Vector256.Load(ys + 64)), Scales(s[4], s[5]));
                sumi += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q4, Vector256.Load(ys + 96)), Scales(s[6], s[7]));
            }
            sumi -= Avx2.ShiftLeftLogical(offset, 5);
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(sumi), d, acc);
        }
        return acc;
    }

    /// <summary>
    /// The 6-bit values of half <paramref name="h"/> of a Q6_K super-block's ql/qh (at <paramref name="x"/>) as four
    /// vectors of 32 bytes, the decode every AVX2 Q6_K kernel does (in GGUF order four runs of 32 consecutive values).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void DecodeHalf(byte* x, int h, out Vector256<int> q1, out Vector256<int> q2, out Vector256<int> q3, out Vector256<int> q4)
    {
        var low = Vector256.Create((byte)0x0F);
        var qlA = Vector256.Load(x + 64 * h);
        var qlB = Vector256.Load(x + 64 * h + 32);
        var qh = Vector256.Load(x + 128 + 32 * h);
        q1 = ((qlA & low) | Avx2.ShiftLeftLogical((qh & Vector256.Create((byte)0x03)).AsUInt16(), 4).AsByte()).AsInt32();
        q2 = ((qlB & low) | Avx2.ShiftLeftLogical((qh & Vector256.Create((byte)0x0C)).AsUInt16(), 2).AsByte()).AsInt32();
        q3 = ((Avx2.ShiftRightLogical(qlA.AsUInt16(), 4).AsByte() & low) | (qh & Vector256.Create((byte)0x30))).AsInt32();
        q4 = ((Avx2.ShiftRightLogical(qlB.AsUInt16(), 4).AsByte() & low) | Avx2.ShiftRightLogical((qh & Vector256.Create((byte)0xC0)).AsUInt16(), 2).AsByte()).AsInt32();
    }

    /// <summary>int16 lanes 0..7 = <paramref name="first"/> (weights 0..15 of a 32-run), lanes 8..15 = <paramref name="second"/>.</summary>
    private static Vector256<short> Scales(sbyte first, sbyte second) => Vector256.Create(Vector128.Create((short)first), Vector128.Create((short)second));

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: sumi = Σ scale_j·(q − 32)·a exactly (the
    /// same integer the AVX2 path reaches through its offset), one fma per super-block. Each 16-byte vector is one
    /// 16-weight sub-block, so its products fold in int16 (lane sums ≤ 2·32·128) and take one scale in int32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        var low = Vector128.Create((byte)0x0F);
        var off = Vector128.Create((sbyte)32);
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 210, y = a + i * 292;
            sbyte* sc = (sbyte*)(x + 192);
            float d = HalfToSingle(*(ushort*)(x + 208)) * *(float*)y;
            sbyte* q8 = (sbyte*)(y + 4);

            var sumi = Vector128<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                for (int k = 0; k < 2; k++)
                {
                    // weights 128h + 16k + l (+32, +64, +96) for l = 0..15: sub-blocks 8h + k (+2, +4, +6).
                    var qlA = Vector128.Load(x + 64 * h + 16 * k);
                    var qlB = Vector128.Load(x + 64 * h + 32 + 16 * k);
                    var qh = Vector128.Load(x + 128 + 32 * h + 16 * k);
                    var q1 = (qlA & low) | Vector128.ShiftLeft(qh & Vector128.Create((byte)0x03), 4);
                    var q2 = (qlB & low) | Vector128.ShiftLeft(qh & Vector128.Create((byte)0x0C), 2);
                    var q3 = Vector128.ShiftRightLogical(qlA, 4) | (qh & Vector128.Create((byte)0x30));
                    var q4 = Vector128.ShiftRightLogical(qlB, 4) | Vector128.ShiftRightLogical(qh & Vector128.Create((byte)0xC0), 2);
                    sbyte* ys = q8 + 128 * h + 16 * k;
                    sbyte* s = sc + 8 * h + k;
                    sumi += Simd.DotPair(q1.AsSByte() - off, Vector128.Load(ys)) * Vector128.Create((int)s[0])
                          + Simd.DotPair(q2.AsSByte() - off, Vector128.Load(ys + 32)) * Vector128.Create((int)s[2])
                          + Simd.DotPair(q3.AsSByte() - off, Vector128.Load(ys + 64)) * Vector128.Create((int)s[4])
                          + Simd.DotPair(q4.AsSByte() - off, Vector128.Load(ys + 96)) * Vector128.Create((int)s[6]);
                }
            }
            acc = MathF.FusedMultiplyAdd(Vector128.Sum(sumi), d, acc);
        }
        return acc;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockQ6K>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);

        Span<float> sums = stackalloc float[8];
        Span<int> aux32 = stackalloc int[8];
        Span<int> a = stackalloc int[256];
        sums.Clear();
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ6K xb = ref x[i];
            ref readonly BlockQ8K yb = ref y[i];
            ReadOnlySpan<byte> qlAll = xb.Ql;
            ReadOnlySpan<byte> qhAll = xb.Qh;
            ReadOnlySpan<sbyte> q8 = yb.Qs;
            for (int half = 0; half < 2; half++)
            {
                ReadOnlySpan<byte> ql = qlAll.Slice(64 * half, 64);
                ReadOnlySpan<byte> qh = qhAll.Slice(32 * half, 32);
                Span<int> ah = a.Slice(128 * half, 128);
                for (int l = 0; l < 32; l++)
                {
                    ah[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    ah[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    ah[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    ah[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                }
            }

            aux32.Clear();
            for (int j = 0; j < 16; j++)
            {
                int scale = xb.Scales[j];
                for (int l = 0; l < 16; l++)
                    aux32[l & 7] += scale * (q8[16 * j + l] * a[16 * j + l]);
            }

            float d = FromHalf(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
                sums[l] += d * aux32[l];
        }
        float sumf = 0f;
        for (int l = 0; l < 8; l++)
            sumf += sums[l];
        return sumf;
    }
}
