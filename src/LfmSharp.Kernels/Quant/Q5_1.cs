using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q5_1 rows (<see cref="BlockQ5_1"/>): 32 weights per 24-byte block, y = q·d + m with a 5-bit q (bits as Q5_0).
/// Dot products run against <see cref="Q8_1"/> activations (ggml's vec_dot_type for Q5_1).
/// </summary>
internal static unsafe class Q5_1
{
    public const GgmlType Type = GgmlType.Q5_1;

    /// <summary>
    /// Effectively y = q·d + m with q assembled as for Q5_0.
    /// src: [blocks × 24] bytes; dst: at least [blocks × 32] floats. Bit-identical to ggml's dequantize_row_q5_1.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5_1>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ5_1 b = ref blocks[i];
            float d = FromHalf(b.D);
            float m = FromHalf(b.M);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b.Qh);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = (b.Qs[j] & 0x0F) | xh0;
                int x1 = (b.Qs[j] >> 4) | xh1;
                y[j] = x0 * d + m;
                y[j + 16] = x1 * d + m;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q5_1_ref: m = min(x), d = (max − min)/31, q = trunc((x − m)/d + 0.5) (no clamp, as in C).
    /// src: [blocks × 32] floats; dst: at least [blocks × 24] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5_1>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float min = float.MaxValue, max = -float.MaxValue;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (v < min) min = v;
                if (v > max) max = v;
            }

            float d = (max - min) / 31f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ5_1 y = ref blocks[i];
            y.D = ToHalf(d);
            y.M = ToHalf(min);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                float x0 = (x[j] - min) * id;
                float x1 = (x[16 + j] - min) * id;
                // (uint8_t) in C: truncate, keep the low 8 bits.
                uint xi0 = (byte)(int)(x0 + 0.5f);
                uint xi1 = (byte)(int)(x1 + 0.5f);
                y.Qs[j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(y.Qh, qh);
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q5_1_q8_1_generic: per block sumf += (d_w·d_a)·Σ(q_w·q_a) + m_w·s_a.
    /// weightRow: [n/32 × 24] Q5_1 bytes; q8_1Row: [n/32 × 36] Q8_1 bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_1Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_1, weightRow.Length, q8_1Row.Length, n);
        return Simd.Dot(weightRow, q8_1Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it: the exact block sum Σ q·a (q = nibble | fifth bit·16,
    /// 0..31, unsigned through maddubs) and then the scalar's float expression. w: [nb × 24] bytes; a: [nb × 36] Q8_1 bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        var bit4 = Vector256.Create((byte)0x10);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 24, y = a + ib * 36;
            var q = Simd.Nibbles(Vector128.Load(x + 8)) | (Simd.BitMasks(*(uint*)(x + 4)) & bit4);
            int sumi = Simd.HorizontalSum(Simd.DotUnsigned(q, Vector256.Load((sbyte*)(y + 4))));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi + HalfToSingle(*(ushort*)(x + 2)) * HalfToSingle(*(ushort*)(y + 2));
        }
        return sumf;
    }

    /// <summary>Portable Vector128 twin of <see cref="DotScalar"/>, bit-identical to it (exact widened integer sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 24, y = a + ib * 36;
            uint qh = *(uint*)(x + 4);
            var (lo, hi) = Simd.Nibbles128(Vector128.Load(x + 8));
            var q0 = lo | Simd.FifthBits(qh, 0).AsSByte();     // 0..31
            var q1 = hi | Simd.FifthBits(qh, 16).AsSByte();
            int sumi = Vector128.Sum(Simd.DotPairs(q0, Vector128.Load((sbyte*)(y + 4)), q1, Vector128.Load((sbyte*)(y + 20))));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi + HalfToSingle(*(ushort*)(x + 2)) * HalfToSingle(*(ushort*)(y + 2));
        }
        return sumf;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_1Row, int nb)
    {
        var x = Blocks<BlockQ5_1>(weightRow, nb);
        var y = Blocks<BlockQ8_1>(q8_1Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ5_1 xb = ref x[ib];
            ref readonly BlockQ8_1 yb = ref y[ib];
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb.Qh);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = (xb.Qs[j] & 0x0F) | xh0;
                int x1 = (xb.Qs[j] >> 4) | xh1;
                sumi0 += x0 * yb.Qs[j];
                sumi1 += x1 * yb.Qs[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += (FromHalf(xb.D) * FromHalf(yb.D)) * sumi + FromHalf(xb.M) * FromHalf(yb.S);
        }
        return sumf;
    }
}
