using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Models;

namespace LfmSharp;

/// <summary>
/// A conversation with one model: renders messages with the model's chat template, reuses the state of the longest
/// earlier prompt prefix that the new one starts with (LFM2's conv state cannot be truncated, so the state is
/// copied at checkpoints: message ends, every few hundred tokens of a long message, the prompt's end; see
/// <see cref="PrefixCache"/>), generates, and turns the text into one event stream: reasoning, answer,
/// tool calls, then <see cref="Done"/>. Thinking budget, loop guard, tool choice and structured output are applied
/// token by token. One session runs one generation at a time; use one session per concurrent conversation.
/// </summary>
public sealed class ChatSession : IDisposable
{
    /// <summary>Memory bound of the prefix cache of a session used alone (a server shares one among its slots).</summary>
    internal const long PrivateCacheBytes = 256L << 20;

    private readonly Lfm2State _state;
    private readonly Generator _generator;
    private readonly List<LfmChatMessage> _history = [];
    private readonly PrefixCache _cache;
    private readonly bool _ownsCache;
    private readonly int _thinkEndId, _toolCallStartId;
    private readonly SemaphoreSlim _busy = new(1, 1);
    private int _toolCallCounter;

    /// <summary>A conversation with <paramref name="model"/>, with its own state of <paramref name="contextLength"/> tokens.</summary>
    public ChatSession(LanguageModel model, int contextLength = 4096, KvCacheType kvCacheType = KvCacheType.F16)
        : this(model, contextLength, kvCacheType, cache: null)
    {
    }

    /// <summary>A session whose prompt prefixes go to <paramref name="cache"/> (shared with other sessions of the same
    /// model and context); null: a private cache of <see cref="PrivateCacheBytes"/>.</summary>
    internal ChatSession(LanguageModel model, int contextLength, KvCacheType kvCacheType, PrefixCache? cache)
    {
        _ownsCache = cache is null;
        _cache = cache ?? new PrefixCache(PrivateCacheBytes);
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

    /// <summary>Forgets the conversation and every cached prefix (of a private cache; a shared one is left alone).</summary>
    public void Reset()
    {
        _history.Clear();
        if (_ownsCache)
            _cache.Clear();
        _state.Reset();
    }

    /// <summary>Forgets the conversation and every cached prefix, then starts <see cref="History"/> from
    /// <paramref name="history"/> (e.g. a system message, or a saved conversation to continue with <see cref="SendAsync"/>).</summary>
    public void Reset(IEnumerable<LfmChatMessage> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var messages = history.ToList();
        if (messages.Any(m => m is null))
            throw new ArgumentException("the history holds a null message", nameof(history));
        Reset();
        _history.AddRange(messages);
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
        // Render and tokenize eagerly so bad input and context overflow surface as exceptions from this call.
        var prepared = Prepare(messages, options);
        return RunOnWorker(prepared, cancellationToken);
    }

    /// <summary>Synchronous form of <see cref="CompleteAsync"/>, run on the calling thread.</summary>
    /// <remarks>The generation starts when the stream is enumerated. A batching driver (the server's scheduler) may
    /// instead start it on its own thread and step it together with other sessions' generations.</remarks>
    public IEnumerable<GenerationEvent> Complete(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var prepared = Prepare(messages, options);
        return new PendingGeneration(this, prepared, cancellationToken);
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

    /// <summary>A rendered, tokenized prompt with the message ends found in it, ready for any session of the model
    /// (a server prepares it on the request's thread, so its decode thread only restores and prefills).</summary>
    internal sealed record Prepared(string PromptText, int[] PromptTokens, ChatRequestOptions Options, ChatTemplate Template, int[] MessageEnds);

    private Prepared Prepare(IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions? options)
    {
        options ??= new ChatRequestOptions();
        options.Validate();
        var p = Prepare(Model, messages, options, _cache.Enabled);
        CheckFits(p);
        return p;
    }

    /// <summary>
    /// Renders <paramref name="messages"/> with the model's template and tokenizes the prompt; with
    /// <paramref name="findMessageEnds"/> (a prefix cache is on) also finds its message ends, which cost renders of
    /// the conversation's prefixes. The options are not validated here (the session does that when it starts).
    /// </summary>
    internal static Prepared Prepare(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions options, bool findMessageEnds)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(options);
        if (messages.Count == 0)
            throw new ArgumentException("no messages to answer", nameof(messages));
        var template = model.ChatTemplate;
        var tools = options.ToolChoice.Mode == ToolChoiceMode.None || options.Tools is not { Count: > 0 } ? null : options.Tools;
        string text = template.Render(messages, tools, addGenerationPrompt: true, options.TemplateKwargs());
        int[] tokens = model.Tokenizer.EncodePrompt(text);
        int[] ends = findMessageEnds
            ? PromptCheckpoints.MessageBoundaries(template, model.Tokenizer, messages, tools, options.TemplateKwargs(), text, tokens)
            : [];
        return new Prepared(text, tokens, options, template, ends);
    }

    private void CheckFits(Prepared p)
    {
        if (p.PromptTokens.Length >= _state.ContextLength)
            throw new ContextOverflowException(p.PromptTokens.Length, 0, _state.ContextLength);
    }

    /// <summary>Like <see cref="Complete(IReadOnlyList{LfmChatMessage}, ChatRequestOptions?, CancellationToken)"/>
    /// for a prompt prepared already (<see cref="Prepare(LanguageModel, IReadOnlyList{LfmChatMessage}, ChatRequestOptions, bool)"/>)
    /// with this session's model.</summary>
    internal IEnumerable<GenerationEvent> Complete(Prepared prepared, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prepared);
        if (prepared.Template != Model.ChatTemplate)
            throw new ArgumentException("The prompt was prepared for another model.", nameof(prepared));
        prepared.Options.Validate();
        CheckFits(prepared);
        return new PendingGeneration(this, prepared, cancellationToken);
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
                foreach (var e in new PendingGeneration(this, p, ct))
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

    /// <summary>A prepared call not started yet: enumerate it to run it alone, or start it and step it (a batcher).</summary>
    private sealed class PendingGeneration(ChatSession session, Prepared prepared, CancellationToken ct) : IEnumerable<GenerationEvent>, IGenerationSource
    {
        public GenerationSequence Start() => session.Run(prepared, ct);

        public IEnumerator<GenerationEvent> GetEnumerator()
        {
            using var sequence = Start();
            foreach (var e in sequence)
                yield return e;
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Takes the session (one generation at a time), restores the longest cached prefix and returns the
    /// generation, which releases the session when it ends.</summary>
    private GenerationSequence Run(Prepared p, CancellationToken ct)
    {
        if (!_busy.Wait(0, CancellationToken.None))
            throw new InvalidOperationException("this chat session is already generating; use one session per concurrent conversation");
        try
        {
            var o = p.Options;
            int[] prompt = p.PromptTokens;

            // Reuse the longest cached prefix of this prompt (one token at least is left to prefill, for the logits).
            int reuse = RestoreLongestPrefix(prompt);
            int[]? checkpoints = _cache.Enabled ? PromptCheckpoints.Positions(
                PromptCheckpoints.WithoutCoveredLastEnd(p.MessageEnds, prompt.Length, p.Template.GenerationPromptOpensThinking), prompt.Length, _cache.Interval, reuse) : null;
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
            var genOptions = new GenerationOptions { MaxTokens = o.MaxTokens, StopStrings = o.Stop, Sampling = o.Sampling, Logprobs = o.Logprobs, Checkpoints = checkpoints };
            var sequence = _generator.Generate(_state, new ArraySegment<int>(prompt, reuse, prompt.Length - reuse), genOptions, controller, ct);
            sequence.Ended = () => _busy.Release();
            return sequence;
        }
        catch
        {
            _busy.Release();
            throw;
        }
    }

    /// <summary>Restores the longest cached prefix of <paramref name="prompt"/> (from this session or, with a shared
    /// cache, any other) into the state; at least one token is left to prefill, for the logits.</summary>
    private int RestoreLongestPrefix(int[] prompt) => _cache.Restore(_state, prompt);

    /// <summary>Copies the state (which holds the first <c>state.Position</c> tokens of <paramref name="prompt"/>)
    /// into the prefix cache, unless that prefix is there already.</summary>
    internal void SaveSnapshot(Lfm2State state, int[] prompt, int position) => _cache.Store(state, prompt, position);

    /// <summary>
    /// Steers one generation, token by token, from inside the generator's cycle: thinking budget, loop guard, tool
    /// choice and structured output decide on the parser's state, which this controller feeds itself with each
    /// token's text (so it is current before the next token is chosen); it also turns the text into reasoning,
    /// content and tool-call events.
    /// </summary>
    private sealed class ChatController : GenerationController
    {
        private readonly ChatSession _session;
        private readonly ChatRequestOptions _o;
        private readonly ChatOutputParser _parser;
        private readonly int[] _prompt;
        private readonly List<int>? _tokens;   // every token chosen, for the end-of-generation snapshot (with a cache)
        private readonly ThinkingBudget _budget;
        private readonly LoopGuard? _guard;
        private readonly Queue<int> _forced = new();
        private readonly AnswerConstraint? _constraint;
        private readonly bool _noTools;
        private readonly List<GenerationEvent> _parsed = [];
        private FinishReason? _stop;
        private bool _endThinkingRequested;
        private int _generated;
        private int _lastToken = -1;
        private int _toolCalls;

        public ChatController(ChatSession session, ChatRequestOptions o, ChatOutputParser parser, int[] prompt)
        {
            _session = session;
            _o = o;
            _parser = parser;
            _prompt = prompt;
            _tokens = session._cache.Enabled ? [] : null;
            _budget = new ThinkingBudget(o.MaxThinkingTokens, o.ThinkingBudgetNotice);
            _guard = o.LoopGuardEnabled ? new LoopGuard(o.LoopGuard) : null;
            _constraint = AnswerConstraint.Create(session.Model, o, parser.InReasoning);
            _noTools = o.ToolChoice.Mode == ToolChoiceMode.None || o.Tools is not { Count: > 0 };
        }

        public override FinishReason? StopReason => _stop;

        // At each checkpoint (message ends, every N tokens, the last-but-one token), then once at the end with the
        // answer fed so far: the next turn of a conversation starts with the prompt and, when its template re-renders
        // the answer as it was generated, the answer too. (No copy of the whole prompt: the end-of-generation one
        // supersedes it, and prompt − 1 covers a next turn whose answer re-renders differently.)
        public override void OnCheckpoint(Lfm2State state, int position) => _session.SaveSnapshot(state, _prompt, position);

        public override void OnGenerationEnd(Lfm2State state)
        {
            if (_tokens is not null)
                _session._cache.StoreGeneration(state, _prompt, _tokens, _session.Model.Tokenizer);
        }

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
            _tokens?.Add(tokenId);
            _budget.CountToken(_parser.InReasoning);
            _constraint?.OnToken(tokenId);
        }

        public override bool SuppressEndOfGeneration => _constraint is { } c && !c.CanEnd;

        public override void OnLogprobs(TokenLogprobs logprobs, List<GenerationEvent> events)
        {
            // The parser has not seen this token's text yet: its state is the one the token was written in.
            if (!_parser.InReasoning)
                events.Add(logprobs);
            else if (_o.IncludeReasoning)
                events.Add(logprobs with { InReasoning = true });
        }

        public override void OnText(string text, List<GenerationEvent> events)
        {
            _parsed.Clear();
            _parser.Push(text, _parsed);
            ObserveText(text, _parsed);
            Forward(events);
        }

        public override Done OnFinish(Done done, List<GenerationEvent> events)
        {
            _parsed.Clear();
            _parser.Finish(_parsed);
            Forward(events);
            // A complete call is a finished turn even when it used the last token of the budget.
            var reason = _toolCalls > 0 && done.Reason is FinishReason.Stop or FinishReason.Length ? FinishReason.ToolCalls : done.Reason;
            return new Done(reason, done.Usage with { ReasoningTokens = _budget.ReasoningTokens });
        }

        private void Forward(List<GenerationEvent> events)
        {
            foreach (var ev in _parsed)
            {
                if (ev is ToolCallEvent) _toolCalls++;
                if (ev is ReasoningDelta && !_o.IncludeReasoning) continue;
                events.Add(ev);
            }
            _parsed.Clear();
        }

        /// <summary>The loop guard sees each piece of text after the parser has seen it.</summary>
        private void ObserveText(string text, List<GenerationEvent> events)
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
