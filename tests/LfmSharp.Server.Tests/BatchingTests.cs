using System.Text.Json;
using LfmSharp.Server;

namespace LfmSharp.Server.Tests;

/// <summary>
/// Continuous batching on the real model: requests running together are stepped by shared batched forward passes,
/// and each gets exactly the text it gets when it runs alone.
/// </summary>
[Collection("server")]
public sealed class BatchingTests(ServerFixture fx)
{
    private static string Completion(string model, int i) => JsonSerializer.Serialize(new
    {
        model,
        prompt = $"Request {i}: the story of a number {i * 7} that",
        max_tokens = 24 + 4 * i,
        temperature = 0.9,
        seed = 100 + i,
    });

    private static string Chat(string model, int i) => JsonSerializer.Serialize(new
    {
        model,
        messages = new[] { new { role = "user", content = $"Tell me about {i}." } },
        max_tokens = 20 + 3 * i,
        temperature = 0.8,
        seed = 7 + i,
    });

    private static string Text(JsonElement body, string path) => path == "v1/completions"
        ? body.GetProperty("choices")[0].GetProperty("text").GetString()!
        : body.GetProperty("choices")[0].GetProperty("message").GetRawText();

    [Fact]
    public async Task Concurrent_requests_are_batched_and_each_equals_its_solo_run()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 4, QueueCapacity = 8, ContextLength = 512 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        var requests = Enumerable.Range(0, 6).Select(i => i % 2 == 0 ? ("v1/completions", Completion(fx.ModelId, i)) : ("v1/chat/completions", Chat(fx.ModelId, i))).ToArray();

        // Alone, one after another.
        var solo = new string[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            var (status, body, text) = await ServerFixture.PostAsync(http, requests[i].Item1, requests[i].Item2);
            Assert.True(status == 200, text);
            solo[i] = Text(body!.Value, requests[i].Item1);
        }
        Assert.Equal(1, server.Scheduler!.LargestBatch);

        // Together: a small delay per round lets all of them join before the first ones finish.
        server.Scheduler.StepDelay = TimeSpan.FromMilliseconds(3);
        long batchesBefore = server.Scheduler.BatchedSteps;
        var together = await Task.WhenAll(requests.Select(r => ServerFixture.PostAsync(http, r.Item1, r.Item2)));
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.True(together[i].Status == 200, together[i].Text);
            Assert.Equal(solo[i], Text(together[i].Body!.Value, requests[i].Item1));
        }
        Assert.True(server.Scheduler.LargestBatch >= 3, $"largest batch {server.Scheduler.LargestBatch}");
        // Fewer batched passes than tokens generated: steps really were shared.
        long tokens = together.Sum(t => (long)t.Body!.Value.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(server.Scheduler.BatchedSteps - batchesBefore < tokens, $"{server.Scheduler.BatchedSteps - batchesBefore} passes for {tokens} tokens");
    }
}
