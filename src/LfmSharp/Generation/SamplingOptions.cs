namespace LfmSharp.Generation;

/// <summary>
/// How the next token is chosen. Stages run in one fixed order (see <see cref="Sampler"/>):
/// logit bias → repetition / frequency / presence penalties over the last <see cref="PenaltyLastN"/> tokens →
/// (temperature ≤ 0: greedy argmax) → top-k → temperature → softmax → top-p → min-p → seeded draw.
/// A stage is off at its neutral value (TopK 0, TopP 1, MinP 0, penalties 1/0/0).
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature; 0 (or less) means greedy argmax (ties go to the lowest id, like llama.cpp).</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Keep only the K most likely tokens; 0 disables.</summary>
    public int TopK { get; init; }

    /// <summary>Nucleus sampling: keep the smallest set whose probability reaches P; 1 disables.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens whose probability is below MinP × the top probability; 0 disables.</summary>
    public float MinP { get; init; }

    /// <summary>HF/llama.cpp repetition penalty: positive logits of seen tokens divided by it, negative ones multiplied; 1 disables.</summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>OpenAI frequency penalty: subtract penalty × count of the token in the window.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>OpenAI presence penalty: subtract penalty once if the token occurs in the window.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>How many of the most recent tokens (prompt included) the penalties look at; 0 disables, -1 means all.</summary>
    public int PenaltyLastN { get; init; } = 64;

    /// <summary>Added to the logits before anything else (token id → bias; -inf bans a token).</summary>
    public IReadOnlyDictionary<int, float>? LogitBias { get; init; }

    /// <summary>Seed of the draw; the same seed, options and logits give the same tokens. Null draws a seed from the OS.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Plain greedy decoding.</summary>
    public static SamplingOptions Greedy { get; } = new() { Temperature = 0f, PenaltyLastN = 0 };

    /// <summary>No opinion: temperature 1 and every filter off.</summary>
    public static SamplingOptions Neutral { get; } = new() { Temperature = 1f };

    /// <summary>Liquid's recommendation for LFM2.5-1.2B-Thinking (model card): temperature 0.05, top_k 50, repetition_penalty 1.05.</summary>
    public static SamplingOptions Lfm25Thinking { get; } = new() { Temperature = 0.05f, TopK = 50, RepetitionPenalty = 1.05f };

    /// <summary>Liquid's recommendation for LFM2.5-1.2B-Instruct: temperature 0.1, top_k 50, top_p 0.1, repetition_penalty 1.05.</summary>
    public static SamplingOptions Lfm25Instruct { get; } = new() { Temperature = 0.1f, TopK = 50, TopP = 0.1f, RepetitionPenalty = 1.05f };

    /// <summary>
    /// Defaults from the model's own metadata: Liquid's recommended settings when <c>general.name</c> /
    /// <c>general.finetune</c> say the file is LFM2.5 Thinking or Instruct, <see cref="Neutral"/> otherwise.
    /// </summary>
    public static SamplingOptions ForModel(string? generalName, string? finetune)
    {
        string text = $"{generalName} {finetune}".ToLowerInvariant();
        bool lfm25 = text.Contains("lfm2.5", StringComparison.Ordinal) || text.Contains("lfm2-5", StringComparison.Ordinal) || text.Contains("lfm25", StringComparison.Ordinal);
        if (lfm25 && text.Contains("thinking", StringComparison.Ordinal))
            return Lfm25Thinking;
        if (lfm25 && text.Contains("instruct", StringComparison.Ordinal))
            return Lfm25Instruct;
        return Neutral;
    }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (float.IsNaN(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), "temperature is NaN");
        if (TopK < 0) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top_k must be >= 0");
        if (!(TopP > 0f && TopP <= 1f)) throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top_p must be in (0, 1]");
        if (!(MinP >= 0f && MinP <= 1f)) throw new ArgumentOutOfRangeException(nameof(MinP), MinP, "min_p must be in [0, 1]");
        if (!(RepetitionPenalty > 0f)) throw new ArgumentOutOfRangeException(nameof(RepetitionPenalty), RepetitionPenalty, "repetition_penalty must be > 0");
        if (float.IsNaN(FrequencyPenalty) || float.IsNaN(PresencePenalty)) throw new ArgumentOutOfRangeException(nameof(FrequencyPenalty), "penalties must be numbers");
        if (PenaltyLastN < -1) throw new ArgumentOutOfRangeException(nameof(PenaltyLastN), PenaltyLastN, "penalty window must be >= -1");
    }
}
