using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Models;

namespace LfmSharp;

/// <summary>
/// A conversation with one model: renders messages with the model's chat template, reuses the state of the longest
/// earlier prompt that is a prefix of the new one (LFM2's conv state cannot be truncated, so the state is
/// snapshotted at every prompt end instead), generates, and turns the text into one event stream: reasoning, answer,
/// tool calls, then <see cref="Done"/>. Thinking budget, loop guard, tool choice and structured output are applied
/// token by token. One session runs one generation at a time; use one session per concurrent conversation.
/// </summary>
public sealed class ChatSession : IDisposable
{
    private const int MaxSnapshots = 4;

    private readonly Lfm2State _state;
    private readonly Generator _generator;
    private readonly List<LfmChatMessage> _history = [];
    private readonly List<(int[] Tokens, Lfm2StateSnapshot Snapshot)> _snapshots = []; // most recent last
    private readonly int _thinkEndId, _toolCallStartId;
    private readonly SemaphoreSlim _busy = new(1, 1);
    private int _toolCallCounter;

    /// <summary>A conversation with <paramref name="model"/>, with its own state of <paramref name="contextLength"/> tokens.</summary>
    public ChatSession(LanguageModel model, int contextLength = 4096, KvCacheType kvCacheType = KvCacheType.F16)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        _state = model.CreateState(contextLength, kvCacheType);
        _generator = new Generator(model);
        _thinkEndId = model.Tokenizer.Vocabulary.TryGetId(ChatOutputParser.ThinkEnd, out int te) ? te : -1;
        _toolCallStartId = model.Tokenizer.Vocabulary.TryGetId(ChatOutputParser.ToolCallStart, out int ts) ? ts : -1;
    }

    /// <summary>The model this session runs.</summary>
    public LanguageModel Model { get; }

    /// <summary>The conversation so far (for <see cref="SendAsync"/>).</summary>
    public IReadOnlyList<LfmChatMessage> History => _history;

    /// <summary>Context length of this session's state.</summary>
    public int ContextLength => _state.ContextLength;

    /// <summary>Prompt tokens actually run through the model in the last call (the rest came from a snapshot).</summary>
    public int LastPrefilledTokens { get; private set; }

    /// <summary>Prompt tokens of the last call.</summary>
    public int LastPromptTokens { get; private set; }

    /// <summary>
    /// Set by a driver that batches the decode steps of many sessions (a server): the synchronous
    /// <see cref="Complete"/> stream then yields <see cref="DecodePending"/> at every decode step (see
    /// <see cref="DecodeBatcher"/>). Leave null for ordinary use.
    /// </summary>
    internal DecodeBatcher? Batcher { get; set; }

    /// <summary>Forgets the conversation and every cached prefix.</summary>
    public void Reset()
    {
        _history.Clear();
        _snapshots.Clear();
        _state.Reset();
    }

    /// <summary>Adds <paramref name="userMessage"/> to <see cref="History"/>, answers, and adds the answer too.</summary>
    public async IAsyncEnumerable<GenerationEvent> SendAsync(string userMessage, ChatRequestOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        var messages = new List<LfmChatMessage>(_history) { LfmChatMessage.User(userMessage) };
        var reasoning = new System.Text.StringBuilder();
        var content = new System.Text.StringBuilder();
        var calls = new List<ToolCall>();
        bool done = false;
        await foreach (var e in CompleteAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            switch (e)
            {
                case ReasoningDelta r: reasoning.Append(r.Text); break;
                case ContentDelta c: content.Append(c.Text); break;
                case ToolCallEvent t: calls.Add(t.Call); break;
                case Done: done = true; break;
            }
            yield return e;
        }
        if (done)
        {
            _history.Add(LfmChatMessage.User(userMessage));
            // Past thinking is dropped from later prompts anyway (the template strips it); keeping it out of the
            // history makes every later render of this turn identical, so the next turn reuses the cached prefix.
            bool keep = options?.KeepPastThinking == true && reasoning.Length > 0;
            _history.Add(LfmChatMessage.Assistant(content.ToString(), keep ? reasoning.ToString() : null, calls.Count > 0 ? calls : null));
        }
    }

    /// <summary>
    /// Answers <paramref name="messages"/> (rendered with the model's template) on a background thread; the events
    /// arrive as they are produced. Throws <see cref="ContextOverflowException"/> before generating when the prompt
    /// does not fit the context.
    /// </summary>
    public IAsyncEnumerable<GenerationEvent> CompleteAsync(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        if (Batcher is not null)
            throw new InvalidOperationException("this session's decode steps are batched (Batcher is set); drive it through Complete and the batcher");
        // Render and tokenize eagerly so bad input and context overflow surface as exceptions from this call.
        var prepared = Prepare(messages, options);
        return RunOnWorker(prepared, cancellationToken);
    }

    /// <summary>Synchronous form of <see cref="CompleteAsync"/>, run on the calling thread.</summary>
    public IEnumerable<GenerationEvent> Complete(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var prepared = Prepare(messages, options);
        return RunLocked(prepared, cancellationToken);
    }

    /// <summary>The exact prompt text and token ids a call with these messages would prefill.</summary>
    public (string Text, int[] Tokens) RenderPrompt(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options = null)
    {
        var p = Prepare(messages, options);
        return (p.PromptText, p.PromptTokens);
    }

    /// <summary>Releases the session's state and KV cache (the model stays loaded).</summary>
    public void Dispose()
    {
        _busy.Dispose();
    }

    // ------------------------------------------------------------------ internals

    private sealed record Prepared(string PromptText, int[] PromptTokens, ChatRequestOptions Options, ChatTemplate Template);

    private Prepared Prepare(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0)
            throw new ArgumentException("no messages to answer", nameof(messages));
        options ??= new ChatRequestOptions();
        options.Validate();
        var template = Model.ChatTemplate;
        var tools = options.ToolChoice.Mode == ToolChoiceMode.None ? null : options.Tools;
        string text = template.Render(messages, tools is { Count: > 0 } ? tools : null, addGenerationPrompt: true, options.TemplateKwargs());
        int[] tokens = Model.Tokenizer.EncodePrompt(text);
        if (tokens.Length >= _state.ContextLength)
            throw new ContextOverflowException(tokens.Length, 0, _state.ContextLength);
        return new Prepared(text, tokens, options, template);
    }

    private async IAsyncEnumerable<GenerationEvent> RunOnWorker(Prepared p, [EnumeratorCancellation] CancellationToken ct)
    {
        // Bounded: the worker waits for a slow reader instead of racing ahead, so cancelling the reader stops
        // generation within a few tokens.
        var channel = Channel.CreateBounded<GenerationEvent>(new BoundedChannelOptions(16) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        var worker = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var e in RunLocked(p, ct))
                {
                    var write = channel.Writer.WriteAsync(e, CancellationToken.None);
                    if (!write.IsCompletedSuccessfully)
                        write.AsTask().GetAwaiter().GetResult();
                }
                channel.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                channel.Writer.TryComplete(ex);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        await foreach (var e in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            yield return e;
        await worker.ConfigureAwait(false);
    }

    private IEnumerable<GenerationEvent> RunLocked(Prepared p, CancellationToken ct)
    {
        if (!_busy.Wait(0, CancellationToken.None))
            throw new InvalidOperationException("this chat session is already generating; use one session per concurrent conversation");
        try
        {
            foreach (var e in Run(p, ct))
                yield return e;
        }
        finally
        {
            _busy.Release();
        }
    }

    private IEnumerable<GenerationEvent> Run(Prepared p, CancellationToken ct)
    {
        var o = p.Options;
        int[] prompt = p.PromptTokens;

        // Reuse the longest cached prompt that is a proper prefix of this one.
        int reuse = RestoreLongestPrefix(prompt);
        LastPromptTokens = prompt.Length;
        LastPrefilledTokens = prompt.Length - reuse;

        var tools = o.ToolChoice.Mode == ToolChoiceMode.None ? null : o.Tools;
        var parser = new ChatOutputParser(new ChatOutputParserOptions
        {
            StartInReasoning = p.Template.GenerationPromptOpensThinking,
            Tools = tools is { Count: > 0 } ? tools : null,
            ToolCallIdFactory = _ => $"call_{Interlocked.Increment(ref _toolCallCounter)}",
        });
        var controller = new ChatController(this, o, parser, prompt);
        var genOptions = new GenerationOptions { MaxTokens = o.MaxTokens, StopStrings = o.Stop, Sampling = o.Sampling, Batcher = Batcher, Logprobs = o.Logprobs };
        var events = new List<GenerationEvent>();
        Done? done = null;
        int toolCalls = 0;

        foreach (var e in _generator.Generate(_state, new ArraySegment<int>(prompt, reuse, prompt.Length - reuse), genOptions, controller, ct))
        {
            events.Clear();
            switch (e)
            {
                case TextDelta t:
                    parser.Push(t.Text, events);
                    controller.ObserveText(t.Text, events);
                    break;
                case Done d:
                    done = d;
                    continue;
                case TokenLogprobs lp when parser.InReasoning:
                    // The parser has not seen this token's text yet: its state is the one the token was written in.
                    if (o.IncludeReasoning)
                        events.Add(lp with { InReasoning = true });
                    break;
                default:
                    events.Add(e);
                    break;
            }
            foreach (var ev in events)
            {
                if (ev is ToolCallEvent) toolCalls++;
                if (ev is ReasoningDelta && !o.IncludeReasoning) continue;
                yield return ev;
            }
        }
        events.Clear();
        parser.Finish(events);
        foreach (var ev in events)
        {
            if (ev is ToolCallEvent) toolCalls++;
            if (ev is ReasoningDelta && !o.IncludeReasoning) continue;
            yield return ev;
        }
        var d0 = done!;
        // A complete call is a finished turn even when it used the last token of the budget.
        var reason = toolCalls > 0 && d0.Reason is FinishReason.Stop or FinishReason.Length ? FinishReason.ToolCalls : d0.Reason;
        yield return new Done(reason, d0.Usage with { ReasoningTokens = controller.ReasoningTokens, PromptTokens = prompt.Length, PrefilledTokens = prompt.Length - reuse });
    }

    private int RestoreLongestPrefix(int[] prompt)
    {
        int best = -1;
        for (int i = 0; i < _snapshots.Count; i++)
        {
            var t = _snapshots[i].Tokens;
            if (t.Length < prompt.Length && (best < 0 || t.Length > _snapshots[best].Tokens.Length) && prompt.AsSpan(0, t.Length).SequenceEqual(t))
                best = i;
        }
        if (best < 0)
        {
            _state.Reset();
            return 0;
        }
        _state.Restore(_snapshots[best].Snapshot);
        return _snapshots[best].Tokens.Length;
    }

    internal void SaveSnapshot(int[] prompt)
    {
        _snapshots.RemoveAll(s => s.Tokens.AsSpan().SequenceEqual(prompt));
        if (_snapshots.Count >= MaxSnapshots)
            _snapshots.RemoveAt(0);
        _snapshots.Add((prompt, _state.Snapshot()));
    }

    /// <summary>Steers one generation: snapshot after prefill, thinking budget, loop guard, tool choice, structured output.</summary>
    private sealed class ChatController : GenerationController
    {
        private readonly ChatSession _session;
        private readonly ChatRequestOptions _o;
        private readonly ChatOutputParser _parser;
        private readonly int[] _prompt;
        private readonly ThinkingBudget _budget;
        private readonly LoopGuard? _guard;
        private readonly Queue<int> _forced = new();
        private readonly AnswerConstraint? _constraint;
        private readonly bool _noTools;
        private FinishReason? _stop;
        private bool _endThinkingRequested;
        private int _generated;
        private int _lastToken = -1;

        public ChatController(ChatSession session, ChatRequestOptions o, ChatOutputParser parser, int[] prompt)
        {
            _session = session;
            _o = o;
            _parser = parser;
            _prompt = prompt;
            _budget = new ThinkingBudget(o.MaxThinkingTokens, o.ThinkingBudgetNotice);
            _guard = o.LoopGuardEnabled ? new LoopGuard(o.LoopGuard) : null;
            _constraint = AnswerConstraint.Create(session.Model, o, parser.InReasoning);
            _noTools = o.ToolChoice.Mode == ToolChoiceMode.None || o.Tools is not { Count: > 0 };
        }

        public int ReasoningTokens => _budget.ReasoningTokens;

        public override FinishReason? StopReason => _stop;

        public override void OnPrefillComplete(Lfm2State state) => _session.SaveSnapshot(_prompt);

        public override int ForcedToken()
        {
            if (_forced.Count > 0)
                return _forced.Dequeue();
            bool inReasoning = _parser.InReasoning;
            bool closeForAnswer = _constraint?.MustCloseThinking(_generated, _o.MaxTokens) ?? false;
            if (inReasoning && (_endThinkingRequested || closeForAnswer || _budget.ShouldForceEnd(inReasoning)) && _session._thinkEndId >= 0)
            {
                _endThinkingRequested = false;
                _budget.MarkForced();
                if (!closeForAnswer && !string.IsNullOrEmpty(_budget.Notice))
                {
                    foreach (int id in _session.Model.Tokenizer.Encode(_budget.Notice, addBos: false, parseSpecial: false))
                        _forced.Enqueue(id);
                }
                _forced.Enqueue(_session._thinkEndId);
                return _forced.Dequeue();
            }
            return -1;
        }

        public override void ProcessLogits(Span<float> logits)
        {
            // No call can be valid without tools (or with tool choice none), and while a constraint waits for the
            // reasoning to end, the call (if required) comes from the grammar afterwards.
            if (_session._toolCallStartId >= 0 && (_noTools || (_constraint is not null && _parser.InReasoning)))
                logits[_session._toolCallStartId] = float.NegativeInfinity;
            _constraint?.ProcessLogits(logits, _generated, _o.MaxTokens);
        }

        public override void OnToken(int tokenId, bool forced)
        {
            _generated++;
            _lastToken = tokenId;
            _budget.CountToken(_parser.InReasoning);
            _constraint?.OnToken(tokenId);
        }

        public override bool SuppressEndOfGeneration => _constraint is { } c && !c.CanEnd;

        /// <summary>Called with each piece of text after the parser has seen it.</summary>
        public void ObserveText(string text, List<GenerationEvent> events)
        {
            if (_guard is null || _stop is not null)
                return;
            // A text piece normally belongs to the token just generated (pieces held for UTF-8 join the next one).
            var hit = _guard.Observe(_lastToken, text, _parser.InReasoning);
            if (hit is null)
                return;
            events.Add(hit.ToEvent());
            if (hit.Action == LoopAction.ForceEndThinking && _parser.InReasoning && _session._thinkEndId >= 0)
                _endThinkingRequested = true;
            else
                _stop = FinishReason.Loop;
        }
    }
}
