using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LfmSharp.Hub.Tests;

/// <summary>A repository the fake hub serves.</summary>
internal sealed class FakeRepo
{
    public string Commit { get; init; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
    public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
    /// <summary>Answers 401 unless the request carries this token.</summary>
    public string? RequiredToken { get; init; }
    /// <summary>Files the CDN serves with one byte flipped (corrupted in transit): the announced sha256 no longer matches.</summary>
    public HashSet<string> Corrupt { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// A Hugging Face hub on loopback, speaking what huggingface_hub expects: the revision and (paged) tree APIs, and
/// /{repo}/resolve/{rev}/{file} answering 302 to a second host (the "CDN") with X-Repo-Commit, X-Linked-Etag and
/// X-Linked-Size; the CDN serves byte ranges. Faults can be queued: statuses to answer first, a connection cut
/// halfway, a slow body.
/// </summary>
internal sealed class FakeHub : IAsyncDisposable
{
    private readonly WebApplication _hub;
    private readonly WebApplication _cdn;
    private readonly ConcurrentDictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);

    public Dictionary<string, FakeRepo> Repos { get; } = new(StringComparer.Ordinal);

    /// <summary>Every request, as "HUB GET /path?query" or "CDN GET /blobs/…", with " range=…" and " auth" when present.</summary>
    public ConcurrentQueue<string> Log { get; } = new();

    /// <summary>Statuses to answer (then pass) for requests whose path contains the key; e.g. ("/resolve/", [503, 429]).</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<int>> Faults { get; } = new();

    /// <summary>Retry-After seconds sent with queued 429/503 answers.</summary>
    public int RetryAfterSeconds { get; set; }

    /// <summary>The next CDN GET of a blob whose name is in here sends half the bytes, then aborts the connection.</summary>
    public ConcurrentDictionary<string, bool> CutHalfway { get; } = new();

    /// <summary>Delay between 16 KiB chunks of a CDN body (to make downloads overlap).</summary>
    public TimeSpan ChunkDelay { get; set; }

    public int TreePageSize { get; set; } = 3;

    public string Url { get; }
    public string CdnUrl { get; }

    private FakeHub(WebApplication hub, WebApplication cdn)
    {
        _hub = hub;
        _cdn = cdn;
        Url = Address(hub);
        CdnUrl = Address(cdn);
    }

    private static string Address(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');

    public static async Task<FakeHub> StartAsync()
    {
        FakeHub? self = null;
        var hub = Build(ctx => self!.ServeHubAsync(ctx));
        var cdn = Build(ctx => self!.ServeCdnAsync(ctx));
        await hub.StartAsync();
        await cdn.StartAsync();
        self = new FakeHub(hub, cdn);
        return self;
    }

    private static WebApplication Build(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.Run(handler);
        return app;
    }

    public FakeRepo AddRepo(string repo, params (string Path, byte[] Bytes)[] files)
    {
        var r = new FakeRepo();
        foreach (var (p, b) in files)
            r.Files[p] = b;
        Repos[repo] = r;
        return r;
    }

    private static byte[] Flip(byte[] b)
    {
        byte[] copy = (byte[])b.Clone();
        copy[copy.Length / 3] ^= 0x40;
        return copy;
    }

    public static string Sha256(byte[] b) => Convert.ToHexStringLower(SHA256.HashData(b));

    public int Count(string prefix) => Log.Count(l => l.StartsWith(prefix, StringComparison.Ordinal));

    private bool TakeFault(HttpContext ctx)
    {
        foreach (var (key, queue) in Faults)
        {
            if (ctx.Request.Path.Value!.Contains(key, StringComparison.Ordinal) && queue.TryDequeue(out int status))
            {
                ctx.Response.StatusCode = status;
                if (RetryAfterSeconds > 0)
                    ctx.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                return true;
            }
        }
        return false;
    }

    private void Record(string who, HttpContext ctx) =>
        Log.Enqueue($"{who} {ctx.Request.Method} {ctx.Request.Path}{ctx.Request.QueryString}"
            + (ctx.Request.Headers.Range.Count > 0 ? $" range={ctx.Request.Headers.Range}" : "")
            + (ctx.Request.Headers.Authorization.Count > 0 ? " auth" : ""));

    private async Task ServeHubAsync(HttpContext ctx)
    {
        Record("HUB", ctx);
        if (TakeFault(ctx))
            return;
        string[] seg = ctx.Request.Path.Value!.Trim('/').Split('/');
        bool api = seg.Length >= 5 && seg[0] == "api" && seg[1] == "models";
        string repoId = api ? $"{seg[2]}/{seg[3]}" : seg.Length >= 2 ? $"{seg[0]}/{seg[1]}" : "";
        if (!Repos.TryGetValue(repoId, out var repo))
        {
            ctx.Response.StatusCode = 404;
            ctx.Response.Headers["X-Error-Code"] = "RepoNotFound";
            return;
        }
        if (repo.RequiredToken is { } token && ctx.Request.Headers.Authorization.ToString() != "Bearer " + token)
        {
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers["X-Error-Code"] = "GatedRepo";
            return;
        }
        if (api && seg[4] == "revision")
        {
            await ctx.Response.WriteAsJsonAsync(new { id = repoId, sha = repo.Commit, siblings = repo.Files.Keys.Select(k => new { rfilename = k }) });
        }
        else if (api && seg[4] == "tree")
        {
            int cursor = int.TryParse(ctx.Request.Query["cursor"], out int c) ? c : 0;
            var page = repo.Files.OrderBy(f => f.Key, StringComparer.Ordinal).Skip(cursor).Take(TreePageSize)
                .Select(f => new { type = "file", path = f.Key, size = f.Value.Length, oid = "0000", lfs = new { oid = Sha256(f.Value), size = f.Value.Length } }).ToList();
            if (cursor + TreePageSize < repo.Files.Count)
                ctx.Response.Headers["Link"] = $"<{Url}/api/models/{repoId}/tree/{seg[5]}?recursive=true&cursor={cursor + TreePageSize}>; rel=\"next\"";
            await ctx.Response.WriteAsJsonAsync(page);
        }
        else if (!api && seg.Length >= 5 && seg[2] == "resolve")
        {
            string rev = seg[3], file = string.Join('/', seg[4..].Select(Uri.UnescapeDataString));
            if ((rev != "main" && rev != repo.Commit) || !repo.Files.TryGetValue(file, out var bytes))
            {
                ctx.Response.StatusCode = 404;
                ctx.Response.Headers["X-Error-Code"] = rev != "main" && rev != repo.Commit ? "RevisionNotFound" : "EntryNotFound";
                return;
            }
            string sha = Sha256(bytes);
            _blobs[sha] = repo.Corrupt.Contains(file) ? Flip(bytes) : bytes;
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = $"{CdnUrl}/blobs/{sha}";
            ctx.Response.Headers["X-Repo-Commit"] = repo.Commit;
            ctx.Response.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            ctx.Response.Headers["X-Linked-Size"] = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.Headers.ETag = "\"git-sha1-of-the-pointer\"";
        }
        else
        {
            ctx.Response.StatusCode = 404;
        }
    }

    private async Task ServeCdnAsync(HttpContext ctx)
    {
        Record("CDN", ctx);
        if (TakeFault(ctx))
            return;
        string name = ctx.Request.Path.Value!.Split('/').Last();
        if (!_blobs.TryGetValue(name, out var bytes))
        {
            ctx.Response.StatusCode = 404;
            return;
        }
        long from = 0;
        if (ctx.Request.Headers.Range.ToString() is { Length: > 0 } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1], System.Globalization.CultureInfo.InvariantCulture);
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.ContentLength = bytes.Length - from;
        ctx.Response.Headers.AcceptRanges = "bytes";
        if (HttpMethods.IsHead(ctx.Request.Method))
            return;
        bool cut = CutHalfway.TryRemove(name, out _);
        long end = cut ? bytes.Length / 2 : bytes.Length;
        for (long at = from; at < end; at += 16384)
        {
            int n = (int)Math.Min(16384, end - at);
            await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)at, n));
            await ctx.Response.Body.FlushAsync();
            if (ChunkDelay > TimeSpan.Zero)
                await Task.Delay(ChunkDelay);
        }
        if (cut)
        {
            await Task.Delay(50);   // let the flushed half reach the client before the reset
            ctx.Abort();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _hub.StopAsync();
        await _cdn.StopAsync();
        await _hub.DisposeAsync();
        await _cdn.DisposeAsync();
    }
}
