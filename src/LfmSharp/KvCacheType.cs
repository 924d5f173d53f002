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
    /// <exception cref="ArgumentException">Not one of f16, f32, q8_0 (case-insensitive).</exception>
    public static KvCacheType Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "f16" => KvCacheType.F16,
        "f32" => KvCacheType.F32,
        "q8_0" => KvCacheType.Q8_0,
        _ => throw new ArgumentException($"unknown KV cache type '{name}' (use f16, f32 or q8_0)"),
    };

    /// <summary>The lower-case name used by the CLI and the server (<c>f16</c>, <c>q8_0</c>).</summary>
    public static string Name(KvCacheType type) => type switch
    {
        KvCacheType.F16 => "f16",
        KvCacheType.F32 => "f32",
        KvCacheType.Q8_0 => "q8_0",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown KV cache type"),
    };
}
