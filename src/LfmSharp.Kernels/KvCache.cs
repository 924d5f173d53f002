using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LfmSharp.Kernels;

/// <summary>
/// The keys and values of one attention layer of one sequence, in one storage format (one subclass per format:
/// <see cref="F32KvCache"/>, <see cref="F16KvCache"/>, <see cref="Q8_0KvCache"/>). Like llama.cpp's
/// <c>llama_kv_cache</c> and mlx-lm's <c>update_and_fetch</c>: <see cref="Append"/> stores the rows the projections
/// produce, <see cref="Attention"/> reads them back chunk by chunk as f32 (<see cref="LoadChunk"/>), and
/// <see cref="Snapshot"/>/<see cref="Restore"/> copy the used rows only.
/// </summary>
/// <remarks>
/// The layout is head-major, [kvHeads, <see cref="Capacity"/>, one head's row]: row p of head g holds position p, so
/// an attention work item streams its head's rows from one contiguous run, which the hardware prefetcher follows
/// (rows of all heads interleaved put a head's rows a whole cache row apart and made long-context decode wait on
/// memory). The storage is pinned for the cache's life, so attention reads it through pointers without fixing it
/// per call, and an f32 cache hands out its rows in place.
/// </remarks>
internal abstract unsafe class KvCache
{
    private protected KvCache(int kvHeads, int headDim, int capacity)
    {
        if (kvHeads <= 0 || headDim is <= 0 or > 1024 || capacity < 0)
            throw new ArgumentException($"KV cache: bad shape (kv heads {kvHeads}, head size {headDim}, capacity {capacity}).");
        (KvHeads, HeadDim, Capacity) = (kvHeads, headDim, capacity);
    }

    /// <summary>Key/value heads.</summary>
    public int KvHeads { get; }
    /// <summary>Values per head row.</summary>
    public int HeadDim { get; }
    /// <summary>Positions the cache holds.</summary>
    public int Capacity { get; }

    /// <summary>Bytes one position takes: K and V rows of every head.</summary>
    public abstract long BytesPerPosition { get; }

    /// <summary>
    /// Whether attention rounds the query to f16 before the q·k dot: llama.cpp converts q to the cache's vec-dot
    /// type, which is f16 for an f16 cache (Q8_0's would be Q8_0; ours keeps q in f32 there).
    /// </summary>
    internal virtual bool RoundsQueryToHalf => false;

    /// <summary>
    /// Stores rows <paramref name="k"/>, <paramref name="v"/> ([n, kvHeads·headDim], position-major as the projections
    /// produce them) at positions pos0.. .
    /// </summary>
    public void Append(int pos0, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        int hd = HeadDim, kvDim = KvHeads * hd;
        if (k.Length != v.Length || k.Length % kvDim != 0)
            throw new ArgumentException($"KV cache: keys/values ({k.Length}/{v.Length} values) are not whole rows of {kvDim}.");
        int n = k.Length / kvDim;
        if (pos0 < 0 || pos0 > Capacity - n)
            throw new ArgumentOutOfRangeException(nameof(pos0), $"KV cache: positions {pos0}..{pos0 + n} do not fit its {Capacity}.");
        for (int t = 0; t < n; t++)
        {
            for (int g = 0; g < KvHeads; g++)
            {
                long row = (long)g * Capacity + pos0 + t;
                StoreRow(row, k.Slice(t * kvDim + g * hd, hd), v.Slice(t * kvDim + g * hd, hd));
            }
        }
    }

    /// <summary>Writes one head's key and value row (hd values each) at row index <paramref name="row"/> of the storage.</summary>
    private protected abstract void StoreRow(long row, ReadOnlySpan<float> k, ReadOnlySpan<float> v);

    /// <summary>
    /// Rows [p0, p1) of head g as f32 [p1 − p0, headDim]: in place for an f32 cache, else widened or dequantized into
    /// <paramref name="kf"/>/<paramref name="vf"/> (room for <see cref="Attention.KeyChunk"/> rows each).
    /// </summary>
    internal abstract void LoadChunk(int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v);

    /// <summary>A copy of positions [0, <paramref name="positions"/>) that shares nothing with this cache.</summary>
    public abstract KvCacheSnapshot Snapshot(int positions);

    /// <summary>Writes <paramref name="snapshot"/>'s rows back at positions 0.. (a cache of another capacity is fine).</summary>
    public abstract void Restore(KvCacheSnapshot snapshot);
}

/// <summary>The rows of positions [0, <see cref="Positions"/>) copied out of a <see cref="KvCache"/>.</summary>
internal abstract class KvCacheSnapshot
{
    /// <summary>Positions held.</summary>
    public abstract int Positions { get; }
    /// <summary>Bytes held.</summary>
    public abstract long Bytes { get; }
}

/// <summary>
/// A cache stored as arrays of <typeparamref name="T"/>: each head row is <see cref="RowElements"/> elements. Holds
/// the storage, the pointers and the snapshot copies, so a format only converts rows.
/// </summary>
internal abstract unsafe class KvCache<T> : KvCache where T : unmanaged
{
    private readonly T[] _k, _v;
    private protected readonly T* K, V;

    private protected KvCache(int kvHeads, int headDim, int capacity, int rowElements) : base(kvHeads, headDim, capacity)
    {
        RowElements = rowElements;
        long n = (long)kvHeads * capacity * rowElements;
        if (n > Array.MaxLength)
            throw new ArgumentException($"KV cache: {kvHeads} heads × {capacity} positions × {rowElements} is more than an array holds.");
        _k = GC.AllocateArray<T>((int)n, pinned: true);
        _v = GC.AllocateArray<T>((int)n, pinned: true);
        K = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_k));
        V = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_v));
    }

    /// <summary>Elements of one head's row.</summary>
    public int RowElements { get; }

    public sealed override long BytesPerPosition => 2L * KvHeads * RowElements * sizeof(T);

    /// <summary>One head's row at row index <paramref name="row"/> of the keys or the values.</summary>
    private protected Span<T> Row(T* storage, long row) => new(storage + row * RowElements, RowElements);

    /// <summary>Rows [row0, row0 + n) as one run (a head's rows are consecutive).</summary>
    private protected ReadOnlySpan<T> Run(T* storage, long row0, int n) => new(storage + row0 * RowElements, n * RowElements);

    public sealed override KvCacheSnapshot Snapshot(int positions)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(positions);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(positions, Capacity);
        // Packed as [kvHeads, positions, row]: the used rows of each head's run.
        long used = (long)positions * RowElements, run = (long)Capacity * RowElements;
        var k = new T[KvHeads * used];
        var v = new T[KvHeads * used];
        for (int g = 0; g < KvHeads; g++)
        {
            Array.Copy(_k, g * run, k, g * used, used);
            Array.Copy(_v, g * run, v, g * used, used);
        }
        return new Copy(this, positions, k, v);
    }

    public sealed override void Restore(KvCacheSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (snapshot is not Copy s || s.KvHeads != KvHeads || s.RowElements != RowElements || s.HeadDim != HeadDim || s.Positions > Capacity)
            throw new ArgumentException("KV cache: the snapshot comes from a cache of another format, shape or a larger capacity.", nameof(snapshot));
        long used = (long)s.Positions * RowElements, run = (long)Capacity * RowElements;
        for (int g = 0; g < KvHeads; g++)
        {
            Array.Copy(s.K, g * used, _k, g * run, used);
            Array.Copy(s.V, g * used, _v, g * run, used);
        }
    }

    private sealed class Copy(KvCache<T> from, int positions, T[] k, T[] v) : KvCacheSnapshot
    {
        public override int Positions => positions;
        public override long Bytes => (long)(K.Length + V.Length) * sizeof(T);
        public int KvHeads { get; } = from.KvHeads;
        public int HeadDim { get; } = from.HeadDim;
        public int RowElements { get; } = from.RowElements;
        public T[] K => k;
        public T[] V => v;
    }
}
