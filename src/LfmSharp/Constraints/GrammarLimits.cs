using System.Diagnostics;

namespace LfmSharp.Constraints;

/// <summary>
/// Bounds on what one grammar may cost to compile and hold. A schema arrives from a client, so without them one
/// request could take gigabytes or minutes (a 100,000-value enum used to take 1.9 GB). Past a bound,
/// compiling throws <see cref="GrammarLimitException"/> naming it.
/// </summary>
public sealed record GrammarLimits
{
    /// <summary>The defaults: far above hand-written and generated schemas (pydantic, zod), far below harm.</summary>
    public static GrammarLimits Default { get; } = new();

    /// <summary>Longest schema text, in UTF-8 bytes.</summary>
    public int MaxSchemaBytes { get; init; } = 256 * 1024;

    /// <summary>Most values of one <c>enum</c>.</summary>
    public int MaxEnumValues { get; init; } = 4096;

    /// <summary>Most alternatives of one <c>anyOf</c> / <c>oneOf</c>, and most tools in one tool-call grammar.</summary>
    public int MaxAlternatives { get; init; } = 128;

    /// <summary>Most properties of one object.</summary>
    public int MaxProperties { get; init; } = 512;

    /// <summary>Most grammar states (nodes) of one grammar, after <c>$ref</c> unrolling.</summary>
    public int MaxStates { get; init; } = 100_000;

    /// <summary>Most bytes of all literal alternatives together (enum and const values, keys).</summary>
    public int MaxLiteralBytes { get; init; } = 1024 * 1024;

    /// <summary>Deepest nesting of schemas inside schemas.</summary>
    public int MaxNesting { get; init; } = 64;

    /// <summary>Longest compile time.</summary>
    public TimeSpan MaxCompileTime { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>A schema (or tool list) is past one of the <see cref="GrammarLimits"/>; <see cref="Limit"/> names it.</summary>
public sealed class GrammarLimitException : ArgumentException
{
    /// <summary>Creates the exception for <paramref name="limit"/> (e.g. "enum values").</summary>
    public GrammarLimitException(string limit, string message)
        : base(message)
    {
        Limit = limit;
    }

    /// <summary>The limit that was exceeded, in words (e.g. "enum values", "schema size", "compile time").</summary>
    public string Limit { get; }
}

/// <summary>Counts what a compile spends against its <see cref="GrammarLimits"/>.</summary>
internal sealed class GrammarBudget
{
    private readonly long _deadline;
    private long _literalBytes;
    private int _checks;

    public GrammarBudget(GrammarLimits limits)
    {
        Limits = limits;
        _deadline = Stopwatch.GetTimestamp() + (long)(limits.MaxCompileTime.TotalSeconds * Stopwatch.Frequency);
    }

    public GrammarLimits Limits { get; }

    /// <summary>Throws once the compile has run past its time (checked every 256 calls: the clock is not free).</summary>
    public void Tick()
    {
        if ((++_checks & 255) == 0)
            CheckTime();
    }

    public void CheckTime()
    {
        if (Stopwatch.GetTimestamp() > _deadline)
            throw new GrammarLimitException("compile time", $"the schema took longer than {Limits.MaxCompileTime.TotalSeconds:0.#} s to compile (limit: compile time)");
    }

    public void AddLiteralBytes(long bytes)
    {
        _literalBytes += bytes;
        if (_literalBytes > Limits.MaxLiteralBytes)
            throw new GrammarLimitException("literal bytes", $"the schema's enum, const and key values take more than {Limits.MaxLiteralBytes} bytes (limit: literal bytes)");
    }

    public static void Count(string limit, string what, int count, int max, string path)
    {
        if (count > max)
            throw new GrammarLimitException(limit, $"{what} at {path} has {count} entries; at most {max} are allowed (limit: {limit})");
    }
}
