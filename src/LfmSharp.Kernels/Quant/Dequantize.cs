namespace LfmSharp.Kernels.Quant;

/// <summary>Dequantizes a row of any supported block format to f32 (through <see cref="TypeTraits"/>).</summary>
internal static class Dequantize
{
    /// <summary>True when <see cref="Row"/> handles <paramref name="type"/>.</summary>
    public static bool IsSupported(GgmlType type) => TypeTraits.TryFor(type) is not null;

    /// <summary>
    /// Effectively dst[0..n) = to_float(src) with n = (src.Length / TypeSize)·BlockSize, bit-identical to ggml.
    /// src must be whole blocks of <paramref name="type"/> and dst must hold n floats (extra room is left untouched);
    /// otherwise <see cref="ArgumentException"/>. Unsupported types throw <see cref="NotSupportedException"/>.
    /// </summary>
    public static unsafe void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        var t = TypeTraits.TryFor(type) ?? throw QuantTraits.Unsupported(type, "for dequantization");
        t.ToFloat(src, dst);
    }
}
