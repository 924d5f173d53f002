using System.Diagnostics;
using LfmSharp.Models;
using LfmSharp.Tokenizers;

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
    /// Null: the generation runs its own decode steps. Set: each decode step is queued on the batcher and the stream
    /// yields <see cref="DecodePending"/>; whoever drives the stream must run <see cref="DecodeBatcher.RunPending"/>
    /// before moving it on.
    /// </summary>
    public DecodeBatcher? Batcher { get; init; }

    /// <summary>Null: no log probabilities. 0..<see cref="TokenLogprobs.MaxTop"/>: a <see cref="TokenLogprobs"/>
    /// event before each generated token's text, with that many alternatives.</summary>
    public int? Logprobs { get; init; }

    /// <summary>
    /// Absolute state positions (token counts from the start of the prompt, ascending) where the prefill stops and
    /// calls <see cref="GenerationController.OnCheckpoint"/> before it goes on, so the state there can be copied
    /// (a prefix cache). Positions at or before the state's start or past the prompt's end are ignored.
    /// </summary>
    public IReadOnlyList<int>? Checkpoints { get; init; }
}

/// <summary>
/// Hooks the chat layer uses to steer a generation token by token: force a token (thinking budget, loop guard),
/// mask logits (structured output), watch what was chosen, add events, or stop.
/// </summary>
internal abstract class GenerationController
{
    private readonly Queue<GenerationEvent> _events = new();

    /// <summary>A token to emit instead of sampling, or -1.</summary>
    public virtual int ForcedToken() => -1;

    /// <summary>Adjusts the logits before sampling (e.g. masks tokens a grammar forbids).</summary>
    public virtual void ProcessLogits(Span<float> logits) { }

    /// <summary>Called for every token that becomes part of the output, sampled or forced.</summary>
    public virtual void OnToken(int tokenId, bool forced) { }

    /// <summary>Called once the prompt is in the state, before the first token is chosen (e.g. to snapshot it).</summary>
    public virtual void OnPrefillComplete(Lfm2State state) { }

    /// <summary>Called during prefill when the state reaches one of <see cref="GenerationOptions.Checkpoints"/>
    /// (<c>state.Position</c> is that checkpoint), before the prefill goes on.</summary>
    public virtual void OnCheckpoint(Lfm2State state) { }

    /// <summary>Non-null ends the generation with that reason after the current token.</summary>
    public virtual FinishReason? StopReason => null;

    /// <summary>True when the chosen token must not end generation even if it is an end-of-generation token.</summary>
    public virtual bool SuppressEndOfGeneration => false;

    protected void Enqueue(GenerationEvent e) => _events.Enqueue(e);

    internal bool TryDequeue(out GenerationEvent e) => _events.TryDequeue(out e!);
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
/// Prefill, then the decode loop: sample (or take a forced token), detokenize without splitting UTF-8, hold back
/// possible stop strings, and stop on end-of-generation ids, stop strings, the token limit, a full context or
/// cancellation (checked before every token, so it stops within one token). Produces <see cref="TextDelta"/>
/// events and a final <see cref="Done"/>.
/// </summary>
internal sealed class Generator
{
    private readonly LanguageModel _model;

    /// <summary>
    /// Prompt tokens per forward pass when a <see cref="GenerationOptions.Batcher"/> drives the generation (between
    /// chunks the stream yields <see cref="DecodePending"/> with nothing queued). 128 keeps the GEMM's per-call weight
    /// packing a few percent of the prefill while bounding the others' stall to one chunk.
    /// </summary>
    public const int PrefillChunk = 128;

    public Generator(LanguageModel model)
    {
        _model = model ?? throw new ArgumentNullException(nameof(model));
    }

    /// <summary>
    /// Generates after <paramref name="prompt"/>. The state must already hold <c>state.Position</c>
    /// tokens of the prompt (restored from a snapshot); <paramref name="prompt"/> are the tokens still to prefill.
    /// </summary>
    public IEnumerable<GenerationEvent> Generate(Lfm2State state, IReadOnlyList<int> prompt, GenerationOptions? options = null,
        GenerationController? controller = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(prompt);
        options ??= new GenerationOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxTokens, 0);
        if (options.Logprobs is < 0 or > TokenLogprobs.MaxTop)
            throw new ArgumentOutOfRangeException(nameof(options), options.Logprobs, "Logprobs must be in 0..20 alternatives");
        int cached = state.Position;
        if (prompt.Count == 0 && cached == 0)
            throw new ArgumentException("the prompt is empty", nameof(prompt));
        if (cached + prompt.Count >= state.ContextLength)
            throw new ContextOverflowException(cached + prompt.Count, cached, state.ContextLength);
        var sampling = options.Sampling ?? _model.DefaultSampling;
        return Run(state, prompt, options, sampling, controller, cancellationToken);
    }

    private IEnumerable<GenerationEvent> Run(Lfm2State state, IReadOnlyList<int> prompt, GenerationOptions options, SamplingOptions sampling,
        GenerationController? controller, CancellationToken ct)
    {
        var vocab = _model.Tokenizer.Vocabulary;
        int vocabSize = _model.Config.VocabSize;
        int cached = state.Position;
        var sampler = new Sampler(sampling, vocabSize);
        var detok = new StreamingDetokenizer(_model.Tokenizer);
        var stops = new StopSequenceMatcher(options.StopStrings);
        var logits = new float[vocabSize];                        // [vocab] logits of the last position
        var history = new List<int>(prompt.Count + options.MaxTokens); // prompt + generated, for the penalties
        history.AddRange(prompt);

        var clock = Stopwatch.StartNew();
        TimeSpan prefill = TimeSpan.Zero, ttft = TimeSpan.Zero;
        int generated = 0;
        FinishReason reason = FinishReason.Length;

        if (ct.IsCancellationRequested)
        {
            reason = FinishReason.Cancelled;
        }
        else
        {
            if (prompt.Count > 0)
            {
                int[] ids = prompt as int[] ?? [.. prompt];
                // Under a batched driver, prefill in chunks and give the other sequences a decode round between
                // chunks, so a long prompt delays their next token by one chunk, not by the whole prompt.
                int chunk = options.Batcher is null ? ids.Length : PrefillChunk;
                var checkpoints = options.Checkpoints;
                int next = 0;   // the first checkpoint not yet reached
                while (checkpoints is not null && next < checkpoints.Count && checkpoints[next] <= cached)
                    next++;
                for (int start = 0; start < ids.Length;)
                {
                    int n = Math.Min(chunk, ids.Length - start);
                    // A chunk ends at the next checkpoint, so the state can be copied exactly there.
                    if (checkpoints is not null && next < checkpoints.Count && checkpoints[next] - cached < start + n)
                        n = checkpoints[next] - cached - start;
                    _model.Forward(ids.AsSpan(start, n), state, logits);
                    start += n;
                    while (checkpoints is not null && next < checkpoints.Count && checkpoints[next] <= cached + start)
                    {
                        if (checkpoints[next++] == cached + start)
                            controller?.OnCheckpoint(state);
                    }
                    if (start < ids.Length && options.Batcher is not null)
                        yield return DecodePending.Instance;
                }
            }
            prefill = clock.Elapsed;
            controller?.OnPrefillComplete(state);
            var one = new int[1];
            while (true)
            {
                if (generated >= options.MaxTokens) { reason = FinishReason.Length; break; }
                if (ct.IsCancellationRequested) { reason = FinishReason.Cancelled; break; }

                int forcedId = controller?.ForcedToken() ?? -1;
                int id;
                if (forcedId >= 0)
                {
                    id = forcedId;
                }
                else
                {
                    // Before any mask (a grammar sets −∞ on purpose): NaN/∞ from the model itself is a fault.
                    NumericalFaultException.ThrowIfNotFinite(logits, generated);
                    controller?.ProcessLogits(logits);
                    id = sampler.Sample(logits, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(history));
                }
                if (generated == 0)
                    ttft = clock.Elapsed;
                generated++;
                history.Add(id);
                controller?.OnToken(id, forcedId >= 0);

                bool eog = vocab.IsEndOfGeneration(id) && options.StopAtEndOfGeneration && !(controller?.SuppressEndOfGeneration ?? false);
                if (eog) { reason = FinishReason.Stop; break; }
                // The logits now hold what the sampler saw (bias, penalties, mask applied in place).
                if (options.Logprobs is int top)
                    yield return TokenLogprobs.Compute(logits, id, top);

                string text = stops.Push(detok.Append(id));
                if (text.Length > 0)
                    yield return new TextDelta(text);
                if (controller is not null)
                {
                    while (controller.TryDequeue(out var e))
                        yield return e;
                }
                if (stops.Stopped) { reason = FinishReason.Stop; break; }
                if (controller?.StopReason is { } r) { reason = r; break; }
                if (generated >= options.MaxTokens) { reason = FinishReason.Length; break; }
                if (state.Position + 1 >= state.ContextLength) { reason = FinishReason.Length; break; }
                if (ct.IsCancellationRequested) { reason = FinishReason.Cancelled; break; }

                if (options.Batcher is { } batcher)
                {
                    batcher.Enqueue(state, id, logits);
                    yield return DecodePending.Instance;   // the driver runs the batched step, then resumes us
                }
                else
                {
                    one[0] = id;
                    _model.Forward(one, state, logits);
                }
            }
        }

        if (!stops.Stopped)
        {
            string tail = stops.Push(detok.Flush()) + stops.Flush();
            if (tail.Length > 0)
                yield return new TextDelta(tail);
        }
        if (controller is not null)
        {
            while (controller.TryDequeue(out var e))
                yield return e;
        }
        var total = clock.Elapsed;
        yield return new Done(reason, new GenerationUsage
        {
            PromptTokens = cached + prompt.Count,
            PrefilledTokens = prompt.Count,
            CompletionTokens = generated,
            PrefillTime = prefill,
            DecodeTime = generated > 0 ? total - ttft : TimeSpan.Zero,
            TimeToFirstToken = ttft,
        });
    }
}
