namespace LfmSharp.Chat;

/// <summary>
/// Caps the thinking. Count every generated token with <see cref="CountToken"/>; before sampling the next token ask
/// <see cref="ShouldForceEnd"/>. When it says yes, append <see cref="Notice"/> (tokenized as plain text, if any) and
/// then the <c>&lt;/think&gt;</c> special token by its id — not the BPE of the text <c>&lt;/think&gt;</c> — feed
/// both through the model and the output parser as generated text, call <see cref="MarkForced"/>, and continue in
/// answer mode. Apply the force after any other logit constraint, so nothing masks it away.
/// </summary>
internal sealed class ThinkingBudget
{
    /// <param name="maxReasoningTokens">Most reasoning tokens allowed; 0 closes the thinking at once; null = no limit.</param>
    /// <param name="notice">Optional short text written before the forced close (e.g. "\nTime is up; answering now.\n").</param>
    public ThinkingBudget(int? maxReasoningTokens, string? notice = null)
    {
        if (maxReasoningTokens < 0)
            throw new ArgumentOutOfRangeException(nameof(maxReasoningTokens), maxReasoningTokens, "The thinking budget cannot be negative.");
        MaxReasoningTokens = maxReasoningTokens;
        Notice = string.IsNullOrEmpty(notice) ? null : notice;
    }

    public int? MaxReasoningTokens { get; }

    public string? Notice { get; }

    /// <summary>Tokens generated inside the thinking so far (for <c>usage.reasoning_tokens</c>). Forced tokens are
    /// not counted by the budget itself: count them with <see cref="CountToken"/> if they should appear in usage.</summary>
    public int ReasoningTokens { get; private set; }

    /// <summary>The close has been forced.</summary>
    public bool Forced { get; private set; }

    /// <summary>Counts one generated token.</summary>
    /// <param name="inReasoning">The parser's <see cref="ChatOutputParser.InReasoning"/> after the token's text.</param>
    public void CountToken(bool inReasoning)
    {
        if (inReasoning)
            ReasoningTokens++;
    }

    /// <summary>True when the next tokens must be the notice and <c>&lt;/think&gt;</c>: the model is inside its
    /// thinking and the budget is spent (immediately for a budget of 0). A spent budget stays spent: if the model
    /// opens a second &lt;think&gt; after a forced close, that one is closed at once too.</summary>
    public bool ShouldForceEnd(bool inReasoning) =>
        inReasoning && MaxReasoningTokens is int max && ReasoningTokens >= max;

    /// <summary>Records that the close was forced (the budget then stays quiet).</summary>
    public void MarkForced() => Forced = true;

    /// <summary>Starts a new generation.</summary>
    public void Reset()
    {
        ReasoningTokens = 0;
        Forced = false;
    }
}
