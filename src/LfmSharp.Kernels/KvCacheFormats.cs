using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>Single precision: rows kept exactly, read in place.</summary>
internal sealed unsafe class F32KvCache(int kvHeads, int headDim, int capacity) : KvCache<float>(kvHeads, headDim, capacity, headDim)
{
    /// <summary>Bytes of one head's row.</summary>
    public static long RowBytes(int headDim) => 4L * headDim;

    private protected override void StoreRow(long row, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        k.CopyTo(Row(K, row));
        v.CopyTo(Row(V, row));
    }

    internal override void LoadChunk(int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v)
    {
        long row0 = (long)g * Capacity + p0;
        k = K + row0 * HeadDim;
        v = V + row0 * HeadDim;
    }
}

/// <summary>Half precision (llama.cpp's default): each chunk of rows is widened to f32 once per attention work item.</summary>
internal sealed unsafe class F16KvCache(int kvHeads, int headDim, int capacity) : KvCache<Half>(kvHeads, headDim, capacity, headDim)
{
    /// <summary>Bytes of one head's row.</summary>
    public static long RowBytes(int headDim) => 2L * headDim;

    internal override bool RoundsQueryToHalf => true;

    private protected override void StoreRow(long row, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        ToHalf(k, Row(K, row));
        ToHalf(v, Row(V, row));
    }

    private static void ToHalf(ReadOnlySpan<float> src, Span<Half> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = (Half)src[i];
    }

    internal override void LoadChunk(int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v)
    {
        long row0 = (long)g * Capacity + p0;
        int n = p1 - p0;
        HalfConversion.ToSingle(Run(K, row0, n), new Span<float>(kf, n * HeadDim));
        HalfConversion.ToSingle(Run(V, row0, n), new Span<float>(vf, n * HeadDim));
        k = kf;
        v = vf;
    }
}

/// <summary>
/// ggml Q8_0 blocks (34 bytes per 32 values): a head's row is headDim/32 whole blocks, so headDim must be a multiple
/// of 32. Each chunk of rows is dequantized to f32 once per work item and the query stays f32 (close to, not
/// bit-identical with, llama.cpp, which quantizes q to Q8_0 for the dot).
/// </summary>
internal sealed unsafe class Q8_0KvCache(int kvHeads, int headDim, int capacity)
    : KvCache<byte>(kvHeads, headDim, capacity, WholeBlocks(headDim))
{
    /// <summary>Head sizes must be a multiple of this (whole blocks per row).</summary>
    public const int HeadSizeMultiple = 32;

    /// <summary>Bytes of one head's row (for a head size that is a multiple of <see cref="HeadSizeMultiple"/>).</summary>
    public static long RowBytes(int headDim) => (long)headDim / 32 * 34;

    private static int WholeBlocks(int headDim) => headDim > 0 && headDim % HeadSizeMultiple == 0
        ? (int)RowBytes(headDim)
        : throw new ArgumentException($"KV cache: a Q8_0 cache needs a head size that is a multiple of {HeadSizeMultiple} (got {headDim}).", nameof(headDim));

    private protected override void StoreRow(long row, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        Q8_0.QuantizeRow(k, Row(K, row));
        Q8_0.QuantizeRow(v, Row(V, row));
    }

    internal override void LoadChunk(int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v)
    {
        long row0 = (long)g * Capacity + p0;
        int n = p1 - p0;
        // The chunk is one contiguous run of n·headDim/32 blocks.
        Q8_0.DequantizeRow(Run(K, row0, n), new Span<float>(kf, n * HeadDim));
        Q8_0.DequantizeRow(Run(V, row0, n), new Span<float>(vf, n * HeadDim));
        k = kf;
        v = vf;
    }
}
