using System.Text;
using System.Text.Json;
using LfmSharp.Constraints;

namespace LfmSharp.Tests.Constraints;

/// <summary>A schema from a client cannot cost unbounded memory or time: each limit is a clear GrammarLimitException.</summary>
public class GrammarLimitTests
{
    private static string Enum(int n) => JsonSerializer.Serialize(new { @enum = Enumerable.Range(0, n).Select(i => "v" + i) });

    private static readonly JsonGrammarOptions s_unlimited = new()
    {
        Limits = new GrammarLimits { MaxSchemaBytes = 64 << 20, MaxEnumValues = 1_000_000, MaxLiteralBytes = 64 << 20, MaxStates = 1_000_000 },
    };

    [Theory]
    [InlineData(300_000)]   // used to throw OverflowException (nodes × keys / 64 subtree masks)
    [InlineData(400_000)]   // used to throw IndexOutOfRangeException (the same product wrapped around)
    public void Huge_enum_compiles_in_memory_proportional_to_its_text_when_limits_allow_it(int n)
    {
        string schema = Enum(n);
        var grammar = Grammar.FromJsonSchema(schema, s_unlimited);
        // A literal trie holds about a few dozen bytes per schema byte; the subtree masks used to add gigabytes.
        Assert.InRange(grammar.EstimatedBytes, 1, 64L * schema.Length);
        var m = new GrammarMatcher(grammar);
        Assert.True(m.TryAdvance(Encoding.UTF8.GetBytes($"\"v{n - 1}\"")));
        Assert.True(m.IsComplete);
    }

    [Fact]
    public void Default_limits_name_the_schema_size_then_the_enum_count()
    {
        var e = Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(Enum(100_000)));
        Assert.Equal("schema size", e.Limit);
        e = Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(Enum(10_000)));
        Assert.Equal("enum values", e.Limit);
        Assert.Contains("limit: enum values", e.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> Hostile => new()
    {
        { JsonSerializer.Serialize(new { anyOf = Enumerable.Range(0, 1000).Select(i => new { @const = i }) }), "alternatives" },
        { JsonSerializer.Serialize(new { type = "object", properties = Enumerable.Range(0, 2000).ToDictionary(i => "p" + i, _ => new { type = "integer" }) }), "properties" },
        { JsonSerializer.Serialize(new { type = "object", required = Enumerable.Range(0, 5_000).Select(i => "p" + i) }), "properties" },
    };

    [Theory]
    [MemberData(nameof(Hostile))]
    public void Hostile_schemas_hit_a_named_limit(string schema, string limit)
    {
        var e = Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(schema));
        Assert.Equal(limit, e.Limit);
    }

    [Fact]
    public void Deep_nesting_hits_the_nesting_limit()
    {
        string schema = string.Concat(Enumerable.Repeat("{\"type\":\"array\",\"items\":", 100)) + "{}" + new string('}', 100);
        using var doc = JsonDocument.Parse(schema, new JsonDocumentOptions { MaxDepth = 512 });
        Assert.Equal("nesting", Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(doc.RootElement)).Limit);
    }

    [Fact]
    public void Grammars_past_the_state_limit_and_a_slow_compile_are_refused()
    {
        const string tree = """{"$defs":{"n":{"type":"object","properties":{"a":{"$ref":"#/$defs/n"},"b":{"$ref":"#/$defs/n"},"c":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}""";
        string wide = JsonSerializer.Serialize(new { type = "object", properties = Enumerable.Range(0, 400).ToDictionary(i => "p" + i, _ => new { type = new[] { "integer", "string" } }) });
        var states = Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(wide,
            new JsonGrammarOptions { Limits = new GrammarLimits { MaxStates = 500 } }));
        Assert.Equal("grammar states", states.Limit);
        var time = Assert.Throws<GrammarLimitException>(() => Grammar.FromJsonSchema(tree,
            new JsonGrammarOptions { MaxRecursionDepth = 12, Limits = new GrammarLimits { MaxCompileTime = TimeSpan.Zero, MaxStates = 1_000_000 } }));
        Assert.Equal("compile time", time.Limit);
    }

    [Fact]
    public void Too_many_tools_hit_the_alternatives_limit()
    {
        var tools = Enumerable.Range(0, 200).Select(i => new ToolFunction("f" + i)).ToList();
        Assert.Equal("alternatives", Assert.Throws<GrammarLimitException>(() => Grammar.ForToolCalls(tools)).Limit);
    }

    [Fact]
    public void Cache_returns_one_grammar_per_schema_and_stays_within_its_bounds()
    {
        var options = new ChatRequestOptions { ResponseFormat = ResponseFormat.JsonSchema("""{"type":"object","properties":{"x":{"type":"integer"}}}""") };
        Assert.Same(GrammarCache.For(options), GrammarCache.For(options with { }));
        for (int i = 0; i < GrammarCache.MaxEntries + 40; i++)
            GrammarCache.For(new ChatRequestOptions { ResponseFormat = ResponseFormat.JsonSchema($$"""{"enum":["a{{i}}","b"]}""") });
        Assert.InRange(GrammarCache.Count, 1, GrammarCache.MaxEntries);
        Assert.InRange(GrammarCache.Bytes, 1, GrammarCache.MaxBytes);
        Assert.Null(GrammarCache.For(new ChatRequestOptions()));
    }
}
