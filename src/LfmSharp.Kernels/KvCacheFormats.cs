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

/// <summary>
/// A format that stores converted rows: each row is narrowed from f32 when appended, and each chunk of rows widened
/// back to f32 once per attention work item.
/// </summary>
internal abstract unsafe class ConvertedKvCache<T>(int kvHeads, int headDim, int capacity, int rowElements)
    : KvCache<T>(kvHeads, headDim, capacity, rowElements) where T : unmanaged
{
    /// <summary>One head's row of f32 values → the format.</summary>
    private protected abstract void Narrow(ReadOnlySpan<float> src, Span<T> dst);

    /// <summary>A run of whole rows in the format → f32.</summary>
    private protected abstract void Widen(ReadOnlySpan<T> src, Span<float> dst);

    private protected sealed override void StoreRow(long row, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        Narrow(k, Row(K, row));
        Narrow(v, Row(V, row));
    }

    internal sealed override void LoadChunk(int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v)
    {
        long row0 = (long)g * Capacity + p0;   // a head's rows are consecutive: the chunk is one run
        int n = p1 - p0;
        Widen(Run(K, row0, n), new Span<float>(kf, n * HeadDim));
        Widen(Run(V, row0, n), new Span<float>(vf, n * HeadDim));
        k = kf;
        v = vf;
    }
}

/// <summary>Half precision (llama.cpp's default).</summary>
internal sealed class F16KvCache(int kvHeads, int headDim, int capacity) : ConvertedKvCache<Half>(kvHeads, headDim, capacity, headDim)
{
    /// <summary>Bytes of one head's row.</summary>
    public static long RowBytes(int headDim) => 2L * headDim;

    internal override bool RoundsQueryToHalf => true;

    private protected override void Narrow(ReadOnlySpan<float> src, Span<Half> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = (Half)src[i];
    }

    private protected override void Widen(ReadOnlySpan<Half> src, Span<float> dst) => HalfConversion.ToSingle(src, dst);
}

/// <summary>
/// ggml Q8_0 blocks (34 bytes per 32 values): a head's row is headDim/32 whole blocks, so headDim must be a multiple
/// of 32. The query stays f32 (close to, not bit-identical with, llama.cpp, which quantizes q to Q8_0 for the dot).
/// </summary>
internal sealed class Q8_0KvCache(int kvHeads, int headDim, int capacity)
    : ConvertedKvCache<byte>(kvHeads, headDim, capacity, WholeBlocks(headDim))
{
    /// <summary>Head sizes must be a multiple of this (whole blocks per row).</summary>
    public const int HeadSizeMultiple = 32;

    /// <summary>Bytes of one head's row (for a head size that is a multiple of <see cref="HeadSizeMultiple"/>).</summary>
    public static long RowBytes(int headDim) => (long)headDim / 32 * 34;

    private static int WholeBlocks(int headDim) => headDim > 0 && headDim % HeadSizeMultiple == 0
        ? (int)RowBytes(headDim)
        : throw new ArgumentException($"KV cache: a Q8_0 cache needs a head size that is a multiple of {HeadSizeMultiple} (got {headDim}).", nameof(headDim));

    private protected override void Narrow(ReadOnlySpan<float> src, Span<byte> dst) => Q8_0.QuantizeRow(src, dst);

    private protected override void Widen(ReadOnlySpan<byte> src, Span<float> dst) => Q8_0.DequantizeRow(src, dst);
}
