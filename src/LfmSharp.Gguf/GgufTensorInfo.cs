using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf;

/// <summary>
/// One entry of the tensor directory. <see cref="Dimensions"/> is in ggml <c>ne</c> order: ne[0] is the contiguous
/// (row) length, so a 2-D tensor [in, out] is <c>out</c> rows of <c>in</c> elements.
/// </summary>
public sealed class GgufTensorInfo
{
    public GgufTensorInfo(string name, GgmlType type, long[] dimensions, long offset)
    {
        Name = name;
        Type = type;
        Dimensions = dimensions;
        Offset = offset;
        long n = 1;
        foreach (long d in dimensions)
            n = checked(n * d);
        ElementCount = n;
        ByteSize = GgmlTypes.RowBytes(type, n);
    }

    public string Name { get; }

    public GgmlType Type { get; }

    /// <summary>ggml ne order (ne[0] = row length).</summary>
    public long[] Dimensions { get; }

    /// <summary>Offset of the data relative to the start of the data section.</summary>
    public long Offset { get; }

    public long ElementCount { get; }

    public long ByteSize { get; }

    /// <summary>ne[0]: elements per row.</summary>
    public long RowLength => Dimensions.Length == 0 ? 1 : Dimensions[0];

    /// <summary>Product of ne[1..].</summary>
    public long RowCount => RowLength == 0 ? 0 : ElementCount / RowLength;

    /// <summary>Bytes per row in the stored format.</summary>
    public long RowBytes => GgmlTypes.RowBytes(Type, RowLength);

    /// <summary>Shape as ggml prints it, e.g. <c>[2048, 65536]</c>.</summary>
    public string ShapeString => "[" + string.Join(", ", Dimensions) + "]";

    public override string ToString() => $"{Name} {GgmlTypes.Name(Type)} {ShapeString}";
}
