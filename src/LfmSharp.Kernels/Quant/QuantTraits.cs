namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Which activation format each weight type is dotted against (ggml-cpu's type_traits_cpu[].vec_dot_type): a matmul
/// quantizes the input vector once to this type with <see cref="Quantize.Row"/>, then calls <see cref="VecDot.Row"/>
/// per weight row.
/// </summary>
internal static class QuantTraits
{
    /// <summary>
    /// F32 → F32, F16 → F16, BF16 → BF16, Q4_0/Q5_0/Q8_0 → Q8_0, Q4_1/Q5_1 → Q8_1, Q2_K..Q6_K → Q8_K (the table in TypeTraits).
    /// Throws <see cref="NotSupportedException"/> for weight types this engine cannot multiply.
    /// </summary>
    public static GgmlType VecDotType(GgmlType weightType) => TypeTraits.ForWeight(weightType).VecDotType;

    internal static NotSupportedException Unsupported(GgmlType type, string what)
        => new($"ggml type {GgmlTypes.Name(type)} is not supported {what}.");
}
