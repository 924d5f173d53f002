namespace LfmSharp.Hub;

/// <summary>
/// Turns what a user typed for a model into a local GGUF path: an existing file or folder stays as it is; a model
/// name (<c>lfm2.5-thinking</c>, <c>LiquidAI/LFM2-1.2B-GGUF:Q8_0</c>, <c>hf.co/…</c>) is answered from the cache,
/// and pulled first when missing (unless offline). The CLI's <c>-m</c> and <see cref="LanguageModel.Load(string, ModelLoadOptions?)"/>
/// both go through here, so they accept the same names.
/// </summary>
public static class ModelLocator
{
    /// <summary>True when <paramref name="pathOrName"/> would be looked up on the hub (it is not an existing path but parses as a name).</summary>
    public static bool IsModelName(string pathOrName, HubOptions? options = null) =>
        !File.Exists(pathOrName) && !Directory.Exists(pathOrName)
        && ModelReference.TryParse(pathOrName, out _, (options ?? HubOptions.FromEnvironment()).Endpoint);

    /// <inheritdoc cref="ResolveAsync"/>
    public static string Resolve(string pathOrName, HubOptions? options = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(pathOrName, options, progress, cancellationToken).GetAwaiter().GetResult();

    /// <summary>
    /// The local path for <paramref name="pathOrName"/>. Text that is neither an existing path nor a model name comes
    /// back unchanged, so the loader reports "file not found" for a mistyped path.
    /// </summary>
    /// <exception cref="HubException">The name could not be resolved (not found, token needed, offline and not cached, …).</exception>
    public static async Task<string> ResolveAsync(string pathOrName, HubOptions? options = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pathOrName);
        if (File.Exists(pathOrName) || Directory.Exists(pathOrName))
            return pathOrName;
        options ??= HubOptions.FromEnvironment();
        if (!ModelReference.TryParse(pathOrName, out var reference, options.Endpoint))
            return pathOrName;
        using var client = new HubClient(options);
        // A cached model is used as it is, with no network round trip: startup stays fast and works offline.
        // `lfm pull` is the way to check the hub for a newer commit.
        if (client.FindCached(reference!) is { } cached)
            return cached.Path;
        var pulled = await client.PullAsync(reference!, progress, cancellationToken).ConfigureAwait(false);
        return pulled.Path;
    }
}
