using System.Text;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Templating;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Templating;

public class JinjaChatTemplateTests
{
    /// <summary>The corpus again, but through the chat API: conversations as <see cref="LfmChatMessage"/> and
    /// <see cref="ToolDefinition"/>, so the message mapping (OpenAI shape, parsed arguments, reasoning fields) is
    /// what the goldens were rendered from.</summary>
    [Theory]
    [MemberData(nameof(CorpusTests.Templates), MemberType = typeof(CorpusTests))]
    public void Chat_messages_render_what_jinja2_renders(string name)
    {
        var golden = TemplateCorpus.Golden(name);
        var spec = TemplateCorpus.Spec;
        JinjaChatTemplate template;
        try
        {
            template = new JinjaChatTemplate(TemplateCorpus.Source(name), spec.GetProperty("bos_token").GetString()!,
                spec.GetProperty("eos_token").GetString()!, () => TemplateCorpus.Date);
        }
        catch (TemplateException)
        {
            // The template fails on a one-message conversation (FromGguf falls back): so did Jinja2, on every case.
            Assert.All(golden.GetProperty("cases").EnumerateArray(), c => Assert.True(c.TryGetProperty("error", out _)));
            return;
        }
        var failures = new StringBuilder();
        foreach (var c in golden.GetProperty("cases").EnumerateArray())
        {
            var conv = TemplateCorpus.Conversation(c.GetProperty("conversation").GetString()!);
            string? got = null, error = null;
            try
            {
                got = template.Render(Messages(conv), Tools(conv), conv.GetProperty("add_generation_prompt").GetBoolean(), Kwargs(conv));
            }
            catch (ArgumentException e) when (e.InnerException is TemplateException)
            {
                error = e.Message;
            }
            CorpusTests.Compare(failures, conv.GetProperty("name").GetString()!, c, got, error);
        }
        Assert.True(failures.Length == 0, $"{name}:\n{failures}");
    }

    [Fact]
    public void Our_template_files_are_the_ones_the_synthetic_models_embed()
    {
        string Own(string n) => File.ReadAllText(Path.Combine(TemplateCorpus.DataDir, "own", n + ".jinja")).TrimEnd('\n');
        Assert.Equal(LfmSharp.Tokenizers.SyntheticVocabulary.ChatTemplate.TrimEnd('\n'), Own("lfm2-fixture"));
        Assert.Equal(LfmSharp.Synthetic.ChatTemplates.Lfm25.TrimEnd('\n'), Own("lfm25-synthetic"));
    }

    [Fact]
    public void The_finetune_template_writes_the_date_the_tool_array_thinking_and_calls()
    {
        var template = new JinjaChatTemplate(TemplateCorpus.Source("lfm25-finetune"), "<|startoftext|>", "<|im_end|>", () => new DateTime(2031, 2, 3));
        var tools = new[] { ToolDefinition.FromJson("""{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}""") };
        string text = template.Render([
            LfmChatMessage.System("Be brief."), LfmChatMessage.User("Weather?"),
            LfmChatMessage.Assistant("", "Call it.", [new ToolCall("c1", "get_weather", """{"city": "Oslo", "days": 2}""")]),
        ], tools, addGenerationPrompt: false);
        Assert.Contains("Today's date: 03 February 2031.\nBe brief.\nList of tools: [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"", text, StringComparison.Ordinal);
        Assert.Contains("<think>Call it.</think>\n<|tool_call_start|>[get_weather(city=\"Oslo\", days=2)]<|tool_call_end|>", text, StringComparison.Ordinal);
        Assert.False(template.GenerationPromptOpensThinking);
    }

    [Theory]
    [InlineData("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}", true)]
    [InlineData("{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n\n</think>\n\n{% endif %}", false)]
    [InlineData("{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", false)]
    [InlineData("{# <think> is only mentioned #}{% for m in messages %}{{ m.content }}{% endfor %}{% if add_generation_prompt %}A:{% endif %}", false)]
    public void Whether_the_generation_prompt_opens_thinking_is_learned_by_rendering(string source, bool opens)
    {
        Assert.Equal(opens, new JinjaChatTemplate(source).GenerationPromptOpensThinking);
    }

    [Fact]
    public void Across_the_corpus_thinking_prefill_agrees_with_what_jinja2_rendered()
    {
        // Jinja2's own answer: the text add_generation_prompt adds to a one-user-message conversation ends in <think>.
        int opening = 0;
        foreach (var name in TemplateCorpus.GoldenNames())
        {
            var cases = TemplateCorpus.Golden(name).GetProperty("cases").EnumerateArray()
                .ToDictionary(c => c.GetProperty("conversation").GetString()!, c => c.TryGetProperty("output", out var o) ? o.GetString() : null);
            if (cases.GetValueOrDefault("user_only") is not string with || cases.GetValueOrDefault("user_only_no_prompt") is not string without)
                continue;
            bool expected = with.StartsWith(without, StringComparison.Ordinal) && with[without.Length..].TrimEnd().EndsWith("<think>", StringComparison.Ordinal);
            opening += expected ? 1 : 0;
            Assert.True(expected == new JinjaChatTemplate(TemplateCorpus.Source(name)).GenerationPromptOpensThinking, name);
        }
        Assert.True(opening >= 5, $"only {opening} corpus templates open <think>");
    }

    [Fact]
    public void Template_kwargs_reach_the_template()
    {
        var t = new JinjaChatTemplate("{{ enable_thinking | default('unset') }}|{{ keep_past_thinking | default(false) }}");
        Assert.Equal("unset|False", t.Render([LfmChatMessage.User("q")]));
        Assert.Equal("unset|True", t.Render([LfmChatMessage.User("q")], keepPastThinking: true));
        var kwargs = new Dictionary<string, JsonElement> { ["enable_thinking"] = JsonDocument.Parse("false").RootElement };
        Assert.Equal("False|False", t.Render([LfmChatMessage.User("q")], null, true, kwargs));
        var options = new ChatRequestOptions { KeepPastThinking = true, ChatTemplateKwargs = kwargs };
        Assert.Equal("False|True", t.Render([LfmChatMessage.User("q")], null, true, options.TemplateKwargs()));
    }

    [Fact]
    public void The_load_option_replaces_the_files_template_and_a_broken_one_is_an_error()
    {
        const string custom = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}";
        using (var model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1, ChatTemplate = custom }))
        {
            Assert.Equal(custom, model.ChatTemplate.Source);
            Assert.Equal("<|startoftext|>[user] hi\n", model.ChatTemplate.Render([LfmChatMessage.User("hi")]));
        }
        var e = Assert.Throws<ArgumentException>(() => LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1, ChatTemplate = "{% for %}" }));
        Assert.Contains("line 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Messages_are_passed_in_the_openai_shape()
    {
        var t = new JinjaChatTemplate("{{ messages | tojson }}");
        string json = t.Render([
            LfmChatMessage.Assistant("a", "r", [new ToolCall("c1", "f", """{"x": 1.5, "y": [true, null]}""")]),
            LfmChatMessage.Tool("out", "c1", "f"),
        ], addGenerationPrompt: false);
        Assert.Equal("""[{"role": "assistant", "content": "a", "reasoning_content": "r", "thinking": "r", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1.5, "y": [true, null]}}}]}, {"role": "tool", "tool_call_id": "c1", "name": "f", "content": "out"}]""", json);
    }

    internal static List<LfmChatMessage> Messages(JsonElement conv)
    {
        var list = new List<LfmChatMessage>();
        foreach (var m in conv.GetProperty("messages").EnumerateArray())
        {
            var role = m.GetProperty("role").GetString() switch
            {
                "system" => LfmChatRole.System,
                "user" => LfmChatRole.User,
                "assistant" => LfmChatRole.Assistant,
                "tool" => LfmChatRole.Tool,
                var other => throw new InvalidDataException("role " + other),
            };
            List<ToolCall>? calls = null;
            if (m.TryGetProperty("tool_calls", out var tcs))
            {
                calls = tcs.EnumerateArray().Select(tc => new ToolCall(tc.GetProperty("id").GetString()!,
                    tc.GetProperty("function").GetProperty("name").GetString()!,
                    tc.GetProperty("function").GetProperty("arguments").GetRawText())).ToList();
            }
            list.Add(new LfmChatMessage(role, m.GetProperty("content").GetString()!)
            {
                Reasoning = m.TryGetProperty("reasoning_content", out var r) ? r.GetString() : null,
                ToolCalls = calls,
                ToolCallId = m.TryGetProperty("tool_call_id", out var id) ? id.GetString() : null,
                Name = m.TryGetProperty("name", out var n) ? n.GetString() : null,
            });
        }
        return list;
    }

    internal static List<ToolDefinition>? Tools(JsonElement conv) =>
        conv.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(t => ToolDefinition.FromJson(t.GetRawText())).ToList() : null;

    internal static Dictionary<string, JsonElement>? Kwargs(JsonElement conv) =>
        conv.TryGetProperty("kwargs", out var k) ? k.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone()) : null;
}
