using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q8_K rows (<see cref="BlockQ8K"/>): 256 values per 292-byte block with an f32 scale and per-16 sums. Only an
/// activation format: ggml dots Q4_K, Q5_K and Q6_K weights against it. Never stored in model files.
/// </summary>
public static class Q8K
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
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRowReference(src, dst);
}
