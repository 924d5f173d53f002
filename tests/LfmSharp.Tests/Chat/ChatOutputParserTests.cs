using System.Text;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Tests.Chat;

public class ChatOutputParserTests
{
    private static readonly ToolDefinition Weather = new("get_weather", "Current weather",
        """{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city"]}""");
    private static readonly ToolDefinition Lookup = new("lookup", "Find a place",
        """{"type":"object","properties":{"zip":{"type":"string"},"count":{"type":"integer"}}}""");
    private static readonly ToolDefinition Status = new("get_candidate_status", null,
        """{"type":"object","properties":{"candidate_id":{"type":"string"}}}""");

    private static readonly ChatOutputParserOptions AnyTool = new();
    private static readonly ChatOutputParserOptions KnownTools = new() { Tools = [Weather, Lookup, Status] };

    // Expected events, written from the spec: R = reasoning, C = content, T = tool call (id, name, arguments),
    // E = parse error (a fragment of the message, and the exact raw text).
    private static GenerationEvent R(string s) => new ReasoningDelta(s);

    private static GenerationEvent C(string s) => new ContentDelta(s);

    private static GenerationEvent T(string id, string name, string args) => new ToolCallEvent(new ToolCall(id, name, args));

    private static GenerationEvent E(string messagePart, string raw) => new ParseErrorEvent(messagePart, raw);

    private sealed record Fixture(string Name, string Output, ChatOutputParserOptions Options, GenerationEvent[] Expected);

    private static readonly string Deep = "<|tool_call_start|>[f(x=" + new string('[', 10_000) + ")]<|tool_call_end|>after";

    private static readonly Fixture[] Fixtures =
    [
        new("thinking_then_answer", "<think>\nLet me think.\nStep 2.\n</think>\n\nThe answer is 4.", AnyTool,
            [R("Let me think.\nStep 2."), C("The answer is 4.")]),
        new("plain_answer", "Hello, world!", AnyTool, [C("Hello, world!")]),
        new("model_card_call_then_text",
            "<think>\nNeed the status.\n</think>\n\n<|tool_call_start|>[get_candidate_status(candidate_id=\"12345\")]<|tool_call_end|>Checking the current status of candidate ID 12345.",
            KnownTools,
            [R("Need the status."), T("call_0", "get_candidate_status", """{"candidate_id":"12345"}"""), C("Checking the current status of candidate ID 12345.")]),
        new("two_calls", "<|tool_call_start|>[get_weather(city=\"Paris\"), get_weather(city='Berlin', unit='celsius')]<|tool_call_end|>", KnownTools,
            [T("call_0", "get_weather", """{"city":"Paris"}"""), T("call_1", "get_weather", """{"city":"Berlin","unit":"celsius"}""")]),
        new("json_call", """<|tool_call_start|>{"name": "get_weather", "arguments": {"city": "Paris"}}<|tool_call_end|>""", KnownTools,
            [T("call_0", "get_weather", """{"city":"Paris"}""")]),
        new("json_list", """<|tool_call_start|>[{"name":"a","arguments":{}}, {"name":"b","parameters":{"x":1,"y":[true,null]}}]<|tool_call_end|>""", AnyTool,
            [T("call_0", "a", "{}"), T("call_1", "b", """{"x":1,"y":[true,null]}""")]),
        new("openai_style_string_arguments", """<|tool_call_start|>{"type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}<|tool_call_end|>""", KnownTools,
            [T("call_0", "get_weather", """{"city":"Paris"}""")]),
        new("bare_call_without_brackets", "<|tool_call_start|>get_weather(city=\"Rome\")<|tool_call_end|>", KnownTools,
            [T("call_0", "get_weather", """{"city":"Rome"}""")]),
        new("unknown_tool", "Sure.<|tool_call_start|>[delete_all(confirm=True)]<|tool_call_end|>", KnownTools,
            [C("Sure."), E("Unknown tool 'delete_all'", "<|tool_call_start|>[delete_all(confirm=True)]<|tool_call_end|>")]),
        new("batch_is_atomic", "<|tool_call_start|>[get_weather(city=\"Paris\"), rm(path=\"/\")]<|tool_call_end|>", KnownTools,
            [E("Unknown tool 'rm'", "<|tool_call_start|>[get_weather(city=\"Paris\"), rm(path=\"/\")]<|tool_call_end|>")]),
        new("unclosed_string", "<|tool_call_start|>[get_weather(city=\"Paris)]<|tool_call_end|>", KnownTools,
            [E("Unterminated string opened at offset 18", "<|tool_call_start|>[get_weather(city=\"Paris)]<|tool_call_end|>")]),
        new("unterminated_at_end", "Let me check.<|tool_call_start|>[get_weather(city=\"Paris\")]", KnownTools,
            [C("Let me check."), E("not terminated", "<|tool_call_start|>[get_weather(city=\"Paris\")]")]),
        new("prompt_opened_thinking", "I am thinking.\n</think>\nAnswer.", AnyTool with { StartInReasoning = true },
            [R("I am thinking."), C("Answer.")]),
        new("prompt_opened_thinking_and_model_repeats_it", "<think>\nx</think>y", AnyTool with { StartInReasoning = true },
            [R("x"), C("y")]),
        new("thinking_cut_off", "<think>\nhmm, hmm ", AnyTool, [R("hmm, hmm")]),
        new("call_inside_reasoning", "<think>plan <|tool_call_start|>[get_weather(city=\"Oslo\")]<|tool_call_end|> more</think>done", KnownTools,
            [R("plan"), T("call_0", "get_weather", """{"city":"Oslo"}"""), R("  more"), C("done")]),
        new("stray_think_end_in_answer", "Answer</think> continues", AnyTool, [C("Answer continues")]),
        new("stray_tool_call_end", "text<|tool_call_end|>more", AnyTool,
            [C("text"), E("without a preceding", "<|tool_call_end|>"), C("more")]),
        new("angle_brackets_are_text", "a < b and <b>bold</b> <|im_x|> <thinking> <|tool_call", AnyTool,
            [C("a < b and <b>bold</b> <|im_x|> <thinking> <|tool_call")]),
        new("python_values", "<|tool_call_start|>[f(a=[1, {'k': None}], b=(1, 2), c=True, d=-2.5e-3, e='it\\'s')]<|tool_call_end|>", AnyTool,
            [T("call_0", "f", """{"a":[1,{"k":null}],"b":[1,2],"c":true,"d":-2.5e-3,"e":"it's"}""")]),
        new("dotted_name", "<|tool_call_start|>[Calendar.create_event(title=\"Standup\", time=\"09:00\")]<|tool_call_end|>", AnyTool,
            [T("call_0", "Calendar.create_event", """{"title":"Standup","time":"09:00"}""")]),
        new("positional_mapped_by_schema", "<|tool_call_start|>[get_weather(\"Paris\", \"celsius\")]<|tool_call_end|>", KnownTools,
            [T("call_0", "get_weather", """{"city":"Paris","unit":"celsius"}""")]),
        new("positional_without_schema", "<|tool_call_start|>[get_weather(\"Paris\")]<|tool_call_end|>", AnyTool,
            [E("Positional argument", "<|tool_call_start|>[get_weather(\"Paris\")]<|tool_call_end|>")]),
        new("leading_zero_numbers", "<|tool_call_start|>[lookup(zip=02134, count=007)]<|tool_call_end|>", KnownTools,
            [T("call_0", "lookup", """{"zip":"02134","count":7}""")]),
        new("empty_block", "<|tool_call_start|> <|tool_call_end|>ok", AnyTool,
            [E("empty", "<|tool_call_start|> <|tool_call_end|>"), C("ok")]),
        new("two_blocks", "<|tool_call_start|>[a()]<|tool_call_end|>\n<|tool_call_start|>[b(x=1)]<|tool_call_end|>", AnyTool,
            [T("call_0", "a", "{}"), T("call_1", "b", """{"x":1}""")]),
        new("restart_inside_open_call", "<|tool_call_start|>[a(<|tool_call_start|>[b()]<|tool_call_end|>", AnyTool,
            [E("before another", "<|tool_call_start|>[a("), T("call_0", "b", "{}")]),
        new("unicode", "<think>Überlegung 🤔</think>答えは4です。😀", AnyTool, [R("Überlegung 🤔"), C("答えは4です。😀")]),
        new("blank_reasoning", "<think>\n\n</think>\n\nHi", AnyTool, [C("Hi")]),
        new("colon_keyword", "<|tool_call_start|>[get_weather(city: \"Paris\")]<|tool_call_end|>", KnownTools,
            [T("call_0", "get_weather", """{"city":"Paris"}""")]),
        new("json_literals", "<|tool_call_start|>[f(flag=true, none=null, s=\"\\u00e9\\n\")]<|tool_call_end|>", AnyTool,
            [T("call_0", "f", """{"flag":true,"none":null,"s":"é\n"}""")]),
        new("text_after_calls", "<|tool_call_start|>[f()] trailing<|tool_call_end|>", AnyTool,
            [E("Unexpected text after the tool calls at offset 6", "<|tool_call_start|>[f()] trailing<|tool_call_end|>")]),
        new("untrimmed", "<think>\nx\n</think>\n\ny ", AnyTool with { TrimWhitespace = false }, [R("\nx\n"), C("\n\ny ")]),
        new("whitespace_inside_is_kept", "<think> a \n\n b </think> c \n d ", AnyTool, [R("a \n\n b"), C("c \n d")]),
        new("unquoted_value", "<|tool_call_start|>[get_weather(city=Paris)]<|tool_call_end|>", KnownTools,
            [E("Unquoted name 'Paris'", "<|tool_call_start|>[get_weather(city=Paris)]<|tool_call_end|>")]),
        new("unmarked_call", "[get_weather(city=\"Paris\")]", KnownTools, [T("call_0", "get_weather", """{"city":"Paris"}""")]),
        new("unmarked_call_then_text", "<think>x</think>\n\n[get_weather(city='Paris')] Checking now.", KnownTools,
            [R("x"), T("call_0", "get_weather", """{"city":"Paris"}"""), C("Checking now.")]),
        new("unmarked_call_then_marked_call", "[get_weather(city='A')]<|tool_call_start|>[lookup(zip='1')]<|tool_call_end|>", KnownTools,
            [T("call_0", "get_weather", """{"city":"A"}"""), T("call_1", "lookup", """{"zip":"1"}""")]),
        new("bracket_text_is_content", "[1, 2, 3] is a list", KnownTools, [C("[1, 2, 3] is a list")]),
        new("tool_name_prefix_is_content", " [get_w is not a call]", KnownTools, [C("[get_w is not a call]")]),
        new("unmarked_needs_known_tools", "[get_weather(city=\"Paris\")]", AnyTool, [C("[get_weather(city=\"Paris\")]")]),
        new("unmarked_malformed_stays_content", "[get_weather(city=Paris)] ok", KnownTools, [C("[get_weather(city=Paris)] ok")]),
        new("unmarked_not_at_answer_start", "Sure: [get_weather(city='A')]", KnownTools, [C("Sure: [get_weather(city='A')]")]),
        new("deep_nesting", Deep, AnyTool, [E("Nesting deeper than 64 levels", Deep[..^"after".Length]), C("after")]),
    ];

    public static TheoryData<string> FixtureNames() => new(Fixtures.Select(f => f.Name));

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void Fixture_gives_the_expected_events(string name)
    {
        var f = Fixtures.Single(x => x.Name == name);
        var got = Merge(ChatOutputParser.ParseAll(f.Output, f.Options));
        Assert.True(f.Expected.Length == got.Count, $"expected {f.Expected.Length} events, got {got.Count}: {string.Join(" | ", got)}");
        for (int i = 0; i < got.Count; i++)
        {
            switch (f.Expected[i], got[i])
            {
                case (ToolCallEvent e, ToolCallEvent g):
                    Assert.Equal(e.Call.Id, g.Call.Id);
                    Assert.Equal(e.Call.Name, g.Call.Name);
                    Assert.True(JsonNode.DeepEquals(JsonNode.Parse(e.Call.ArgumentsJson), JsonNode.Parse(g.Call.ArgumentsJson)),
                        $"arguments: expected {e.Call.ArgumentsJson}, got {g.Call.ArgumentsJson}");
                    break;
                case (ParseErrorEvent e, ParseErrorEvent g):
                    Assert.Contains(e.Message, g.Message, StringComparison.Ordinal);
                    Assert.Equal(e.RawText, g.RawText);
                    break;
                default:
                    Assert.Equal(f.Expected[i], got[i]);
                    break;
            }
        }
    }

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void Fixture_gives_the_same_events_at_every_split(string name)
    {
        var f = Fixtures.Single(x => x.Name == name);
        var whole = Merge(ChatOutputParser.ParseAll(f.Output, f.Options));
        string s = f.Output;
        // Every two-piece split (a stride for the 10 kB nesting case), every three-piece split of short outputs,
        // and one character at a time.
        int stride = s.Length > 2000 ? 97 : 1;
        for (int i = 0; i <= s.Length; i += stride)
            Assert.Equal(whole, Feed(f.Options, s[..i], s[i..]));
        if (s.Length <= 64)
        {
            for (int i = 0; i <= s.Length; i++)
            {
                for (int j = i; j <= s.Length; j++)
                    Assert.Equal(whole, Feed(f.Options, s[..i], s[i..j], s[j..]));
            }
        }
        Assert.Equal(whole, Feed(f.Options, s.Select(c => c.ToString()).ToArray()));
    }

    [Fact]
    public void Tool_call_values_match_python_ast_literal_eval()
    {
        foreach (var c in TemplateGoldens.Root.GetProperty("tool_calls").EnumerateArray())
        {
            string text = c.GetProperty("text").GetString()!;
            var got = ChatOutputParser.ParseAll("<|tool_call_start|>" + text + "<|tool_call_end|>");
            var expected = c.GetProperty("calls").EnumerateArray().ToList();
            Assert.True(expected.Count == got.Count, $"{text}: {string.Join(" | ", got)}");
            for (int i = 0; i < got.Count; i++)
            {
                var call = Assert.IsType<ToolCallEvent>(got[i]).Call;
                Assert.Equal(expected[i].GetProperty("name").GetString(), call.Name);
                string want = expected[i].GetProperty("arguments").GetString()!;
                Assert.True(JsonNode.DeepEquals(JsonNode.Parse(want), JsonNode.Parse(call.ArgumentsJson)), $"{text}: expected {want}, got {call.ArgumentsJson}");
            }
        }
    }

    [Theory]
    [InlineData("[f(x=1", "Unclosed argument list of 'f'")]
    [InlineData("[f(x=[1, 2)]", "Expected ',' or ']'")]
    [InlineData("[f(x=1) g(y=2)]", "Expected ',' or ']' after a call")]
    [InlineData("[f(a=1, a=2)]", "Argument 'a' given twice")]
    [InlineData("[f(a=1, 2)]", "Positional argument follows a keyword argument")]
    [InlineData("[f(x=\"\\ud800\")]", "lone surrogate")]
    [InlineData("[f(x=\"\\x4\")]", "Escape needs 2 hex digits")]
    [InlineData("[f(x=1.2.3)]", "Malformed number")]
    [InlineData("[f(x=1e)]", "Exponent without digits")]
    [InlineData("[f(x=inf)]", "'inf' has no JSON form")]
    [InlineData("[f(x={1, 2})]", "Expected ':' after a dict key")]
    [InlineData("[f(x={[1]: 2})]", "A dict key must be")]
    [InlineData("[(x=1)]", "Expected a function name")]
    [InlineData("[f x=1]", "Expected '(' after the function name 'f'")]
    [InlineData("[]", "no calls")]
    [InlineData("{\"arguments\": {}}", "needs a string \"name\"")]
    [InlineData("{\"name\": \"f\", \"arguments\": [1]}", "must be an object")]
    [InlineData("{\"name\": \"f\", \"arguments\": \"{bad\"}", "arguments string of 'f'")]
    public void Malformed_calls_name_the_problem_and_the_offset(string text, string messagePart)
    {
        var e = Assert.IsType<ParseErrorEvent>(Assert.Single(ChatOutputParser.ParseAll("<|tool_call_start|>" + text + "<|tool_call_end|>")));
        Assert.Contains(messagePart, e.Message, StringComparison.Ordinal);
        Assert.Contains("at offset", e.Message, StringComparison.Ordinal);
        Assert.Equal("<|tool_call_start|>" + text + "<|tool_call_end|>", e.RawText);
    }

    [Fact]
    public void Json_slash_escape_and_unknown_escapes()
    {
        var call = Assert.IsType<ToolCallEvent>(Assert.Single(ChatOutputParser.ParseAll("<|tool_call_start|>[f(u=\"a\\/b\", w=\"C:\\dir\")]<|tool_call_end|>"))).Call;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"u":"a/b","w":"C:\\dir"}"""), JsonNode.Parse(call.ArgumentsJson)), call.ArgumentsJson);
    }

    [Fact]
    public void Ids_come_from_the_factory_and_keep_counting_across_blocks()
    {
        var options = new ChatOutputParserOptions { ToolCallIdFactory = n => $"turn3_{n}" };
        var events = ChatOutputParser.ParseAll("<|tool_call_start|>[a(), b()]<|tool_call_end|><|tool_call_start|>[c()]<|tool_call_end|>", options);
        Assert.Equal(["turn3_0", "turn3_1", "turn3_2"], events.Cast<ToolCallEvent>().Select(e => e.Call.Id));
    }

    [Fact]
    public void Section_and_counters_follow_the_output()
    {
        var p = new ChatOutputParser(KnownTools);
        Assert.Equal(ChatOutputSection.Content, p.Section);
        p.Push("<think>");
        Assert.True(p.InReasoning);
        p.Push("x</thi");
        Assert.True(p.InReasoning); // the close is still only a prefix
        p.Push("nk><|tool_call_start|>[get_weather(city='A')");
        Assert.Equal(ChatOutputSection.ToolCall, p.Section);
        p.Push("]<|tool_call_end|><|tool_call_start|>[nope()]<|tool_call_end|>");
        Assert.Equal(ChatOutputSection.Content, p.Section);
        Assert.Equal(1, p.ToolCallCount);
        Assert.Equal(1, p.ParseErrorCount);
        p.Finish();
        Assert.Throws<InvalidOperationException>(() => p.Push("more"));
        p.Reset();
        Assert.Equal(ChatOutputSection.Content, p.Section);
        Assert.Equal(0, p.ToolCallCount);
        Assert.Equal([C("again")], Merge([.. p.Push("again"), .. p.Finish()]));
    }

    [Fact]
    public void Random_garbage_never_throws_and_streams_like_batch()
    {
        string[] atoms =
        [
            "<think>", "</think>", "<|tool_call_start|>", "<|tool_call_end|>", "<", "<|", "</", "<|tool_call", "[", "]", "(", ")",
            "{", "}", "\"", "'", "\\", ",", "=", ":", " ", "\n", "f", "get_weather", "x", "1", "-", ".", "e", "True", "None", "é", "😀",
            "\ud800", "\"\"\"", "0x", "[f(a=", "{\"name\": ", "\"arguments\"", "\\u12", "\\U0010FFFF", "\\x", "\t", "#",
        ];
        var rng = new Random(20240611);
        for (int iter = 0; iter < 1500; iter++)
        {
            var sb = new StringBuilder();
            int n = rng.Next(1, 60);
            for (int k = 0; k < n; k++)
            {
                if (rng.Next(8) == 0)
                    sb.Append((char)rng.Next(0, 0x3000));
                else
                    sb.Append(atoms[rng.Next(atoms.Length)]);
            }
            string s = sb.ToString();
            var options = (iter % 3) switch
            {
                0 => AnyTool,
                1 => KnownTools,
                _ => new ChatOutputParserOptions { StartInReasoning = true, TrimWhitespace = false, MaxNestingDepth = 3 },
            };
            var whole = Merge(ChatOutputParser.ParseAll(s, options));
            var pieces = new List<string>();
            for (int i = 0; i < s.Length;)
            {
                int len = Math.Min(s.Length - i, rng.Next(1, 8));
                pieces.Add(s.Substring(i, len));
                i += len;
            }
            Assert.Equal(whole, Feed(options, [.. pieces]));
            // Nothing is lost: every tool-call text reappears in a call or in an error's raw text.
            Assert.All(whole.OfType<ParseErrorEvent>(), e => Assert.Contains(e.RawText, s, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Long_outputs_take_linear_time()
    {
        // 4 MB of answer in 4-character chunks, and a 1 MB tool call in one piece: quadratic work would hang here.
        var p = new ChatOutputParser();
        var events = new List<GenerationEvent>();
        long chars = 0;
        for (int i = 0; i < 1_000_000; i++)
            p.Push(i % 50 == 0 ? "<th\n" : "abc ", events);
        p.Finish(events);
        foreach (var e in events)
            chars += ((ContentDelta)e).Text.Length;
        Assert.Equal(4_000_000 - 1, chars); // the final space is trimmed

        string bigArg = new('x', 1_000_000);
        var call = Assert.IsType<ToolCallEvent>(Assert.Single(ChatOutputParser.ParseAll($"<|tool_call_start|>[f(s=\"{bigArg}\")]<|tool_call_end|>"))).Call;
        Assert.Equal(1_000_000 + 8, call.ArgumentsJson.Length);
    }

    internal static List<GenerationEvent> Feed(ChatOutputParserOptions options, params string[] pieces)
    {
        var p = new ChatOutputParser(options);
        var events = new List<GenerationEvent>();
        foreach (var piece in pieces)
            p.Push(piece, events);
        p.Finish(events);
        return Merge(events);
    }

    /// <summary>Joins adjacent deltas of the same kind: only their concatenation is meaningful.</summary>
    internal static List<GenerationEvent> Merge(IEnumerable<GenerationEvent> events)
    {
        var result = new List<GenerationEvent>();
        foreach (var e in events)
        {
            switch (e, result.Count > 0 ? result[^1] : null)
            {
                case (ReasoningDelta a, ReasoningDelta b):
                    result[^1] = new ReasoningDelta(b.Text + a.Text);
                    break;
                case (ContentDelta a, ContentDelta b):
                    result[^1] = new ContentDelta(b.Text + a.Text);
                    break;
                default:
                    Assert.False(e is ReasoningDelta { Text.Length: 0 } or ContentDelta { Text.Length: 0 }, "empty delta");
                    result.Add(e);
                    break;
            }
        }
        return result;
    }
}
