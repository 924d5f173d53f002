using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>
/// A 2-D weight matrix in ggml layout: <see cref="Rows"/> rows of <see cref="Columns"/> elements, each row
/// <see cref="RowBytes"/> bytes of <see cref="Type"/> blocks, rows back to back. This is a GGUF tensor with
/// ne = [Columns, Rows] (a PyTorch Linear.weight [out, in]); the data usually lives in a memory map.
/// </summary>
/// <remarks>The pointer must stay valid (the owner keeps the map open) while kernels use the matrix.</remarks>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(GgmlType type, int rows, int columns, byte* data)
    {
        if (rows <= 0 || columns <= 0)
            throw new ArgumentException($"Weight matrix shape [{rows} x {columns}] must be positive.");
        if (data == null)
            throw new ArgumentNullException(nameof(data));
        if (columns % GgmlTypes.BlockSize(type) != 0)
            throw new ArgumentException($"Row length {columns} is not a multiple of the {GgmlTypes.Name(type)} block size {GgmlTypes.BlockSize(type)}.");
        Type = type;
        Rows = rows;
        Columns = columns;
        RowBytes = (int)GgmlTypes.RowBytes(type, columns);
        Data = data;
    }

    public GgmlType Type { get; }

    /// <summary>Output size (rows of the matrix).</summary>
    public int Rows { get; }

    /// <summary>Input size (elements per row).</summary>
    public int Columns { get; }

    public int RowBytes { get; }

    public byte* Data { get; }

    public ReadOnlySpan<byte> Row(int r)
    {
        if ((uint)r >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(r), r, $"row must be in [0, {Rows})");
        return new ReadOnlySpan<byte>(Data + (long)r * RowBytes, RowBytes);
    }

    public override string ToString() => $"{GgmlTypes.Name(Type)} [{Rows} x {Columns}]";
}
