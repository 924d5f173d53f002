namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Which activation format each weight type is dotted against (ggml-cpu's type_traits_cpu[].vec_dot_type): a matmul
/// quantizes the input vector once to this type with <see cref="Quantize.Row"/>, then calls <see cref="VecDot.Row"/>
/// per weight row.
/// </summary>
internal static class QuantTraits
{
    /// <summary>
    /// F32 → F32, F16 → F16, BF16 → BF16, Q4_0/Q5_0/Q8_0 → Q8_0, Q4_1/Q5_1 → Q8_1, Q4_K/Q5_K/Q6_K → Q8_K.
    /// Throws <see cref="NotSupportedException"/> for weight types this engine cannot multiply.
    /// </summary>
    public static GgmlType VecDotType(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => GgmlType.Q8_1,
        GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K => GgmlType.Q8_K,
        _ => throw Unsupported(weightType, "as a matmul weight"),
    };

    internal static NotSupportedException Unsupported(GgmlType type, string what)
        => new($"ggml type {GgmlTypes.Name(type)} is not supported {what}.");
}
