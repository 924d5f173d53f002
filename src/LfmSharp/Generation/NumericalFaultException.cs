namespace LfmSharp.Generation;

/// <summary>
/// The model produced NaN or infinite logits (corrupt or badly quantized weights, or an overflow in the forward
/// pass). Generation stops: sampling such logits would silently pick arbitrary tokens.
/// </summary>
public sealed class NumericalFaultException : InvalidOperationException
{
    /// <summary>Creates the exception for the logits of generated token <paramref name="tokenIndex"/>.</summary>
    public NumericalFaultException(int tokenIndex, float value)
        : base($"the model produced a non-finite logit ({value}) for generated token {tokenIndex}; its weights may be corrupt, so generation stopped")
    {
        TokenIndex = tokenIndex;
    }

    /// <summary>Index of the generated token whose logits were not finite (0 = the first).</summary>
    public int TokenIndex { get; }

    /// <summary>Throws when any logit is NaN or ±∞ (one pass over the vocabulary, no allocation).</summary>
    internal static void ThrowIfNotFinite(ReadOnlySpan<float> logits, int tokenIndex)
    {
        // x − x is 0 for every finite x and NaN for NaN and ±∞: sum those and test once.
        float acc = 0;
        foreach (float x in logits)
            acc += x - x;
        if (float.IsNaN(acc))
        {
            foreach (float x in logits)
            {
                if (!float.IsFinite(x))
                    throw new NumericalFaultException(tokenIndex, x);
            }
        }
    }
}
