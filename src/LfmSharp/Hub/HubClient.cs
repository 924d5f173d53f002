using System.Text.Json;

namespace LfmSharp.Hub;

/// <summary>A file in a repository listing: its path, size and, for LFS files, the sha256 of its content.</summary>
/// <param name="Path">Path inside the repository, '/'-separated.</param>
/// <param name="Size">Size in bytes, when the listing gave it.</param>
/// <param name="Sha256">The LFS object id (sha256 of the content), when the file is in LFS.</param>
public sealed record RepoFile(string Path, long? Size, string? Sha256);

/// <summary>What a pull produced.</summary>
/// <param name="Model">What was asked for.</param>
/// <param name="Commit">The commit the revision resolved to.</param>
/// <param name="Path">The file to load (the first of a split set), inside the cache's snapshot folder.</param>
/// <param name="Files">Every file of the set, in order.</param>
/// <param name="Downloaded">False when everything was already in the cache.</param>
public sealed record PullResult(ModelReference Model, string Commit, string Path, IReadOnlyList<string> Files, bool Downloaded)
{
    /// <summary>The quantization tag of the file name (<c>Q4_K_M</c>), "" when it carries none.</summary>
    public string Quant => GgufFileNames.Quant(System.IO.Path.GetFileName(Path));
}

/// <summary>
/// Fetches GGUF models from a Hugging Face hub into the shared cache (<see cref="HubCache"/>). The protocol is the one
/// huggingface_hub speaks: <c>/api/models/{repo}/revision/{rev}</c> for the commit, <c>/api/models/{repo}/tree/{commit}</c>
/// for the file list, <c>HEAD/GET /{repo}/resolve/{commit}/{file}</c> for metadata (<c>X-Repo-Commit</c>,
/// <c>X-Linked-Etag</c>, <c>X-Linked-Size</c>) and content, resumed with <c>Range</c> and checked against the sha256.
/// </summary>
public sealed partial class HubClient : IDisposable
{
    private const int MaxListingBytes = 16 << 20;
    private readonly HubHttp _http;

    /// <summary>A client with <paramref name="options"/> (default: <see cref="HubOptions.FromEnvironment"/>).</summary>
    public HubClient(HubOptions? options = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        Cache = new HubCache(Options.CacheDirectory);
        _http = new HubHttp(Options);
    }

    /// <summary>The options in use.</summary>
    public HubOptions Options { get; }

    /// <summary>The cache models go into.</summary>
    public HubCache Cache { get; }

    /// <summary>
    /// The cached file for <paramref name="model"/> at its revision, when the whole set is there; touches no network.
    /// </summary>
    public PullResult? FindCached(ModelReference model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (Cache.ResolveRevision(model.Repo, model.Revision) is not { } commit)
            return null;
        var files = Cache.SnapshotFiles(model.Repo, commit);
        string? first = model.File is { } exact ? files.FirstOrDefault(f => f.Equals(exact, StringComparison.OrdinalIgnoreCase)) : GgufFileNames.Pick(files, model.Quant);
        if (first is null)
            return null;
        var set = GgufFileNames.SetOf(files, first);
        var paths = new List<string>(set.Count);
        foreach (string part in set)
        {
            string p = Cache.SnapshotPath(model.Repo, commit, part);
            if (!HubCache.IsPresent(p))
                return null;
            paths.Add(p);
        }
        return new PullResult(model, commit, paths[0], paths, Downloaded: false);
    }

    /// <summary>
    /// Makes sure <paramref name="model"/> is in the cache: lists the repository, picks the file by quant (or exact
    /// name), downloads what is missing (every part of a split set) and links the snapshot. Offline, answers from the
    /// cache or throws <see cref="HubException"/> with <see cref="HubErrorKind.NotCached"/>.
    /// </summary>
    public async Task<PullResult> PullAsync(ModelReference model, IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (Options.Offline)
        {
            return FindCached(model) ?? throw new HubException(HubErrorKind.NotCached,
                $"{model} is not in the cache ({Cache.Directory}) and HF_HUB_OFFLINE is set, so it cannot be downloaded; unset HF_HUB_OFFLINE or pull it first");
        }
        var (commit, files) = await ListFilesAsync(model.Repo, model.Revision, cancellationToken).ConfigureAwait(false);
        var names = files.Select(f => f.Path).ToList();
        string first = ChooseFile(model, names);
        var set = GgufFileNames.SetOf(names, first);
        bool downloaded = false;
        var paths = new List<string>(set.Count);
        foreach (string part in set)
        {
            var entry = files.FirstOrDefault(f => f.Path == part)
                ?? throw new HubException(HubErrorKind.NotFound, $"{model.Repo}: split file {part} is missing from the repository (the set {first} names {set.Count} parts)");
            downloaded |= await DownloadFileAsync(model.Repo, commit, entry, progress, cancellationToken).ConfigureAwait(false);
            paths.Add(Cache.SnapshotPath(model.Repo, commit, part));
        }
        Cache.WriteRef(model.Repo, model.Revision, commit);
        return new PullResult(model, commit, paths[0], paths, downloaded);
    }

    /// <summary>The commit <paramref name="revision"/> points at and the repository's files there.</summary>
    public async Task<(string Commit, IReadOnlyList<RepoFile> Files)> ListFilesAsync(string repo, string revision = "main", CancellationToken cancellationToken = default)
    {
        var info = new Uri(_http.Endpoint, $"api/models/{repo}/revision/{Uri.EscapeDataString(revision)}");
        string commit;
        var siblings = new List<RepoFile>();
        using (var r = await _http.SendAsync(HttpMethod.Get, info, null, followAll: true, cancellationToken).ConfigureAwait(false))
        {
            EnsureSuccess(r, repo, revision, file: null);
            using var doc = JsonDocument.Parse(await HubHttp.ReadTextAsync(r, MaxListingBytes, cancellationToken).ConfigureAwait(false));
            commit = doc.RootElement.TryGetProperty("sha", out var sha) && sha.GetString() is { Length: > 0 } s ? s
                : throw new HubException(HubErrorKind.Protocol, $"{info}: the answer has no commit ('sha')");
            if (doc.RootElement.TryGetProperty("siblings", out var sib) && sib.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in sib.EnumerateArray())
                {
                    if (e.TryGetProperty("rfilename", out var name) && name.GetString() is { } n)
                        siblings.Add(new RepoFile(n, null, null));
                }
            }
        }
        if (!CommitPattern().IsMatch(commit))
            throw new HubException(HubErrorKind.Protocol, $"{info}: '{commit}' is not a commit hash");
        var tree = await ListTreeAsync(repo, commit, cancellationToken).ConfigureAwait(false);
        return (commit, tree ?? siblings);
    }

    // The recursive tree gives sizes and LFS hashes; it is paged with Link: <…>; rel="next" as on the hub.
    private async Task<List<RepoFile>?> ListTreeAsync(string repo, string commit, CancellationToken ct)
    {
        var files = new List<RepoFile>();
        Uri? next = new(_http.Endpoint, $"api/models/{repo}/tree/{commit}?recursive=true&expand=false");
        for (int page = 0; next is not null && page < 1000; page++)
        {
            using var r = await _http.SendAsync(HttpMethod.Get, next, null, followAll: true, ct).ConfigureAwait(false);
            if ((int)r.StatusCode == 404 && page == 0)
                return null;   // an older mirror without the tree endpoint: fall back to the revision's siblings
            EnsureSuccess(r, repo, commit, file: null);
            using var doc = JsonDocument.Parse(await HubHttp.ReadTextAsync(r, MaxListingBytes, ct).ConfigureAwait(false));
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new HubException(HubErrorKind.Protocol, $"{next}: expected a JSON array of files");
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.TryGetProperty("type", out var t) && t.GetString() != "file")
                    continue;
                if (!e.TryGetProperty("path", out var p) || p.GetString() is not { } path)
                    continue;
                long? size = e.TryGetProperty("size", out var sz) && sz.TryGetInt64(out long s) ? s : null;
                string? sha = e.TryGetProperty("lfs", out var lfs) && lfs.ValueKind == JsonValueKind.Object && lfs.TryGetProperty("oid", out var oid) ? oid.GetString() : null;
                files.Add(new RepoFile(path, size, sha));
            }
            next = NextPage(r);
        }
        return files;
    }

    private static Uri? NextPage(HttpResponseMessage r)
    {
        if (HubHttp.Header(r, "Link") is not { } link)
            return null;
        foreach (string part in link.Split(','))
        {
            int lt = part.IndexOf('<'), gt = part.IndexOf('>');
            if (lt >= 0 && gt > lt && part.Contains("rel=\"next\"", StringComparison.Ordinal))
                return new Uri(r.RequestMessage!.RequestUri!, part[(lt + 1)..gt]);
        }
        return null;
    }

    private static string ChooseFile(ModelReference model, IReadOnlyList<string> names)
    {
        if (model.File is { } exact)
        {
            return names.FirstOrDefault(f => f.Equals(exact, StringComparison.OrdinalIgnoreCase))
                ?? throw new HubException(HubErrorKind.NotFound, $"{model.Repo} has no file {exact}; its GGUF files: {string.Join(", ", names.Where(GgufFileNames.IsGguf))}") { StatusCode = 404 };
        }
        if (GgufFileNames.Pick(names, model.Quant) is { } picked)
            return picked;
        var quants = GgufFileNames.AvailableQuants(names);
        if (quants.Count == 0 && !names.Any(GgufFileNames.IsModel))
            throw new HubException(HubErrorKind.NotFound, $"{model.Repo} has no GGUF model files (LfmSharp loads GGUF; look for a repository ending in -GGUF)") { StatusCode = 404 };
        throw new HubException(HubErrorKind.NotFound, $"{model.Repo} has no GGUF file for quant {model.Quant}; available quants: {string.Join(", ", quants)}") { StatusCode = 404 };
    }

    [System.Text.RegularExpressions.GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial System.Text.RegularExpressions.Regex CommitPattern();

    /// <summary>Releases the HTTP connections.</summary>
    public void Dispose() => _http.Dispose();
}
