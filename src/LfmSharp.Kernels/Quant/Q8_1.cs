using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q8_1 rows (<see cref="BlockQ8_1"/>): 32 values per 36-byte block, y = q·d, plus s = d·Σq. Only an activation
/// format: ggml dots Q4_1 and Q5_1 weights against it. Never stored in model files.
/// </summary>
internal static class Q8_1
{
    public const GgmlType Type = GgmlType.Q8_1;

    /// <summary>
    /// y[32b + j] = qs[j]·d (ggml has no to_float for Q8_1; this exists so tests can see what the activations hold).
    /// src: [blocks × 36] bytes; dst: at least [blocks × 32] floats.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8_1>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ8_1 b = ref blocks[i];
            float d = FromHalf(b.D);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 32; j++)
                y[j] = b.Qs[j] * d;
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q8_1_ref: as Q8_0 (d = amax/127, q = roundf(x/d)), plus s = f16(Σq · d).
    /// src: [blocks × 32] floats; dst: at least [blocks × 36] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8_1>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float amax = 0f;
            for (int j = 0; j < 32; j++)
                amax = MathF.Max(amax, MathF.Abs(x[j]));

            float d = amax / 127f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ8_1 y = ref blocks[i];
            y.D = ToHalf(d);
            int sum = 0;
            for (int j = 0; j < 16; j++)
            {
                sbyte q0 = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
                sbyte q1 = (sbyte)(int)MathF.Round(x[16 + j] * id, MidpointRounding.AwayFromZero);
                y.Qs[j] = q0;
                y.Qs[16 + j] = q1;
                sum += q0 + q1;
            }
            y.S = ToHalf(sum * d);
        }
    }

    /// <summary>
    /// Activation quantizer for Q4_1/Q5_1 matmuls (llama.cpp's quantize_row_q8_1); same bytes as
    /// <see cref="QuantizeRowReference"/> (the generic build). src: [blocks × 32] floats; dst: at least [blocks × 36] bytes.
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRowReference(src, dst);
}
