using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf;

/// <summary>
/// One entry of the tensor directory. <see cref="Dimensions"/> is in ggml <c>ne</c> order: ne[0] is the contiguous
/// (row) length, so a 2-D tensor [in, out] is <c>out</c> rows of <c>in</c> elements.
/// </summary>
public sealed class GgufTensorInfo
{
    /// <summary>A tensor directory entry: name, type, dimensions (innermost first, as ggml <c>ne</c>) and data offset.</summary>
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

    /// <summary>The tensor name (for example <c>blk.0.attn_q.weight</c>).</summary>
    public string Name { get; }

    /// <summary>The element / block type of the data.</summary>
    public GgmlType Type { get; }

    /// <summary>ggml ne order (ne[0] = row length).</summary>
    public long[] Dimensions { get; }

    /// <summary>Offset of the data relative to the start of the data section.</summary>
    public long Offset { get; }

    /// <summary>The number of elements (product of the dimensions).</summary>
    public long ElementCount { get; }

    /// <summary>The size of the data in bytes.</summary>
    public long ByteSize { get; }

    /// <summary>ne[0]: elements per row.</summary>
    public long RowLength => Dimensions.Length == 0 ? 1 : Dimensions[0];

    /// <summary>Product of ne[1..].</summary>
    public long RowCount => RowLength == 0 ? 0 : ElementCount / RowLength;

    /// <summary>Bytes per row in the stored format.</summary>
    public long RowBytes => GgmlTypes.RowBytes(Type, RowLength);

    /// <summary>Shape as ggml prints it, e.g. <c>[2048, 65536]</c>.</summary>
    public string ShapeString => "[" + string.Join(", ", Dimensions) + "]";

    /// <summary>Name, type and shape.</summary>
    public override string ToString() => $"{Name} {GgmlTypes.Name(Type)} {ShapeString}";
}
