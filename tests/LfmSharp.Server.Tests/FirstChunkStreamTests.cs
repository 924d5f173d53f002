using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;

namespace LfmSharp.Server.Tests;

/// <summary>
/// A streamed answer's first event (the role chunk of chat completions, response.created of the Responses API) goes out
/// as soon as the request is accepted, before its prompt is prefilled, as OpenAI and llama-server do. The request is
/// held in the queue behind a slow one on the only slot, so no token of it can exist when its first event is read.
/// </summary>
[Collection("server")]
public sealed class FirstChunkStreamTests(ServerFixture fx)
{
    private const string Slow = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":40,\"stream\":true}";

    [Theory]
    [InlineData("v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":4,\"stream\":true}")]
    [InlineData("v1/responses", "{\"input\":\"hello\",\"max_output_tokens\":4,\"stream\":true}")]
    public async Task The_first_event_arrives_while_the_request_still_waits_for_a_slot(string path, string body)
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, QueueCapacity = 4, ContextLength = 512 });
        server.Scheduler!.StepDelay = TimeSpan.FromMilliseconds(25);
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        var clock = Stopwatch.StartNew();

        // The slow request holds the only slot for 40 steps of at least 25 ms.
        using var slow = await SendAsync(http, "v1/chat/completions", Slow);
        var slowDone = Task.Run(async () =>
        {
            var events = await ServerFixture.ReadEventsAsync(slow);
            return (events, clock.Elapsed);
        });

        using var held = await SendAsync(http, path, body);
        Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        using var reader = new StreamReader(await held.Content.ReadAsStreamAsync(), Encoding.UTF8);
        string first = await FirstDataAsync(reader);
        // The request has not even been admitted: its first event cannot have waited for its prefill.
        int waiting = server.Scheduler.Waiting;
        var firstAt = clock.Elapsed;

        var (slowEvents, slowEnd) = await slowDone;
        Assert.Equal("[DONE]", slowEvents[^1]);
        Assert.True(waiting == 1, $"the first event came when {waiting} requests were waiting (expected this one, still queued)");
        Assert.True(firstAt < slowEnd, $"the first event came at {firstAt.TotalMilliseconds:F0} ms, after the slot freed at {slowEnd.TotalMilliseconds:F0} ms");

        using var doc = JsonDocument.Parse(first);
        if (path == "v1/responses")
        {
            Assert.Equal("response.created", doc.RootElement.GetProperty("type").GetString());
        }
        else
        {
            var delta = doc.RootElement.GetProperty("choices")[0].GetProperty("delta");
            Assert.Equal("assistant", delta.GetProperty("role").GetString());
            Assert.Equal("", delta.GetProperty("content").GetString());
        }

        // The rest of the stream still arrives, and ends as usual.
        string? line, last = null;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
                last = line[6..];
        }
        Assert.NotNull(last);
        if (path == "v1/chat/completions")
            Assert.Equal("[DONE]", last);
        else
            Assert.Contains(JsonDocument.Parse(last!).RootElement.GetProperty("type").GetString(), new[] { "response.completed", "response.incomplete" });

        // The server's own TTFT (to the first generated token) is counted for both requests.
        string metrics = await http.GetStringAsync("metrics");
        var ttft = metrics.Split('\n').Single(l => l.StartsWith("lfmsharp_time_to_first_token_seconds_total ", StringComparison.Ordinal));
        Assert.InRange(double.Parse(ttft.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), 1e-6, 60);
        Assert.Equal(2, server.Metrics.RequestsCompleted);
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, string path, string body) =>
        http.SendAsync(new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") },
            HttpCompletionOption.ResponseHeadersRead);

    private static async Task<string> FirstDataAsync(StreamReader reader)
    {
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
                return line[6..];
        }
        throw new InvalidOperationException("the stream ended without an event");
    }
}
