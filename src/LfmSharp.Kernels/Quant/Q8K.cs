using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q8_K rows (<see cref="BlockQ8K"/>): 256 values per 292-byte block with an f32 scale and per-16 sums. Only an
/// activation format: ggml dots Q4_K, Q5_K and Q6_K weights against it. Never stored in model files.
/// </summary>
internal static unsafe class Q8K
{
    public const GgmlType Type = GgmlType.Q8_K;

    /// <summary>y[256b + j] = d·qs[j]. src: [blocks × 292] bytes; dst: at least [blocks × 256] floats (ggml's dequantize_row_q8_K).</summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8K>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ8K b = ref blocks[i];
            Span<float> y = dst.Slice(i * 256, 256);
            for (int j = 0; j < 256; j++)
                y[j] = b.D * b.Qs[j];
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q8_K_ref: take the element with the largest |x| keeping its sign (max),
    /// iscale = −127/max, q = min(127, nearest_int(iscale·x)), d = 1/iscale, bsums[g] = Σ q over group g of 16.
    /// (The −127 maps the extreme element to −127, so the clamp only matters on the positive side.) An all-zero block
    /// gets d = 0 and zero quants and sums. src: [blocks × 256] floats; dst: at least [blocks × 292] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8K>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 256, 256);
            ref BlockQ8K y = ref blocks[i];

            float max = 0f, amax = 0f;
            for (int j = 0; j < 256; j++)
            {
                float ax = MathF.Abs(x[j]);
                if (ax > amax) { amax = ax; max = x[j]; }
            }
            if (amax == 0f)
            {
                // ggml leaves bsums untouched here; zeros are what they would sum to.
                y.D = 0f;
                ((Span<sbyte>)y.Qs).Clear();
                ((Span<short>)y.BSums).Clear();
                continue;
            }

            float iscale = -127f / max;
            for (int j = 0; j < 256; j++)
                y.Qs[j] = (sbyte)Math.Min(127, NearestInt(iscale * x[j]));
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int ii = 0; ii < 16; ii++)
                    sum += y.Qs[16 * g + ii];
                y.BSums[g] = (short)sum;
            }
            y.D = 1 / iscale;
        }
    }

    /// <summary>
    /// Activation quantizer for K-quant matmuls (llama.cpp's quantize_row_q8_K, which on x86 and Arm simply calls the
    /// reference). Same bytes as <see cref="QuantizeRowReference"/>.
    /// src: [blocks × 256] floats; dst: at least [blocks × 292] bytes.
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
    /// AVX2 twin of <see cref="QuantizeRowReference"/>, byte-identical: the first element of largest |x| (found by an
    /// integer max over the magnitude bits, which also flags Inf/NaN blocks for the reference path), the same
    /// iscale·x product and nearest_int via the 1.5·2^23 addend, bsums from the quantized values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void QuantizeRowAvx2(float* x, byte* y, int nb)
    {
        var absMask = Vector256.Create(0x7fffffff);
        for (int i = 0; i < nb; i++, x += 256, y += 292)
        {
            var m = Vector256<int>.Zero;
            for (int j = 0; j < 256; j += 8)
                m = Avx2.Max(m, Avx.LoadVector256(x + j).AsInt32() & absMask);
            m = Avx2.Max(m, Avx2.Permute2x128(m, m, 1));
            m = Avx2.Max(m, Avx2.Shuffle(m, 0b_01_00_11_10));
            m = Avx2.Max(m, Avx2.Shuffle(m, 0b_10_11_00_01));
            int amaxBits = m.ToScalar();
            if (amaxBits == 0 || amaxBits >= 0x7f800000)
            {
                QuantizeRowReference(new ReadOnlySpan<float>(x, 256), new Span<byte>(y, 292));
                continue;
            }
            var target = Vector256.Create(amaxBits);
            int first = 0;
            for (int j = 0; j < 256; j += 8)
            {
                uint hits = (uint)Avx.MoveMask(Avx2.CompareEqual(Avx.LoadVector256(x + j).AsInt32() & absMask, target).AsSingle()) & 0xffu;
                if (hits != 0)
                {
                    first = j + BitOperations.TrailingZeroCount(hits);
                    break;
                }
            }
            float iscale = -127f / x[first];
            if (!float.IsFinite(iscale))   // a subnormal max: the reference's int casts of ±Inf products differ from packs
            {
                QuantizeRowReference(new ReadOnlySpan<float>(x, 256), new Span<byte>(y, 292));
                continue;
            }
            var vis = Vector256.Create(iscale);
            var magic = Vector256.Create(12582912f);
            short* bsums = (short*)(y + 4 + 256);
            for (int j = 0; j < 256; j += 32)
            {
                var q0 = NearestIntMin127(Avx.LoadVector256(x + j) * vis, magic);
                var q1 = NearestIntMin127(Avx.LoadVector256(x + j + 8) * vis, magic);
                var q2 = NearestIntMin127(Avx.LoadVector256(x + j + 16) * vis, magic);
                var q3 = NearestIntMin127(Avx.LoadVector256(x + j + 24) * vis, magic);
                Q8_0.PackToBytes(q0, q1, q2, q3).Store((sbyte*)(y + 4 + j));
                // Two groups of 16: lanes of q0+q1 and of q2+q3, summed horizontally.
                var h = Avx2.HorizontalAdd(q0 + q1, q2 + q3);           // [g0 g0 g1 g1 | g0 g0 g1 g1]
                h = Avx2.HorizontalAdd(h, h);                           // [g0 g1 g0 g1 | g0 g1 g0 g1]
                var s = h.GetLower() + h.GetUpper();
                bsums[j / 16] = (short)s.GetElement(0);
                bsums[j / 16 + 1] = (short)s.GetElement(1);
            }
            *(float*)y = 1 / iscale;
        }
    }

    /// <summary>min(127, nearest_int(v)) per lane, nearest_int as in <see cref="QuantMath.NearestInt"/>.</summary>
    private static Vector256<int> NearestIntMin127(Vector256<float> v, Vector256<float> magic)
    {
        var i = ((v + magic).AsInt32() & Vector256.Create(0x007fffff)) - Vector256.Create(0x00400000);
        return Avx2.Min(i, Vector256.Create(127));
    }
}
