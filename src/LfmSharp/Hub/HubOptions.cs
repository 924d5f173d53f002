namespace LfmSharp.Hub;

/// <summary>
/// Where and how models are fetched from a Hugging Face hub. <see cref="FromEnvironment"/> reads the variables
/// <c>huggingface_hub</c> reads (<c>HF_ENDPOINT</c>, <c>HF_TOKEN</c>, <c>HF_HUB_OFFLINE</c>, <c>HF_HOME</c>,
/// <c>HF_HUB_CACHE</c>), so one cache serves Python, <c>huggingface-cli</c> and LfmSharp alike.
/// </summary>
public sealed record HubOptions
{
    /// <summary>The public hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base address of the hub or a mirror (no trailing slash needed).</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Bearer token for gated or private repositories, or null.</summary>
    public string? Token { get; init; }

    /// <summary>Never touch the network: resolve names from the cache only.</summary>
    public bool Offline { get; init; }

    /// <summary>The hub cache folder (holds <c>models--org--name</c> folders).</summary>
    public string CacheDirectory { get; init; } = DefaultCacheDirectory();

    /// <summary>Attempts per request when the hub answers 429/5xx or the connection breaks (at least 1).</summary>
    public int MaxAttempts { get; init; } = 5;

    /// <summary>First retry delay; it doubles per attempt. A server's <c>Retry-After</c> wins, up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound on any single wait between attempts, so a huge <c>Retry-After</c> cannot hang a pull.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A read that receives nothing for this long counts as a broken connection (then resumed).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait for another process that holds the lock on the same file.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Options from the environment, as <c>huggingface_hub</c> reads them.</summary>
    public static HubOptions FromEnvironment()
    {
        string? endpoint = Env("HF_ENDPOINT");
        string? token = Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN") ?? ReadStoredToken();
        return new HubOptions
        {
            Endpoint = endpoint?.TrimEnd('/') ?? DefaultEndpoint,
            Token = token,
            Offline = IsTrue(Env("HF_HUB_OFFLINE")),
            CacheDirectory = DefaultCacheDirectory(),
        };
    }

    /// <summary><c>HF_HUB_CACHE</c>, else <c>HF_HOME/hub</c>, else <c>$XDG_CACHE_HOME/huggingface/hub</c>, else <c>~/.cache/huggingface/hub</c>.</summary>
    public static string DefaultCacheDirectory()
    {
        if ((Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE")) is { } cache)
            return ExpandHome(cache);
        return Path.Combine(HomeDirectory(), "hub");
    }

    internal static string HomeDirectory()
    {
        if (Env("HF_HOME") is { } home)
            return ExpandHome(home);
        string xdg = Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(ExpandHome(xdg), "huggingface");
    }

    // huggingface-cli login stores the token here; reading it lets a logged-in user pull gated models too.
    private static string? ReadStoredToken()
    {
        string path = Env("HF_TOKEN_PATH") ?? Path.Combine(HomeDirectory(), "token");
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() is { Length: > 0 } t ? t : null : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    private static bool IsTrue(string? v) => v is not null && (v == "1" || v.Equals("true", StringComparison.OrdinalIgnoreCase)
        || v.Equals("yes", StringComparison.OrdinalIgnoreCase) || v.Equals("on", StringComparison.OrdinalIgnoreCase));

    private static string ExpandHome(string p) =>
        p == "~" || p.StartsWith("~/", StringComparison.Ordinal)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), p.Length > 2 ? p[2..] : "")
            : p;
}
