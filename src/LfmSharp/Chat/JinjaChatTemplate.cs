using System.Runtime.CompilerServices;
using System.Text.Json;
using LfmSharp.Templating;

namespace LfmSharp.Chat;

/// <summary>
/// Renders the model's own Jinja chat template (the GGUF's <c>tokenizer.chat_template</c>, or an override) with the
/// sandboxed template engine, exactly as Python Jinja2 renders it in Hugging Face transformers. The template is
/// parsed once, when this object is built. Variables passed: <c>messages</c> in the OpenAI shape (<c>role</c>,
/// <c>content</c>, assistant <c>reasoning_content</c> and <c>thinking</c>, <c>tool_calls</c> with parsed
/// <c>arguments</c>, tool <c>tool_call_id</c> and <c>name</c>), <c>tools</c> as given, <c>add_generation_prompt</c>,
/// <c>bos_token</c>, <c>eos_token</c>, <c>keep_past_thinking</c> when asked for, and any other template kwargs.
/// </summary>
public sealed class JinjaChatTemplate : ChatTemplate
{
    private static readonly ConditionalWeakTable<ToolDefinition, Value> s_toolValues = new();

    private readonly JinjaTemplate _template;
    private readonly string _bosToken;
    private readonly string _eosToken;

    /// <summary>Parses <paramref name="source"/> and learns whether its generation prompt opens <c>&lt;think&gt;</c>
    /// (by rendering a one-message conversation with and without <c>add_generation_prompt</c>).</summary>
    /// <param name="source">The Jinja template text.</param>
    /// <param name="bosToken">The text of the BOS token (<c>bos_token</c> in the template).</param>
    /// <param name="eosToken">The text of the EOS token (<c>eos_token</c> in the template).</param>
    /// <exception cref="TemplateException">The template has a syntax error, or fails on a plain one-message conversation.</exception>
    public JinjaChatTemplate(string source, string bosToken = Bos, string eosToken = ImEnd)
        : this(source, bosToken, eosToken, null)
    {
    }

    internal JinjaChatTemplate(string source, string bosToken, string eosToken, Func<DateTime>? clock)
    {
        ArgumentNullException.ThrowIfNull(source);
        _template = JinjaTemplate.Parse(source);
        _bosToken = bosToken ?? "";
        _eosToken = eosToken ?? "";
        Clock = clock;
        Source = source;
        Family = source.Contains("<|tool_list_start|>", StringComparison.Ordinal) ? ChatTemplateFamily.Lfm2 : ChatTemplateFamily.Lfm25;
        GenerationPromptOpensThinking = ProbeThinkingPrefill();
    }

    /// <summary>The LFM layout the template resembles (LFM2 when it uses tool-list tokens); informational only,
    /// the template itself decides the text.</summary>
    public override ChatTemplateFamily Family { get; }

    /// <summary>Learned from the template: the text <c>add_generation_prompt</c> appends ends in <c>&lt;think&gt;</c>.</summary>
    public override bool GenerationPromptOpensThinking { get; }

    /// <summary>What <c>strftime_now</c> reads (null: the local clock); set for reproducible renders.</summary>
    internal Func<DateTime>? Clock { get; init; }

    internal TemplateLimits Limits { get; init; } = new();

    /// <inheritdoc />
    public override string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null,
        bool addGenerationPrompt = true, bool keepPastThinking = false) =>
        Render(messages, tools, addGenerationPrompt, keepPastThinking ? KeepPastThinkingKwargs : null);

    /// <summary>Renders with <paramref name="templateKwargs"/> passed to the template as extra variables
    /// (transformers' <c>chat_template_kwargs</c>, e.g. <c>keep_past_thinking</c>, <c>enable_thinking</c>).</summary>
    /// <exception cref="ArgumentException">A message or tool call is invalid, or the template rejected the conversation
    /// (its <c>raise_exception</c>, an error while running it, or a sandbox limit); the inner exception is the
    /// <see cref="TemplateException"/> with the template line.</exception>
    public override string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools,
        bool addGenerationPrompt, IReadOnlyDictionary<string, JsonElement>? templateKwargs)
    {
        Validate(messages);
        var vars = new Dictionary<string, Value>(StringComparer.Ordinal)
        {
            ["bos_token"] = StringValue.Of(_bosToken),
            ["eos_token"] = StringValue.Of(_eosToken),
        };
        if (templateKwargs is not null)
        {
            foreach (var (k, v) in templateKwargs)
                vars[k] = JinjaTemplate.FromJson(v);
        }
        var list = new List<Value>(messages.Count);
        for (int i = 0; i < messages.Count; i++)
            list.Add(MessageValue(messages[i], i));
        vars["messages"] = new ListValue(list);
        if (tools is { Count: > 0 })
        {
            var toolList = new List<Value>(tools.Count);
            for (int i = 0; i < tools.Count; i++)
            {
                var tool = tools[i] ?? throw new ArgumentException($"tools[{i}] is null.", nameof(tools));
                toolList.Add(s_toolValues.GetValue(tool, t => JinjaTemplate.FromJson(t.Json)));
            }
            vars["tools"] = new ListValue(toolList);
        }
        vars["add_generation_prompt"] = BoolValue.Of(addGenerationPrompt);
        try
        {
            return _template.Render(vars, Limits, Clock);
        }
        catch (TemplateException e)
        {
            throw new ArgumentException((e.RaisedByTemplate ? "the chat template rejected the conversation: " : "the chat template failed: ") + e.Message, nameof(messages), e);
        }
    }

    private static readonly Dictionary<string, JsonElement> KeepPastThinkingKwargs = new(StringComparer.Ordinal)
    {
        ["keep_past_thinking"] = JsonDocument.Parse("true").RootElement,
    };

    /// <summary>One message as transformers and llama.cpp pass it: the OpenAI shape, tool-call arguments parsed.</summary>
    private static Value MessageValue(LfmChatMessage m, int index)
    {
        var d = new DictValue();
        d.Set("role", StringValue.Of(LfmChatMessage.RoleName(m.Role)));
        if (m.Role == LfmChatRole.Tool)
        {
            if (m.ToolCallId is not null)
                d.Set("tool_call_id", StringValue.Of(m.ToolCallId));
            if (m.Name is not null)
                d.Set("name", StringValue.Of(m.Name));
        }
        d.Set("content", StringValue.Of(m.Content));
        if (m.Reasoning is not null)
        {
            d.Set("reasoning_content", StringValue.Of(m.Reasoning));
            d.Set("thinking", StringValue.Of(m.Reasoning));
        }
        if (m.ToolCalls is { Count: > 0 })
        {
            var calls = new List<Value>(m.ToolCalls.Count);
            foreach (var call in m.ToolCalls)
            {
                var fn = new DictValue();
                fn.Set("name", StringValue.Of(call.Name));
                fn.Set("arguments", ParseArguments(call, index));
                var c = new DictValue();
                c.Set("id", StringValue.Of(call.Id));
                c.Set("type", StringValue.Of("function"));
                c.Set("function", fn);
                calls.Add(c);
            }
            d.Set("tool_calls", new ListValue(calls));
        }
        return d;
    }

    private static Value ParseArguments(Generation.ToolCall call, int index)
    {
        try
        {
            using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(call.ArgumentsJson) ? "{}" : call.ArgumentsJson);
            return JinjaTemplate.FromJson(doc.RootElement);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"messages[{index}]: the arguments of tool call '{call.Name}' are not valid JSON: {e.Message}", "messages", e);
        }
    }

    // The text add_generation_prompt appends, for a one-message conversation, ends in <think>: the model's output
    // starts inside its reasoning.
    private bool ProbeThinkingPrefill()
    {
        LfmChatMessage[] probe = [LfmChatMessage.User("Hi")];
        string without = RenderProbe(probe, false), with = RenderProbe(probe, true);
        if (!with.StartsWith(without, StringComparison.Ordinal))
            return false;
        string added = with[without.Length..].TrimEnd();
        return added.EndsWith(ThinkStart, StringComparison.Ordinal);
    }

    private string RenderProbe(LfmChatMessage[] probe, bool addGenerationPrompt)
    {
        try
        {
            return Render(probe, null, addGenerationPrompt, (IReadOnlyDictionary<string, JsonElement>?)null);
        }
        catch (ArgumentException e) when (e.InnerException is TemplateException t)
        {
            throw t;
        }
    }
}
