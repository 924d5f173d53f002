using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q4_0 rows (<see cref="BlockQ4_0"/>): 32 weights per 18-byte block, y = (q − 8)·d.
/// Dot products run against <see cref="Q8_0"/> activations.
/// </summary>
internal static unsafe class Q4_0
{
    public const GgmlType Type = GgmlType.Q4_0;

    /// <summary>
    /// Effectively y[32b + j] = ((qs[j] &amp; 0xF) − 8)·d and y[32b + 16 + j] = ((qs[j] &gt;&gt; 4) − 8)·d.
    /// src: [blocks × 18] bytes; dst: at least [blocks × 32] floats. Bit-identical to ggml's dequantize_row_q4_0.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ4_0 b = ref blocks[i];
            float d = FromHalf(b.D);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 16; j++)
            {
                int x0 = (b.Qs[j] & 0x0F) - 8;
                int x1 = (b.Qs[j] >> 4) - 8;
                y[j] = x0 * d;
                y[j + 16] = x1 * d;
            }
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q4_0_ref (what llama-quantize uses without an imatrix): the element with the largest
    /// |x| (keeping its sign) maps to −8, d = max / −8, q = min(15, trunc(x/d + 8.5)).
    /// src: [blocks × 32] floats; dst: at least [blocks × 18] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ4_0>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float amax = 0f, max = 0f;
            for (int j = 0; j < 32; j++)
            {
                float v = x[j];
                if (amax < MathF.Abs(v)) { amax = MathF.Abs(v); max = v; }
            }

            float d = max / -8f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ4_0 y = ref blocks[i];
            y.D = ToHalf(d);
            for (int j = 0; j < 16; j++)
            {
                float x0 = x[j] * id;
                float x1 = x[16 + j] * id;
                // C's (int8_t) cast truncates toward zero; the operand is in [0, 16.5] for finite input.
                int xi0 = Math.Min(15, (int)(x0 + 8.5f));
                int xi1 = Math.Min(15, (int)(x1 + 8.5f));
                y.Qs[j] = (byte)(xi0 | (xi1 << 4));
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] over n elements, computed like ggml_vec_dot_q4_0_q8_0_generic: an exact integer sum per block,
    /// then sumf += (sumi · d_w) · d_a in f32.
    /// weightRow: [n/32 × 18] Q4_0 bytes; q8_0Row: [n/32 × 34] Q8_0 bytes (see <see cref="Q8_0.QuantizeRow"/>).
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_0, weightRow.Length, q8_0Row.Length, n);
        return Simd.Dot(weightRow, q8_0Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the engine's canonical order (<see cref="PackedGemm"/>): the exact integer
    /// Σ(q−8)·a of each block, then acc = fma(sumi, d_w·d_a, acc) block after block. The batched kernels compute every
    /// output this way too, so a row gives the same bits whatever the batch. Differs from the generic order
    /// (sumf += sumi·d_w·d_a) only by float rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        var eight = Vector256.Create((sbyte)8);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x0 = w + ib * 18, y0 = a + ib * 34;
            var q0 = Simd.Nibbles(Vector128.Load(x0 + 2)).AsSByte() - eight;
            int sumi = Simd.HorizontalSum(Simd.DotSigned(q0, Vector256.Load((sbyte*)(y0 + 2))));
            acc = MathF.FusedMultiplyAdd(sumi, HalfToSingle(*(ushort*)x0) * HalfToSingle(*(ushort*)y0), acc);
        }
        return acc;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it (same exact block sums, same fma per block):
    /// bytes widened to int16, multiplied, folded (lane sums ≤ 4·8·128), widened to int32 — or, on ARM64 with the
    /// dot-product extension, two sdot (<see cref="Simd.DotPairs"/>); the other Vector128 dots take it the same way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        var eight = Vector128.Create((sbyte)8);
        for (int ib = 0; ib < nb; ib++)
        {
            byte* x0 = w + ib * 18, y0 = a + ib * 34;
            var (lo, hi) = Simd.Nibbles128(Vector128.Load(x0 + 2));
            int sumi = Vector128.Sum(Simd.DotPairs(lo - eight, Vector128.Load((sbyte*)(y0 + 2)), hi - eight, Vector128.Load((sbyte*)(y0 + 18))));
            acc = MathF.FusedMultiplyAdd(sumi, HalfToSingle(*(ushort*)x0) * HalfToSingle(*(ushort*)y0), acc);
        }
        return acc;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int nb)
    {
        var x = Blocks<BlockQ4_0>(weightRow, nb);
        var y = Blocks<BlockQ8_0>(q8_0Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ4_0 xb = ref x[ib];
            ref readonly BlockQ8_0 yb = ref y[ib];
            int sumi0 = 0, sumi1 = 0;
            for (int j = 0; j < 16; j++)
            {
                int v0 = (xb.Qs[j] & 0x0F) - 8;
                int v1 = (xb.Qs[j] >> 4) - 8;
                sumi0 += v0 * yb.Qs[j];
                sumi1 += v1 * yb.Qs[j + 16];
            }
            int sumi = sumi0 + sumi1;
            sumf += sumi * FromHalf(xb.D) * FromHalf(yb.D);
        }
        return sumf;
    }
}
