using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;

namespace LfmSharp.Server;

/// <summary>The served model: loads it in the background, then owns the scheduler. Endpoints call
/// <see cref="Ready"/>, which answers 503 while loading.</summary>
internal sealed class ModelHost : IDisposable
{
    private readonly LfmServerOptions _options;
    private readonly bool _ownsModel;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private volatile LanguageModel? _model;
    private volatile GenerationScheduler? _scheduler;
    private volatile Exception? _loadError;

    public ModelHost(LfmServerOptions options, Func<LanguageModel> loader, bool ownsModel, string? sourcePath)
    {
        _options = options;
        _ownsModel = ownsModel;
        SourcePath = sourcePath;
        string? file = sourcePath is null ? null : Path.GetFileName(sourcePath);
        ModelId = options.ModelAlias ?? file ?? "lfm";
        _names.Add(ModelId);
        foreach (string alias in options.Aliases ?? [])
            _names.Add(alias);
        if (file is not null)
        {
            _names.Add(file);
            _names.Add(Path.GetFileNameWithoutExtension(file));
            _names.Add(sourcePath!);
        }
        Loaded = Task.Run(() => Load(loader));
    }

    public string ModelId { get; }

    public string? SourcePath { get; }

    public Task Loaded { get; }

    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;

    public bool IsReady => _scheduler is not null;

    public Exception? LoadError => _loadError;

    /// <summary>For tests: the scheduler once the model is ready.</summary>
    public GenerationScheduler? Scheduler => _scheduler;

    private void Load(Func<LanguageModel> loader)
    {
        try
        {
            var model = loader();
            // The same check the library and the CLI make: a context that cannot fit fails the start, not every request.
            RuntimeLimits.CheckContextLength(model.Config, _options.ContextLength, _options.KvCacheType, _options.Slots, _options.Threads ?? Environment.ProcessorCount);
            _model = model;
            foreach (string alias in (ReadOnlySpan<string>)[model.Name])
                _names.Add(alias);
            _scheduler = new GenerationScheduler(model, _options.Slots, _options.QueueCapacity, _options.ContextLength, _options.KvCacheType,
                tokensPerStep: _options.BatchSize, cache: new PrefixCache((long)_options.CacheRamMiB << 20, _options.CacheCheckpointInterval));
        }
        catch (Exception e)
        {
            _loadError = e;
            throw;
        }
    }

    /// <summary>The model and scheduler, or a 503 (loading) / 500 (failed to load).</summary>
    public (LanguageModel Model, GenerationScheduler Scheduler) Ready()
    {
        var scheduler = _scheduler;
        if (scheduler is not null)
            return (_model!, scheduler);
        if (_loadError is Exception e)
            throw new ApiException(500, "The model failed to load: " + e.Message, "server_error", code: "model_load_failed");
        throw new ApiException(503, "Loading model", "unavailable_error", code: "model_loading");
    }

    /// <summary>Every name the model answers to under <c>--strict-model</c> (the id first).</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            var list = new List<string> { ModelId };
            foreach (string alias in _options.Aliases ?? [])
            {
                if (!list.Contains(alias))
                    list.Add(alias);
            }
            return list;
        }
    }

    /// <summary>
    /// The name a response reports: the one the request used (apps check it against what they sent), or the model id
    /// when the request named none. Any name is served by the one model unless <see cref="LfmServerOptions.StrictModel"/>
    /// is set, when an unknown one is a 404 like OpenAI's.
    /// </summary>
    public string ResolveModel(string? requested)
    {
        if (string.IsNullOrEmpty(requested))
            return ModelId;
        if (!_options.StrictModel || _names.Contains(requested))
            return requested;
        throw new ApiException(404, $"The model '{requested}' does not exist; this server serves '{ModelId}'.", "invalid_request_error", "model", "model_not_found");
    }

    /// <summary>Null or a name the server accepts passes (see <see cref="ResolveModel"/>).</summary>
    public void CheckModel(string? requested) => ResolveModel(requested);

    /// <summary>Tokens of the rendered prompt (what the chat session will prefill, before prefix reuse).</summary>
    public static int CountPromptTokens(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions options, int contextLength = int.MaxValue) =>
        PreparePrompt(model, messages, options, contextLength, findMessageEnds: false, refuseFarPastContext: contextLength != int.MaxValue).PromptTokens.Length;

    /// <summary>
    /// Renders and tokenizes the prompt as the chat session will (and, for the prefix cache, finds its message ends),
    /// on the request's thread: the slot's session then starts from it (<see cref="ChatSession.Complete(ChatSession.Prepared, CancellationToken)"/>)
    /// and the decode thread does no template work. A bad conversation is a 400; a prompt far past the context is
    /// refused from its length before it is tokenized.
    /// </summary>
    public static ChatSession.Prepared PreparePrompt(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions options,
        int contextLength, bool findMessageEnds, bool refuseFarPastContext = true)
    {
        // As the session renders it: tool choice "none" leaves the tools out of the prompt.
        var tools = options.ToolChoice.Mode == ToolChoiceMode.None || options.Tools is not { Count: > 0 } ? null : options.Tools;
        string prompt;
        try
        {
            prompt = model.ChatTemplate.Render(messages, tools, addGenerationPrompt: true, options.TemplateKwargs());
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
        // Far past the context (an 8 MB prompt): refuse from the byte length, without tokenizing megabytes. Near it,
        // tokenize, so the error reports the exact count.
        int atLeast = refuseFarPastContext ? AtLeastTokens(model, prompt, contextLength) : 0;
        if (atLeast >= 4L * contextLength)
            throw new ApiException(400, $"This model's maximum context length is {contextLength} tokens. However, your messages resulted in at least {atLeast} tokens.",
                "invalid_request_error", "messages", "context_length_exceeded");
        int[] tokens = model.Tokenizer.EncodePrompt(prompt);
        // The message ends only for a prompt that fits (an over-long one is refused next) and has messages to end.
        int[] ends = findMessageEnds && tokens.Length < contextLength && messages.Count > 0
            ? Chat.PromptCheckpoints.MessageBoundaries(model.ChatTemplate, model.Tokenizer, messages, tools, options.TemplateKwargs(), prompt, tokens)
            : [];
        return new ChatSession.Prepared(prompt, tokens, options, model.ChatTemplate, ends);
    }

    /// <summary>
    /// A lower bound on the tokens of <paramref name="text"/> from its byte length alone (no token is longer than
    /// the vocabulary's longest piece), so a prompt far past the context is refused without tokenizing megabytes.
    /// Returns 0 when the bound says nothing (the text might fit).
    /// </summary>
    public static int AtLeastTokens(LanguageModel model, string text, int contextLength)
    {
        int maxPiece = Math.Max(1, model.Tokenizer.Vocabulary.MaxTokenBytes);
        // UTF-16 length × 3 bounds the UTF-8 length; count exactly only when that bound could matter.
        if ((long)text.Length * 3 < (long)contextLength * maxPiece)
            return 0;
        long bytes = System.Text.Encoding.UTF8.GetByteCount(text);
        return (int)Math.Min(int.MaxValue, bytes / maxPiece);
    }

    public void Dispose()
    {
        try
        {
            Loaded.Wait(TimeSpan.FromMinutes(1));
        }
        catch (Exception)
        {
            // A failed load leaves nothing to dispose.
        }
        _scheduler?.Dispose();
        if (_ownsModel)
            _model?.Dispose();
    }
}
