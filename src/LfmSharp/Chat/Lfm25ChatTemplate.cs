using System.Text;

namespace LfmSharp.Chat;

/// <summary>
/// The LFM2.5 layout (the template embedded in the LFM2.5-1.2B GGUFs, spec §6.1):
/// <code>
/// &lt;|startoftext|&gt;[&lt;|im_start|&gt;system\n{system}[\n]List of tools: [{tool}, {tool}]&lt;|im_end|&gt;\n]
/// &lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n …
/// [&lt;|im_start|&gt;assistant\n]
/// </code>
/// Past thinking is stripped from every assistant message except the last one (keep the text after the last
/// <c>&lt;/think&gt;</c>, Python-<c>strip</c>ped) unless <c>keepPastThinking</c>. Two additions the stock 1.2B
/// template lacks, taken from the later LFM2.5 templates (<c>render_tool_calls</c>, <c>thinking</c>): an assistant
/// message's <see cref="LfmChatMessage.ToolCalls"/> are written as <c>&lt;|tool_call_start|&gt;[f(a="x")]&lt;|tool_call_end|&gt;</c>
/// before its content, and its <see cref="LfmChatMessage.Reasoning"/> as <c>&lt;think&gt;…&lt;/think&gt;</c> before that when
/// the thinking is kept. Messages without those fields render exactly as the stock template.
/// </summary>
public sealed class Lfm25ChatTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override ChatTemplateFamily Family => ChatTemplateFamily.Lfm25;

    /// <summary>End the generation prompt with <c>&lt;think&gt;</c> (templates that force thinking on).</summary>
    public bool PrefillThinking { get; init; }

    /// <inheritdoc/>
    public override bool GenerationPromptOpensThinking => PrefillThinking;

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null,
        bool addGenerationPrompt = true, bool keepPastThinking = false)
    {
        Validate(messages);
        var sb = new StringBuilder(256);
        sb.Append(Bos);
        string system = SystemPrompt(messages, tools, "[", "]", out int first);
        if (system.Length > 0)
            sb.Append(ImStart).Append("system\n").Append(system).Append(ImEnd).Append('\n');

        int lastAssistant = -1;
        for (int i = first; i < messages.Count; i++)
        {
            if (messages[i].Role == LfmChatRole.Assistant)
                lastAssistant = i;
        }

        for (int i = first; i < messages.Count; i++)
        {
            var m = messages[i];
            sb.Append(ImStart).Append(LfmChatMessage.RoleName(m.Role)).Append('\n');
            string content = m.Content;
            if (m.Role == LfmChatRole.Assistant)
            {
                bool keep = keepPastThinking || i == lastAssistant;
                if (m.Reasoning is not null && keep)
                    sb.Append(ThinkStart).Append(m.Reasoning).Append(ThinkEnd);
                if (m.ToolCalls is { Count: > 0 })
                    PythonicCallWriter.Write(sb, m.ToolCalls);
                if (!keep)
                {
                    int end = content.LastIndexOf(ThinkEnd, StringComparison.Ordinal);
                    if (end >= 0)
                        content = PythonJson.Strip(content[(end + ThinkEnd.Length)..]);
                }
            }
            sb.Append(content).Append(ImEnd).Append('\n');
        }

        if (addGenerationPrompt)
        {
            sb.Append(ImStart).Append("assistant\n");
            if (PrefillThinking)
                sb.Append(ThinkStart);
        }
        return sb.ToString();
    }
}
