namespace LfmSharp.Kernels.Quant;

/// <summary>One weight row · one quantized activation row, for any supported weight type (through <see cref="TypeTraits"/>).</summary>
internal static class VecDot
{
    /// <summary>
    /// Effectively Σ_{i&lt;n} w[i]·a[i] computed the way ggml's generic ggml_vec_dot_* does it (integer sums per
    /// block, same float scaling order). weightRow holds n elements of <paramref name="weightType"/>; activationRow
    /// holds n elements of <see cref="QuantTraits.VecDotType"/>(weightType), produced by <see cref="Quantize.Row"/>.
    /// n must be a multiple of the block size and both rows long enough (<see cref="ArgumentException"/>).
    /// </summary>
    public static unsafe float Row(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
    {
        var t = TypeTraits.ForWeight(weightType);
        int count = QuantMath.CheckDot(weightType, t.VecDotType, weightRow.Length, activationRow.Length, n);
        if (t.DotSimd == null)
            return t.DotScalar(weightRow, activationRow, count);
        fixed (byte* w = weightRow, a = activationRow)
            return t.DotSimd(w, a, count);
    }

    /// <summary>
    /// The scalar twins of <see cref="Row"/>: the reference the SIMD paths are tested against, and the one that is
    /// bit-identical to ggml's generic (portable) dot products.
    /// </summary>
    internal static unsafe float RowScalar(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
    {
        var t = TypeTraits.ForWeight(weightType);
        return t.DotScalar(weightRow, activationRow, QuantMath.CheckDot(weightType, t.VecDotType, weightRow.Length, activationRow.Length, n));
    }
}
