using System.Text;

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
/// Turns messages and tools into prompt text, written by hand for the LFM templates (no Jinja engine). The text
/// starts with exactly one <c>&lt;|startoftext|&gt;</c>; tokenize it with special tokens parsed and without adding
/// another BOS. Choose the layout with <see cref="FromGguf"/>.
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

    /// <summary>Set when the layout was guessed (no template, or one without the LFM markers); say it to the user.</summary>
    public string? Warning { get; init; }

    /// <summary>The Jinja source this template was chosen for, when it came from <see cref="FromGguf"/>.</summary>
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

    /// <summary>
    /// Picks the layout from the GGUF's <c>tokenizer.chat_template</c>, by the same markers llama.cpp and mlx-lm
    /// use: <c>&lt;|tool_list_start|&gt;</c> means LFM2 (v1); <c>List of tools: [</c> means LFM2.5. Anything else
    /// (or no template) falls back to LFM2.5 and sets <see cref="Warning"/>.
    /// </summary>
    public static ChatTemplate FromGguf(string? chatTemplateSource)
    {
        if (string.IsNullOrEmpty(chatTemplateSource))
            return new Lfm25ChatTemplate { Warning = "The model has no chat template; using the LFM2.5 layout." };
        if (chatTemplateSource.Contains("<|tool_list_start|>", StringComparison.Ordinal))
            return new Lfm2ChatTemplate { Source = chatTemplateSource };
        // A template whose generation prompt opens <think> (LFM2.5-2.6B style) makes the model start inside its
        // reasoning. In the Jinja source the newline is usually the two characters \n inside a string literal.
        bool prefill = chatTemplateSource.Contains("assistant\\n<think>", StringComparison.Ordinal)
            || chatTemplateSource.Contains("assistant\n<think>", StringComparison.Ordinal);
        if (chatTemplateSource.Contains("List of tools: [", StringComparison.Ordinal))
            return new Lfm25ChatTemplate { Source = chatTemplateSource, PrefillThinking = prefill };
        return new Lfm25ChatTemplate
        {
            Source = chatTemplateSource,
            PrefillThinking = prefill,
            Warning = "The model's chat template is not a recognised LFM2/LFM2.5 template; rendering with the LFM2.5 layout.",
        };
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
