using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary>
/// Cross-origin requests the way Ollama answers them: browser pages on loopback origins (<c>http://localhost:*</c>,
/// <c>http://127.0.0.1:*</c>, <c>http://[::1]:*</c>, https too) and the server's own origin are allowed, others only
/// when named by <c>--cors-origin</c> (or all with <c>*</c>). A request from any other origin is refused with 403
/// before it reaches an endpoint: a page on another site must not drive a local model, not even with a "simple"
/// request the browser sends without a preflight.
/// <para>
/// A preflight (<c>OPTIONS</c> with <c>Access-Control-Request-Method</c>) is answered here, without the API key
/// (browsers never send credentials on it); it grants nothing, since the real request that follows still passes the
/// key check.
/// </para>
/// </summary>
internal static class Cors
{
    private const string AllowedMethods = "GET, POST, DELETE, OPTIONS";

    /// <summary>Throws <see cref="ArgumentException"/> for an origin that cannot match a browser's Origin header.</summary>
    public static void ValidateOrigin(string origin)
    {
        if (origin == "*")
            return;
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || uri.AbsolutePath != "/" || origin.EndsWith('/') || uri.Query.Length > 0)
            throw new ArgumentException($"--cors-origin '{origin}' must be '*' or an origin like https://example.com or http://host:port (scheme, host, optional port; no path).");
    }

    /// <summary>The middleware: adds the CORS headers, answers preflights, refuses foreign origins.</summary>
    public static async Task HandleAsync(HttpContext ctx, RequestDelegate next, LfmServerOptions options)
    {
        string? origin = ctx.Request.Headers.Origin;
        if (string.IsNullOrEmpty(origin))
        {
            await next(ctx).ConfigureAwait(false);
            return;
        }
        bool preflight = HttpMethods.IsOptions(ctx.Request.Method) && ctx.Request.Headers.ContainsKey("Access-Control-Request-Method");
        if (!IsAllowed(origin, ctx.Request, options.CorsOrigins))
        {
            await HttpJson.WriteErrorAsync(ctx, new ApiException(403,
                $"Origin '{origin}' is not allowed. Start the server with --cors-origin {origin} (or --cors-origin '*') to let pages from it call this server.",
                "invalid_request_error", code: "origin_not_allowed")).ConfigureAwait(false);
            return;
        }
        var headers = ctx.Response.Headers;
        headers.AccessControlAllowOrigin = origin;
        headers.Vary = "Origin";
        if (preflight)
        {
            headers.AccessControlAllowMethods = AllowedMethods;
            string? requested = ctx.Request.Headers.AccessControlRequestHeaders;
            headers.AccessControlAllowHeaders = string.IsNullOrEmpty(requested) ? "Authorization, Content-Type" : requested;
            headers.AccessControlMaxAge = "600";
            ctx.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }
        headers.AccessControlExposeHeaders = "Retry-After, WWW-Authenticate";
        await next(ctx).ConfigureAwait(false);
    }

    /// <summary>Loopback origins, the server's own origin, and the configured ones.</summary>
    internal static bool IsAllowed(string origin, HttpRequest request, IReadOnlyList<string>? configured)
    {
        if (configured is not null)
        {
            foreach (string allowed in configured)
            {
                if (allowed == "*" || string.Equals(allowed, origin, StringComparison.OrdinalIgnoreCase))
                    return true;
            }
        }
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            return false;
        if (uri.Host is "localhost" or "127.0.0.1" or "[::1]")
            return true;
        // The page the server serves itself (the chat page at /) calls it from the server's own origin, whatever
        // address the user reached it by.
        return request.Host.HasValue && string.Equals(origin, request.Scheme + "://" + request.Host.Value, StringComparison.OrdinalIgnoreCase);
    }
}
