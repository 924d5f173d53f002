using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q8_0 rows (<see cref="BlockQ8_0"/>): 32 values per 34-byte block, y = q·d. A weight format and also the activation
/// format that Q4_0, Q5_0 and Q8_0 weights are dotted against.
/// </summary>
public static class Q8_0
{
    public const GgmlType Type = GgmlType.Q8_0;

    /// <summary>
    /// Effectively y[32b + j] = qs[j]·d. src: [blocks × 34] bytes; dst: at least [blocks × 32] floats.
    /// Bit-identical to ggml's dequantize_row_q8_0.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ8_0 b = ref blocks[i];
            float d = FromHalf(b.D);
            Span<float> y = dst.Slice(i * 32, 32);
            for (int j = 0; j < 32; j++)
                y[j] = b.Qs[j] * d;
        }
    }

    /// <summary>
    /// llama.cpp's quantize_row_q8_0_ref: d = amax/127, q = roundf(x · (1/d)) (half away from zero).
    /// src: [blocks × 32] floats; dst: at least [blocks × 34] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ8_0>(dst, nb);
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 32, 32);
            float amax = 0f;
            for (int j = 0; j < 32; j++)
                amax = MathF.Max(amax, MathF.Abs(x[j]));

            float d = amax / 127f;
            float id = d != 0f ? 1.0f / d : 0.0f;

            ref BlockQ8_0 y = ref blocks[i];
            y.D = ToHalf(d);
            for (int j = 0; j < 32; j++)
                y.Qs[j] = (sbyte)(int)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    /// <summary>
    /// Activation quantizer for the matmul (llama.cpp's quantize_row_q8_0, the from_float of Q8_0's vec_dot_type).
    /// Gives the same bytes as <see cref="QuantizeRowReference"/>, which is what ggml's generic build does.
    /// (llama.cpp's AVX path instead uses id = 127/amax and round-half-even, so it can differ from both in the last
    /// quant on ties.) src: [blocks × 32] floats; dst: at least [blocks × 34] bytes.
    /// </summary>
    public static void QuantizeRow(ReadOnlySpan<float> src, Span<byte> dst) => QuantizeRowReference(src, dst);

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q8_0_q8_0_generic: per block sumf += Σ(q_w·q_a)·(d_w·d_a).
    /// weightRow: [n/32 × 34] Q8_0 bytes; q8_0Row: [n/32 × 34] Q8_0 bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int n)
        => DotScalar(weightRow, q8_0Row, CheckDot(Type, GgmlType.Q8_0, weightRow.Length, q8_0Row.Length, n));

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked (the twin future SIMD paths are tested against).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8_0Row, int nb)
    {
        var x = Blocks<BlockQ8_0>(weightRow, nb);
        var y = Blocks<BlockQ8_0>(q8_0Row, nb);
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            ref readonly BlockQ8_0 xb = ref x[ib];
            ref readonly BlockQ8_0 yb = ref y[ib];
            int sumi = 0;
            for (int j = 0; j < 32; j++)
                sumi += xb.Qs[j] * yb.Qs[j];
            sumf += sumi * (FromHalf(xb.D) * FromHalf(yb.D));
        }
        return sumf;
    }
}
