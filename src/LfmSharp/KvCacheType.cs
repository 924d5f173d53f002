namespace LfmSharp;

/// <summary>Element type of the attention KV cache.</summary>
public enum KvCacheType
{
    /// <summary>Half precision (llama.cpp's default): half the memory; q is rounded to F16 for the q·k dot.</summary>
    F16,

    /// <summary>Single precision: exact, twice the memory.</summary>
    F32,
}
