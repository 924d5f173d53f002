using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>Converts f32 rows to a tensor's storage type (F32 copy, F16/BF16 rounding, or a block quantizer).</summary>
internal static class TensorEncoder
{
    public static bool IsSupported(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16;

    /// <summary>
    /// Encodes <c>src.Length / rowLength</c> rows. src: [rows × rowLength] floats; dst: [rows × RowBytes] bytes.
    /// </summary>
    public static void EncodeRows(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, int rowLength)
    {
        int rows = src.Length / rowLength;
        int rowBytes = checked((int)GgmlTypes.RowBytes(type, rowLength));
        for (int r = 0; r < rows; r++)
            EncodeRow(type, src.Slice(r * rowLength, rowLength), dst.Slice(r * rowBytes, rowBytes));
    }

    private static void EncodeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            case GgmlType.F16:
            {
                // System.Half's conversion rounds to nearest even, like numpy's astype(float16) and ggml.
                Span<Half> h = MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < src.Length; i++)
                    h[i] = (Half)src[i];
                break;
            }
            case GgmlType.BF16:
            {
                Span<ushort> b = MemoryMarshal.Cast<byte, ushort>(dst);
                for (int i = 0; i < src.Length; i++)
                    b[i] = ToBf16(src[i]);
                break;
            }
            default:
                throw new NotSupportedException($"writing {GgmlTypes.Name(type)} tensors needs the LfmSharp.Kernels quantizers");
        }
    }

    // Round to nearest even on the top 16 bits; NaNs stay (quiet) NaNs.
    private static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000)
            return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}
