using System.Text.Json;
using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

/// <summary>
/// Random logits through the real fixture vocabulary: whatever gets sampled, the output parses with System.Text.Json
/// and validates against the schema (checked by an independent validator).
/// </summary>
public class JsonConstraintRandomTests
{
    public static readonly Dictionary<string, string> Schemas = new()
    {
        ["person"] = """{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"]}""",
        ["closed-optional"] = """{"type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array","items":{"type":"string"}},"active":{"type":"boolean"}},"required":["id"],"additionalProperties":false}""",
        ["enums"] = """{"type":"object","properties":{"color":{"enum":["red","green","blue"]},"size":{"type":"string","enum":["S","M","L","XL"]},"level":{"enum":[1,2,3,10,12]}},"required":["color","size","level"]}""",
        ["nested"] = """{"type":"object","properties":{"user":{"type":"object","properties":{"name":{"type":"string","maxLength":12},"address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string","minLength":5,"maxLength":5}},"required":["city","zip"]}},"required":["name","address"]}},"required":["user"]}""",
        ["int-array-root"] = """{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":5}""",
        ["string-lengths"] = """{"type":"object","properties":{"code":{"type":"string","minLength":3,"maxLength":5},"note":{"type":"string","maxLength":10}},"required":["code"]}""",
        ["integer-vs-number"] = """{"type":"object","properties":{"count":{"type":"integer"},"ratio":{"type":"number"}},"required":["count","ratio"]}""",
        ["type-arrays"] = """{"type":"object","properties":{"value":{"type":["string","null"]},"n":{"type":["integer","boolean"]}},"required":["value","n"]}""",
        ["anyOf-shapes"] = """{"anyOf":[{"type":"object","properties":{"kind":{"const":"circle"},"r":{"type":"number"}},"required":["kind","r"],"additionalProperties":false},{"type":"object","properties":{"kind":{"const":"rect"},"w":{"type":"number"},"h":{"type":"number"}},"required":["kind","w","h"],"additionalProperties":false}]}""",
        ["oneOf-scalars"] = """{"type":"object","properties":{"v":{"oneOf":[{"type":"string","maxLength":4},{"type":"integer"},{"type":"null"}]}},"required":["v"]}""",
        ["defs-ref"] = """{"$defs":{"item":{"type":"object","properties":{"sku":{"type":"string"},"qty":{"type":"integer","minimum":1,"maximum":99}},"required":["sku","qty"]}},"type":"object","properties":{"items":{"type":"array","items":{"$ref":"#/$defs/item"},"minItems":1}},"required":["items"]}""",
        ["definitions-ref"] = """{"definitions":{"point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}},"type":"object","properties":{"from":{"$ref":"#/definitions/point"},"to":{"$ref":"#/definitions/point"}},"required":["from","to"]}""",
        ["recursive-tree"] = """{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#"},"maxItems":2}},"required":["value"]}""",
        ["additional-schema"] = """{"type":"object","additionalProperties":{"type":"integer"}}""",
        ["additional-true"] = """{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":true}""",
        ["const-root"] = """{"const":{"x":[1,2,{"y":null}],"s":"a\"b"}}""",
        ["nested-arrays"] = """{"type":"array","items":{"type":"array","items":{"type":"number"},"maxItems":3},"maxItems":3}""",
        ["bool-null"] = """{"type":"object","properties":{"b":{"type":"boolean"},"n":{"type":"null"}},"required":["b","n"]}""",
        ["integer-bounds"] = """{"type":"object","properties":{"age":{"type":"integer","minimum":18,"maximum":120},"temp":{"type":"integer","exclusiveMinimum":-40,"exclusiveMaximum":50},"neg":{"type":"integer","maximum":-5}},"required":["age","temp","neg"]}""",
        ["unicode-keys"] = """{"type":"object","properties":{"名前":{"type":"string"},"emoji🙂":{"enum":["✅","❌","a\"b"]},"q\"uo\\te\n":{"type":"integer"}},"required":["名前","emoji🙂","q\"uo\\te\n"]}""",
        ["empty-schema"] = """{}""",
        ["true-schema"] = """true""",
        ["all-optional"] = """{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"},"c":{"type":"boolean"},"d":{"type":"array","items":{"type":"null"}},"e":{"type":"number"}}}""",
        ["nullable"] = """{"type":"object","properties":{"s":{"type":"string","nullable":true,"maxLength":3}},"required":["s"]}""",
        ["allOf-single-ref"] = """{"$defs":{"name":{"type":"string","minLength":1,"maxLength":8}},"type":"object","properties":{"first":{"allOf":[{"$ref":"#/$defs/name"}],"description":"x"},"last":{"$ref":"#/$defs/name"}},"required":["first","last"]}""",
        ["items-false"] = """{"type":"object","properties":{"none":{"type":"array","items":false},"k":{"type":"string","maxLength":2}},"required":["none","k"]}""",
        ["required-undeclared"] = """{"type":"object","properties":{"a":{"type":"integer"}},"required":["b","a"]}""",
        ["string-root-minlen"] = """{"type":"string","minLength":2,"maxLength":6}""",
        ["wide-object"] = WideObject(),
    };

    private static string WideObject()
    {
        // 70 properties: more than one 64-bit word of property masks.
        var props = string.Join(",", Enumerable.Range(0, 70).Select(i => $"\"p{i}\":{{\"type\":\"{(i % 3 == 0 ? "integer" : i % 3 == 1 ? "string" : "boolean")}\"}}"));
        return $$"""{"type":"object","properties":{{{props}}},"required":["p3","p64","p69"],"additionalProperties":false}""";
    }

    public static TheoryData<string> SchemaNames => [.. Schemas.Keys];

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void Random_logits_always_give_a_valid_document(string name)
    {
        using var schemaDoc = JsonDocument.Parse(Schemas[name]);
        var grammar = Grammar.FromJsonSchema(schemaDoc.RootElement);
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        int endedOnTheirOwn = 0;
        for (int seed = 0; seed < 12; seed++)
        {
            int budget = grammar.MinLength + 10 + seed * 12; // the budget must fit the shortest document
            var run = RandomRun(constraint, seed * 7919 + name.Length, budget, temperature: 1 + seed % 3 * 0.5);
            Assert.True(run.Tokens <= budget);
            using var doc = Parse(run.Bytes);
            var errors = MiniSchemaValidator.Validate(schemaDoc.RootElement, doc.RootElement);
            Assert.True(errors.Count == 0, $"seed {seed}: {run.Text}\n{string.Join("\n", errors)}");
            if (run.EndedWithEog)
                endedOnTheirOwn++;
        }
        Assert.True(endedOnTheirOwn > 0, "no run chose the end token itself");
    }

    [Fact]
    public void Json_mode_gives_objects_with_random_logits()
    {
        var grammar = Grammar.AnyJsonObject();
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        for (int seed = 0; seed < 30; seed++)
        {
            var run = RandomRun(constraint, 1000 + seed, 30 + seed * 5, temperature: 2);
            using var doc = Parse(run.Bytes);
            Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        }
    }

    [Theory]
    [InlineData(JsonWhitespace.Compact)]
    [InlineData(JsonWhitespace.SingleSpace)]
    public void Whitespace_options_are_honoured(JsonWhitespace ws)
    {
        var grammar = Grammar.FromJsonSchema(Schemas["nested"], new JsonGrammarOptions { Whitespace = ws });
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        for (int seed = 0; seed < 8; seed++)
        {
            var run = RandomRun(constraint, seed, 80);
            using var doc = Parse(run.Bytes);
            // Outside strings: no newline ever, and spaces only right after ':' or ',' (and none in Compact).
            bool inString = false, escaped = false;
            for (int i = 0; i < run.Bytes.Length; i++)
            {
                byte b = run.Bytes[i];
                if (inString)
                {
                    if (escaped) escaped = false;
                    else if (b == '\\') escaped = true;
                    else if (b == '"') inString = false;
                    continue;
                }
                if (b == '"') inString = true;
                Assert.NotEqual((byte)'\n', b);
                if (b == ' ')
                {
                    Assert.Equal(JsonWhitespace.SingleSpace, ws);
                    Assert.Contains(run.Bytes[i - 1], ":,"u8.ToArray());
                }
            }
        }
    }

    [Fact]
    public void Synthetic_65k_vocabulary_also_gives_valid_documents()
    {
        using var schemaDoc = JsonDocument.Parse(Schemas["defs-ref"]);
        var constraint = new GrammarConstraint(Grammar.FromJsonSchema(schemaDoc.RootElement), Synthetic65k);
        for (int seed = 0; seed < 3; seed++)
        {
            var run = RandomRun(constraint, seed, 60);
            using var doc = Parse(run.Bytes);
            Assert.Empty(MiniSchemaValidator.Validate(schemaDoc.RootElement, doc.RootElement));
        }
    }
}
