namespace LfmSharp.Generation;

/// <summary>One alternative at a position: a token id and its log probability.</summary>
/// <param name="TokenId">The token.</param>
/// <param name="Logprob">Natural log of its probability.</param>
public readonly record struct TopLogprob(int TokenId, float Logprob);

/// <summary>
/// The log probability of a chosen token and the most likely alternatives at its position (only when
/// <see cref="GenerationOptions.Logprobs"/> is set; it comes before the token's text). Computed as OpenAI does: a
/// log-softmax of the logits after the logit bias, the repetition/frequency/presence penalties and any constraint
/// mask, before temperature and the top-k/top-p/min-p cuts.
/// </summary>
/// <param name="TokenId">The token chosen (sampled or forced).</param>
/// <param name="Logprob">Its log probability.</param>
/// <param name="Top">The most likely tokens, most likely first (as many as asked for).</param>
/// <param name="InReasoning">Set by the chat layer: the token was part of the reasoning.</param>
public sealed record TokenLogprobs(int TokenId, float Logprob, IReadOnlyList<TopLogprob> Top, bool InReasoning = false) : GenerationEvent
{
    /// <summary>Most alternatives a caller may ask for (OpenAI's limit).</summary>
    public const int MaxTop = 20;

    /// <summary>The log probability reported for a token the distribution gives none (OpenAI's -9999).</summary>
    public const float Floor = -9999f;

    /// <summary>Log-softmax of <paramref name="logits"/> at <paramref name="tokenId"/>, with the <paramref name="top"/>
    /// most likely tokens (ties to the lower id).</summary>
    public static TokenLogprobs Compute(ReadOnlySpan<float> logits, int tokenId, int top)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(top);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(top, MaxTop);
        float max = float.NegativeInfinity;
        foreach (float l in logits)
        {
            if (l > max)
                max = l;
        }
        double sum = 0;
        foreach (float l in logits)
        {
            if (!float.IsNegativeInfinity(l) && !float.IsNaN(l))
                sum += Math.Exp(l - max);
        }
        float logZ = max + (float)Math.Log(sum);

        // The k largest, kept sorted (descending) in a small array: one comparison per logit for most of them.
        int k = Math.Min(top, logits.Length);
        var ids = new int[k];
        var values = new float[k];
        int n = 0;
        for (int i = 0; i < logits.Length && k > 0; i++)
        {
            float v = logits[i];
            // Banned tokens (-inf: a grammar mask, a -100 bias…) are no alternatives.
            if (float.IsNaN(v) || float.IsNegativeInfinity(v) || (n == k && v <= values[k - 1]))
                continue;
            int at = n < k ? n++ : k - 1;
            while (at > 0 && values[at - 1] < v)
            {
                values[at] = values[at - 1];
                ids[at] = ids[at - 1];
                at--;
            }
            values[at] = v;
            ids[at] = i;
        }
        var alternatives = new TopLogprob[n];
        for (int i = 0; i < n; i++)
            alternatives[i] = new TopLogprob(ids[i], values[i] - logZ);
        // A forced token may have been banned from sampling; OpenAI's floor for "impossible" stands in for -inf.
        float chosen = logits[tokenId] - logZ;
        return new TokenLogprobs(tokenId, float.IsFinite(chosen) ? chosen : Floor, alternatives);
    }
}
