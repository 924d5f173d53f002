using System.Buffers.Binary;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>Converts f32 rows to a tensor's storage type with the Kernels' reference encoders.</summary>
internal static class TensorEncoder
{
    /// <summary>True when rows of <paramref name="type"/> can be written.</summary>
    public static bool IsSupported(GgmlType type) =>
        (Quantize.IsReferenceSupported(type) && type is not (GgmlType.Q8_1 or GgmlType.Q8_K)) || ScaleOffset(type) != -1;

    /// <summary>
    /// Encodes <c>src.Length / rowLength</c> rows. src: [rows × rowLength] floats; dst: [rows × RowBytes] bytes.
    /// F32 is a copy, F16/BF16 round to nearest even, and block types use the Kernels' ports of what llama-quantize
    /// runs without an imatrix: quantize_row_*_ref, and for IQ4_NL/IQ4_XS ggml's quantize_iq4_nl/_xs scale search.
    /// The grid and ternary types (IQ1/IQ2/IQ3, TQ1_0/TQ2_0), which llama-quantize only makes with an importance matrix
    /// or which have no encoder here, get random codes instead (<see cref="RandomCodes"/>).
    /// </summary>
    public static void EncodeRows(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst, int rowLength)
    {
        int rows = src.Length / rowLength;
        int rowBytes = checked((int)GgmlTypes.RowBytes(type, rowLength));
        bool random = !Quantize.IsReferenceSupported(type);
        for (int r = 0; r < rows; r++)
        {
            if (random)
                RandomCodes(type, src.Slice(r * rowLength, rowLength), dst.Slice(r * rowBytes, rowBytes));
            else
                Quantize.RowReference(type, src.Slice(r * rowLength, rowLength), dst.Slice(r * rowBytes, rowBytes));
        }
    }

    /// <summary>
    /// Byte offset of the f16 block scale d in a grid/ternary block, -2 for IQ1_M (d spread over the top nibbles of its
    /// four 16-bit scale words at bytes 48..55), or -1 for types this encoder does not fill with random codes.
    /// </summary>
    private static int ScaleOffset(GgmlType type) => type switch
    {
        GgmlType.IQ1_S or GgmlType.IQ2_XXS or GgmlType.IQ2_XS or GgmlType.IQ2_S or GgmlType.IQ3_XXS or GgmlType.IQ3_S => 0,
        GgmlType.IQ1_M => -2,
        GgmlType.TQ1_0 => 52,
        GgmlType.TQ2_0 => 64,
        _ => -1,
    };

    /// <summary>
    /// One row of a grid or ternary type as random codes: every grid index, sign pattern and sub-block scale a
    /// uniformly random (always valid) value drawn from a stream seeded by the row's floats, and the block scale d
    /// set so the block's largest decoded |y| equals its source block's largest |x|. A speed/robustness stand-in for
    /// llama-quantize's imatrix-driven search: the file is a valid model that llama.cpp and LfmSharp run alike, but
    /// its weights do not approximate <paramref name="src"/> value by value.
    /// </summary>
    private static void RandomCodes(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        int blockSize = GgmlTypes.BlockSize(type), typeSize = GgmlTypes.TypeSize(type), offset = ScaleOffset(type);
        if (offset == -1)
            throw new NotSupportedException($"no encoder for {GgmlTypes.Name(type)}");
        Span<float> decoded = stackalloc float[blockSize];
        ulong state = 0x9E3779B97F4A7C15ul ^ (uint)BitConverter.SingleToInt32Bits(src[0]) ^ ((ulong)(uint)src.Length << 32);
        for (int b = 0; b < src.Length / blockSize; b++)
        {
            Span<byte> block = dst.Slice(b * typeSize, typeSize);
            for (int i = 0; i < typeSize; i++)
            {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                block[i] = (byte)(state >> 24);
            }
            float amax = 0;
            foreach (float x in src.Slice(b * blockSize, blockSize))
                amax = MathF.Max(amax, MathF.Abs(x));
            // d such that the block's largest decoded |y| is the source block's largest |x|: decode with d = 1 first.
            WriteScale(block, offset, BitConverter.HalfToUInt16Bits(Half.One));
            Dequantize.Row(type, block, decoded);
            float ymax = 0;
            foreach (float y in decoded)
                ymax = MathF.Max(ymax, MathF.Abs(y));
            WriteScale(block, offset, BitConverter.HalfToUInt16Bits(ymax > 0 ? (Half)(amax / ymax) : Half.Zero));
        }
    }

    /// <summary>Stores the f16 block scale <paramref name="d"/> where <see cref="ScaleOffset"/> says the type keeps it.</summary>
    private static void WriteScale(Span<byte> block, int offset, ushort d)
    {
        if (offset >= 0)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(offset), d);
            return;
        }
        for (int k = 0; k < 4; k++)
        {
            Span<byte> word = block.Slice(48 + 2 * k, 2);
            ushort sc = BinaryPrimitives.ReadUInt16LittleEndian(word);
            BinaryPrimitives.WriteUInt16LittleEndian(word, (ushort)((sc & 0x0FFF) | (((d >> (4 * k)) & 0xF) << 12)));
        }
    }
}
