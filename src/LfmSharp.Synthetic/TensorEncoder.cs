using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>Converts f32 rows to a tensor's storage type with the Kernels' reference encoders.</summary>
internal static class TensorEncoder
{
    /// <summary>True when rows of <paramref name="type"/> can be written.</summary>
    public static bool IsSupported(GgmlType type) => Quantize.IsReferenceSupported(type) && type is not (GgmlType.Q8_1 or GgmlType.Q8_K);

    /// <summary>
    /// Encodes <c>src.Length / rowLength</c> rows. src: [rows × rowLength] floats; dst: [rows × RowBytes] bytes.
    /// F32 is a copy, F16/BF16 round to nearest even, and block types use the Kernels' ports of what llama-quantize
    /// runs without an imatrix: quantize_row_*_ref, and for IQ4_NL/IQ4_XS ggml's quantize_iq4_nl/_xs scale search.
    /// </summary>
    public static void EncodeRows(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, int rowLength)
    {
        int rows = src.Length / rowLength;
        int rowBytes = checked((int)GgmlTypes.RowBytes(type, rowLength));
        for (int r = 0; r < rows; r++)
            Quantize.RowReference(type, src.Slice(r * rowLength, rowLength), dst.Slice(r * rowBytes, rowBytes));
    }
}
