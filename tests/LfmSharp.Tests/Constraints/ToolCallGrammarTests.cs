using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

public class ToolCallGrammarTests
{
    public static readonly ToolFunction[] Tools =
    [
        new("get_weather", """{"type":"object","properties":{"city":{"type":"string","minLength":1},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city"]}"""),
        new("get", """{"type":"object","properties":{"id":{"type":"integer","minimum":1}},"required":["id"]}"""),
        new("search", """{"type":"object","properties":{"query":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":50},"filters":{"type":"object","properties":{"lang":{"type":"string","maxLength":5},"safe":{"type":"boolean"}},"required":["safe"]}},"required":["query"]}"""),
        new("set_flags", """{"type":"object","properties":{"flags":{"type":"array","items":{"type":"boolean"},"maxItems":4},"note":{"type":["string","null"]},"ratio":{"type":"number"}},"required":["flags","note"]}"""),
        new("ping"),
    ];

    private const int CallStart = 10, CallEnd = 11;

    [Fact]
    public void Random_logits_always_give_a_valid_call_of_a_listed_tool()
    {
        var grammar = Grammar.ForToolCalls(Tools);
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        var names = new HashSet<string>();
        for (int seed = 0; seed < 40; seed++)
        {
            var run = RandomRun(constraint, 300 + seed, 40 + seed * 3);
            var calls = ParseCalls(run.Text);
            Assert.Single(calls);
            foreach (var (name, args) in calls)
            {
                names.Add(name);
                CheckArgs(name, args);
            }
        }
        Assert.True(names.Count >= 3, "random sampling should reach several tools: " + string.Join(",", names));
    }

    [Fact]
    public void Forced_tool_and_parallel_calls()
    {
        var forced = new GrammarConstraint(Grammar.ForToolCalls(Tools, new ToolCallGrammarOptions { ForcedToolName = "search" }), FixtureVocab);
        var parallel = new GrammarConstraint(Grammar.ForToolCalls(Tools, new ToolCallGrammarOptions { AllowParallelCalls = true }), FixtureVocab);
        int multi = 0;
        for (int seed = 0; seed < 15; seed++)
        {
            var calls = ParseCalls(RandomRun(forced, seed, 60).Text);
            var (name, args) = Assert.Single(calls);
            Assert.Equal("search", name);
            CheckArgs(name, args);

            calls = ParseCalls(RandomRun(parallel, 77 + seed, 90).Text);
            Assert.NotEmpty(calls);
            foreach (var (n, a) in calls)
                CheckArgs(n, a);
            if (calls.Count > 1)
                multi++;
        }
        Assert.True(multi > 0, "parallel calls never happened");
    }

    [Fact]
    public void Markers_are_only_their_special_token_ids()
    {
        var c = new GrammarConstraint(Grammar.ForToolCalls(Tools), FixtureVocab);
        var logits = new float[FixtureVocab.Count];
        c.ApplyMask(logits);
        Assert.Equal(1, c.AllowedCount());
        Assert.Equal(0f, logits[CallStart]);
        Assert.False(c.IsAllowed(FixtureTokens.ToList().IndexOf("<")), "spelling the marker with byte tokens");
        c.Accept(CallStart);
        foreach (var piece in new[] { "[", "ping", "()", "]" })
        {
            foreach (byte b in Encoding.UTF8.GetBytes(piece))
                c.Accept(FixtureTokens.ToList().IndexOf(((char)b).ToString()));
        }
        Array.Clear(logits);
        c.ApplyMask(logits);
        Assert.Equal(1, c.AllowedCount());
        Assert.Equal(0f, logits[CallEnd]);
        Assert.Throws<InvalidOperationException>(() => c.Accept(7)); // <|im_end|> before the end marker
        c.Accept(CallEnd);
        Assert.True(c.IsComplete);
        Array.Clear(logits);
        c.ApplyMask(logits);
        Assert.Equal([2, 7], Enumerable.Range(0, logits.Length).Where(i => logits[i] == 0f));
    }

    [Theory]
    [InlineData("[get_weather(city=\"Paris\")]", true)]
    [InlineData("[get_weather(city=\"Paris\", unit=\"celsius\")]", true)]
    [InlineData("[get_weather(unit=\"celsius\", city=\"Paris\")]", false)] // schema order
    [InlineData("[get_weather()]", false)]                                 // required argument
    [InlineData("[get_weather(city='Paris')]", false)]                     // double quotes only
    [InlineData("[get_weather(city=\"Paris\",unit=\"kelvin\")]", false)]
    [InlineData("[get(id=7)]", true)]
    [InlineData("[get(id=0)]", false)]                                     // minimum 1
    [InlineData("[search(query=\"a\\n\\u00e9\", filters={\"safe\": True})]", true)]
    [InlineData("[search(query=\"x\", filters={\"safe\": true})]", false)] // Python literals
    [InlineData("[search(query=\"\\/\")]", false)]                        // \/ means two chars in Python
    [InlineData("[search(query=\"\\ud83d\\ude00\")]", false)]             // no surrogate escapes in Python
    [InlineData("[search(query=\"🙂\")]", true)]
    [InlineData("[set_flags(flags=[True, False], note=None, ratio=-1.5e3)]", true)]
    [InlineData("[set_flags(flags=[], note=\"n\")]", true)]
    [InlineData("[ping()]", true)]
    [InlineData("[ping(x=1)]", false)]
    [InlineData("[ping(), ping()]", false)]                                // parallel calls are off
    [InlineData("[unknown()]", false)]
    public void Accepts_exactly_the_pythonic_form(string body, bool valid)
    {
        var m = new GrammarMatcher(Grammar.ForToolCalls(Tools));
        Assert.True(m.TryAdvanceSpecial("<|tool_call_start|>"));
        bool ok = m.TryAdvance(body) && m.TryAdvanceSpecial("<|tool_call_end|>") && m.IsComplete;
        Assert.Equal(valid, ok);
    }

    [Fact]
    public void Every_one_of_many_similar_tools_can_be_called()
    {
        var tools = Enumerable.Range(0, 40).Select(i => new ToolFunction($"get_item_{i}", """{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}""")).ToArray();
        var grammar = Grammar.ForToolCalls(tools);
        for (int i = 0; i < tools.Length; i++)
        {
            var m = new GrammarMatcher(grammar);
            Assert.True(m.TryAdvanceSpecial("<|tool_call_start|>"));
            Assert.True(m.TryAdvance($"[get_item_{i}(x={i})]"), tools[i].Name);
            Assert.True(m.TryAdvanceSpecial("<|tool_call_end|>"));
            Assert.True(m.IsComplete);
        }
        var c = new GrammarConstraint(grammar, FixtureVocab);
        var seen = new HashSet<string>();
        for (int seed = 0; seed < 30; seed++)
            seen.Add(Assert.Single(ParseCalls(RandomRun(c, seed, 40).Text)).Name);
        Assert.True(seen.Count > 10, "random calls should spread over many of the 40 tools: " + seen.Count);
    }

    [Fact]
    public void Extra_keyword_arguments_only_when_the_schema_allows_them()
    {
        var open = Grammar.ForToolCalls([new ToolFunction("f", """{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}}""")]);
        var closed = Grammar.ForToolCalls([new ToolFunction("f", """{"type":"object","properties":{"a":{"type":"integer"}}}""")]);
        bool Call(Grammar g, string body)
        {
            var m = new GrammarMatcher(g);
            return m.TryAdvanceSpecial("<|tool_call_start|>") && m.TryAdvance(body) && m.TryAdvanceSpecial("<|tool_call_end|>") && m.IsComplete;
        }
        Assert.True(Call(open, "[f(a=1, note_2=\"x\")]"));
        Assert.False(Call(open, "[f(a=1, note=2)]"));     // extra values follow additionalProperties
        Assert.False(Call(open, "[f(a=1, 2x=\"x\")]"));   // keyword names are identifiers
        Assert.False(Call(open, "[f(a=1, a=\"x\")]"));    // never a defined name again
        Assert.True(Call(closed, "[f(a=1)]"));
        Assert.False(Call(closed, "[f(a=1, b=\"x\")]"));  // tool parameters get no extras unless asked
    }

    [Fact]
    public void Bad_tool_definitions_are_reported()
    {
        Assert.Throws<ArgumentException>(() => Grammar.ForToolCalls([]));
        Assert.Throws<ArgumentException>(() => Grammar.ForToolCalls([new ToolFunction("a b")]));
        Assert.Throws<ArgumentException>(() => Grammar.ForToolCalls(Tools, new ToolCallGrammarOptions { ForcedToolName = "nope" }));
        var ex = Assert.Throws<NotSupportedException>(() => Grammar.ForToolCalls([new ToolFunction("f", """{"type":"object","properties":{"first-name":{"type":"string"}}}""")]));
        Assert.Contains("first-name", ex.Message);
        ex = Assert.Throws<NotSupportedException>(() => Grammar.ForToolCalls([new ToolFunction("f", """{"type":"object","properties":{"s":{"type":"string","pattern":"^a"}}}""")]));
        Assert.Contains("pattern", ex.Message);
        var g = Grammar.ForToolCalls(Tools, new ToolCallGrammarOptions { StartMarker = "<|no_such_token|>" });
        Assert.Throws<ArgumentException>(() => new GrammarConstraint(g, FixtureVocab));
    }

    private static void CheckArgs(string name, JsonObject args)
    {
        var tool = Tools.Single(t => t.Name == name);
        if (tool.ParametersSchema is null)
        {
            Assert.Empty(args);
            return;
        }
        using var schema = JsonDocument.Parse(tool.ParametersSchema);
        using var doc = JsonDocument.Parse(args.ToJsonString());
        var errors = MiniSchemaValidator.Validate(schema.RootElement, doc.RootElement);
        Assert.True(errors.Count == 0, $"{name}{args.ToJsonString()}: {string.Join("; ", errors)}");
    }

    /// <summary>An independent reader of <c>&lt;|tool_call_start|&gt;[f(a=1, …), …]&lt;|tool_call_end|&gt;</c> with Python literals.</summary>
    public static List<(string Name, JsonObject Args)> ParseCalls(string text)
    {
        const string start = "<|tool_call_start|>", end = "<|tool_call_end|>";
        Assert.StartsWith(start, text);
        Assert.EndsWith(end, text);
        var p = new PyReader(text[start.Length..^end.Length]);
        var calls = new List<(string, JsonObject)>();
        p.Expect('[');
        do
        {
            p.SkipSpaces();
            string name = p.ReadUntil('(');
            p.Expect('(');
            var args = new JsonObject();
            while (!p.TryConsume(')'))
            {
                if (args.Count > 0)
                {
                    p.Expect(',');
                    p.SkipSpaces();
                }
                string key = p.ReadUntil('=');
                p.Expect('=');
                args[key] = p.ReadValue();
            }
            calls.Add((name, args));
        }
        while (p.TryConsume(','));
        p.Expect(']');
        Assert.True(p.AtEnd, "trailing text after the call list");
        return calls;
    }

    private sealed class PyReader(string s)
    {
        private int _i;

        public bool AtEnd => _i == s.Length;

        public void SkipSpaces()
        {
            while (_i < s.Length && s[_i] is ' ' or '\n' or '\t')
                _i++;
        }

        public void Expect(char c)
        {
            Assert.True(_i < s.Length && s[_i] == c, $"expected '{c}' at {_i} in {s}");
            _i++;
        }

        public bool TryConsume(char c)
        {
            if (_i < s.Length && s[_i] == c)
            {
                _i++;
                return true;
            }
            return false;
        }

        public string ReadUntil(char c)
        {
            int j = s.IndexOf(c, _i);
            Assert.True(j > _i, $"missing '{c}' in {s}");
            string r = s[_i..j];
            _i = j;
            return r;
        }

        public JsonNode? ReadValue()
        {
            SkipSpaces();
            char c = s[_i];
            if (c == '"')
            {
                var sb = new StringBuilder();
                _i++;
                while (s[_i] != '"')
                {
                    if (s[_i] != '\\')
                    {
                        sb.Append(s[_i++]);
                        continue;
                    }
                    char e = s[_i + 1];
                    _i += 2;
                    switch (e)
                    {
                        case 'n': sb.Append('\n'); break;
                        case 't': sb.Append('\t'); break;
                        case 'r': sb.Append('\r'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'u':
                            sb.Append((char)int.Parse(s.AsSpan(_i, 4), NumberStyles.HexNumber));
                            _i += 4;
                            break;
                        case '"' or '\\' or '\'': sb.Append(e); break;
                        default: throw new InvalidDataException($"escape \\{e} means something else in Python");
                    }
                }
                _i++;
                return JsonValue.Create(sb.ToString());
            }
            if (c == '[')
            {
                _i++;
                var arr = new JsonArray();
                SkipSpaces();
                while (!TryConsume(']'))
                {
                    if (arr.Count > 0)
                        Expect(',');
                    arr.Add(ReadValue());
                    SkipSpaces();
                }
                return arr;
            }
            if (c == '{')
            {
                _i++;
                var obj = new JsonObject();
                SkipSpaces();
                while (!TryConsume('}'))
                {
                    if (obj.Count > 0)
                        Expect(',');
                    var key = ReadValue()!.GetValue<string>();
                    SkipSpaces();
                    Expect(':');
                    obj[key] = ReadValue();
                    SkipSpaces();
                }
                return obj;
            }
            foreach (var (word, value) in new (string, JsonNode?)[] { ("True", JsonValue.Create(true)), ("False", JsonValue.Create(false)), ("None", null) })
            {
                if (string.CompareOrdinal(s, _i, word, 0, word.Length) == 0)
                {
                    _i += word.Length;
                    return value;
                }
            }
            int j = _i;
            while (j < s.Length && (char.IsDigit(s[j]) || s[j] is '-' or '+' or '.' or 'e' or 'E'))
                j++;
            Assert.True(j > _i, $"unexpected '{c}' at {_i} in {s}");
            var num = JsonNode.Parse(s[_i..j]);
            _i = j;
            return num;
        }
    }
}
