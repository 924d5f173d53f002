using LfmSharp.Kernels;

namespace LfmSharp;

/// <summary>Element type of the attention KV cache.</summary>
public enum KvCacheType
{
    /// <summary>Half precision (llama.cpp's default): half the memory; q is rounded to F16 for the q·k dot.</summary>
    F16,

    /// <summary>Single precision: exact, twice the memory.</summary>
    F32,

    /// <summary>
    /// ggml Q8_0 blocks (8-bit values with one f16 scale per 32): 34/64 of F16's memory, for long contexts. Keys and
    /// values are rounded to about 2–3 significant digits; logits stay close to an F16 cache's, not bit-identical.
    /// Needs a head size that is a multiple of 32 (LFM2's is 64).
    /// </summary>
    Q8_0,
}

/// <summary>The names command lines and config files use for <see cref="KvCacheType"/>: f16, f32, q8_0 (as llama.cpp's <c>--cache-type-k</c>).</summary>
public static class KvCacheTypes
{
    /// <summary>
    /// One row per <see cref="KvCacheType"/>, indexed by its value: the only place that maps a type to its name, its
    /// cache class and its size, so the model, the state and the memory check never switch on the type.
    /// </summary>
    private static readonly Format[] s_formats =
    [
        new(KvCacheType.F16, "f16", 1, F16KvCache.RowBytes, static (h, d, c) => new F16KvCache(h, d, c)),
        new(KvCacheType.F32, "f32", 1, F32KvCache.RowBytes, static (h, d, c) => new F32KvCache(h, d, c)),
        new(KvCacheType.Q8_0, "q8_0", Q8_0KvCache.HeadSizeMultiple, Q8_0KvCache.RowBytes, static (h, d, c) => new Q8_0KvCache(h, d, c)),
    ];

    /// <param name="HeadSizeMultiple">Head sizes the format can hold are multiples of this.</param>
    /// <param name="RowBytes">Bytes of one head's K (or V) row, by head size.</param>
    /// <param name="Create">A cache of (kvHeads, headDim, capacity).</param>
    private sealed record Format(KvCacheType Type, string Name, int HeadSizeMultiple, Func<int, long> RowBytes, Func<int, int, int, KvCache> Create);

    private static Format Of(KvCacheType type) => (uint)type < (uint)s_formats.Length
        ? s_formats[(int)type]
        : throw new ArgumentOutOfRangeException(nameof(type), type, "unknown KV cache type");

    /// <exception cref="ArgumentException">Not one of f16, f32, q8_0 (case-insensitive).</exception>
    public static KvCacheType Parse(string? name)
    {
        string? key = name?.Trim().ToLowerInvariant();
        foreach (var f in s_formats)
        {
            if (f.Name == key)
                return f.Type;
        }
        throw new ArgumentException($"unknown KV cache type '{name}' (use f16, f32 or q8_0)");
    }

    /// <summary>The lower-case name used by the CLI and the server (<c>f16</c>, <c>q8_0</c>).</summary>
    public static string Name(KvCacheType type) => Of(type).Name;

    /// <summary>Head sizes a cache of <paramref name="type"/> can hold are multiples of this (Q8_0: whole 32-value blocks).</summary>
    internal static int HeadSizeMultiple(KvCacheType type) => Of(type).HeadSizeMultiple;

    /// <summary>Bytes one position of an attention layer with <paramref name="kvHeads"/> heads of <paramref name="headDim"/> takes (K and V).</summary>
    internal static long BytesPerPosition(KvCacheType type, int kvHeads, int headDim) => 2L * kvHeads * Of(type).RowBytes(headDim);

    /// <summary>The one factory of KV caches: an empty cache of <paramref name="type"/>'s format for one attention layer.</summary>
    internal static KvCache Create(KvCacheType type, int kvHeads, int headDim, int capacity) => Of(type).Create(kvHeads, headDim, capacity);
}
