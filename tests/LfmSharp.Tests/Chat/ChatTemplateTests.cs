using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Chat;

public class ChatTemplateTests
{
    public static TheoryData<string, string> GoldenRenders()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in TemplateGoldens.Cases)
        {
            foreach (var e in c.GetProperty("expected").EnumerateObject())
                data.Add(c.GetProperty("name").GetString()!, e.Name);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(GoldenRenders))]
    public void Renders_exactly_what_jinja_renders(string caseName, string template)
    {
        var c = TemplateGoldens.Case(caseName);
        ChatTemplate t = template switch
        {
            "fixture" or "fixture_ext" => new Lfm2ChatTemplate(),
            "lfm25_stock" or "lfm25_ext" => new Lfm25ChatTemplate(),
            "lfm25_ascii" => new Lfm25ChatTemplate { EnsureAscii = true },
            _ => throw new InvalidDataException(template),
        };
        string got = t.Render(TemplateGoldens.Messages(c), TemplateGoldens.Tools(c),
            c.GetProperty("add_generation_prompt").GetBoolean(),
            c.TryGetProperty("keep_past_thinking", out var k) && k.GetBoolean());
        Assert.Equal(c.GetProperty("expected").GetProperty(template).GetString(), got);
        Assert.Equal(1, Count(got, "<|startoftext|>"));
        Assert.StartsWith("<|startoftext|>", got, StringComparison.Ordinal);
    }

    [Fact]
    public void Fixture_template_renders_what_llama_cpp_rendered()
    {
        // tests/TestData/fixtures/README.md, "Chat template check": llama-completion --jinja -sys "You are helpful." -p "hi".
        string source = ReadFixtureTemplate();
        var template = ChatTemplate.FromGguf(source);
        Assert.IsType<JinjaChatTemplate>(template);
        Assert.Equal(ChatTemplateFamily.Lfm2, template.Family);
        Assert.Null(template.Warning);
        Assert.False(template.GenerationPromptOpensThinking);
        string got = template.Render([LfmChatMessage.System("You are helpful."), LfmChatMessage.User("hi")]);
        Assert.Equal("<|startoftext|><|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", got);
    }

    [Fact]
    public void FromGguf_runs_the_template_and_falls_back_with_a_warning_only_when_it_cannot()
    {
        // Our own minimal LFM2.5-style template text: what FromGguf keys on is the marker layout, not the whole text.
        const string stock = "{{- bos_token -}}{%- if tools -%}{{- \"<|im_start|>system\\nList of tools: [\" -}}{%- endif -%}"
            + "{%- for message in messages -%}{{- \"<|im_start|>\" + message[\"role\"] + \"\\n\" + message[\"content\"] + \"<|im_end|>\\n\" -}}{%- endfor -%}"
            + "{%- if add_generation_prompt -%}{{- \"<|im_start|>assistant\\n\" -}}{%- endif -%}";
        var lfm25 = ChatTemplate.FromGguf(stock);
        Assert.Equal(ChatTemplateFamily.Lfm25, lfm25.Family);
        Assert.Null(lfm25.Warning);
        Assert.False(lfm25.GenerationPromptOpensThinking);

        Assert.Equal(ChatTemplateFamily.Lfm2, ChatTemplate.FromGguf(ReadFixtureTemplate()).Family);

        // Any template the engine can run is run as written, without a warning.
        var plain = ChatTemplate.FromGguf("{% for m in messages %}{{ m.content }}{% endfor %}");
        Assert.IsType<JinjaChatTemplate>(plain);
        Assert.Null(plain.Warning);
        Assert.Equal("ab", plain.Render([LfmChatMessage.User("a"), LfmChatMessage.User("b")]));

        // No template, or one the engine cannot parse or run: the hand-written layout, and a warning saying why.
        foreach (var unusable in new[] { null, "", "{% for m in messages %}{{ m.content }}", "{{ messages | no_such_filter }}" })
        {
            var t = ChatTemplate.FromGguf(unusable);
            Assert.IsNotType<JinjaChatTemplate>(t);
            Assert.Equal(ChatTemplateFamily.Lfm25, t.Family);
            Assert.False(string.IsNullOrEmpty(t.Warning));
        }
        var v1 = ChatTemplate.FromGguf("<|tool_list_start|>{% if %}");
        Assert.IsType<Lfm2ChatTemplate>(v1);
        Assert.Contains("line 1", v1.Warning, StringComparison.Ordinal);

        // An LFM2.5-2.6B-style template opens <think> in the generation prompt.
        string forced = stock.Replace("\"<|im_start|>assistant\\n\"", "\"<|im_start|>assistant\\n<think>\"", StringComparison.Ordinal);
        Assert.NotEqual(stock, forced);
        var prefill = ChatTemplate.FromGguf(forced);
        Assert.True(prefill.GenerationPromptOpensThinking);
        Assert.EndsWith("<|im_start|>assistant\n<think>", prefill.Render([LfmChatMessage.User("q")]), StringComparison.Ordinal);
    }

    [Fact]
    public void Tool_built_from_parts_serializes_like_the_same_tool_given_as_json()
    {
        var c = TemplateGoldens.Case("empty_system_with_tools");
        var fromJson = TemplateGoldens.Tools(c)![0];
        var built = new ToolDefinition(fromJson.Name, fromJson.Description, fromJson.ParametersJsonSchema);
        var messages = TemplateGoldens.Messages(c);
        Assert.Equal(c.GetProperty("expected").GetProperty("lfm25_stock").GetString(), new Lfm25ChatTemplate().Render(messages, [built]));
        Assert.Equal(["city", "unit"], built.ParameterNames);
    }

    [Fact]
    public void Openai_style_tool_exposes_its_function_name()
    {
        var t = ToolDefinition.FromJson("""{"type":"function","function":{"name":"search.web","description":"d","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}""");
        Assert.Equal("search.web", t.Name);
        Assert.Equal("d", t.Description);
        Assert.Equal(["q"], t.ParameterNames);
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[1, 2]")]
    [InlineData("""{"description": "no name"}""")]
    [InlineData("""{"name": "f", "parameters": "not an object"}""")]
    public void Bad_tool_definitions_are_rejected_with_a_reason(string json)
    {
        var e = Assert.Throws<ArgumentException>(() => ToolDefinition.FromJson(json));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void Bad_tool_call_arguments_in_history_are_rejected()
    {
        var msg = LfmChatMessage.Assistant("", toolCalls: [new ToolCall("c1", "f", "[1]")]);
        var e = Assert.Throws<ArgumentException>(() => new Lfm25ChatTemplate().Render([LfmChatMessage.User("q"), msg]));
        Assert.Contains("'f'", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new Lfm25ChatTemplate().Render([LfmChatMessage.Assistant("", toolCalls: [new ToolCall("c1", "f", "{bad")])]));
    }

    [Fact]
    public void Rendered_tool_calls_parse_back_to_the_same_arguments()
    {
        // Strings the Jinja macro would break (quotes, backslashes) must survive history → model → parser.
        string args = """{"path": "C:\\new\\dir", "quote": "say \"hi\"", "nl": "a\nb\tc", "uni": "日本 😀", "n": -1.5e-3, "i": 42, "b": false, "z": null, "list": [1, "x", {"k": true}], "obj": {"a": {"b": []}}}""";
        var call = new ToolCall("call_9", "pkg.do_it", args);
        string prompt = new Lfm25ChatTemplate().Render([LfmChatMessage.User("q"), LfmChatMessage.Assistant("ok", toolCalls: [call])], addGenerationPrompt: false);
        int start = prompt.IndexOf("<|tool_call_start|>", StringComparison.Ordinal);
        int end = prompt.IndexOf("<|tool_call_end|>", StringComparison.Ordinal) + "<|tool_call_end|>".Length;
        var events = ChatOutputParser.ParseAll(prompt[start..end]);
        var parsed = Assert.IsType<ToolCallEvent>(Assert.Single(events)).Call;
        Assert.Equal("pkg.do_it", parsed.Name);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(args), JsonNode.Parse(parsed.ArgumentsJson)), parsed.ArgumentsJson);
    }

    [Fact]
    public void Numbers_are_printed_as_python_prints_them_after_json_loads()
    {
        foreach (var pair in TemplateGoldens.Root.GetProperty("numbers").EnumerateArray())
        {
            string input = pair[0].GetString()!, expected = pair[1].GetString()!;
            Assert.True(expected == PythonJson.FormatNumber(input), $"{input}: expected {expected}, got {PythonJson.FormatNumber(input)}");
        }
    }

    [Fact]
    public void Python_strip_removes_the_information_separators_too()
    {
        Assert.Equal("x", PythonJson.Strip("\u001c\u001f \u3000\u2029x\u00a0\u0085\t"));
        Assert.Equal("", PythonJson.Strip(" \n "));
    }

    [Fact]
    public void Null_messages_or_content_are_reported()
    {
        var t = new Lfm25ChatTemplate();
        Assert.Throws<ArgumentNullException>(() => t.Render(null!));
        Assert.Throws<ArgumentException>(() => t.Render([new LfmChatMessage(LfmChatRole.User, null!)]));
        Assert.Equal("<|startoftext|><|im_start|>assistant\n", t.Render([]));
    }

    private static string ReadFixtureTemplate()
    {
        using var gguf = GgufFile.Open(TestData.Model("tiny-f32"));
        return gguf.Metadata.GetString("tokenizer.chat_template");
    }

    private static int Count(string s, string what)
    {
        int n = 0;
        for (int i = s.IndexOf(what, StringComparison.Ordinal); i >= 0; i = s.IndexOf(what, i + 1, StringComparison.Ordinal))
            n++;
        return n;
    }
}
