using Microsoft.Extensions.AI;

namespace LfmSharp.Extensions.AI;

/// <summary>Options of an <see cref="LfmChatClient"/>.</summary>
public sealed record LfmChatClientOptions
{
    /// <summary>Tokens each session's state holds (prompt + reply). Not the file's training context, which can be 128K.</summary>
    public int ContextLength { get; init; } = 4096;

    /// <summary>Element type of each session's attention KV cache.</summary>
    public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

    /// <summary>
    /// Chat sessions (each with its own state and prefix cache) that may generate at once; further calls wait for a
    /// free one. Sessions are made on demand and reused most-recently-returned first, so a single conversation (a
    /// tool loop, say) keeps landing on the session that already holds its prefix.
    /// </summary>
    public int MaxConcurrentSessions { get; init; } = 2;

    /// <summary>Token limit when <see cref="ChatOptions.MaxOutputTokens"/> is not set (reasoning + answer). Null: the
    /// chat session's default.</summary>
    public int? DefaultMaxOutputTokens { get; init; }

    /// <summary>The id reported in responses and <see cref="ChatClientMetadata.DefaultModelId"/>. Null: the model's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>
    /// Thinking budget (tokens) for each <see cref="ReasoningOptions.Effort"/>. LFM2.5-Thinking cannot switch its
    /// thinking off, so <see cref="ReasoningEffort.None"/> closes it at once (budget 0). Null value: no limit.
    /// </summary>
    public IReadOnlyDictionary<ReasoningEffort, int?> ThinkingBudgets { get; init; } = DefaultThinkingBudgets;

    /// <summary>Dispose the model when the client is disposed (the client was given ownership).</summary>
    public bool DisposeModel { get; init; }

    /// <summary>None 0, Low 256, Medium 1024, High 4096, ExtraHigh unlimited.</summary>
    public static IReadOnlyDictionary<ReasoningEffort, int?> DefaultThinkingBudgets { get; } = new Dictionary<ReasoningEffort, int?>
    {
        [ReasoningEffort.None] = 0,
        [ReasoningEffort.Low] = 256,
        [ReasoningEffort.Medium] = 1024,
        [ReasoningEffort.High] = 4096,
        [ReasoningEffort.ExtraHigh] = null,
    };

    internal void Validate()
    {
        if (ContextLength < 1)
            throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "ContextLength must be at least 1.");
        if (MaxConcurrentSessions < 1)
            throw new ArgumentOutOfRangeException(nameof(MaxConcurrentSessions), MaxConcurrentSessions, "MaxConcurrentSessions must be at least 1.");
        if (DefaultMaxOutputTokens < 1)
            throw new ArgumentOutOfRangeException(nameof(DefaultMaxOutputTokens), DefaultMaxOutputTokens, "DefaultMaxOutputTokens must be at least 1.");
        ArgumentNullException.ThrowIfNull(ThinkingBudgets, nameof(ThinkingBudgets));
    }
}
