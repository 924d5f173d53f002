namespace LfmSharp.Kernels.Quant;

/// <summary>
/// ggml tensor element types, with the numeric ids GGUF files store (ggml.h <c>enum ggml_type</c>).
/// Only the ids are listed here; which ones the engine can compute with is in <see cref="GgmlTypes"/>.
/// </summary>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    // 4 and 5 (Q4_2, Q4_3) were removed from ggml long ago.
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

/// <summary>Block geometry of every ggml type (elements per block, bytes per block).</summary>
public static class GgmlTypes
{
    /// <summary>Elements per quantization block (1 for plain float/int types).</summary>
    public static int BlockSize(GgmlType type) => Traits(type).BlockSize;

    /// <summary>Bytes per block.</summary>
    public static int TypeSize(GgmlType type) => Traits(type).TypeSize;

    /// <summary>True when <paramref name="id"/> is a ggml type id whose block layout is known (it may still be unsupported for compute).</summary>
    public static bool IsKnown(uint id) => id < (uint)s_traits.Length && s_traits[id].BlockSize != 0;

    /// <summary>True for the types this engine can dequantize and multiply with.</summary>
    public static bool IsComputeSupported(GgmlType type) => TypeTraits.TryFor(type) is { IsWeight: true };

    /// <summary>Bytes taken by <paramref name="elements"/> elements, which must be a whole number of blocks.</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        var t = Traits(type);
        if (elements % t.BlockSize != 0)
            throw new ArgumentException($"{elements} elements is not a multiple of the {type} block size {t.BlockSize}.", nameof(elements));
        return elements / t.BlockSize * t.TypeSize;
    }

    /// <summary>Canonical upper-case name as ggml prints it (F32, Q4_K, ...).</summary>
    public static string Name(GgmlType type) => Enum.IsDefined(type) ? type.ToString() : $"type{(uint)type}";

    private static (int BlockSize, int TypeSize) Traits(GgmlType type)
    {
        uint id = (uint)type;
        if (id >= (uint)s_traits.Length || s_traits[id].BlockSize == 0)
            throw new NotSupportedException($"Unknown ggml type id {id}.");
        return s_traits[id];
    }

    // Index = type id. (0, 0) marks ids that ggml no longer defines.
    private static readonly (int BlockSize, int TypeSize)[] s_traits = BuildTraits();

    private static (int, int)[] BuildTraits()
    {
        var t = new (int, int)[40];
        t[(int)GgmlType.F32] = (1, 4);
        t[(int)GgmlType.F16] = (1, 2);
        t[(int)GgmlType.Q4_0] = (32, 18);
        t[(int)GgmlType.Q4_1] = (32, 20);
        t[(int)GgmlType.Q5_0] = (32, 22);
        t[(int)GgmlType.Q5_1] = (32, 24);
        t[(int)GgmlType.Q8_0] = (32, 34);
        t[(int)GgmlType.Q8_1] = (32, 36);
        t[(int)GgmlType.Q2_K] = (256, 84);
        t[(int)GgmlType.Q3_K] = (256, 110);
        t[(int)GgmlType.Q4_K] = (256, 144);
        t[(int)GgmlType.Q5_K] = (256, 176);
        t[(int)GgmlType.Q6_K] = (256, 210);
        t[(int)GgmlType.Q8_K] = (256, 292);
        t[(int)GgmlType.IQ2_XXS] = (256, 66);
        t[(int)GgmlType.IQ2_XS] = (256, 74);
        t[(int)GgmlType.IQ3_XXS] = (256, 98);
        t[(int)GgmlType.IQ1_S] = (256, 50);
        t[(int)GgmlType.IQ4_NL] = (32, 18);
        t[(int)GgmlType.IQ3_S] = (256, 110);
        t[(int)GgmlType.IQ2_S] = (256, 82);
        t[(int)GgmlType.IQ4_XS] = (256, 136);
        t[(int)GgmlType.I8] = (1, 1);
        t[(int)GgmlType.I16] = (1, 2);
        t[(int)GgmlType.I32] = (1, 4);
        t[(int)GgmlType.I64] = (1, 8);
        t[(int)GgmlType.F64] = (1, 8);
        t[(int)GgmlType.IQ1_M] = (256, 56);
        t[(int)GgmlType.BF16] = (1, 2);
        t[(int)GgmlType.TQ1_0] = (256, 54);
        t[(int)GgmlType.TQ2_0] = (256, 66);
        t[(int)GgmlType.MXFP4] = (32, 17);
        return t;
    }
}
