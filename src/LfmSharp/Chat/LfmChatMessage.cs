using LfmSharp.Generation;

namespace LfmSharp.Chat;

/// <summary>Who wrote a message. Rendered lower-case, verbatim, after <c>&lt;|im_start|&gt;</c>.</summary>
public enum LfmChatRole
{
    /// <summary>Instructions that frame the conversation.</summary>
    System,
    /// <summary>The person talking to the model.</summary>
    User,
    /// <summary>The model.</summary>
    Assistant,
    /// <summary>The result of a tool call.</summary>
    Tool,
}

/// <summary>
/// One message of a conversation. Assistant messages may carry the reasoning and the tool calls the model wrote
/// (the template puts the calls back into the history as text, so a multi-turn tool loop keeps them); tool messages
/// carry the result of a call.
/// </summary>
/// <param name="Role">Who wrote it.</param>
/// <param name="Content">The text. For an assistant message this may still contain <c>&lt;think&gt;…&lt;/think&gt;</c>
/// (the raw model output); the LFM2.5 template strips it from past turns.</param>
public sealed record LfmChatMessage(LfmChatRole Role, string Content)
{
    /// <summary>Assistant only: the reasoning text, rendered as <c>&lt;think&gt;…&lt;/think&gt;</c> for the last
    /// assistant message (or every one with <c>keepPastThinking</c>). Null: none rendered.</summary>
    public string? Reasoning { get; init; }

    /// <summary>Assistant only: tool calls the model made, rendered in pythonic form before the content.</summary>
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }

    /// <summary>Tool only: the id of the call this message answers (not rendered by the LFM templates).</summary>
    public string? ToolCallId { get; init; }

    /// <summary>Tool only: the name of the tool that produced the result (not rendered by the LFM templates).</summary>
    public string? Name { get; init; }

    /// <summary>A system message.</summary>
    public static LfmChatMessage System(string content) => new(LfmChatRole.System, content);

    /// <summary>A user message.</summary>
    public static LfmChatMessage User(string content) => new(LfmChatRole.User, content);

    /// <summary>An assistant message, optionally with its reasoning and tool calls.</summary>
    public static LfmChatMessage Assistant(string content, string? reasoning = null, IReadOnlyList<ToolCall>? toolCalls = null) =>
        new(LfmChatRole.Assistant, content) { Reasoning = reasoning, ToolCalls = toolCalls };

    /// <summary>A tool message: the result of the call <paramref name="toolCallId"/>.</summary>
    public static LfmChatMessage Tool(string content, string? toolCallId = null, string? name = null) =>
        new(LfmChatRole.Tool, content) { ToolCallId = toolCallId, Name = name };

    internal static string RoleName(LfmChatRole role) => role switch
    {
        LfmChatRole.System => "system",
        LfmChatRole.User => "user",
        LfmChatRole.Assistant => "assistant",
        LfmChatRole.Tool => "tool",
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "Unknown chat role."),
    };
}
