using System.Text;
using System.Text.Json;

namespace LfmSharp.Constraints;

/// <summary>
/// A compiled output grammar over bytes: JSON mode, a JSON schema, or LFM2 pythonic tool calls. Immutable and
/// thread-safe; share one instance between any number of <see cref="GrammarMatcher"/>s and
/// <see cref="GrammarConstraint"/>s.
/// <para>
/// Every path can always be finished (strings can close, arrays can close once minItems is met, required properties
/// are written in schema order and optional ones may be skipped), and the budget-aware
/// <see cref="GrammarConstraint.ApplyMask(Span{float}, int)"/> keeps the shortest finish within the remaining tokens.
/// </para>
/// <para>
/// What is accepted is a subset of what the schema allows, chosen so output stays short and deterministic:
/// properties in schema order; no extra keys unless <c>additionalProperties</c> says so (or the object declares no
/// properties); whitespace limited by <see cref="JsonGrammarOptions.Whitespace"/>; at most 18 integer digits, 15
/// fraction digits and 3 exponent digits; strings must be valid UTF-8 and surrogate escapes must pair. Known gaps:
/// free-form keys (JSON mode) may repeat within an object; oneOf is checked like anyOf; beyond 32 anyOf alternatives
/// alive at once, later ones are dropped (output still valid). A document whose root is a number or a literal that
/// could grow ("12" → "123") is complete and extendable at the same time.
/// </para>
/// </summary>
internal sealed class Grammar
{
    /// <summary>
    /// Most parallel parse stacks (anyOf alternatives alive at once, after filtering by their first byte). Beyond
    /// it, later alternatives are dropped: the output stays valid, only less varied.
    /// </summary>
    internal const int MaxStacks = 32;

    internal readonly GNode[] Nodes;
    internal readonly int Root;
    /// <summary>Frames per stack.</summary>
    internal readonly int Capacity;
    internal readonly int MaxIndent;
    internal readonly int MaxNesting;

    internal Grammar(GNode[] nodes, int root, int capacity, int maxIndent, int maxNesting, string[] specials, string[] ignored)
    {
        Nodes = nodes;
        Root = root;
        Capacity = capacity;
        MaxIndent = maxIndent;
        MaxNesting = maxNesting;
        SpecialTokens = specials;
        IgnoredKeywords = ignored;
    }

    /// <summary>Special tokens the grammar matches as single token ids (for tool calls: the start and end markers).</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>
    /// Schema keywords that were skipped, as "path: keyword" (format, unknown keywords, and unsupported ones when
    /// <see cref="JsonGrammarOptions.IgnoreUnsupportedKeywords"/> is set).
    /// </summary>
    public IReadOnlyList<string> IgnoredKeywords { get; }

    /// <summary>Fewest bytes of any accepted document.</summary>
    public int MinLength => Nodes[Root].MinLen;

    /// <summary>JSON mode: any JSON object (like OpenAI's <c>response_format: json_object</c>).</summary>
    public static Grammar AnyJsonObject(JsonGrammarOptions? options = null)
    {
        var b = new GrammarBuilder(options ?? JsonGrammarOptions.Default);
        int any = b.AnyValue(python: false);
        return b.Finish(((DispatchNode)b.Nodes[any]).Object);
    }

    /// <summary>Any JSON value (object, array, string, number, true, false or null).</summary>
    public static Grammar AnyJsonValue(JsonGrammarOptions? options = null)
    {
        var b = new GrammarBuilder(options ?? JsonGrammarOptions.Default);
        return b.Finish(b.AnyValue(python: false));
    }

    /// <summary>
    /// Compiles a JSON schema (supported: type incl. type arrays, properties, required, additionalProperties,
    /// enum, const, items, minItems, maxItems, anyOf, oneOf (as anyOf), single-entry allOf, $ref to #, #/$defs and
    /// #/definitions, minLength, maxLength, integer minimum/maximum/exclusiveMinimum/exclusiveMaximum, nullable).
    /// </summary>
    /// <exception cref="NotSupportedException">The schema uses a keyword this compiler cannot enforce (the message names it).</exception>
    /// <exception cref="ArgumentException">The schema is malformed or no document can satisfy it.</exception>
    public static Grammar FromJsonSchema(string schemaJson, JsonGrammarOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(schemaJson);
        CheckSchemaSize(Encoding.UTF8.GetByteCount(schemaJson), (options ?? JsonGrammarOptions.Default).Limits);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(schemaJson);
        }
        catch (JsonException e)
        {
            throw new ArgumentException("the JSON schema is not valid JSON: " + e.Message, nameof(schemaJson), e);
        }
        using (doc)
            return FromJsonSchema(doc.RootElement, options);
    }

    /// <inheritdoc cref="FromJsonSchema(string, JsonGrammarOptions?)"/>
    public static Grammar FromJsonSchema(JsonElement schema, JsonGrammarOptions? options = null)
    {
        options ??= JsonGrammarOptions.Default;
        CheckSchemaSize(System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(schema).Length, options.Limits);
        var b = new GrammarBuilder(options);
        var compiler = new JsonSchemaCompiler(b, schema, python: false);
        int root = compiler.Compile(schema, "#");
        return b.Finish(root);
    }

    private static void CheckSchemaSize(long bytes, GrammarLimits limits)
    {
        if (bytes > limits.MaxSchemaBytes)
            throw new GrammarLimitException("schema size", $"the JSON schema is {bytes} bytes; at most {limits.MaxSchemaBytes} are allowed (limit: schema size)");
    }

    /// <summary>Approximate bytes this grammar holds (nodes and tries), for caches that bound their memory.</summary>
    internal long EstimatedBytes
    {
        get
        {
            long bytes = 64;
            foreach (var node in Nodes)
                bytes += node.EstimatedBytes;
            return bytes;
        }
    }

    /// <summary>
    /// The LFM2 pythonic tool-call form <c>&lt;|tool_call_start|&gt;[name(arg=value, …)]&lt;|tool_call_end|&gt;</c>.
    /// Arguments are keyword arguments in schema order (required ones always present); string values are
    /// double-quoted Python strings, booleans True/False, null None, numbers as in JSON, and nested objects/arrays
    /// use JSON syntax with those Python literals. The markers are matched only as their special token ids.
    /// </summary>
    public static Grammar ForToolCalls(IReadOnlyList<ToolFunction> tools, ToolCallGrammarOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tools);
        options ??= ToolCallGrammarOptions.Default;
        if (tools.Count == 0)
            throw new ArgumentException("at least one tool is needed", nameof(tools));
        if (string.IsNullOrEmpty(options.StartMarker) || string.IsNullOrEmpty(options.EndMarker))
            throw new ArgumentException("the start and end markers must be non-empty", nameof(options));
        var b = new GrammarBuilder(options.Json);
        GrammarBudget.Count("alternatives", "the tool list", tools.Count, options.Json.Limits.MaxAlternatives, "tools");
        var calls = new List<int>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            ArgumentNullException.ThrowIfNull(tool);
            ValidateToolName(tool.Name);
            if (!seen.Add(tool.Name))
                throw new ArgumentException($"tool '{tool.Name}' is listed twice", nameof(tools));
            if (options.ForcedToolName is not null && tool.Name != options.ForcedToolName)
                continue;
            if (tool.ParametersSchema is not null)
                CheckSchemaSize(Encoding.UTF8.GetByteCount(tool.ParametersSchema), options.Json.Limits);
            calls.Add(CompileToolCall(b, tool));
        }
        if (calls.Count == 0)
            throw new ArgumentException($"the forced tool '{options.ForcedToolName}' is not among the tools", nameof(options));
        // Calls differ by their "name(" opening, which is prefix-free: a switch picks the tool without forking.
        int call = calls.Count == 1 ? calls[0] : b.Add(new SwitchNode { Targets = [.. calls] });
        int list = b.Add(new ArrayNode
        {
            Item = call,
            Min = 1,
            Max = options.AllowParallelCalls ? int.MaxValue : 1,
            WsAfterOpen = WsMode.None,
            WsAfterComma = WsMode.Space,
            WsBeforeClose = WsMode.None,
        });
        int root = b.Add(new SequenceNode { Children = [b.Special(options.StartMarker), list, b.Special(options.EndMarker)] });
        return b.Finish(root);
    }

    private static int CompileToolCall(GrammarBuilder b, ToolFunction tool)
    {
        var open = Encoding.UTF8.GetBytes(tool.Name + "(");
        if (string.IsNullOrWhiteSpace(tool.ParametersSchema))
            return b.Add(new ObjectNode { Open = open, Close = (byte)')', BareKeys = true, KeySeparator = (byte)'=', Python = true });
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(tool.ParametersSchema);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"the parameters schema of tool '{tool.Name}' is not valid JSON: {e.Message}", nameof(tool), e);
        }
        using (doc)
        {
            var compiler = new JsonSchemaCompiler(b, doc.RootElement, python: true);
            return compiler.CompileKeywordArguments(doc.RootElement, open, "#(" + tool.Name + ")");
        }
    }

    private static void ValidateToolName(string name)
    {
        if (string.IsNullOrEmpty(name))
            throw new ArgumentException("a tool name must be non-empty");
        foreach (char c in name)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c) || c is '(' or ')' or '[' or ']' or ',' or '"' or '\'' or '=')
                throw new ArgumentException($"tool name '{name}' cannot be written in a pythonic call (character '{c}')");
        }
    }
}
