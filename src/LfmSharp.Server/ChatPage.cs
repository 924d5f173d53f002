using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LfmSharp.Server;

/// <summary>
/// The chat page at <c>/</c>: plain HTML, CSS and JavaScript embedded in this assembly (folder <c>ChatPage/</c>), so
/// it works offline and ships with the server binary. It talks to <c>/v1/chat/completions</c> like any other client.
/// </summary>
internal static class ChatPage
{
    /// <summary>Where the page's assets live (the page itself is <c>/</c>).</summary>
    public const string AssetPrefix = "/webui/";

    // The page runs only its own files and talks only to this server: no inline script or style, no other origin, no
    // framing. Model text is rendered through DOM text nodes, and this is the second line of defence.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
        "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly FrozenDictionary<string, Asset> s_assets = Load();

    /// <summary>The page and its assets need no API key: they hold no data, and a browser cannot send a Bearer
    /// header when it navigates. The page asks for the key when the API answers 401.</summary>
    public static bool IsPublic(PathString path) => s_assets.ContainsKey(path.Value ?? "");

    /// <summary>Maps <c>GET /</c> and <c>GET /webui/*</c> to the embedded files.</summary>
    public static IEndpointRouteBuilder MapChatPage(this IEndpointRouteBuilder app)
    {
        foreach (var (path, asset) in s_assets)
            app.MapMethods(path, ["GET", "HEAD"], ctx => ServeAsync(ctx, asset));
        return app;
    }

    private static Task ServeAsync(HttpContext ctx, Asset asset)
    {
        var headers = ctx.Response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "no-referrer";
        headers.XFrameOptions = "DENY";
        // Revalidate every time (the ETag makes that a 304), so a new server version never meets a stale script.
        headers.CacheControl = "no-cache";
        headers.ETag = asset.ETag;
        if (ctx.Request.Headers.IfNoneMatch.Contains(asset.ETag))
        {
            ctx.Response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = asset.ContentType;
        ctx.Response.ContentLength = asset.Bytes.Length;
        if (HttpMethods.IsHead(ctx.Request.Method))
            return Task.CompletedTask;
        return ctx.Response.Body.WriteAsync(asset.Bytes, ctx.RequestAborted).AsTask();
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(ChatPage).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        const string prefix = "ChatPage/";   // the LogicalName the project file gives each embedded file
        foreach (string name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            byte[] bytes = copy.ToArray();
            string file = name[prefix.Length..];
            string etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(bytes).AsSpan(0, 8)) + "\"";
            var asset = new Asset(bytes, ContentTypeOf(file), etag);
            assets[file == "index.html" ? "/" : AssetPrefix + file] = asset;
        }
        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentTypeOf(string file) => Path.GetExtension(file) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".json" or ".webmanifest" => "application/manifest+json",
        var other => throw new InvalidOperationException($"The chat page file '{file}' has an extension ({other}) with no content type here."),
    };

    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);
}
