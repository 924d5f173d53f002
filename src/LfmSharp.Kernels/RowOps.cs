using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>
/// Per-row operations by weight type, as the matmul uses them: the activation format a weight type dots
/// against, converting an activation row to it, the row·row dot, and exact dequantization of a weight row.
/// Thin names over the Quant dispatchers, so MatMul reads in matmul terms.
/// </summary>
internal static class RowOps
{
    /// <summary>ggml's vec_dot_type: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants, F16/BF16 for themselves.</summary>
    public static GgmlType VecDotType(GgmlType weightType) => QuantTraits.VecDotType(weightType);

    /// <summary>Converts one activation row (floats) to <paramref name="vecDotType"/> bytes, as llama.cpp does once per row.</summary>
    public static void QuantizeActivations(GgmlType vecDotType, ReadOnlySpan<float> src, Span<byte> dst) => Quantize.Row(vecDotType, src, dst);

    /// <summary>Σ w·a over one row of <paramref name="weightType"/> against an activation row in its vec-dot format.</summary>
    public static float Dot(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n) =>
        VecDot.Row(weightType, weightRow, activationRow, n);

    /// <summary>Exact dequantization of one weight row to floats (ggml's to_float).</summary>
    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst) => Dequantize.Row(type, src, dst);
}
