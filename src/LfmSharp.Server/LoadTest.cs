using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LfmSharp.Server;

/// <summary>What <see cref="LoadTest.RunAsync(Uri, LoadPlan, CancellationToken)"/> measured.</summary>
internal sealed record LoadTestReport
{
    public LoadWorkload Workload { get; init; }
    public int Clients { get; init; }
    public TimeSpan Duration { get; init; }
    /// <summary>Streams that ended with <c>[DONE]</c> and a usage chunk.</summary>
    public int Completed { get; init; }
    /// <summary>429 answers (queue full).</summary>
    public int Rejected { get; init; }
    /// <summary>Other failures: status codes, broken streams, in-band errors.</summary>
    public int Failed { get; init; }
    public IReadOnlyList<string> FailureSamples { get; init; } = [];
    public long CompletionTokens { get; init; }
    public double TokensPerSecond => Duration > TimeSpan.Zero ? CompletionTokens / Duration.TotalSeconds : 0;
    /// <summary>Completion tokens per completed request (the servers may stop at different lengths).</summary>
    public double MeanCompletionTokens => Completed > 0 ? (double)CompletionTokens / Completed : 0;
    /// <summary>Mean over the requests of one stream's rate after its first token: (tokens − 1) / (end − first token),
    /// the figure to hold against <c>lfm bench</c>'s decode speed.</summary>
    public double StreamTokensPerSecond { get; init; }
    public double TimeToFirstTokenP50Ms { get; init; }
    public double TimeToFirstTokenP95Ms { get; init; }
    public double LatencyP50Ms { get; init; }
    public double LatencyP95Ms { get; init; }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Clients} clients, {Duration.TotalSeconds:F1} s: {Completed} completed, {Rejected} rejected (429), {Failed} failed; " +
        $"{CompletionTokens} tokens = {TokensPerSecond:F1} tok/s aggregate; TTFT p50 {TimeToFirstTokenP50Ms:F0} ms, p95 {TimeToFirstTokenP95Ms:F0} ms; " +
        $"latency p50 {LatencyP50Ms:F0} ms, p95 {LatencyP95Ms:F0} ms");
}

/// <summary>
/// A bounded load generator for a running server: <c>clients</c> loops, each sending streaming chat completions
/// back to back until <c>duration</c> ends (requests already started run to their end), with the messages of a
/// <see cref="LoadWorkload"/>. Used by the test suite (a few seconds), by <c>lfm serve --soak</c> (a minute or more)
/// and by <c>lfm loadtest</c> (benchmarks/server-vs-llama.sh). Loopback targets only, by design of its callers.
/// </summary>
internal static class LoadTest
{
    public static Task<LoadTestReport> RunAsync(Uri baseAddress, int clients, TimeSpan duration, string? apiKey = null,
        int maxTokens = 32, string model = "", CancellationToken ct = default) =>
        RunAsync(baseAddress, new LoadPlan { Clients = clients, Duration = duration, ApiKey = apiKey, MaxTokens = maxTokens, Model = model }, ct);

    /// <summary>Runs <paramref name="plan"/>'s clients against the server at <paramref name="baseAddress"/>.</summary>
    public static async Task<LoadTestReport> RunAsync(Uri baseAddress, LoadPlan plan, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentOutOfRangeException.ThrowIfLessThan(plan.Clients, 1);
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = plan.Clients + 1 })
        {
            BaseAddress = baseAddress,
            Timeout = plan.Duration + TimeSpan.FromMinutes(5),
        };
        if (plan.ApiKey is not null)
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", plan.ApiKey);

        var results = new List<Result>();
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, plan.Clients).Select(async client =>
        {
            var mine = new List<Result>();
            var script = new LoadScript(plan, client);
            while (clock.Elapsed < plan.Duration && !ct.IsCancellationRequested)
            {
                var r = await OneAsync(http, plan, RequestBody(plan, script.NextMessages()), ct).ConfigureAwait(false);
                script.Answered(r.Status == Outcome.Completed ? r.Content : null);
                mine.Add(r);
            }
            lock (results)
                results.AddRange(mine);
        }).ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        var elapsed = clock.Elapsed;

        var ok = results.Where(r => r.Status == Outcome.Completed).ToList();
        // Only answers whose first token's time is known (seen, or from the server's decode time).
        var streams = ok.Where(r => r.FirstKnown && r.Tokens > 1 && r.TotalMs > r.FirstTokenMs).ToList();
        return new LoadTestReport
        {
            Workload = plan.Workload,
            Clients = plan.Clients,
            Duration = elapsed,
            Completed = ok.Count,
            Rejected = results.Count(r => r.Status == Outcome.Rejected),
            Failed = results.Count(r => r.Status == Outcome.Failed),
            FailureSamples = results.Where(r => r.Status == Outcome.Failed).Select(r => r.Error!).Distinct().Take(5).ToList(),
            CompletionTokens = ok.Sum(r => (long)r.Tokens),
            StreamTokensPerSecond = streams.Count == 0 ? 0 : streams.Average(r => (r.Tokens - 1) / ((r.TotalMs - r.FirstTokenMs) / 1000)),
            TimeToFirstTokenP50Ms = Percentile(ok.Select(r => r.FirstTokenMs), 0.50),
            TimeToFirstTokenP95Ms = Percentile(ok.Select(r => r.FirstTokenMs), 0.95),
            LatencyP50Ms = Percentile(ok.Select(r => r.TotalMs), 0.50),
            LatencyP95Ms = Percentile(ok.Select(r => r.TotalMs), 0.95),
        };
    }

    private enum Outcome { Completed, Rejected, Failed }

    private sealed record Result(Outcome Status, int Tokens = 0, double FirstTokenMs = 0, double TotalMs = 0, string? Error = null, string Content = "", bool FirstKnown = false);

    // Written with Utf8JsonWriter, not JsonSerializer over dictionaries: no reflection, so it runs under NativeAOT.
    private static string RequestBody(LoadPlan plan, IReadOnlyList<(string Role, string Content)> messages)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model", plan.Model);
            w.WriteBoolean("stream", true);
            w.WriteStartObject("stream_options");
            w.WriteBoolean("include_usage", true);
            w.WriteEndObject();
            w.WriteNumber("max_tokens", plan.MaxTokens);
            if (plan.Temperature is float t)
                w.WriteNumber("temperature", t);
            if (plan.IgnoreEos)
                w.WriteBoolean("ignore_eos", true);   // llama-server's; a server without it ignores the field
            w.WriteStartArray("messages");
            foreach (var (role, content) in messages)
            {
                w.WriteStartObject();
                w.WriteString("role", role);
                w.WriteString("content", content);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static async Task<Result> OneAsync(HttpClient http, LoadPlan plan, string body, CancellationToken ct)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            using var response = await SendAsync(http, body, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                // Back off a little, as a real client would on Retry-After.
                await Task.Delay(50, ct).ConfigureAwait(false);
                return new Result(Outcome.Rejected);
            }
            if (!response.IsSuccessStatusCode)
                return new Result(Outcome.Failed, Error: $"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false)}");
            using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            double first = -1;
            int tokens = -1, chunks = 0;
            double decodeMs = -1;
            var content = new StringBuilder();
            bool done = false;
            string? line;
            while ((line = await reader.ReadLineAsync(ct).ConfigureAwait(false)) is not null)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                    continue;
                string data = line[6..];
                if (data == "[DONE]")
                {
                    done = true;
                    break;
                }
                using var doc = JsonDocument.Parse(data);
                var root = doc.RootElement;
                if (root.TryGetProperty("error", out var error))
                    return new Result(Outcome.Failed, Error: "in-band error: " + error.GetRawText());
                if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                    tokens = usage.GetProperty("completion_tokens").GetInt32();
                // llama-server's timings (both servers send them in the last chunk): the fallback for an answer whose
                // tokens show no text (a synthetic model's whitespace), where the first token's time is not seen.
                if (root.TryGetProperty("timings", out var timings) && timings.ValueKind == JsonValueKind.Object
                    && timings.TryGetProperty("predicted_ms", out var predicted) && predicted.ValueKind == JsonValueKind.Number)
                    decodeMs = predicted.GetDouble();
                // The first token generated: the first chunk carrying text, reasoning or a tool call (not the role chunk).
                if (root.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                    && choices[0].TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object)
                {
                    bool text = HasText(delta, "content");
                    if (text || HasText(delta, "reasoning_content") || delta.TryGetProperty("tool_calls", out _))
                    {
                        chunks++;
                        if (first < 0)
                            first = sw.Elapsed.TotalMilliseconds;
                        if (text)
                            content.Append(delta.GetProperty("content").GetString());
                    }
                }
            }
            if (!done)
                return new Result(Outcome.Failed, Error: "stream ended without [DONE]");
            if (tokens < 0 && !plan.CountChunksWithoutUsage)
                return new Result(Outcome.Failed, Error: "no usage chunk");
            double total = sw.Elapsed.TotalMilliseconds;
            bool known = first >= 0 || decodeMs >= 0;
            if (first < 0)
                first = decodeMs >= 0 ? Math.Max(0, total - decodeMs) : total;
            return new Result(Outcome.Completed, tokens < 0 ? chunks : tokens, first, total, Content: content.ToString(), FirstKnown: known);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return new Result(Outcome.Failed, Error: e.GetType().Name + ": " + e.Message);
        }
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, string body, CancellationToken ct)
    {
        HttpRequestMessage Request() => new(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        try
        {
            return await http.SendAsync(Request(), HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException) when (!ct.IsCancellationRequested)
        {
            // Once, as clients do: a kept-alive connection the server had just closed (llama-server closes one after
            // a number of requests) fails the send before the request reached it.
            return await http.SendAsync(Request(), HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
    }

    private static bool HasText(JsonElement delta, string name) =>
        delta.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString()!.Length > 0;

    private static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
            return 0;
        int index = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }
}
