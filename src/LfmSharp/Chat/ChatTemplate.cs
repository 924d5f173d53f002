using System.Text;
using System.Text.Json;
using LfmSharp.Templating;

namespace LfmSharp.Chat;

/// <summary>Which LFM template layout a <see cref="ChatTemplate"/> renders.</summary>
public enum ChatTemplateFamily
{
    /// <summary>LFM2 (v1): tool list wrapped in <c>&lt;|tool_list_start|&gt;…&lt;|tool_list_end|&gt;</c>, tool
    /// results wrapped in <c>&lt;|tool_response_start|&gt;…&lt;|tool_response_end|&gt;</c>.</summary>
    Lfm2,

    /// <summary>LFM2.5: plain <c>List of tools: [...]</c>, bare tool results, past thinking stripped.</summary>
    Lfm25,
}

/// <summary>
/// Turns messages and tools into prompt text. <see cref="FromGguf(string?)"/> gives the model's own Jinja template run by
/// the template engine (<see cref="JinjaChatTemplate"/>); <see cref="Lfm2ChatTemplate"/> and
/// <see cref="Lfm25ChatTemplate"/> are hand-written layouts kept as the fallback. Tokenize the text with
/// <c>EncodePrompt</c> (special tokens parsed, a leading BOS text not doubled).
/// </summary>
public abstract class ChatTemplate
{
    internal const string Bos = "<|startoftext|>";
    internal const string ImStart = "<|im_start|>";
    internal const string ImEnd = "<|im_end|>";
    internal const string ThinkStart = "<think>";
    internal const string ThinkEnd = "</think>";

    /// <summary>The layout this template renders.</summary>
    public abstract ChatTemplateFamily Family { get; }

    /// <summary>Set when a hand-written layout stands in for the model's template (no template, or one the engine
    /// cannot run); say it to the user once.</summary>
    public string? Warning { get; init; }

    /// <summary>The Jinja source, when the template came from a model or an override.</summary>
    public string? Source { get; init; }

    /// <summary>True when the generation prompt already opens <c>&lt;think&gt;</c>: the output starts inside the
    /// reasoning (set <see cref="ChatOutputParserOptions.StartInReasoning"/>).</summary>
    public virtual bool GenerationPromptOpensThinking => false;

    /// <summary>Serialize tools with <c>ensure_ascii=True</c> (non-ASCII as <c>\uXXXX</c>). Default false, like the
    /// <c>tojson</c> of Hugging Face and llama.cpp.</summary>
    public bool EnsureAscii { get; init; }

    /// <summary>Renders the conversation.</summary>
    /// <param name="messages">The conversation; a leading system message becomes the system block.</param>
    /// <param name="tools">Tools listed in the system block; null or empty for none.</param>
    /// <param name="addGenerationPrompt">Append <c>&lt;|im_start|&gt;assistant\n</c> so the model answers next.</param>
    /// <param name="keepPastThinking">Keep the reasoning of earlier assistant turns (LFM2.5's <c>keep_past_thinking</c>).</param>
    public abstract string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null,
        bool addGenerationPrompt = true, bool keepPastThinking = false);

    /// <summary>Renders with extra template variables (transformers' <c>chat_template_kwargs</c>). The hand-written
    /// layouts read only <c>keep_past_thinking</c>; <see cref="JinjaChatTemplate"/> passes all of them.</summary>
    public virtual string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools,
        bool addGenerationPrompt, IReadOnlyDictionary<string, JsonElement>? templateKwargs)
    {
        bool keep = templateKwargs is not null && templateKwargs.TryGetValue("keep_past_thinking", out var k) && k.ValueKind == JsonValueKind.True;
        return Render(messages, tools, addGenerationPrompt, keep);
    }

    /// <summary>
    /// The template for a model: the GGUF's own <c>tokenizer.chat_template</c>, run by the Jinja engine
    /// (<see cref="JinjaChatTemplate"/>). Only when there is no template, or the engine cannot parse it or run it on a
    /// one-message conversation, a hand-written layout is used, chosen by llama.cpp's markers
    /// (<c>&lt;|tool_list_start|&gt;</c> → LFM2, otherwise LFM2.5), and <see cref="Warning"/> says so.
    /// </summary>
    public static ChatTemplate FromGguf(string? chatTemplateSource) => FromGguf(chatTemplateSource, Bos, ImEnd);

    /// <summary>As <see cref="FromGguf(string?)"/>, with the model's BOS and EOS token texts.</summary>
    public static ChatTemplate FromGguf(string? chatTemplateSource, string bosToken, string eosToken)
    {
        if (string.IsNullOrEmpty(chatTemplateSource))
            return new Lfm25ChatTemplate { Warning = "The model has no chat template; using the LFM2.5 layout." };
        try
        {
            return new JinjaChatTemplate(chatTemplateSource, bosToken, eosToken);
        }
        catch (TemplateException e)
        {
            string why = $"The model's chat template cannot be run by the template engine ({e.Message}); ";
            if (chatTemplateSource.Contains("<|tool_list_start|>", StringComparison.Ordinal))
                return new Lfm2ChatTemplate { Source = chatTemplateSource, Warning = why + "rendering with the hand-written LFM2 layout." };
            return new Lfm25ChatTemplate { Source = chatTemplateSource, Warning = why + "rendering with the hand-written LFM2.5 layout." };
        }
    }

    // ---- shared pieces ----

    /// <summary>The system block text: the leading system message's content, then the tool list.</summary>
    private protected string SystemPrompt(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools,
        string toolsOpen, string toolsClose, out int firstMessage)
    {
        string system = "";
        firstMessage = 0;
        if (messages.Count > 0 && messages[0].Role == LfmChatRole.System)
        {
            system = messages[0].Content ?? "";
            firstMessage = 1;
        }
        if (tools is null || tools.Count == 0)
            return system;
        var sb = new StringBuilder(system);
        if (system.Length > 0)
            sb.Append('\n');
        sb.Append("List of tools: ").Append(toolsOpen);
        for (int i = 0; i < tools.Count; i++)
        {
            var tool = tools[i] ?? throw new ArgumentException($"tools[{i}] is null.", nameof(tools));
            if (i > 0)
                sb.Append(", ");
            PythonJson.Dump(tool.Json, sb, EnsureAscii);
        }
        sb.Append(toolsClose);
        return sb.ToString();
    }

    private protected static void Validate(IReadOnlyList<LfmChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        for (int i = 0; i < messages.Count; i++)
        {
            var m = messages[i] ?? throw new ArgumentException($"messages[{i}] is null.", nameof(messages));
            if (m.Content is null)
                throw new ArgumentException($"messages[{i}] has null content (use \"\").", nameof(messages));
        }
    }
}
