namespace LfmSharp.Generation;

/// <summary>Why a generation ended.</summary>
public enum FinishReason
{
    /// <summary>An end-of-generation token or a stop string.</summary>
    Stop,
    /// <summary>The token limit (or the end of the context) was reached.</summary>
    Length,
    /// <summary>The caller's cancellation token fired.</summary>
    Cancelled,
    /// <summary>The model finished a turn with tool calls.</summary>
    ToolCalls,
    /// <summary>The loop guard stopped a repetition loop.</summary>
    Loop,
}

/// <summary>Token counts and timings of one generation.</summary>
public sealed record GenerationUsage
{
    /// <summary>Tokens of the prompt (including any reused from a cached prefix).</summary>
    public int PromptTokens { get; init; }

    /// <summary>Prompt tokens actually run through the model (the rest came from a snapshot).</summary>
    public int PrefilledTokens { get; init; }

    /// <summary>Tokens generated (reasoning included).</summary>
    public int CompletionTokens { get; init; }

    /// <summary>Generated tokens that were inside &lt;think&gt;…&lt;/think&gt;.</summary>
    public int ReasoningTokens { get; init; }

    /// <summary>Time spent on the prompt, up to the first token.</summary>
    public TimeSpan PrefillTime { get; init; }

    /// <summary>Time spent generating after the first token.</summary>
    public TimeSpan DecodeTime { get; init; }

    /// <summary>Time from the start of the call to the first generated token.</summary>
    public TimeSpan TimeToFirstToken { get; init; }

    /// <summary>Prompt tokens per second.</summary>
    public double PrefillTokensPerSecond => PrefillTime > TimeSpan.Zero ? PrefilledTokens / PrefillTime.TotalSeconds : 0;

    /// <summary>Decode speed over the tokens after the first (the first comes out of the prefill).</summary>
    public double DecodeTokensPerSecond => DecodeTime > TimeSpan.Zero && CompletionTokens > 1 ? (CompletionTokens - 1) / DecodeTime.TotalSeconds : 0;

    /// <summary>Prompt plus completion tokens.</summary>
    public int TotalTokens => PromptTokens + CompletionTokens;
}

/// <summary>
/// The one event stream every surface (library, CLI, server, IChatClient) consumes. The generator produces
/// <see cref="TextDelta"/> and <see cref="Done"/>; the chat layer turns text into reasoning, content and tool calls.
/// </summary>
public abstract record GenerationEvent;

/// <summary>Raw generated text (complete UTF-8 characters; stop strings never leak).</summary>
public sealed record TextDelta(string Text) : GenerationEvent;

/// <summary>Text inside &lt;think&gt;…&lt;/think&gt;.</summary>
public sealed record ReasoningDelta(string Text) : GenerationEvent;

/// <summary>Answer text.</summary>
public sealed record ContentDelta(string Text) : GenerationEvent;

/// <summary>A complete tool call parsed from the output.</summary>
public sealed record ToolCallEvent(ToolCall Call) : GenerationEvent;

/// <summary>Something the model wrote that should have been structured but could not be parsed (never silently dropped).</summary>
public sealed record ParseErrorEvent(string Message, string RawText) : GenerationEvent;

/// <summary>The loop guard fired; <see cref="Action"/> says what it did.</summary>
public sealed record LoopDetectedEvent(string Pattern, int Repeats, bool InReasoning, string Action) : GenerationEvent;

/// <summary>The last event of every generation.</summary>
public sealed record Done(FinishReason Reason, GenerationUsage Usage) : GenerationEvent;

/// <summary>A tool call: a function name and its arguments as a JSON object text.</summary>
public sealed record ToolCall(string Id, string Name, string ArgumentsJson);
