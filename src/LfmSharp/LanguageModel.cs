using LfmSharp.Chat;
using LfmSharp.Constraints;
using LfmSharp.Generation;
using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Models;
using LfmSharp.Tokenizers;

namespace LfmSharp;

/// <summary>
/// A loaded LFM2 model: owns the memory-mapped GGUF file, the weights bound to it and the kernel threads.
/// Create one <see cref="Lfm2State"/> per sequence with <see cref="CreateState"/>, then call <see cref="Forward"/>.
/// Dispose releases the map; states of a disposed model can no longer be used.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly GgufFile _file;
    private readonly KernelThreadPool _pool;
    private readonly Lfm2Model _model;
    private int _disposed;

    private readonly Lazy<TokenVocabulary> _constraintVocabulary;

    private LanguageModel(GgufFile file, KernelThreadPool pool, Lfm2Model model, string? chatTemplateOverride)
    {
        _file = file;
        _pool = pool;
        _model = model;
        Tokenizer = new BpeTokenizer(Vocabulary.FromGguf(file.Metadata));
        if (Tokenizer.Vocabulary.Count != model.Config.VocabSize)
            throw new InvalidDataException($"the tokenizer has {Tokenizer.Vocabulary.Count} tokens but the model's vocabulary size is {model.Config.VocabSize}");
        // Parsed once per model; the override (ModelLoadOptions.ChatTemplate, --chat-template-file) replaces the file's.
        var vocab = Tokenizer.Vocabulary;
        string bos = vocab.BosId is int b ? vocab[b] : "", eos = vocab.EosId is int e ? vocab[e] : "";
        ChatTemplate = chatTemplateOverride is null
            ? ChatTemplate.FromGguf(file.Metadata.GetStringOrDefault("tokenizer.chat_template"), bos, eos)
            : OverrideTemplate(chatTemplateOverride, bos, eos);
        DefaultSampling = SamplingOptions.ForModel(file.Metadata.GetStringOrDefault("general.name"), file.Metadata.GetStringOrDefault("general.finetune"));
        Name = file.Metadata.GetStringOrDefault("general.name") ?? System.IO.Path.GetFileNameWithoutExtension(file.Path ?? "model");
        _constraintVocabulary = new Lazy<TokenVocabulary>(() => TokenVocabulary.FromTokenizer(Tokenizer.Vocabulary));
    }

    // An explicit template must run: falling back to a hand-written layout would silently ignore the caller's choice.
    private static ChatTemplate OverrideTemplate(string source, string bos, string eos)
    {
        try
        {
            return new JinjaChatTemplate(source, bos, eos);
        }
        catch (Templating.TemplateException e)
        {
            throw new ArgumentException($"the chat template given to replace the model's cannot be used: {e.Message}", nameof(ModelLoadOptions.ChatTemplate), e);
        }
    }

    /// <summary>The model's tokenizer (vocabulary, merges and special tokens from the GGUF).</summary>
    public BpeTokenizer Tokenizer { get; }

    /// <summary>The model's chat template: the GGUF's <c>tokenizer.chat_template</c> (or <see cref="ModelLoadOptions.ChatTemplate"/>)
    /// run by the Jinja engine, or a hand-written fallback layout (see <see cref="ChatTemplate.Warning"/>).</summary>
    public ChatTemplate ChatTemplate { get; }

    /// <summary>Sampling defaults for this model (Liquid's recommendation when the metadata names an LFM2.5 model).</summary>
    public SamplingOptions DefaultSampling { get; }

    /// <summary><c>general.name</c>, else the file name.</summary>
    public string Name { get; }

    /// <summary>Path of the GGUF file.</summary>
    public string? Path => _file.Path;

    /// <summary>The byte-level vocabulary used by constrained decoding (built on first use).</summary>
    internal TokenVocabulary ConstraintVocabulary => _constraintVocabulary.Value;

    /// <summary>A new chat session with its own state.</summary>
    public ChatSession CreateChatSession(int contextLength = 4096, KvCacheType kvCacheType = KvCacheType.F16) =>
        new(this, contextLength, kvCacheType);

    /// <summary>
    /// Memory-maps <paramref name="path"/> and binds its weights (nothing large is copied). A model name works too
    /// (<c>lfm2.5-thinking</c>, <c>LiquidAI/LFM2.5-1.2B-Thinking-GGUF:Q4_K_M</c>, <c>hf.co/…</c>): it is taken from the
    /// Hugging Face cache, and downloaded first when missing (see <see cref="Hub.ModelLocator"/>; no progress is
    /// reported here, use <see cref="LoadAsync"/> for that).
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="Hub.HubException">A model name that could not be resolved or downloaded.</exception>
    /// <exception cref="GgufFormatException">Not a valid GGUF file.</exception>
    /// <exception cref="NotSupportedException">Another architecture, or a tensor type the engine cannot compute with.</exception>
    /// <exception cref="InvalidDataException">Missing or inconsistent metadata, a missing tensor or a shape mismatch.</exception>
    public static LanguageModel Load(string path, ModelLoadOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ModelLoadOptions();
        int threads = RuntimeLimits.CheckThreads(options.Threads);
        RuntimeLimits.CheckModelFile(path);

        var file = GgufFile.Open(Hub.ModelLocator.Resolve(path));
        KernelThreadPool? pool = null;
        try
        {
            pool = new KernelThreadPool(threads);
            var model = Lfm2Model.Load(file, pool, options.Precision, options.RepackWeights);
            return new LanguageModel(file, pool, model, options.ChatTemplate);
        }
        catch
        {
            pool?.Dispose();
            file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Resolves <paramref name="pathOrName"/> (a path, or a model name pulled from the hub when it is not cached,
    /// reporting <paramref name="progress"/>), then loads it on a worker thread.
    /// </summary>
    /// <exception cref="Hub.HubException">A model name that could not be resolved or downloaded.</exception>
    public static async Task<LanguageModel> LoadAsync(string pathOrName, IProgress<Hub.DownloadProgress>? progress = null, ModelLoadOptions? options = null,
        Hub.HubOptions? hubOptions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pathOrName);
        string path = await Hub.ModelLocator.ResolveAsync(pathOrName, hubOptions, progress, cancellationToken).ConfigureAwait(false);
        return await Task.Run(() => Load(path, options), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The network's hyper-parameters, read from the GGUF metadata.</summary>
    public Lfm2Config Config => _model.Config;

    /// <summary>All metadata of the GGUF file.</summary>
    public GgufMetadata Metadata => _file.Metadata;

    /// <summary>The network itself (for callers that manage states directly).</summary>
    internal Lfm2Model Model => _model;

    /// <summary>
    /// A fresh sequence state with room for <paramref name="contextLength"/> tokens (not the file's training
    /// context, which can be 128K) and the given KV cache precision.
    /// </summary>
    internal Lfm2State CreateState(int contextLength = 4096, KvCacheType kvCacheType = KvCacheType.F16) =>
        _model.CreateState(contextLength, kvCacheType);

    /// <inheritdoc cref="Lfm2Model.Forward"/>
    internal void Forward(ReadOnlySpan<int> tokens, Lfm2State state, Span<float> logits, LogitPositions positions = LogitPositions.Last) =>
        _model.Forward(tokens, state, logits, positions);

    /// <inheritdoc cref="Lfm2Model.ForwardBatch(ReadOnlySpan{int}, ReadOnlySpan{Lfm2State}, Span{float})"/>
    internal void ForwardBatch(ReadOnlySpan<int> tokens, ReadOnlySpan<Lfm2State> states, Span<float> logits) =>
        _model.ForwardBatch(tokens, states, logits);

    /// <summary>Unmaps the file and stops the model's worker threads; sessions of this model must not be used afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _model.Dispose();   // waits for a running forward pass, then refuses new ones
        _pool.Dispose();
        _file.Dispose();
    }
}
