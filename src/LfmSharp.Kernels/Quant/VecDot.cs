namespace LfmSharp.Kernels.Quant;

/// <summary>One weight row · one quantized activation row, for any supported weight type (dispatches per format).</summary>
internal static class VecDot
{
    /// <summary>
    /// Effectively Σ_{i&lt;n} w[i]·a[i] computed the way ggml's generic ggml_vec_dot_* does it (integer sums per
    /// block, same float scaling order). weightRow holds n elements of <paramref name="weightType"/>; activationRow
    /// holds n elements of <see cref="QuantTraits.VecDotType"/>(weightType), produced by <see cref="Quantize.Row"/>.
    /// n must be a multiple of the block size and both rows long enough (<see cref="ArgumentException"/>).
    /// </summary>
    public static float Row(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n) => weightType switch
    {
        GgmlType.F32 => F32.Dot(weightRow, activationRow, n),
        GgmlType.F16 => F16.Dot(weightRow, activationRow, n),
        GgmlType.BF16 => BF16.Dot(weightRow, activationRow, n),
        GgmlType.Q4_0 => Q4_0.Dot(weightRow, activationRow, n),
        GgmlType.Q4_1 => Q4_1.Dot(weightRow, activationRow, n),
        GgmlType.Q5_0 => Q5_0.Dot(weightRow, activationRow, n),
        GgmlType.Q5_1 => Q5_1.Dot(weightRow, activationRow, n),
        GgmlType.Q8_0 => Q8_0.Dot(weightRow, activationRow, n),
        GgmlType.Q4_K => Q4K.Dot(weightRow, activationRow, n),
        GgmlType.Q5_K => Q5K.Dot(weightRow, activationRow, n),
        GgmlType.Q6_K => Q6K.Dot(weightRow, activationRow, n),
        _ => throw QuantTraits.Unsupported(weightType, "as a matmul weight"),
    };

    /// <summary>
    /// The scalar twins of <see cref="Row"/>: the reference the SIMD paths are tested against, and the one that is
    /// bit-identical to ggml's generic (portable) dot products.
    /// </summary>
    internal static float RowScalar(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
    {
        int nb = n / GgmlTypes.BlockSize(weightType);
        return weightType switch
        {
            GgmlType.F32 => F32.DotScalar(weightRow, activationRow, n),
            GgmlType.F16 => F16.DotScalar(weightRow, activationRow, n),
            GgmlType.BF16 => BF16.DotScalar(weightRow, activationRow, n),
            GgmlType.Q4_0 => Q4_0.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q4_1 => Q4_1.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q5_0 => Q5_0.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q5_1 => Q5_1.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q8_0 => Q8_0.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q4_K => Q4K.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q5_K => Q5K.DotScalar(weightRow, activationRow, nb),
            GgmlType.Q6_K => Q6K.DotScalar(weightRow, activationRow, nb),
            _ => throw QuantTraits.Unsupported(weightType, "as a matmul weight"),
        };
    }
}
