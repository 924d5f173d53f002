using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace LfmSharp.Hub;

/// <summary>
/// HTTP as huggingface_hub speaks it: bearer token on the hub's own host only (dropped when a redirect leaves it, as
/// for the CDN), redirects followed by hand so that rule holds, and 429 / 5xx / broken connections retried with a
/// doubling delay that honours <c>Retry-After</c> up to a bound.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;
    private readonly HttpClient _http;
    private readonly HubOptions _options;
    private readonly Uri _endpoint;

    public HubHttp(HubOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.Endpoint.TrimEnd('/') + "/");
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,   // byte ranges and sizes refer to the stored bytes
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("LfmSharp", typeof(HubHttp).Assembly.GetName().Version?.ToString() ?? "0"));
    }

    public HubOptions Options => _options;

    public Uri Endpoint => _endpoint;

    /// <summary>
    /// Sends a request (a fresh one per attempt and hop), retrying transient failures. A final 429/5xx response is
    /// returned to the caller, who turns it into a message. <c>followRedirects</c>: "all" follows every
    /// redirect; "relative" follows only those that stay on the same host (huggingface_hub's HEAD rule).
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, long? rangeFrom, bool followAll, CancellationToken ct)
    {
        TimeSpan delay = _options.RetryDelay;
        for (int attempt = 1; ; attempt++)
        {
            HttpResponseMessage? response = null;
            try
            {
                response = await SendFollowingAsync(method, uri, rangeFrom, followAll, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e, ct) && attempt < Math.Max(1, _options.MaxAttempts))
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                delay = Next(delay);
                continue;
            }
            catch (Exception e) when (IsTransient(e, ct))
            {
                throw new HubException(HubErrorKind.Network, $"cannot reach {uri.GetLeftPart(UriPartial.Authority)}: {Describe(e)} (after {attempt} attempts; check the network, or set HF_HUB_OFFLINE=1 to use the cache only)", e);
            }
            int status = (int)response.StatusCode;
            if (!IsRetryable(status) || attempt >= Math.Max(1, _options.MaxAttempts))
                return response;
            TimeSpan wait = RetryAfter(response) ?? delay;
            if (wait > _options.MaxRetryDelay)
                wait = _options.MaxRetryDelay;
            response.Dispose();
            await Task.Delay(wait, ct).ConfigureAwait(false);
            delay = Next(delay);
        }
    }

    /// <summary>Reads the whole body as text, refusing more than <paramref name="maxBytes"/> (a listing is small).</summary>
    public static async Task<string> ReadTextAsync(HttpResponseMessage response, int maxBytes, CancellationToken ct)
    {
        using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        byte[] chunk = new byte[16384];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > maxBytes)
                throw new HubException(HubErrorKind.Protocol, $"{response.RequestMessage?.RequestUri}: answer larger than {maxBytes} bytes");
            buffer.Write(chunk, 0, n);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private async Task<HttpResponseMessage> SendFollowingAsync(HttpMethod method, Uri uri, long? rangeFrom, bool followAll, CancellationToken ct)
    {
        Uri current = uri;
        for (int hop = 0; ; hop++)
        {
            using var request = new HttpRequestMessage(method, current);
            if (_options.Token is { } token && SameOrigin(current, _endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            if (rangeFrom is > 0)
                request.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            headersTimeout.CancelAfter(_options.ReadTimeout);
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, headersTimeout.Token).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status is not (301 or 302 or 303 or 307 or 308) || response.Headers.Location is not { } location)
                return response;
            var next = location.IsAbsoluteUri ? location : new Uri(current, location);
            if ((!followAll && !SameOrigin(next, current)) || hop >= MaxRedirects)
                return response;   // the caller reads the headers of the redirect itself (HEAD on an LFS file)
            response.Dispose();
            current = next;
        }
    }

    private static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    internal static bool IsRetryable(int status) => status is 429 or 500 or 502 or 503 or 504;

    internal static bool IsTransient(Exception e, CancellationToken ct) =>
        !ct.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException && e is not HubException;

    internal static string Describe(Exception e) => e is OperationCanceledException ? "timed out" : e.InnerException?.Message ?? e.Message;

    private TimeSpan Next(TimeSpan d) => d * 2 > _options.MaxRetryDelay ? _options.MaxRetryDelay : d * 2;

    private static TimeSpan? RetryAfter(HttpResponseMessage response)
    {
        if (response.Headers.RetryAfter is not { } ra)
            return null;
        if (ra.Delta is { } delta)
            return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (ra.Date is { } date)
        {
            var d = date - DateTimeOffset.UtcNow;
            return d < TimeSpan.Zero ? TimeSpan.Zero : d;
        }
        return null;
    }

    /// <summary>A header's first value, or null.</summary>
    public static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) || r.Content.Headers.TryGetValues(name, out v) ? v.FirstOrDefault() : null;

    /// <summary>A header as a non-negative integer, or null.</summary>
    public static long? LongHeader(HttpResponseMessage r, string name) =>
        long.TryParse(Header(r, name), NumberStyles.None, CultureInfo.InvariantCulture, out long v) ? v : null;

    public void Dispose() => _http.Dispose();
}
