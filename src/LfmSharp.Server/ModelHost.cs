using LfmSharp.Chat;
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
            _model = model;
            foreach (string alias in (ReadOnlySpan<string>)[model.Name])
                _names.Add(alias);
            _scheduler = new GenerationScheduler(model, _options.Slots, _options.QueueCapacity, _options.ContextLength, _options.KvCacheType);
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

    /// <summary>Null or a name of the served model passes; anything else is a 404 like OpenAI's.</summary>
    public void CheckModel(string? requested)
    {
        if (string.IsNullOrEmpty(requested) || _names.Contains(requested))
            return;
        throw new ApiException(404, $"The model '{requested}' does not exist; this server serves '{ModelId}'.", "invalid_request_error", "model", "model_not_found");
    }

    /// <summary>Tokens of the rendered prompt (what the chat session will prefill, before prefix reuse).</summary>
    public static int CountPromptTokens(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions options)
    {
        // As the session renders it: tool choice "none" leaves the tools out of the prompt.
        var tools = options.ToolChoice.Mode == ToolChoiceMode.None || options.Tools is not { Count: > 0 } ? null : options.Tools;
        string prompt;
        try
        {
            prompt = model.ChatTemplate.Render(messages, tools, addGenerationPrompt: true, options.KeepPastThinking);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
        return model.Tokenizer.EncodePrompt(prompt).Length;
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
