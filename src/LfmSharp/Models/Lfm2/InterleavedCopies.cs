using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Models;

/// <summary>
/// Interleaved copies of weight matrices (<see cref="WeightMatrix.InterleaveRows"/>), and matrices converted to the
/// type their kernels would rather run (<see cref="WeightMatrix.ConvertRows"/>, TypeTraits.LoadAs), in native memory
/// (<see cref="WeightMemory"/>). Each is filled from the file with ordinary reads (<see cref="GgufFile.ReadTensorData"/>),
/// a few rows at a time, so the mapped pages of those tensors are never touched by the matmuls and never become
/// resident: the copy takes their place.
/// </summary>
internal sealed unsafe class InterleavedCopies
{
    private readonly List<nint> _blocks = [];
    private readonly List<(GgufTensorInfo Tensor, WeightMatrix Matrix)> _pending = [];
    private readonly List<(GgufTensorInfo Tensor, WeightMatrix Matrix)> _converted = [];

    /// <summary>Bytes held.</summary>
    public long Bytes { get; private set; }

    /// <summary>Allocates the copy of <paramref name="m"/> and returns the matrix using it; <see cref="Fill(GgufFile, int)"/> writes it.</summary>
    public WeightMatrix Add(GgufTensorInfo t, in WeightMatrix m)
    {
        long size = (long)m.Rows * m.RowBytes;
        byte* dst = WeightMemory.Allocate(size);
        _blocks.Add((nint)dst);
        Bytes += size;
        var result = m.WithInterleaved(dst);
        _pending.Add((t, result));
        return result;
    }

    /// <summary>
    /// Allocates <paramref name="m"/> converted to <paramref name="to"/> (its TypeTraits.LoadAs) and returns that matrix,
    /// whose rows <see cref="Fill(GgufFile, int)"/> writes.
    /// </summary>
    public WeightMatrix AddConverted(GgufTensorInfo t, in WeightMatrix m, GgmlType to)
    {
        long size = m.Rows * GgmlTypes.RowBytes(to, m.Columns);
        byte* dst = WeightMemory.Allocate(size);
        _blocks.Add((nint)dst);
        Bytes += size;
        var result = new WeightMatrix(to, m.Rows, m.Columns, dst);
        _converted.Add((t, result));
        return result;
    }

    /// <summary>Reads every added tensor from <paramref name="file"/> into its copy, on up to <paramref name="threads"/> threads.</summary>
    public void Fill(GgufFile file, int threads)
    {
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, threads) };
        Parallel.ForEach(_pending, options, p => Fill(file, p.Tensor, p.Matrix));
        Parallel.ForEach(_converted, options, p => FillConverted(file, p.Tensor, p.Matrix));
        _pending.Clear();
        _converted.Clear();
    }

    private static void FillConverted(GgufFile file, GgufTensorInfo t, WeightMatrix m)
        => Copy(file, t, m.Rows, m.Columns, m.Data, m.RowBytes, &WeightMatrix.ConvertRows);

    private static void Fill(GgufFile file, GgufTensorInfo t, WeightMatrix m)
        => Copy(file, t, m.Rows, m.Columns, m.Interleaved, m.RowBytes, &WeightMatrix.InterleaveRows);

    /// <summary>
    /// Reads <paramref name="t"/>'s rows from the file 64 at a time (a multiple of the 8-row group: large enough for few
    /// system calls, small enough to stay in cache) and writes each chunk through <paramref name="transform"/> (the
    /// file's type, the columns, the chunk's rows, their place in <paramref name="dst"/>) at
    /// <paramref name="dstRowBytes"/> per row.
    /// </summary>
    private static void Copy(GgufFile file, GgufTensorInfo t, int rows, int columns, byte* dst, long dstRowBytes,
        delegate*<GgmlType, int, ReadOnlySpan<byte>, Span<byte>, void> transform)
    {
        const int chunkRows = 64;
        long fileRowBytes = GgmlTypes.RowBytes(t.Type, columns);
        var staging = System.Buffers.ArrayPool<byte>.Shared.Rent((int)(chunkRows * fileRowBytes));
        try
        {
            for (int r = 0; r < rows; r += chunkRows)
            {
                int n = Math.Min(chunkRows, rows - r);
                var src = staging.AsSpan(0, (int)(n * fileRowBytes));
                file.ReadTensorData(t, r * fileRowBytes, src);
                transform(t.Type, columns, src, new Span<byte>(dst + r * dstRowBytes, (int)(n * dstRowBytes)));
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(staging);
        }
    }

    public void Free()
    {
        foreach (var p in _blocks)
            WeightMemory.Free((byte*)p);
        _blocks.Clear();
        _pending.Clear();
        _converted.Clear();
        Bytes = 0;
    }
}
