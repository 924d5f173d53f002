using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>
/// Embedding lookup (ggml <c>get_rows</c>): dst = row <c>id</c> of the table, dequantized exactly to f32.
/// Shapes: table [Rows, Columns] of any supported type, dst [Columns].
/// </summary>
internal static unsafe class Embedding
{
    public static void Lookup(in WeightMatrix table, int id, Span<float> dst)
    {
        if ((uint)id >= (uint)table.Rows)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"row id must be in [0, {table.Rows})");
        if (dst.Length != table.Columns)
            throw new ArgumentException($"Embedding: dst length {dst.Length} != row length {table.Columns}.", nameof(dst));
        if (table.Interleaved == null)
        {
            Dequantize.Row(table.Type, table.Row(id), dst);
            return;
        }
        // A table with an interleaved copy (a tied output head) is read from the copy: touching the GGUF-order rows
        // would page parts of the map in next to the copy (the kernel maps whole neighbourhoods of a faulting page).
        int rowBytes = table.RowBytes;
        byte[]? rented = rowBytes > 8192 ? System.Buffers.ArrayPool<byte>.Shared.Rent(rowBytes) : null;
        Span<byte> row = rented is null ? stackalloc byte[rowBytes] : rented.AsSpan(0, rowBytes);
        fixed (byte* r = row)
        {
            byte* group = table.Interleaved + (long)(id / Interleaved8.Rows) * Interleaved8.Rows * rowBytes;
            Interleaved8.UnpackRow(table.Type, group, table.Columns / GgmlTypes.BlockSize(table.Type), id % Interleaved8.Rows, r);
        }
        Dequantize.Row(table.Type, row, dst);
        if (rented is not null)
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
    }
}
