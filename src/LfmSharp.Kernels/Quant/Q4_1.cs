using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q4_1 rows (<see cref="BlockQ4_1"/>): 32 weights per 20-byte block, y = q·d + m.
/// Dot products run against <see cref="Q8_1"/> activations (ggml's vec_dot_type for Q4_1), which carry d·Σq so the
/// offset m costs one multiply per block.
/// </summary>
internal static unsafe class Q4_1
{
    public const GgmlType Type = GgmlType.Q4_1;

    /// <summary>
    /// Effectively y[32b + j] = (qs[j] &amp; 0xF)·d + m and y[32b + 16 + j] = (qs[j] &gt;&gt; 4)·d + m.
    /// src: [blocks × 20] bytes; dst: at least [blocks × 32] floats. Bit-identical to ggml's dequantize_row_q4_1.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4_1>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ4_1 b = ref blocks[i];
            float d = FromHalf(b.D);
            float m = FromHalf(b.M);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int x0 = b.Qs[j] & 0x0F;
                int x1 = b.Qs[j] >> 4;
                y[j] = x0 * d + m;
                y[j + 16] = x1 * d + m;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q4_1_ref: m = min(x), d = (max − min)/15, q = min(15, trunc((x − m)/d + 0.5)).
    /// src: [blocks × 32] floats; dst: at least [blocks × 20] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4_1>(dst, nb);
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

            float d = (max - min) / 15f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ4_1 y = ref blocks[i];
            y.D = ToHalf(d);
            y.M = ToHalf(min);
            for (int j = 0; j < 16; j++)
            {
                float x0 = (x[j] - min) * id;
                float x1 = (x[16 + j] - min) * id;
                int xi0 = Math.Min(15, (int)(x0 + 0.5f));
                int xi1 = Math.Min(15, (int)(x1 + 0.5f));
                y.Qs[j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q4_1_q8_1_generic: per block sumf += (d_w·d_a)·Σ(q_w·q_a) + m_w·s_a.
    /// weightRow: [n/32 × 20] Q4_1 bytes; q8_1Row: [n/32 × 36] Q8_1 bytes (see <see cref="Q8_1.QuantizeRow"/>).
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_1Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_1, weightRow.Length, q8_1Row.Length, n);
        return Simd.Dot(weightRow, q8_1Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it: the exact block sum Σ q·a (unsigned nibbles through
    /// maddubs, any activation byte) and then the scalar's own float expression per block. (No batched kernel exists
    /// for Q4_1, so nothing forces the fma order the Q4_0 kernels use.) w: [nb × 20] bytes; a: [nb × 36] Q8_1 bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 20, y = a + ib * 36;
            int sumi = Simd.HorizontalSum(Simd.DotUnsigned(Simd.Nibbles(Vector128.Load(x + 4)), Vector256.Load((sbyte*)(y + 4))));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi + HalfToSingle(*(ushort*)(x + 2)) * HalfToSingle(*(ushort*)(y + 2));
        }
        return sumf;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotScalar"/>, bit-identical to it (exact widened integer sums, the
    /// scalar's float expression per block). Lane sums stay below 4·15·128 in int16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x = w + ib * 20, y = a + ib * 36;
            var (lo, hi) = Simd.Nibbles128(Vector128.Load(x + 4));
            int sumi = Vector128.Sum(Simd.DotPairs(lo, Vector128.Load((sbyte*)(y + 4)), hi, Vector128.Load((sbyte*)(y + 20))));
            sumf += (HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y)) * sumi + HalfToSingle(*(ushort*)(x + 2)) * HalfToSingle(*(ushort*)(y + 2));
        }
        return sumf;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_1Row, int nb)
    {
        var x = Blocks<BlockQ4_1>(weightRow, nb);
        var y = Blocks<BlockQ8_1>(q8_1Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ4_1 xb = ref x[ib];
            ref readonly BlockQ8_1 yb = ref y[ib];
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int v0 = xb.Qs[j] & 0x0F;
                int v1 = xb.Qs[j] >> 4;
                sumi0 += v0 * yb.Qs[j];
                sumi1 += v1 * yb.Qs[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += (FromHalf(xb.D) * FromHalf(yb.D)) * sumi + FromHalf(xb.M) * FromHalf(yb.S);
        }
        return sumf;
    }
}
