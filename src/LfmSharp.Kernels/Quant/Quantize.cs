namespace LfmSharp.Kernels.Quant;

/// <summary>Quantizes f32 rows to a block format (through <see cref="TypeTraits"/>).</summary>
internal static class Quantize
{
    /// <summary>True when <see cref="RowReference"/> handles <paramref name="type"/>.</summary>
    public static unsafe bool IsReferenceSupported(GgmlType type) => TypeTraits.TryFor(type) is { } t && t.FromFloatReference != null;

    /// <summary>
    /// llama.cpp's reference quantizer (quantize_row_*_ref, i.e. llama-quantize without an imatrix) for
    /// <paramref name="type"/>: the same bytes llama.cpp writes. src.Length must be a multiple of the block size and
    /// dst must hold src.Length/BlockSize blocks; otherwise <see cref="ArgumentException"/>. Unsupported types throw
    /// <see cref="NotSupportedException"/>.
    /// </summary>
    public static unsafe void RowReference(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        var t = TypeTraits.TryFor(type);
        if (t is null || t.FromFloatReference == null)
            throw QuantTraits.Unsupported(type, "for quantization");
        t.FromFloatReference(src, dst);
    }

    /// <summary>
    /// Activation quantizer: converts an input vector to a dot-product format (a <see cref="QuantTraits.VecDotType"/>:
    /// F32, F16, BF16, Q8_0, Q8_1 or Q8_K) the way llama.cpp's matmul does before its integer dot products.
    /// Same length rules as <see cref="RowReference"/>; other types throw <see cref="NotSupportedException"/>.
    /// </summary>
    public static unsafe void Row(GgmlType vecDotType, ReadOnlySpan<float> src, Span<byte> dst)
    {
        var t = TypeTraits.TryFor(vecDotType);
        if (t is null || t.FromFloat == null)
            throw QuantTraits.Unsupported(vecDotType, "as an activation (vec_dot) format");
        t.FromFloat(src, dst);
    }
}
