using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>
/// A 2-D weight matrix in ggml layout: <see cref="Rows"/> rows of <see cref="Columns"/> elements, each row
/// <see cref="RowBytes"/> bytes of <see cref="Type"/> blocks, rows back to back. This is a GGUF tensor with
/// ne = [Columns, Rows] (a PyTorch Linear.weight [out, in]); the data usually lives in a memory map.
/// </summary>
/// <remarks>The pointer must stay valid (the owner keeps the map open) while kernels use the matrix.</remarks>
internal readonly unsafe struct WeightMatrix
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
        Kernels = TypeTraits.TryFor(type);
        Rows = rows;
        Columns = columns;
        RowBytes = (int)GgmlTypes.RowBytes(type, columns);
        Data = data;
    }

    public GgmlType Type { get; }

    /// <summary>The kernel record of <see cref="Type"/> for this machine, bound once here (null for types the engine cannot compute with).</summary>
    internal TypeTraits? Kernels { get; }

    /// <summary>Output size (rows of the matrix).</summary>
    public int Rows { get; }

    /// <summary>Input size (elements per row).</summary>
    public int Columns { get; }

    public int RowBytes { get; }

    public byte* Data { get; }

    /// <summary>
    /// Optional copy of the same matrix in the 8-row interleaved layout the AVX2 decode and prefill kernels stream
    /// (made at load time, see <see cref="InterleaveRows"/>); null when there is none. When set, the matmuls read it
    /// instead of <see cref="Data"/>, which is then only read by the fallbacks (and embedding lookups).
    /// </summary>
    public byte* Interleaved { get; private init; }

    /// <summary>True when this machine's kernels have an interleaved layout for <paramref name="type"/> and the row count allows it.</summary>
    public static bool CanInterleave(GgmlType type, int rows) =>
        TypeTraits.TryFor(type) is { Interleaves: true } t && t.Pack8Interleaved != null && Interleaved8.Handles(type) && rows % Interleaved8.Rows == 0;

    /// <summary>
    /// Writes <paramref name="rows"/> (whole GGUF rows of a <paramref name="type"/> matrix with <paramref name="columns"/>
    /// columns, a multiple of 8 of them, starting at a multiple of 8) to <paramref name="dst"/> in the interleaved layout;
    /// <paramref name="dst"/> is the same length, at the same offset of the interleaved copy as the rows are in the matrix.
    /// </summary>
    public static void InterleaveRows(GgmlType type, int columns, ReadOnlySpan<byte> rows, Span<byte> dst)
    {
        if (!Interleaved8.Handles(type))
            throw new ArgumentException($"{GgmlTypes.Name(type)} has no interleaved layout.", nameof(type));
        if (columns <= 0 || columns % GgmlTypes.BlockSize(type) != 0)
            throw new ArgumentException($"Row length {columns} is not a positive multiple of the {GgmlTypes.Name(type)} block size.", nameof(columns));
        int rowBytes = (int)GgmlTypes.RowBytes(type, columns);
        long groupBytes = (long)Interleaved8.Rows * rowBytes;
        if (rows.Length % groupBytes != 0)
            throw new ArgumentException($"{rows.Length} bytes are not whole groups of 8 rows of {rowBytes} bytes.", nameof(rows));
        if (dst.Length != rows.Length)
            throw new ArgumentException($"Destination is {dst.Length} bytes, expected {rows.Length}.", nameof(dst));
        fixed (byte* src = rows, d = dst)
        {
            for (long off = 0; off < rows.Length; off += groupBytes)
                Interleaved8.PackGroup(type, src + off, rowBytes, columns / GgmlTypes.BlockSize(type), d + off);
        }
    }

    /// <summary>
    /// Writes whole rows of a <paramref name="type"/> matrix with <paramref name="columns"/> columns to
    /// <paramref name="dst"/> as rows of the type's <see cref="TypeTraits.LoadAs"/> (<see cref="TypeTraits.ConvertRow"/>).
    /// </summary>
    public static void ConvertRows(GgmlType type, int columns, ReadOnlySpan<byte> rows, Span<byte> dst)
    {
        var k = TypeTraits.For(type);
        if (k.LoadAs is not { } to)
            throw new ArgumentException($"{GgmlTypes.Name(type)} is not converted at load on this machine.", nameof(type));
        if (columns <= 0 || columns % k.BlockSize != 0)
            throw new ArgumentException($"Row length {columns} is not a positive multiple of the {GgmlTypes.Name(type)} block size.", nameof(columns));
        long rowBytes = GgmlTypes.RowBytes(type, columns), toBytes = GgmlTypes.RowBytes(to, columns);
        if (rows.Length % rowBytes != 0 || dst.Length != rows.Length / rowBytes * toBytes)
            throw new ArgumentException($"{rows.Length} bytes are not whole rows of {rowBytes} bytes, or the destination ({dst.Length} bytes) does not fit them.", nameof(dst));
        fixed (byte* src = rows, d = dst)
        {
            for (long r = 0; r < rows.Length / rowBytes; r++)
                k.ConvertRow(src + r * rowBytes, d + r * toBytes, columns / k.BlockSize);
        }
    }

    /// <summary>
    /// This matrix with an interleaved copy at <paramref name="interleaved"/> (<see cref="InterleaveRows"/> of all its
    /// rows; the caller keeps it alive as long as the matrix is used).
    /// </summary>
    public WeightMatrix WithInterleaved(byte* interleaved)
    {
        if (interleaved == null)
            throw new ArgumentNullException(nameof(interleaved));
        if (!CanInterleave(Type, Rows))
            throw new InvalidOperationException($"{this} cannot use an interleaved copy on this machine.");
        return this with { Interleaved = interleaved };
    }

    public ReadOnlySpan<byte> Row(int r)
    {
        if ((uint)r >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(r), r, $"row must be in [0, {Rows})");
        return new ReadOnlySpan<byte>(Data + (long)r * RowBytes, RowBytes);
    }

    public override string ToString() => $"{GgmlTypes.Name(Type)} [{Rows} x {Columns}]";
}
