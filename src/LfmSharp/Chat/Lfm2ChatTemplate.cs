using System.Text;

namespace LfmSharp.Chat;

/// <summary>
/// The LFM2 (v1) layout, byte-for-byte the template of the LFM2 GGUFs and of the test fixtures (HOW-MADE §1.4):
/// <code>
/// &lt;|startoftext|&gt;[&lt;|im_start|&gt;system\n{system}[\n]List of tools: &lt;|tool_list_start|&gt;[…]&lt;|tool_list_end|&gt;&lt;|im_end|&gt;\n]
/// &lt;|im_start|&gt;{role}\n{content}&lt;|im_end|&gt;\n …   (tool results: &lt;|tool_response_start|&gt;{content}&lt;|tool_response_end|&gt;)
/// [&lt;|im_start|&gt;assistant\n]
/// </code>
/// v1 has no thinking: content is rendered as given (nothing stripped), <see cref="LfmChatMessage.Reasoning"/> and
/// <c>keepPastThinking</c> are ignored. Assistant <see cref="LfmChatMessage.ToolCalls"/> are written before the content
/// in pythonic form, as for LFM2.5 (the v1 template has no field for them; the model writes calls this way).
/// </summary>
public sealed class Lfm2ChatTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override ChatTemplateFamily Family => ChatTemplateFamily.Lfm2;

    /// <inheritdoc/>
    public override string Render(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null,
        bool addGenerationPrompt = true, bool keepPastThinking = false)
    {
        Validate(messages);
        var sb = new StringBuilder(256);
        sb.Append(Bos);
        string system = SystemPrompt(messages, tools, "<|tool_list_start|>[", "]<|tool_list_end|>", out int first);
        if (system.Length > 0)
            sb.Append(ImStart).Append("system\n").Append(system).Append(ImEnd).Append('\n');

        for (int i = first; i < messages.Count; i++)
        {
            var m = messages[i];
            sb.Append(ImStart).Append(LfmChatMessage.RoleName(m.Role)).Append('\n');
            if (m.Role == LfmChatRole.Assistant && m.ToolCalls is { Count: > 0 })
                PythonicCallWriter.Write(sb, m.ToolCalls);
            if (m.Role == LfmChatRole.Tool)
                sb.Append("<|tool_response_start|>").Append(m.Content).Append("<|tool_response_end|>");
            else
                sb.Append(m.Content);
            sb.Append(ImEnd).Append('\n');
        }

        if (addGenerationPrompt)
            sb.Append(ImStart).Append("assistant\n");
        return sb.ToString();
    }
}
