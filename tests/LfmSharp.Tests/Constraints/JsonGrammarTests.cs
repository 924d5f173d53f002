using System.Text;
using System.Text.Json;
using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

/// <summary>Byte-level behaviour of the automaton: exactly the valid prefixes, with the rejection at the right byte.</summary>
public class JsonGrammarTests
{
    public static TheoryData<string> SchemaNames => JsonConstraintRandomTests.SchemaNames;

    // Bytes that no JSON document contains anywhere: controls other than \t \n \r, and bytes UTF-8 never uses.
    private static readonly byte[] s_neverValid = [.. Enumerable.Range(0, 0x20).Where(b => b is not (9 or 10 or 13)).Select(b => (byte)b), 0xC0, 0xC1, 0xF5, 0xF8, 0xFE, 0xFF];

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void Random_valid_documents_are_accepted_byte_by_byte_and_corruptions_are_caught(string name)
    {
        using var schemaDoc = JsonDocument.Parse(JsonConstraintRandomTests.Schemas[name]);
        var grammar = Grammar.FromJsonSchema(schemaDoc.RootElement);
        var rng = new Random(name.GetHashCode(StringComparison.Ordinal) & 0xFFFF);
        var gen = new RandomDocuments(rng, schemaDoc.RootElement);
        for (int n = 0; n < 25; n++)
        {
            byte[] doc = Encoding.UTF8.GetBytes(gen.Value(schemaDoc.RootElement, 0));
            // The generator is checked by the oracle first.
            using (var parsed = Parse(doc))
                Assert.Empty(MiniSchemaValidator.Validate(schemaDoc.RootElement, parsed.RootElement));
            CheckAccepted(grammar, doc, rootIsContainer: doc[0] is (byte)'{' or (byte)'[');
            CheckCorruptions(grammar, schemaDoc.RootElement, doc, rng);
        }
    }

    [Fact]
    public void Json_mode_accepts_random_objects_and_catches_corruptions()
    {
        var grammar = Grammar.AnyJsonObject();
        var rng = new Random(5);
        using var any = JsonDocument.Parse("""{"type":"object"}""");
        for (int n = 0; n < 200; n++)
        {
            byte[] doc = Encoding.UTF8.GetBytes(RandomDocuments.AnyObject(rng));
            using (Parse(doc)) { }
            CheckAccepted(grammar, doc, rootIsContainer: true);
            CheckCorruptions(grammar, any.RootElement, doc, rng);
        }
    }

    private static void CheckAccepted(Grammar grammar, byte[] doc, bool rootIsContainer)
    {
        var m = new GrammarMatcher(grammar);
        for (int i = 0; i < doc.Length; i++)
        {
            if (rootIsContainer)
                Assert.False(m.IsComplete, $"complete too early at {i}: {Show(doc)}");
            Assert.True(m.TryAdvance(doc[i]), $"valid document rejected at byte {i} (0x{doc[i]:X2}): {Show(doc)}");
        }
        Assert.True(m.IsComplete, $"valid document not complete: {Show(doc)}");
        Assert.False(m.TryAdvance((byte)' ') && rootIsContainer, "bytes after a closed root");
    }

    private static void CheckCorruptions(Grammar grammar, JsonElement schema, byte[] doc, Random rng)
    {
        for (int k = 0; k < 6; k++)
        {
            int i = rng.Next(doc.Length);
            byte b = k < 2 ? s_neverValid[rng.Next(s_neverValid.Length)] : (byte)rng.Next(256);
            if (b == doc[i])
                continue;
            var bad = (byte[])doc.Clone();
            bad[i] = b;
            int rejected = FirstRejected(grammar, bad);
            Assert.True(rejected == -1 || rejected >= i, $"rejected at {rejected}, before the corruption at {i}: {Show(bad)}");
            if (s_neverValid.Contains(b))
                Assert.True(rejected == i, $"byte 0x{b:X2} at {i} not rejected there (got {rejected}): {Show(bad)}");
            bool accepted = rejected < 0 && Accepts(grammar, Encoding.UTF8.GetString(bad)) && new GrammarMatcher(grammar).TryAdvance(bad);
            if (accepted)
            {
                // Soundness: what the automaton takes as complete must parse and validate.
                using var parsed = Parse(bad);
                Assert.Empty(MiniSchemaValidator.Validate(schema, parsed.RootElement));
            }
        }
    }

    [Theory]
    [InlineData("""{"a":"\n\t\"\\\/\b\f\r\u00e9\uD83D\uDE00\ud7ff"}""", -1)]
    [InlineData("""{"a":"\x"}""", 7)]
    [InlineData("""{"a":"\u12G4"}""", 10)]
    [InlineData("""{"a":"\udc00"}""", 9)]          // lone low surrogate: rejected at its second hex digit
    [InlineData("""{"a":"\ud800"}""", 12)]         // high surrogate must be followed by \u low
    [InlineData("""{"a":"\ud800\u0041"}""", 14)]   // … a low one
    [InlineData("""{"a":"\ud800\udc00"}""", -1)]
    [InlineData("{\"a\":\"tab\there\"}", 9)]       // raw control characters are not string content
    public void Escapes(string doc, int rejectedAt)
    {
        var g = Grammar.AnyJsonObject();
        Assert.Equal(rejectedAt, FirstRejected(g, Encoding.UTF8.GetBytes(doc)));
        if (rejectedAt < 0)
            Assert.True(Accepts(g, doc));
    }

    [Theory]
    [InlineData(new byte[] { 0xC3, 0xA9 }, -1)]              // é
    [InlineData(new byte[] { 0xF0, 0x9F, 0x99, 0x82 }, -1)]  // 🙂
    [InlineData(new byte[] { 0xC0, 0x80 }, 0)]               // overlong NUL
    [InlineData(new byte[] { 0xE0, 0x80, 0x80 }, 1)]         // overlong 3-byte
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, 1)]         // UTF-8 encoded surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, 1)]   // above U+10FFFF
    [InlineData(new byte[] { 0xE6, 0x97 }, 2)]               // truncated before the closing quote
    [InlineData(new byte[] { 0x80 }, 0)]                     // stray continuation byte
    public void Utf8_in_strings(byte[] content, int rejectedAtInContent)
    {
        byte[] doc = [.. "{\"k\":\""u8, .. content, .. "\"}"u8];
        int prefix = 6;
        Assert.Equal(rejectedAtInContent < 0 ? -1 : prefix + rejectedAtInContent, FirstRejected(Grammar.AnyJsonObject(), doc));
    }

    [Theory]
    [InlineData("{ \"a\": 1 }", -1)]
    [InlineData("{\n  \"a\": [\n    1,\n    2\n  ]\n}", -1)]
    [InlineData("{  \"a\":1}", 2)]                   // two spaces
    [InlineData("{\"a\" :1}", 4)]                    // space before ':'
    [InlineData("{\"a\":1 ,\"b\":2}", 7)]            // space before ','
    [InlineData("{\"a\":\n1}", 5)]                   // after ':' only one space
    [InlineData("{\r\n\"a\":1}", 1)]                 // CR is not allowed
    [InlineData("{\n\n\"a\":1}", 2)]                 // one newline per gap
    public void Whitespace_is_limited(string doc, int rejectedAt)
    {
        Assert.Equal(rejectedAt, FirstRejected(Grammar.AnyJsonObject(), Encoding.UTF8.GetBytes(doc)));
    }

    [Fact]
    public void Indentation_is_capped()
    {
        var g = Grammar.AnyJsonObject(new JsonGrammarOptions { MaxIndent = 20 });
        Assert.True(Accepts(g, "{\n" + new string(' ', 20) + "\"a\":1}"));
        Assert.Equal(22, FirstRejected(g, Encoding.UTF8.GetBytes("{\n" + new string(' ', 21) + "\"a\":1}")));
    }

    [Theory]
    [InlineData("0", true)]
    [InlineData("-0", true)]
    [InlineData("12.50e+3", true)]
    [InlineData("1E-7", true)]
    [InlineData("01", false)]
    [InlineData("1.", false)]
    [InlineData("-", false)]
    [InlineData("1e", false)]
    [InlineData(".5", false)]
    [InlineData("+1", false)]
    [InlineData("NaN", false)]
    [InlineData("1234567890123456789", false)] // 19 integer digits: past the digit cap
    public void Numbers_follow_the_JSON_grammar(string number, bool valid)
    {
        Assert.Equal(valid, Accepts(Grammar.AnyJsonObject(), "{\"n\":" + number + "}"));
    }

    [Fact]
    public void Integer_rejects_fraction_and_exponent_where_they_start()
    {
        var g = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["integer-vs-number"]);
        Assert.True(Accepts(g, """{"count":3,"ratio":3.5e1}"""));
        Assert.Equal(10, FirstRejected(g, "{\"count\":3.5,\"ratio\":1}"u8));
        Assert.Equal(10, FirstRejected(g, "{\"count\":3e2,\"ratio\":1}"u8));
    }

    [Fact]
    public void Integer_bounds_are_enforced_digit_by_digit()
    {
        var g = Grammar.FromJsonSchema("""{"type":"integer","minimum":18,"maximum":120}""");
        Assert.True(Accepts(g, "18"));
        Assert.True(Accepts(g, "120"));
        Assert.False(Accepts(g, "17"));
        Assert.Equal(1, FirstRejected(g, "13"u8));  // no completion of "1" with 3… stays in range
        Assert.Equal(0, FirstRejected(g, "-5"u8));
        Assert.Equal(2, FirstRejected(g, "121"u8));
        Assert.Equal(0, FirstRejected(g, "05"u8));  // 0 cannot grow
        var m = new GrammarMatcher(g);
        Assert.True(m.TryAdvance("1"u8));
        Assert.False(m.IsComplete);                 // "1" is below the minimum
        Assert.Equal(1, m.MinBytesToComplete);
    }

    [Fact]
    public void Additional_properties_false_rejects_unknown_keys_at_the_first_wrong_byte()
    {
        var g = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["closed-optional"]);
        Assert.True(Accepts(g, """{"id":1,"active":true}"""));
        Assert.Equal(9, FirstRejected(g, "{\"id\":1,\"bogus\":1}"u8));
        Assert.Equal(13, FirstRejected(g, "{\"id\":1,\"tagsx\":1}"u8));   // a known key's prefix, then off it
        Assert.Equal(9, FirstRejected(g, "{\"id\":1,\"id\":2}"u8));        // never twice
    }

    [Fact]
    public void Required_properties_come_first_and_in_schema_order()
    {
        var g = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["person"]);
        Assert.True(Accepts(g, """{"name":"x","age":3}"""));
        Assert.Equal(2, FirstRejected(g, "{\"age\":3,\"name\":\"x\"}"u8)); // "a…" cannot start: name is required first
        Assert.Equal(1, FirstRejected(g, "{}"u8));
        Assert.Equal(11, FirstRejected(g, "{\"name\":\"x\"}"u8));           // age is missing
        var open = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["additional-true"]);
        Assert.True(Accepts(open, """{"a":"x","zz":[1,{"q":null}]}"""));
        Assert.Equal(11, FirstRejected(open, "{\"a\":\"x\",\"a\":\"y\"}"u8)); // a free key may not repeat a defined one
    }

    [Fact]
    public void Enums_and_consts_only_allow_their_values()
    {
        var g = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["enums"]);
        Assert.True(Accepts(g, """{"color":"green","size":"XL","level":12}"""));
        Assert.True(Accepts(g, """{"color":"red","size":"S","level":1}"""));
        Assert.False(Accepts(g, """{"color":"pink","size":"S","level":1}"""));
        Assert.False(Accepts(g, """{"color":"red","size":"XXL","level":1}"""));
        Assert.False(Accepts(g, """{"color":"red","size":"S","level":11}"""));
        var c = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["const-root"]);
        Assert.True(Accepts(c, """{"x":[1,2,{"y":null}],"s":"a\"b"}"""));
        Assert.False(Accepts(c, """{"x":[1,2,{"y":null}],"s":"a"}"""));
    }

    [Fact]
    public void Nesting_depth_is_limited_in_json_mode()
    {
        var g = Grammar.AnyJsonObject(new JsonGrammarOptions { MaxNestingDepth = 4 });
        Assert.True(Accepts(g, """{"a":{"b":[{"c":1}]}}"""));
        Assert.Equal(16, FirstRejected(g, "{\"a\":{\"b\":[{\"c\":[1]}]}}"u8));
    }

    [Fact]
    public void Recursive_refs_unroll_to_the_configured_depth()
    {
        string schema = JsonConstraintRandomTests.Schemas["recursive-tree"];
        string Tree(int depth) => depth == 0 ? """{"value":1}""" : "{\"value\":1,\"children\":[" + Tree(depth - 1) + "]}";
        var g = Grammar.FromJsonSchema(schema, new JsonGrammarOptions { MaxRecursionDepth = 2 });
        Assert.True(Accepts(g, Tree(3)));
        Assert.False(Accepts(g, Tree(4)));
        Assert.Throws<ArgumentException>(() => Grammar.FromJsonSchema("""{"type":"object","properties":{"next":{"$ref":"#"}},"required":["next"]}"""));
    }

    [Theory]
    [InlineData("""{"type":"string","pattern":"^a+$"}""", "pattern")]
    [InlineData("""{"type":"number","minimum":0}""", "minimum")]
    [InlineData("""{"type":"object","patternProperties":{"^x":{}}}""", "patternProperties")]
    [InlineData("""{"not":{"type":"string"}}""", "not")]
    [InlineData("""{"if":{"type":"string"},"then":{"minLength":1}}""", "if")]
    [InlineData("""{"type":"array","uniqueItems":true}""", "uniqueItems")]
    [InlineData("""{"type":"array","prefixItems":[{"type":"string"}]}""", "prefixItems")]
    [InlineData("""{"type":"object","minProperties":1}""", "minProperties")]
    [InlineData("""{"type":"integer","multipleOf":5}""", "multipleOf")]
    [InlineData("""{"allOf":[{"type":"string"},{"maxLength":3}]}""", "allOf")]
    [InlineData("""{"type":"string","anyOf":[{"maxLength":3},{"minLength":9}]}""", "anyOf")]
    [InlineData("""{"$ref":"https://example.com/s.json"}""", "$ref")]
    [InlineData("""{"properties":{"deep":{"type":"array","items":{"type":"string","pattern":"x"}}}}""", "pattern")]
    public void Unsupported_keywords_are_reported_by_name(string schema, string keyword)
    {
        var ex = Assert.Throws<NotSupportedException>(() => Grammar.FromJsonSchema(schema));
        Assert.Contains($"'{keyword}'", ex.Message);
        var lenient = Grammar.FromJsonSchema(schema, new JsonGrammarOptions { IgnoreUnsupportedKeywords = true });
        Assert.Contains(lenient.IgnoredKeywords, k => k.Contains(keyword, StringComparison.Ordinal));
    }

    [Fact]
    public void Format_and_unknown_keywords_are_listed_not_enforced()
    {
        var g = Grammar.FromJsonSchema("""{"type":"object","properties":{"d":{"type":"string","format":"date"}},"required":["d"],"x-order":1}""");
        Assert.Contains("#/properties/d: format", g.IgnoredKeywords);
        Assert.Contains(g.IgnoredKeywords, k => k.Contains("x-order", StringComparison.Ordinal));
        Assert.True(Accepts(g, """{"d":"not a date"}"""));
        Assert.Empty(Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["nested"]).IgnoredKeywords);
    }

    [Theory]
    [InlineData("""{"type":"string","minLength":5,"maxLength":2}""")]
    [InlineData("""{"type":"array","minItems":3,"maxItems":1}""")]
    [InlineData("""{"type":"object","properties":{"a":{"enum":[]}},"required":["a"]}""")]
    [InlineData("""{"type":"integer","minimum":5,"maximum":4}""")]
    [InlineData("""{"type":"object","required":["a"],"additionalProperties":false}""")]
    [InlineData("""false""")]
    [InlineData("""{"type":"strange"}""")]
    [InlineData("""[1,2]""")]
    [InlineData("""{"type":""")]
    public void Malformed_or_unsatisfiable_schemas_are_rejected(string schema)
    {
        Assert.Throws<ArgumentException>(() => Grammar.FromJsonSchema(schema));
    }

    [Fact]
    public void Optional_unsatisfiable_parts_are_dropped_not_fatal()
    {
        var g = Grammar.FromJsonSchema("""{"type":"object","properties":{"bad":{"type":"string","minLength":3,"maxLength":1},"ok":{"type":"integer"}}}""");
        Assert.True(Accepts(g, """{"ok":1}"""));
        Assert.Equal(2, FirstRejected(g, "{\"bad\":\"\"}"u8));
    }

    [Fact]
    public void Root_scalars_complete_but_may_continue()
    {
        var g = Grammar.FromJsonSchema("""{"type":"integer"}""");
        var m = new GrammarMatcher(g);
        Assert.True(m.TryAdvance("12"u8));
        Assert.True(m.IsComplete);
        Assert.True(m.TryAdvance("3"u8));
        Assert.False(m.TryAdvance(" "u8));
    }

    [Fact]
    public void Up_to_32_anyof_alternatives_with_the_same_first_byte_are_all_reachable()
    {
        static string Alts(int n) => string.Join(",", Enumerable.Range(0, n).Select(i => $$$"""{"type":"object","properties":{"k":{"const":"v{{{i}}}"},"n":{"type":"integer"}},"required":["k","n"],"additionalProperties":false}"""));
        // Alternatives that cannot start with the byte are not forked at all, so only same-first-byte ones count.
        var g = Grammar.FromJsonSchema($$"""{"anyOf":[{{Alts(32)}},{"type":"string"},{"type":"array"}]}""");
        for (int i = 0; i < 32; i++)
            Assert.True(Accepts(g, $$"""{"k":"v{{i}}","n":{{i}}}"""), $"alternative {i}");
        Assert.True(Accepts(g, "\"s\""));
        Assert.True(Accepts(g, "[1]"));
        // Past the limit the extra alternatives are dropped; what is produced still validates.
        var wide = Grammar.FromJsonSchema($$"""{"anyOf":[{{Alts(40)}}]}""");
        Assert.True(Accepts(wide, """{"k":"v0","n":0}"""));
        Assert.False(Accepts(wide, """{"k":"v40","n":1}"""));
    }

    [Fact]
    public void Anyof_alternatives_sharing_a_prefix_are_followed_together()
    {
        var g = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["anyOf-shapes"]);
        Assert.True(Accepts(g, """{"kind":"circle","r":1.5}"""));
        Assert.True(Accepts(g, """{"kind":"rect","w":1,"h":2}"""));
        Assert.False(Accepts(g, """{"kind":"rect","r":1}"""));
        Assert.False(Accepts(g, """{"kind":"circle","w":1,"h":2}"""));
    }
}
