namespace LfmSharp.Kernels;

/// <summary>
/// Embedding lookup (ggml <c>get_rows</c>): dst = row <c>id</c> of the table, dequantized exactly to f32.
/// Shapes: table [Rows, Columns] of any supported type, dst [Columns].
/// </summary>
public static class Embedding
{
    public static void Lookup(in WeightMatrix table, int id, Span<float> dst)
    {
        if ((uint)id >= (uint)table.Rows)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"row id must be in [0, {table.Rows})");
        if (dst.Length != table.Columns)
            throw new ArgumentException($"Embedding: dst length {dst.Length} != row length {table.Columns}.", nameof(dst));
        RowOps.DequantizeRow(table.Type, table.Row(id), dst);
    }
}
