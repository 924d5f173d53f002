using LfmSharp.Models;

namespace LfmSharp.Generation;

/// <summary>Options of one generation call.</summary>
internal sealed record GenerationOptions
{
    /// <summary>Most tokens to generate (reasoning included).</summary>
    public int MaxTokens { get; init; } = 512;

    /// <summary>Stop strings: generation ends before the first one, which never reaches the output.</summary>
    public IReadOnlyList<string>? StopStrings { get; init; }

    /// <summary>Null: the model's defaults (<see cref="SamplingOptions.ForModel"/>).</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>End at the vocabulary's end-of-generation tokens (&lt;|im_end|&gt;, &lt;|endoftext|&gt;).</summary>
    public bool StopAtEndOfGeneration { get; init; } = true;

    /// <summary>
    /// Ascending absolute state positions (token counts from the start of the prompt) for which the prefill calls
    /// <see cref="GenerationController.OnCheckpoint"/>, for every p with start position &lt; p &lt;= prompt length
    /// (others are ignored). The chunks are not cut there: a checkpoint inside a chunk has its conv histories captured
    /// by the pass (<see cref="Lfm2State.CaptureAt"/>), so <c>state.Snapshot(p)</c> works in the hook. Null: none.
    /// </summary>
    public IReadOnlyList<int>? Checkpoints { get; init; }

    /// <summary>Null: no log probabilities. 0..<see cref="TokenLogprobs.MaxTop"/>: a <see cref="TokenLogprobs"/>
    /// event before each generated token's text, with that many alternatives.</summary>
    public int? Logprobs { get; init; }
}

/// <summary>
/// The one hook object of a generation. <see cref="GenerationSequence"/> calls it from one place, in this order, for
/// every token: <see cref="ForcedToken"/>, then (when none is forced) <see cref="ProcessLogits"/> and sampling,
/// <see cref="OnToken"/>, the end-of-generation check (<see cref="SuppressEndOfGeneration"/>),
/// <see cref="OnLogprobs"/>, <see cref="OnText"/> with the token's text, then <see cref="StopReason"/>. The text
/// reaches the hook before the next token is chosen, so state it derives from the text (a parser, a loop guard) is
/// current when it decides.
/// </summary>
internal abstract class GenerationController
{
    /// <summary>A token to emit instead of sampling, or -1.</summary>
    public virtual int ForcedToken() => -1;

    /// <summary>Adjusts the logits before sampling (e.g. masks tokens a grammar forbids).</summary>
    public virtual void ProcessLogits(Span<float> logits) { }

    /// <summary>Called for every token that becomes part of the output, sampled or forced.</summary>
    public virtual void OnToken(int tokenId, bool forced) { }

    /// <summary>Called during the prefill, after the pass that ran through <paramref name="position"/> (one of
    /// <see cref="GenerationOptions.Checkpoints"/>), before the prefill goes on: <c>state.Snapshot(position)</c>
    /// copies the state as it was after that many tokens (e.g. to keep a shared prefix). In ascending order.</summary>
    public virtual void OnCheckpoint(Lfm2State state, int position) { }

    /// <summary>Called once the prompt is in the state, before the first token is chosen (e.g. to snapshot it).</summary>
    public virtual void OnPrefillComplete(Lfm2State state) { }

    /// <summary>Called once when the generation finishes (not after a failed pass), before <see cref="OnFinish"/>, with
    /// the state holding the prompt and every generated token fed so far: all but the last one chosen (e.g. to
    /// snapshot it for the next turn of a conversation, whose prompt re-renders the answer).</summary>
    public virtual void OnGenerationEnd(Lfm2State state) { }

    /// <summary>The log probabilities of the token just chosen (before its text); adds the events to emit.</summary>
    public virtual void OnLogprobs(TokenLogprobs logprobs, List<GenerationEvent> events) => events.Add(logprobs);

    /// <summary>Generated text (whole UTF-8 characters, stop strings held back); adds the events to emit.</summary>
    public virtual void OnText(string text, List<GenerationEvent> events) => events.Add(new TextDelta(text));

    /// <summary>The generation is over: adds any last events and returns the <see cref="Done"/> to emit.</summary>
    public virtual Done OnFinish(Done done, List<GenerationEvent> events) => done;

    /// <summary>Non-null ends the generation with that reason after the current token.</summary>
    public virtual FinishReason? StopReason => null;

    /// <summary>True when the chosen token must not end generation even if it is an end-of-generation token.</summary>
    public virtual bool SuppressEndOfGeneration => false;
}

/// <summary>The prompt does not fit the context.</summary>
public sealed class ContextOverflowException(int promptTokens, int cachedTokens, int contextLength)
    : Exception($"the prompt has {promptTokens} tokens ({cachedTokens} already in the state) but the context holds {contextLength}; nothing is left to generate")
{
    /// <summary>Tokens the prompt needs.</summary>
    public int PromptTokens { get; } = promptTokens;
    /// <summary>The session's context length.</summary>
    public int ContextLength { get; } = contextLength;
}

/// <summary>
/// Starts generations: validates the request and returns a <see cref="GenerationSequence"/>, the step machine that
/// prefills, samples (or takes a forced token), detokenizes without splitting UTF-8, holds back possible stop strings,
/// and stops on end-of-generation ids, stop strings, the token limit, a full context or cancellation (checked before
/// every forward pass, so it stops within one token). Enumerating the sequence runs it alone; a
/// <see cref="DecodeBatcher"/> can drive many sequences through shared forward passes instead.
/// </summary>
internal sealed class Generator
{
    private readonly LanguageModel _model;

    public Generator(LanguageModel model)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
    }

    /// <summary>
    /// A generation after <paramref name="prompt"/>. The state must already hold <c>state.Position</c>
    /// tokens of the prompt (restored from a snapshot); <paramref name="prompt"/> are the tokens still to prefill
    /// (at least one: the first token is sampled from the logits after the last of them).
    /// </summary>
    public GenerationSequence Generate(Lfm2State state, IReadOnlyList<int> prompt, GenerationOptions? options = null,
        GenerationController? controller = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new GenerationOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTokens, 0);
        if (options.Logprobs is < 0 or > TokenLogprobs.MaxTop)
            throw new ArgumentOutOfRangeException(nameof(options), options.Logprobs, "Logprobs must be in 0..20 alternatives");
        int cached = state.Position;
        if (prompt.Count == 0)
            throw new ArgumentException(cached == 0 ? "the prompt is empty" : "no prompt token left to prefill: the next-token logits come from the last prompt token, so at least one must be fed", nameof(prompt));
        if (cached + prompt.Count >= state.ContextLength)
            throw new ContextOverflowException(cached + prompt.Count, cached, state.ContextLength);
        if (state.Model != _model.Model)
            throw new ArgumentException("The state was created by another model.", nameof(state));
        var sampling = options.Sampling ?? _model.DefaultSampling;
        return new GenerationSequence(_model, state, [.. prompt], options, sampling, controller, cancellationToken);
    }
}
