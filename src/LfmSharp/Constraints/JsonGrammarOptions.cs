namespace LfmSharp.Constraints;

/// <summary>Where whitespace may appear in generated JSON. Fewer choices keep small models from padding forever.</summary>
public enum JsonWhitespace
{
    /// <summary>
    /// One space, or one newline followed by at most <see cref="JsonGrammarOptions.MaxIndent"/> spaces/tabs, after
    /// <c>{ [ ,</c> and before <c>} ]</c>; one space after <c>:</c>. Enough for compact and pretty-printed styles.
    /// </summary>
    Flexible,
    /// <summary>At most one space after <c>:</c> and <c>,</c>; nothing else.</summary>
    SingleSpace,
    /// <summary>No whitespace at all.</summary>
    Compact,
}

/// <summary>Options for compiling JSON mode and JSON schemas.</summary>
public sealed record JsonGrammarOptions
{
    /// <summary>The defaults.</summary>
    public static JsonGrammarOptions Default { get; } = new();

    /// <summary>Where whitespace is allowed.</summary>
    public JsonWhitespace Whitespace { get; init; } = JsonWhitespace.Flexible;

    /// <summary>Most indent bytes after a newline (Flexible only); at most 200.</summary>
    public int MaxIndent { get; init; } = 20;

    /// <summary>How deep free-form values (JSON mode, untyped schemas, additionalProperties: true) may nest.</summary>
    public int MaxNestingDepth { get; init; } = 16;

    /// <summary>
    /// How many times one <c>$ref</c> may be expanded inside itself (recursive schemas are unrolled this deep; past it
    /// the recursive branch is dropped, so an optional recursive property simply stops appearing).
    /// </summary>
    public int MaxRecursionDepth { get; init; } = 3;

    /// <summary>
    /// When true, unsupported validation keywords (pattern, minimum on numbers, …) are skipped and listed in
    /// <see cref="Grammar.IgnoredKeywords"/> instead of throwing <see cref="NotSupportedException"/>. Output then no
    /// longer necessarily validates against those keywords.
    /// </summary>
    public bool IgnoreUnsupportedKeywords { get; init; }

    /// <summary>Bounds on the compile's time and memory (see <see cref="GrammarLimits"/>).</summary>
    public GrammarLimits Limits { get; init; } = GrammarLimits.Default;

    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(Limits, nameof(Limits));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxIndent, nameof(MaxIndent));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxIndent, 200, nameof(MaxIndent));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxNestingDepth, 1, nameof(MaxNestingDepth));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxNestingDepth, 256, nameof(MaxNestingDepth));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxRecursionDepth, 0, nameof(MaxRecursionDepth));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxRecursionDepth, 32, nameof(MaxRecursionDepth));
    }
}

/// <summary>A tool the model may call: its name and the JSON schema of its parameters (an object schema, or null for none).</summary>
public sealed record ToolFunction(string Name, string? ParametersSchema = null);

/// <summary>Options for the LFM2 pythonic tool-call grammar.</summary>
public sealed record ToolCallGrammarOptions
{
    /// <summary>The defaults.</summary>
    public static ToolCallGrammarOptions Default { get; } = new();

    /// <summary>Only this tool may be called (tool_choice naming a function); null lets the model pick any (tool_choice "required").</summary>
    public string? ForcedToolName { get; init; }

    /// <summary>Allow several calls in one list: <c>[f(a=1), g(b=2)]</c>.</summary>
    public bool AllowParallelCalls { get; init; }

    /// <summary>Special token that opens the call list; matched only as that single token id.</summary>
    public string StartMarker { get; init; } = "<|tool_call_start|>";

    /// <summary>Special token that closes the call list; matched only as that single token id.</summary>
    public string EndMarker { get; init; } = "<|tool_call_end|>";

    /// <summary>Options for argument values (nested dicts and lists use JSON syntax with Python literals).</summary>
    public JsonGrammarOptions Json { get; init; } = JsonGrammarOptions.Default;
}
