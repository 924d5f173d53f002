using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>
/// The prompt-prefix cache through the real server: a prefix one request prefilled is restored for a later request
/// served by another slot (<c>cached_tokens</c> says how much), the answer (text and log probabilities) is the one a
/// server without a cache gives, memory stays under <c>--cache-ram</c>, and <c>/metrics</c> reports the reuse.
/// </summary>
[Collection("server")]
public sealed class PrefixCacheServerTests(ServerFixture fx)
{
    private static readonly string SystemPrompt = string.Join(' ', Enumerable.Range(0, 20).Select(i => $"rule {i}: answer briefly and politely."));

    private string Chat(string system, string user, int seed = 5) => JsonSerializer.Serialize(new
    {
        model = fx.ModelId,
        messages = new[] { new { role = "system", content = system }, new { role = "user", content = user } },
        max_tokens = 8,
        temperature = 0.9,
        seed,
        logprobs = true,
        top_logprobs = 3,
    });

    private static int Cached(JsonElement body) => body.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();

    private static int PromptTokens(JsonElement body) => body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();

    /// <summary>What must not change with the cache: the choices, log probabilities (bit for bit as JSON) included.</summary>
    private static string Choices(JsonElement body) => body.GetProperty("choices").GetRawText();

    private static async Task<JsonElement> PostOkAsync(HttpClient http, string path, string json)
    {
        var (status, body, text) = await ServerFixture.PostAsync(http, path, json);
        Assert.True(status == 200, text);
        return body!.Value;
    }

    /// <summary>
    /// Runs <paramref name="action"/> while the slot that served the last request (the top of the free stack) is held
    /// by a job that does nothing, so the requests of <paramref name="action"/> run on another slot. Returns the held
    /// slot's id and the prompt length its session last saw. Once released, the held slot is the next one given out.
    /// </summary>
    private static async Task<(int Id, int LastPrompt)> WithLastSlotHeldAsync(LfmServer server, Func<Task> action)
    {
        var started = new TaskCompletionSource<(int, int)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new CancellationTokenSource();
        var reader = server.Scheduler!.Enqueue(slot => Hold(slot, started, release.Token), CancellationToken.None);
        var held = await started.Task;
        try
        {
            await action();
        }
        finally
        {
            release.Cancel();
            await foreach (var _ in reader.ReadAllAsync()) { }   // the held job's empty events, then its end
        }
        return held;
    }

    private static IEnumerable<GenerationEvent> Hold(GenerationSlot slot, TaskCompletionSource<(int, int)> started, CancellationToken release)
    {
        started.TrySetResult((slot.Id, slot.Session.LastPromptTokens));
        while (!release.IsCancellationRequested)
        {
            Thread.Sleep(2);
            yield return new ContentDelta("");   // no model work: the scheduler advances it one event per step
        }
    }

    private int SystemBlockTokens(string system) =>
        fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmChatMessage.System(system)], null, addGenerationPrompt: false)).Length;

    [Fact]
    public async Task A_shared_system_prompt_and_an_identical_request_are_reused_from_another_slot_and_answer_as_without_a_cache()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 2048 });
        await using var cold = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 2048, CacheRamMiB = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        using var coldHttp = new HttpClient { BaseAddress = cold.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };

        var first = await PostOkAsync(http, "v1/chat/completions", Chat(SystemPrompt, "What is the capital of France?"));
        Assert.Equal(0, Cached(first));

        // Same system prompt, another question, on the other slot: the system block is restored.
        string other = Chat(SystemPrompt, "Name three colours.", seed: 9);
        JsonElement second = default;
        var (firstSlot, firstPrompt) = await WithLastSlotHeldAsync(server, async () => second = await PostOkAsync(http, "v1/chat/completions", other));
        Assert.Equal(PromptTokens(first), firstPrompt);   // the slot that served the first request was held
        int systemEnd = SystemBlockTokens(SystemPrompt);
        Assert.True(systemEnd > 256, $"{systemEnd}");
        Assert.Equal(systemEnd, Cached(second));
        var coldSecond = await PostOkAsync(coldHttp, "v1/chat/completions", other);
        Assert.Equal(0, Cached(coldSecond));
        Assert.Equal(Choices(coldSecond), Choices(second));

        // The identical request again goes to the slot released last, the first one, not the one that served it before:
        // everything but the last prompt token is restored.
        var again = await PostOkAsync(http, "v1/chat/completions", other);
        var (againSlot, againPrompt) = await WithLastSlotHeldAsync(server, () => Task.CompletedTask);
        Assert.Equal((firstSlot, PromptTokens(again)), (againSlot, againPrompt));
        Assert.Equal(PromptTokens(again) - 1, Cached(again));
        Assert.Equal(Choices(coldSecond), Choices(again));

        var (_, _, metrics) = await ServerFixture.GetAsync(http, "metrics");
        Assert.Equal(3, Metric(metrics, "lfmsharp_prefix_cache_lookups_total"));
        Assert.Equal(2, Metric(metrics, "lfmsharp_prefix_cache_hits_total"));
        Assert.Equal(systemEnd + PromptTokens(again) - 1, Metric(metrics, "lfmsharp_prefix_cache_cached_tokens_total"));
        Assert.Equal(2.0 / 3, Metric(metrics, "lfmsharp_prefix_cache_hit_rate"), 6);
        Assert.True(Metric(metrics, "lfmsharp_prefix_cache_entries") >= 3);
        Assert.InRange(Metric(metrics, "lfmsharp_prefix_cache_bytes"), 1, Metric(metrics, "lfmsharp_prefix_cache_max_bytes"));
    }

    [Fact]
    public async Task Each_turn_of_an_eight_turn_conversation_reuses_the_whole_previous_prompt_and_answer_and_prefills_in_one_pass()
    {
        // Each answer is steered (greedy) to a known word of byte tokens, which the next turn's prompt re-renders as
        // the same tokens: the next turn resumes after the previous prompt and the answer's tokens fed (the word;
        // its closing <|im_end|> is chosen, not fed).
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 2048 });
        await using var cold = await fx.StartAsync(new LfmServerOptions { Slots = 1, ContextLength = 2048, CacheRamMiB = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        using var coldHttp = new HttpClient { BaseAddress = cold.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        var messages = new JsonArray { new JsonObject { ["role"] = "system", ["content"] = SystemPrompt } };
        int expected = 0;
        for (int turn = 0; turn < 8; turn++)
        {
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = $"Question {turn}: and then what happened?" });
            string word = $"ok{turn}";
            var request = Steer.Chain(word, Steer.ImEnd).Apply(new JsonObject
            {
                ["model"] = fx.ModelId, ["messages"] = messages.DeepClone(), ["max_tokens"] = 6, ["logprobs"] = true,
            });
            string json = request.ToJsonString();
            long passes = server.Scheduler!.BatchedSteps;
            var body = await PostOkAsync(http, "v1/chat/completions", json);
            Assert.Equal(expected, Cached(body));
            // The rest of the prompt (the answer's end, the question, checkpoints at its end and at prompt − 1) fits
            // the step budget, so it prefills in one pass that also yields the first token: one pass per token.
            if (turn > 0)
                Assert.Equal(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), server.Scheduler.BatchedSteps - passes);
            Assert.Equal(word, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
            if (turn is 1 or 7)
                Assert.Equal(Choices(await PostOkAsync(coldHttp, "v1/chat/completions", json)), Choices(body));
            expected = PromptTokens(body) + word.Length;
            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = word });
        }
    }

    [Fact]
    public async Task The_next_turn_resumes_after_the_answer_from_another_slot_and_answers_as_without_a_cache()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 2048 });
        await using var cold = await fx.StartAsync(new LfmServerOptions { Slots = 1, ContextLength = 2048, CacheRamMiB = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        using var coldHttp = new HttpClient { BaseAddress = cold.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        var messages = new JsonArray
        {
            new JsonObject { ["role"] = "system", ["content"] = SystemPrompt },
            new JsonObject { ["role"] = "user", ["content"] = "What is the capital of France?" },
        };
        // Turn 1: a greedy answer steered to "ok9", byte tokens the template re-renders as the same tokens (a word the
        // tiny vocabulary merges, such as "Paris", re-tokenizes differently: that turn resumes at prompt − 1).
        var first = await PostOkAsync(http, "v1/chat/completions", Steer.Chain("ok9", Steer.ImEnd).Apply(new JsonObject
        {
            ["model"] = fx.ModelId, ["messages"] = messages.DeepClone(), ["max_tokens"] = 8,
        }).ToJsonString());
        Assert.Equal("ok9", first.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = "ok9" });
        messages.Add(new JsonObject { ["role"] = "user", ["content"] = "And of Italy?" });

        // Turn 2, the model's own greedy answer, on the other slot: it resumes after "ok9" (the 3 tokens fed; the
        // closing <|im_end|> was chosen, not fed), and answers as a server without a cache does.
        string second = new JsonObject
        {
            ["model"] = fx.ModelId, ["messages"] = messages, ["max_tokens"] = 8, ["temperature"] = 0, ["logprobs"] = true, ["top_logprobs"] = 2,
        }.ToJsonString();
        JsonElement hot = default;
        await WithLastSlotHeldAsync(server, async () => hot = await PostOkAsync(http, "v1/chat/completions", second));
        Assert.Equal(PromptTokens(first) + "ok9".Length, Cached(hot));
        Assert.Equal(Choices(await PostOkAsync(coldHttp, "v1/chat/completions", second)), Choices(hot));
    }

    [Fact]
    public async Task A_raw_completion_prompt_sent_twice_is_reused()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 1024 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        string json = JsonSerializer.Serialize(new { model = fx.ModelId, prompt = SystemPrompt, max_tokens = 8, temperature = 0.9, seed = 3 });
        var first = await PostOkAsync(http, "v1/completions", json);
        Assert.Equal(0, Cached(first));
        JsonElement second = default;
        await WithLastSlotHeldAsync(server, async () => second = await PostOkAsync(http, "v1/completions", json));
        Assert.Equal(PromptTokens(second) - 1, Cached(second));
        Assert.Equal(Choices(first), Choices(second));
    }

    [Fact]
    public async Task Many_requests_at_once_answer_as_without_a_cache_and_memory_stays_under_the_bound()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 4, QueueCapacity = 32, ContextLength = 1024, CacheRamMiB = 1, CacheCheckpointInterval = 32 });
        await using var cold = await fx.StartAsync(new LfmServerOptions { Slots = 4, QueueCapacity = 32, ContextLength = 1024, CacheRamMiB = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        using var coldHttp = new HttpClient { BaseAddress = cold.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
        // Two system prompts, a few questions each, some requests identical: shared prefixes in flight at once.
        string[] systems = [SystemPrompt, string.Join(' ', Enumerable.Range(0, 25).Select(i => $"fact {i} about planets."))];
        var requests = Enumerable.Range(0, 24).Select(i => Chat(systems[i % 2], $"Question {i % 5}?", seed: i % 5)).ToArray();
        var expected = new Dictionary<string, string>();
        foreach (string r in requests.Distinct())
            expected[r] = Choices(await PostOkAsync(coldHttp, "v1/chat/completions", r));

        for (int wave = 0; wave < 2; wave++)
        {
            var bodies = await Task.WhenAll(requests.Select(r => PostOkAsync(http, "v1/chat/completions", r)));
            for (int i = 0; i < requests.Length; i++)
                Assert.Equal(expected[requests[i]], Choices(bodies[i]));
            var (_, _, metrics) = await ServerFixture.GetAsync(http, "metrics");
            Assert.Equal(1 << 20, Metric(metrics, "lfmsharp_prefix_cache_max_bytes"));
            Assert.InRange(Metric(metrics, "lfmsharp_prefix_cache_bytes"), 1, 1 << 20);
            if (wave == 1)
            {
                Assert.True(Metric(metrics, "lfmsharp_prefix_cache_hits_total") > 0, metrics);
                Assert.True(Metric(metrics, "lfmsharp_prefix_cache_evictions_total") > 0, metrics);
            }
        }
    }

    [Fact]
    public async Task The_batch_size_option_sets_the_tokens_one_pass_feeds_and_a_prompt_prefills_within_it()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 2, ContextLength = 1024, BatchSize = 48, CacheRamMiB = 0 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
        var body = await PostOkAsync(http, "v1/chat/completions", Chat(SystemPrompt, "Hi"));
        Assert.True(PromptTokens(body) > 48, $"{PromptTokens(body)}");
        Assert.Equal(48, server.Scheduler!.TokensPerStep);
        Assert.Equal(48, server.Scheduler.LargestStepTokens);   // the prompt took several passes, none larger
    }

    private static double Metric(string text, string name)
    {
        foreach (string line in text.Split('\n'))
        {
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
                return double.Parse(line[(name.Length + 1)..], CultureInfo.InvariantCulture);
        }
        throw new Xunit.Sdk.XunitException($"metric {name} missing");
    }
}
