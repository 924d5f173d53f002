using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace LfmSharp.Hub;

public sealed partial class HubClient
{
    private const int CopyBuffer = 1 << 20;

    /// <summary>
    /// Puts one file of <paramref name="commit"/> into the cache and links it into the snapshot. Returns false when
    /// its blob was already there (from an earlier pull, another revision, or Python).
    /// </summary>
    internal async Task<bool> DownloadFileAsync(string repo, string commit, RepoFile file, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        Uri resolve = ResolveUri(repo, commit, file.Path);
        var (etag, size) = await HeadAsync(resolve, repo, commit, file, ct).ConfigureAwait(false);
        string blob = Cache.BlobPath(repo, etag);
        bool fetched = false;
        if (!File.Exists(blob))
        {
            string lockPath = Cache.LockPath(repo, etag);
            using (await AcquireLockAsync(lockPath, file.Path, ct).ConfigureAwait(false))
            {
                // Another process may have finished this blob while we waited for its lock.
                if (!File.Exists(blob))
                {
                    await FetchBlobAsync(resolve, blob, file.Path, etag, size, progress, ct).ConfigureAwait(false);
                    fetched = true;
                }
            }
        }
        if (!fetched)
            progress?.Report(new DownloadProgress(file.Path, new FileInfo(blob).Length, size, 0, Completed: true));
        Cache.LinkSnapshot(repo, commit, file.Path, etag);
        return fetched;
    }

    private Uri ResolveUri(string repo, string revision, string path) =>
        new(_http.Endpoint, $"{repo}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    // HEAD follows only same-host redirects, as huggingface_hub does: an LFS file answers 302 to the CDN, and the
    // X-Linked-* headers of that 302 are the ones that describe the content.
    private async Task<(string Etag, long? Size)> HeadAsync(Uri resolve, string repo, string commit, RepoFile file, CancellationToken ct)
    {
        using var r = await _http.SendAsync(HttpMethod.Head, resolve, null, followAll: false, ct).ConfigureAwait(false);
        int status = (int)r.StatusCode;
        if (status is < 200 or >= 400)
            EnsureSuccess(r, repo, commit, file.Path);
        string? etag = HubHttp.Header(r, "X-Linked-Etag") ?? HubHttp.Header(r, "ETag");
        etag = etag is null ? file.Sha256 : NormalizeEtag(etag);
        if (string.IsNullOrEmpty(etag) || etag.IndexOfAny(['/', '\\', '.']) >= 0)
            throw new HubException(HubErrorKind.Protocol, $"{resolve}: the hub gave no usable ETag for {file.Path}, so the download cannot be checked or cached");
        if (file.Sha256 is { } listed && IsSha256(etag) && !listed.Equals(etag, StringComparison.OrdinalIgnoreCase))
            throw new HubException(HubErrorKind.Protocol, $"{file.Path}: the listing says sha256 {listed} but the file answers {etag}");
        if (HubHttp.Header(r, "X-Repo-Commit") is { } answered && !answered.Equals(commit, StringComparison.OrdinalIgnoreCase))
            throw new HubException(HubErrorKind.Protocol, $"{file.Path}: asked for commit {commit}, the hub answered {answered}");
        long? size = HubHttp.LongHeader(r, "X-Linked-Size") ?? (status < 300 ? r.Content.Headers.ContentLength : null) ?? file.Size;
        return (etag.ToLowerInvariant() is var lower && IsSha256(lower) ? lower : etag, size);
    }

    private static string NormalizeEtag(string etag)
    {
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal))
            e = e[2..];
        return e.Trim('"');
    }

    internal static bool IsSha256(string s) => s.Length == 64 && s.All(char.IsAsciiHexDigit);

    /// <summary>
    /// Downloads into <c>{blob}.incomplete</c>, resuming with <c>Range</c> from what is there (after a broken connection,
    /// in this attempt or an earlier run), checks size and sha256, then renames it to <paramref name="blob"/>.
    /// </summary>
    private async Task FetchBlobAsync(Uri resolve, string blob, string name, string etag, long? size, IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        string incomplete = blob + ".incomplete";
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long have = await HashExistingAsync(incomplete, size, hash, ct).ConfigureAwait(false);
        var meter = new ProgressMeter(name, size, progress, have);
        TimeSpan delay = Options.RetryDelay;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                if (size is { } total && have == total)
                    break;
                using var r = await _http.SendAsync(HttpMethod.Get, resolve, have, followAll: true, ct).ConfigureAwait(false);
                int status = (int)r.StatusCode;
                if (status == 200 && have > 0 || status == 206 && r.Content.Headers.ContentRange?.From != have)
                {
                    // The server ignored the range (or sent another one): start over from byte 0.
                    if (status == 206)
                        throw new IOException($"asked for bytes from {have}, the server sent {r.Content.Headers.ContentRange}");
                    have = 0;
                    hash.GetHashAndReset();
                    File.Delete(incomplete);
                }
                else if (status != 200 && status != 206)
                {
                    EnsureSuccess(r, RepoOf(resolve), null, name);
                }
                var done = new StrongBox<long>(have);
                try
                {
                    await CopyAsync(r, incomplete, done, size, hash, meter, ct).ConfigureAwait(false);
                }
                finally
                {
                    have = done.Value;   // what reached the disk (and the hash) before a break: the next attempt resumes there
                }
                if (size is { } expected && have < expected)
                    throw new IOException($"the connection closed at byte {have} of {expected}");
                break;
            }
            catch (Exception e) when (HubHttp.IsTransient(e, ct) && attempt < Math.Max(1, Options.MaxAttempts))
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = delay * 2 > Options.MaxRetryDelay ? Options.MaxRetryDelay : delay * 2;
            }
            catch (Exception e) when (HubHttp.IsTransient(e, ct))
            {
                throw new HubException(HubErrorKind.Network, $"{name}: download failed after {attempt} attempts ({HubHttp.Describe(e)}); {have} bytes are kept in {incomplete} and the next pull resumes from there", e);
            }
        }
        string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
        if (size is { } want && new FileInfo(incomplete).Length != want)
            Reject(incomplete, $"{name}: downloaded {new FileInfo(incomplete).Length} bytes but the hub says the file has {want}");
        if (IsSha256(etag) && !actual.Equals(etag, StringComparison.OrdinalIgnoreCase))
            Reject(incomplete, $"{name}: sha256 mismatch: the download hashes to {actual} but the hub says {etag}; the partial file was deleted, pull again");
        File.Move(incomplete, blob, overwrite: true);
        meter.Done(have);
    }

    private static void Reject(string incomplete, string message)
    {
        File.Delete(incomplete);
        throw new HubException(HubErrorKind.Integrity, message);
    }

    private static string RepoOf(Uri resolve)
    {
        string[] seg = resolve.AbsolutePath.Trim('/').Split('/');
        return seg.Length >= 2 ? seg[0] + "/" + seg[1] : resolve.AbsolutePath;
    }

    // A resumed download must hash the bytes already on disk; a leftover longer than the file starts over.
    private static async Task<long> HashExistingAsync(string incomplete, long? size, IncrementalHash hash, CancellationToken ct)
    {
        if (!File.Exists(incomplete))
            return 0;
        long length = new FileInfo(incomplete).Length;
        if (size is { } total && length > total)
        {
            File.Delete(incomplete);
            return 0;
        }
        byte[] buffer = new byte[CopyBuffer];
        var fs = new FileStream(incomplete, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan | FileOptions.Asynchronous);
        await using var fileScope = fs.ConfigureAwait(false);
        long done = 0;
        int n;
        while (done < length && (n = await fs.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length - done)), ct).ConfigureAwait(false)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            done += n;
        }
        return done;
    }

    private async Task CopyAsync(HttpResponseMessage r, string incomplete, StrongBox<long> have, long? size, IncrementalHash hash, ProgressMeter meter, CancellationToken ct)
    {
        var body = await r.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        await using var bodyScope = body.ConfigureAwait(false);
        var fs = new FileStream(incomplete, FileMode.Append, FileAccess.Write, FileShare.Read, 1, FileOptions.Asynchronous);
        await using var fileScope = fs.ConfigureAwait(false);
        byte[] buffer = new byte[CopyBuffer];
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(ct);
        while (true)
        {
            idle.CancelAfter(Options.ReadTimeout);   // a stalled connection counts as broken, then resumes
            int n = await body.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
            if (n == 0)
                break;
            if (size is { } total && have.Value + n > total)
                throw new HubException(HubErrorKind.Integrity, $"{meter.Name}: the server sent more than the {total} bytes the hub announced");
            await fs.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            await fs.FlushAsync(ct).ConfigureAwait(false);
            hash.AppendData(buffer, 0, n);
            have.Value += n;
            meter.Update(have.Value);
        }
    }

    private async Task<IDisposable> AcquireLockAsync(string lockPath, string name, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive flock on Unix and a share-mode lock on Windows: one holder at a time,
                // across processes. The file is left in place (deleting it would race with a waiting process).
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException) when (clock.Elapsed < Options.LockTimeout)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new HubException(HubErrorKind.Network, $"{name}: another process has been downloading it for {Options.LockTimeout.TotalMinutes:F0} minutes (lock {lockPath}); remove the lock file if that process is gone", e);
            }
        }
    }

    /// <summary>Turns a failed answer into one line the user can act on.</summary>
    internal void EnsureSuccess(HttpResponseMessage r, string repo, string? revision, string? file)
    {
        int status = (int)r.StatusCode;
        if (status is >= 200 and < 300)
            return;
        string code = HubHttp.Header(r, "X-Error-Code") ?? "";
        string hubMessage = HubHttp.Header(r, "X-Error-Message") is { Length: > 0 } m ? $" ({m})" : "";
        string where = Options.Endpoint;
        string what = file is null ? repo : $"{repo}/{file}";
        var (kind, message) = status switch
        {
            401 or 403 when code is "RepoNotFound" or "RepositoryNotFound" => (HubErrorKind.NotFound, RepoNotFound(repo, where)),
            401 or 403 when Options.Token is null => (HubErrorKind.Unauthorized,
                $"{repo} needs a token: the hub answered {status} (a gated or private repository). Set HF_TOKEN to a Hugging Face access token (https://huggingface.co/settings/tokens) and accept the model's terms on its page"),
            401 or 403 => (HubErrorKind.Unauthorized,
                $"{repo}: the hub refused the token in HF_TOKEN ({status}){hubMessage}; check that it is valid and that its account has accepted the model's terms"),
            404 when code is "RevisionNotFound" => (HubErrorKind.NotFound, $"{repo} has no revision '{revision}' (a branch, tag or commit)"),
            404 when code is "EntryNotFound" || file is not null && code is not ("RepoNotFound" or "RepositoryNotFound") => (HubErrorKind.NotFound, $"{what} not found at revision {revision ?? "?"}"),
            404 => (HubErrorKind.NotFound, RepoNotFound(repo, where)),
            429 => (HubErrorKind.Network, $"{what}: the hub is rate-limiting requests (429) after {Options.MaxAttempts} attempts; wait a while and retry, or set HF_TOKEN"),
            >= 500 => (HubErrorKind.Network, $"{what}: the hub answered {status} {r.ReasonPhrase} after {Options.MaxAttempts} attempts; try again later"),
            _ => (HubErrorKind.Protocol, $"{what}: the hub answered {status} {r.ReasonPhrase}{hubMessage}"),
        };
        throw new HubException(kind, message) { StatusCode = status };
    }

    private static string RepoNotFound(string repo, string endpoint) =>
        $"repository {repo} not found on {endpoint} (check the name; a private repository also needs HF_TOKEN). Short names: {string.Join(", ", ModelCatalog.Entries.Select(e => e.Name))}";

    /// <summary>Rate-limited progress reports with a smoothed speed.</summary>
    private sealed class ProgressMeter(string name, long? total, IProgress<DownloadProgress>? sink, long start)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly long _start = start;
        private long _lastBytes = start;
        private TimeSpan _lastTime;
        private double _speed;

        public string Name => name;

        public void Update(long done)
        {
            if (sink is null)
                return;
            var now = _clock.Elapsed;
            var dt = (now - _lastTime).TotalSeconds;
            if (dt < 0.1)
                return;
            double instant = (done - _lastBytes) / dt;
            _speed = _speed == 0 ? instant : 0.7 * _speed + 0.3 * instant;
            _lastBytes = done;
            _lastTime = now;
            sink.Report(new DownloadProgress(name, done, total, _speed, Completed: false));
        }

        public void Done(long done)
        {
            double secs = _clock.Elapsed.TotalSeconds;
            sink?.Report(new DownloadProgress(name, done, total ?? done, secs > 0 ? (done - _start) / secs : 0, Completed: true));
        }
    }
}
