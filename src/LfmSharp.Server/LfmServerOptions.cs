namespace LfmSharp.Server;

/// <summary>Settings of an <see cref="LfmServer"/> (the <c>lfm serve</c> options).</summary>
public sealed record LfmServerOptions
{
    /// <summary>The GGUF file to serve (loaded in the background: <c>/health</c> answers 503 until it is ready).</summary>
    public string? ModelPath { get; init; }

    /// <summary>Address to bind. Loopback by default: serving the network is a deliberate choice (<c>--host 0.0.0.0</c>).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>Port to bind; 0 picks a free one (see <see cref="LfmServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8080;

    /// <summary>When set, every endpoint but <c>/health</c> requires <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }

    /// <summary>The model id clients send and <c>/v1/models</c> lists. Null: the file name.</summary>
    public string? ModelAlias { get; init; }

    /// <summary>Further names the model answers to (besides <see cref="ModelAlias"/>, the file name and the GGUF's
    /// <c>general.name</c>); listed by <c>/v1/models</c> and Ollama's <c>/api/tags</c>.</summary>
    public IReadOnlyList<string>? Aliases { get; init; }

    /// <summary>Refuse (404 <c>model_not_found</c>) a request naming a model the server does not know. Off by default:
    /// apps send the name they were configured with (<c>gpt-4o-mini</c>, <c>llama3</c> …) and the one served model
    /// answers it, echoing the name back.</summary>
    public bool StrictModel { get; init; }

    /// <summary>Browser origins allowed besides loopback ones (<c>http://localhost:*</c>, <c>http://127.0.0.1:*</c>,
    /// <c>http://[::1]:*</c>, always allowed); <c>*</c> allows every origin.</summary>
    public IReadOnlyList<string>? CorsOrigins { get; init; }

    /// <summary>Responses (<c>/v1/responses</c>) kept for <c>previous_response_id</c>; the oldest goes first.</summary>
    public int StoredResponses { get; init; } = 256;

    /// <summary>Sequences generated at once (each slot holds its own state of <see cref="ContextLength"/> tokens).</summary>
    public int Slots { get; init; } = 4;

    /// <summary>Requests that may wait for a slot; one more gets 429.</summary>
    public int QueueCapacity { get; init; } = 64;

    /// <summary>Tokens per slot (prompt + reply).</summary>
    public int ContextLength { get; init; } = 4096;

    /// <summary>The precision of each slot's KV cache (<see cref="KvCacheType.Q8_0"/> halves it).</summary>
    public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

    /// <summary>
    /// Memory (MiB) for the prompt-prefix cache all slots share (<c>--cache-ram</c>): copies of the model state at
    /// message ends and other checkpoints of earlier prompts, so a request that starts like an earlier one (same system
    /// prompt and tools, an earlier turn of the conversation, the same request again) skips that part of its prefill.
    /// The least recently used copies go first; 0 turns the cache off.
    /// </summary>
    public int CacheRamMiB { get; init; } = 1024;

    /// <summary>Tokens between prefix-cache checkpoints inside a long message (<c>--cache-checkpoint-interval</c>).</summary>
    public int CacheCheckpointInterval { get; init; } = Generation.PrefixCache.DefaultInterval;

    /// <summary>
    /// Most tokens one forward pass feeds (<c>--batch-size</c>, llama-server's logical batch): every running
    /// sequence's next token first, then prefill chunks of new requests up to this budget. Larger starts long prompts
    /// sooner and prefills them in fewer, more efficient passes; smaller keeps the running sequences' steps short
    /// while a prompt prefills. Raised to <see cref="Slots"/> when smaller.
    /// </summary>
    public int BatchSize { get; init; } = Generation.DecodeBatcher.DefaultTokenBudget;

    /// <summary>Largest <see cref="BatchSize"/> accepted: a step's activations grow linearly with it.</summary>
    internal const int MaxBatchSize = 8192;

    /// <summary>Kernel threads (null: one per logical processor).</summary>
    public int? Threads { get; init; }

    /// <summary>Jinja chat template used instead of the model file's own (<see cref="ModelLoadOptions.ChatTemplate"/>).</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Largest request body accepted; a larger one gets 413.</summary>
    public long MaxRequestBodyBytes { get; init; } = 8 * 1024 * 1024;

    /// <summary>Write ASP.NET Core's request logs to the console.</summary>
    public bool Verbose { get; init; }

    /// <summary>
    /// Further names the <c>Host</c> header may carry (besides IP addresses, <c>localhost</c> and <see cref="Host"/>);
    /// any other gets 403, which stops DNS-rebinding pages from reaching the server. <c>"*"</c> allows every name.
    /// </summary>
    public IReadOnlyList<string> AllowedHosts { get; init; } = [];

    /// <summary>On shutdown, how long running requests may take to finish before they are cancelled.</summary>
    public TimeSpan ShutdownGracePeriod { get; init; } = TimeSpan.FromSeconds(10);

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Host, nameof(Host));
        if (Port is < 0 or > 65535)
            throw new ArgumentOutOfRangeException(nameof(Port), Port, "The port must be in 0..65535.");
        if (Slots < 1)
            throw new ArgumentOutOfRangeException(nameof(Slots), Slots, "At least one slot is needed.");
        if (QueueCapacity < 0)
            throw new ArgumentOutOfRangeException(nameof(QueueCapacity), QueueCapacity, "The queue capacity cannot be negative.");
        if (ContextLength < 16)
            throw new ArgumentOutOfRangeException(nameof(ContextLength), ContextLength, "The context must hold at least 16 tokens.");
        if (CacheRamMiB < 0)
            throw new ArgumentOutOfRangeException(nameof(CacheRamMiB), CacheRamMiB, "The prefix cache size cannot be negative (0 turns it off).");
        if (CacheCheckpointInterval < 1)
            throw new ArgumentOutOfRangeException(nameof(CacheCheckpointInterval), CacheCheckpointInterval, "The checkpoint interval must be at least 1 token.");
        if (BatchSize is < 1 or > MaxBatchSize)
            throw new ArgumentException($"The batch size (--batch-size, tokens per forward pass) must be in 1..{MaxBatchSize}; got {BatchSize}.", nameof(BatchSize));
        if (Threads is int t)
            RuntimeLimits.CheckThreads(t);
        if (MaxRequestBodyBytes < 1024)
            throw new ArgumentOutOfRangeException(nameof(MaxRequestBodyBytes), MaxRequestBodyBytes, "The body limit must be at least 1 KiB.");
        if (ShutdownGracePeriod < TimeSpan.Zero || ShutdownGracePeriod > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(ShutdownGracePeriod), ShutdownGracePeriod, "The shutdown grace period must be between 0 and 1 hour.");
        ArgumentNullException.ThrowIfNull(AllowedHosts, nameof(AllowedHosts));
        if (StoredResponses < 0)
            throw new ArgumentOutOfRangeException(nameof(StoredResponses), StoredResponses, "The response store size cannot be negative.");
        if (Aliases is not null && Aliases.Any(string.IsNullOrWhiteSpace))
            throw new ArgumentException("A model alias is empty.", nameof(Aliases));
        if (CorsOrigins is not null)
        {
            foreach (string origin in CorsOrigins)
                Cors.ValidateOrigin(origin);
        }
        if (ApiKey is { Length: 0 })
            throw new ArgumentException("The API key is empty.", nameof(ApiKey));
    }
}
