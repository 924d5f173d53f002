using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q5_0 rows (<see cref="BlockQ5_0"/>): 32 weights per 22-byte block, y = (q − 16)·d with a 5-bit q whose top bit
/// sits in the little-endian u32 qh (bit j for weight j). Dot products run against <see cref="Q8_0"/> activations.
/// llama-quantize falls back to Q5_0 for Q4_K tensors whose rows are not a multiple of 256.
/// </summary>
internal static unsafe class Q5_0
{
    public const GgmlType Type = GgmlType.Q5_0;

    /// <summary>
    /// Effectively y[j] = (((qs[j] &amp; 0xF) | bit j of qh « 4) − 16)·d and y[j+16] = (((qs[j] » 4) | bit j+16 of qh « 4) − 16)·d.
    /// src: [blocks × 22] bytes; dst: at least [blocks × 32] floats. Bit-identical to ggml's dequantize_row_q5_0.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ5_0 b = ref blocks[i];
            float d = FromHalf(b.D);
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(b.Qh);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = ((b.Qs[j] & 0x0F) | xh0) - 16;
                int x1 = ((b.Qs[j] >> 4) | xh1) - 16;
                y[j] = x0 * d;
                y[j + 16] = x1 * d;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q5_0_ref: the element with the largest |x| maps to −16, d = max / −16,
    /// q = min(31, trunc(x/d + 16.5)). src: [blocks × 32] floats; dst: at least [blocks × 22] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ5_0>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            }

            float d = max / -16f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ5_0 y = ref blocks[i];
            y.D = ToHalf(d);
            uint qh = 0;
            for (int j = 0; j < 16; j++)
            {
                float x0 = x[j] * id;
                float x1 = x[16 + j] * id;
                uint xi0 = (uint)Math.Min(31, (int)(x0 + 16.5f));
                uint xi1 = (uint)Math.Min(31, (int)(x1 + 16.5f));
                y.Qs[j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
                qh |= ((xi0 & 0x10u) >> 4) << j;
                qh |= ((xi1 & 0x10u) >> 4) << (j + 16);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(y.Qh, qh);
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q5_0_q8_0_generic: per block sumf += (d_w·d_a)·Σ(q_w·q_a).
    /// weightRow: [n/32 × 22] Q5_0 bytes; q8_0Row: [n/32 × 34] Q8_0 bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_0, weightRow.Length, q8_0Row.Length, n);
        return Simd.Dot(weightRow, q8_0Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it: the exact block sum Σ(q − 16)·a, then the scalar's
    /// float expression. q − 16 is built as nibble | (fifth bit clear ? 0xF0 : 0) (two's complement of nibble − 16),
    /// and the activations go first into the sign trick so that even a −128 activation stays exact.
    /// w: [nb × 22] bytes; a: [nb × 34] Q8_0 bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        var high = Vector256.Create((byte)0xF0);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 22, y = a + ib * 34;
            var q = Simd.Nibbles(Vector128.Load(x + 6)) | Avx2.AndNot(Simd.BitMasks(*(uint*)(x + 2)), high);
            int sumi = Simd.HorizontalSum(Simd.DotSigned(Vector256.Load((sbyte*)(y + 2)), q.AsSByte()));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi;
        }
        return sumf;
    }

    /// <summary>Portable Vector128 twin of <see cref="DotScalar"/>, bit-identical to it (exact widened integer sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        var sixteen = Vector128.Create((sbyte)16);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 22, y = a + ib * 34;
            uint qh = *(uint*)(x + 2);
            var (lo, hi) = Simd.Nibbles128(Vector128.Load(x + 6));
            var q0 = (lo | Simd.FifthBits(qh, 0).AsSByte()) - sixteen;    // [−16, 15]
            var q1 = (hi | Simd.FifthBits(qh, 16).AsSByte()) - sixteen;
            int sumi = Vector128.Sum(Simd.DotPairs(q0, Vector128.Load((sbyte*)(y + 2)), q1, Vector128.Load((sbyte*)(y + 18))));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi;
        }
        return sumf;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int nb)
    {
        var x = Blocks<BlockQ5_0>(weightRow, nb);
        var y = Blocks<BlockQ8_0>(q8_0Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ5_0 xb = ref x[ib];
            ref readonly BlockQ8_0 yb = ref y[ib];
            uint qh = BinaryPrimitives.ReadUInt32LittleEndian(xb.Qh);
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int xh0 = (int)(((qh >> j) << 4) & 0x10);
                int xh1 = (int)((qh >> (j + 12)) & 0x10);
                int x0 = ((xb.Qs[j] & 0x0F) | xh0) - 16;
                int x1 = ((xb.Qs[j] >> 4) | xh1) - 16;
                sumi0 += x0 * yb.Qs[j];
                sumi1 += x1 * yb.Qs[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += (FromHalf(xb.D) * FromHalf(yb.D)) * sumi;
        }
        return sumf;
    }
}
