namespace LfmSharp.Kernels.Quant;

/// <summary>
/// ggml tensor element types, with the numeric ids GGUF files store (ggml.h <c>enum ggml_type</c>).
/// Only the ids are listed here; which ones the engine can compute with is in <see cref="GgmlTypes"/>.
/// </summary>
public enum GgmlType : uint
{
    /// <summary>32-bit IEEE float.</summary>
    F32 = 0,
    /// <summary>16-bit IEEE half.</summary>
    F16 = 1,
    /// <summary>4-bit blocks of 32 with one f16 scale.</summary>
    Q4_0 = 2,
    /// <summary>4-bit blocks of 32 with an f16 scale and minimum.</summary>
    Q4_1 = 3,
    // 4 and 5 (Q4_2, Q4_3) were removed from ggml long ago.
    /// <summary>5-bit blocks of 32 with one f16 scale.</summary>
    Q5_0 = 6,
    /// <summary>5-bit blocks of 32 with an f16 scale and minimum.</summary>
    Q5_1 = 7,
    /// <summary>8-bit blocks of 32 with one f16 scale.</summary>
    Q8_0 = 8,
    /// <summary>8-bit blocks of 32 with an f16 scale and the block sum (activation format of Q4_1 / Q5_1 dots).</summary>
    Q8_1 = 9,
    /// <summary>2-bit K-quant super-blocks of 256.</summary>
    Q2_K = 10,
    /// <summary>3-bit K-quant super-blocks of 256.</summary>
    Q3_K = 11,
    /// <summary>4-bit K-quant super-blocks of 256 (8 sub-blocks with 6-bit scales and mins).</summary>
    Q4_K = 12,
    /// <summary>5-bit K-quant super-blocks of 256.</summary>
    Q5_K = 13,
    /// <summary>6-bit K-quant super-blocks of 256 (16 sub-blocks with 8-bit scales).</summary>
    Q6_K = 14,
    /// <summary>8-bit K-quant super-blocks of 256 with f32 scale (activation format of K-quant dots).</summary>
    Q8_K = 15,
    /// <summary>2.06-bit importance quant.</summary>
    IQ2_XXS = 16,
    /// <summary>2.31-bit importance quant.</summary>
    IQ2_XS = 17,
    /// <summary>3.06-bit importance quant.</summary>
    IQ3_XXS = 18,
    /// <summary>1.56-bit importance quant.</summary>
    IQ1_S = 19,
    /// <summary>4-bit non-linear importance quant, blocks of 32.</summary>
    IQ4_NL = 20,
    /// <summary>3.44-bit importance quant.</summary>
    IQ3_S = 21,
    /// <summary>2.5-bit importance quant.</summary>
    IQ2_S = 22,
    /// <summary>4.25-bit non-linear importance quant, super-blocks of 256.</summary>
    IQ4_XS = 23,
    /// <summary>8-bit integer.</summary>
    I8 = 24,
    /// <summary>16-bit integer.</summary>
    I16 = 25,
    /// <summary>32-bit integer.</summary>
    I32 = 26,
    /// <summary>64-bit integer.</summary>
    I64 = 27,
    /// <summary>64-bit IEEE float.</summary>
    F64 = 28,
    /// <summary>1.75-bit importance quant.</summary>
    IQ1_M = 29,
    /// <summary>bfloat16 (the top 16 bits of an f32).</summary>
    BF16 = 30,
    /// <summary>Ternary 1.69-bit quant.</summary>
    TQ1_0 = 34,
    /// <summary>Ternary 2-bit quant.</summary>
    TQ2_0 = 35,
    /// <summary>4-bit microscaling float (OCP MX FP4, e8m0 block scale).</summary>
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
