using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Server;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>Health, models, metrics, tokenizer endpoints, raw completions, and the scheduler seen from outside:
/// 503 while loading, 429 when the queue is full, cancellation on disconnect.</summary>
[Collection("server")]
public sealed class ServiceEndpointTests(ServerFixture fx)
{
    [Fact]
    public async Task Health_is_ok_when_ready()
    {
        var (status, json, _) = await ServerFixture.GetAsync(fx.Http, "health");
        Assert.Equal(200, status);
        Assert.Equal("ok", json!.Value.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Health_and_endpoints_answer_503_while_the_model_loads()
    {
        using var gate = new ManualResetEventSlim();
        await using var server = LfmServer.Create(new LfmServerOptions { Host = "127.0.0.1", Port = 0 }, () =>
        {
            gate.Wait(TimeSpan.FromSeconds(30));
            return fx.Model;
        }, ownsModel: false);
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var (status, json, text) = await ServerFixture.GetAsync(http, "health");
        Assert.Equal(503, status);
        Assert.Equal("Loading model", json!.Value.GetProperty("error").GetProperty("message").GetString());
        var chat = await ServerFixture.PostAsync(http, "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        Assert.Equal(503, chat.Status);
        ErrorTests.AssertErrorShape(chat.Body, chat.Text);

        gate.Set();
        await server.ModelLoaded;
        Assert.Equal(200, (await ServerFixture.GetAsync(http, "health")).Status);
    }

    [Fact]
    public async Task Models_lists_the_served_model()
    {
        var (status, json, _) = await ServerFixture.GetAsync(fx.Http, "v1/models");
        Assert.Equal(200, status);
        Assert.Equal("list", json!.Value.GetProperty("object").GetString());
        var model = json.Value.GetProperty("data")[0];
        Assert.Equal(fx.ModelId, model.GetProperty("id").GetString());
        Assert.Equal("model", model.GetProperty("object").GetString());
        Assert.Equal(fx.Model.Tokenizer.Vocabulary.Count, model.GetProperty("meta").GetProperty("n_vocab").GetInt32());
        Assert.Equal(new FileInfo(fx.ModelPath).Length, model.GetProperty("meta").GetProperty("size").GetInt64());

        Assert.Equal(200, (await ServerFixture.GetAsync(fx.Http, "v1/models/" + fx.ModelId)).Status);
        // Any name is served (and echoed), as for the generation endpoints; --strict-model makes this a 404.
        var (other, otherJson, _) = await ServerFixture.GetAsync(fx.Http, "v1/models/gpt-4");
        Assert.Equal(200, other);
        Assert.Equal("gpt-4", otherJson!.Value.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Tokenize_and_detokenize_match_llama_cpp_goldens()
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(TestData.Tokenizer("tokenizer-tiny.json")));
        int checkedCases = 0;
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray().Take(16))
        {
            string text = c.GetProperty("text").GetString()!;
            int[] ids = c.GetProperty("ids_parse_special").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var (status, json, body) = await ServerFixture.PostAsync(fx.Http, "tokenize",
                JsonSerializer.Serialize(new { content = text, add_special = false, parse_special = true }));
            Assert.True(status == 200, body);
            Assert.Equal(ids, json!.Value.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray());

            var (_, back, _) = await ServerFixture.PostAsync(fx.Http, "detokenize", JsonSerializer.Serialize(new { tokens = ids }));
            string expected = Encoding.UTF8.GetString(Convert.FromHexString(c.GetProperty("detok_hex").GetString()!));
            Assert.Equal(expected, back!.Value.GetProperty("content").GetString());
            checkedCases++;
        }
        Assert.True(checkedCases > 0);

        var (_, pieces, _) = await ServerFixture.PostAsync(fx.Http, "tokenize", "{\"content\":\"<|im_start|>Hi\",\"with_pieces\":true}");
        var first = pieces!.Value.GetProperty("tokens")[0];
        Assert.Equal(6, first.GetProperty("id").GetInt32());
        Assert.Equal("<|im_start|>", first.GetProperty("piece").GetString());
    }

    [Fact]
    public async Task Apply_template_renders_the_lfm2_chatml_layout()
    {
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "apply-template",
            "{\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}]}");
        Assert.True(status == 200, text);
        // The LFM2 layout from the model card (ChatML with <|startoftext|>).
        Assert.Equal("<|startoftext|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            json!.Value.GetProperty("prompt").GetString());
    }

    [Fact]
    public async Task Raw_completion_continues_the_prompt_text_and_token_prompt_alike()
    {
        var steer = Steer.Chain("Paris", Steer.EndOfText);
        var body = steer.Apply(new JsonObject { ["prompt"] = "The capital of France is ", ["max_tokens"] = 16 });
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/completions", body.ToJsonString());
        Assert.True(status == 200, text);
        Assert.Equal("text_completion", json!.Value.GetProperty("object").GetString());
        var choice = json.Value.GetProperty("choices")[0];
        Assert.Equal("Paris", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        int[] ids = fx.Model.Tokenizer.EncodePrompt("The capital of France is ");
        Assert.Equal(ids.Length, json.Value.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        body["prompt"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray());
        var (_, byIds, _) = await ServerFixture.PostAsync(fx.Http, "v1/completions", body.ToJsonString());
        Assert.Equal("Paris", byIds!.Value.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Raw_completion_streams_text_chunks_then_done()
    {
        var steer = Steer.Chain("Paris", Steer.EndOfText);
        var body = steer.Apply(new JsonObject { ["prompt"] = "Capital: ", ["max_tokens"] = 16, ["stream"] = true });
        using var response = await fx.Http.PostAsync("v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var events = await ServerFixture.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1]);
        var texts = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()).ToList();
        Assert.Equal("Paris", string.Concat(texts));
        Assert.True(texts.Count(t => t!.Length > 0) >= 2);
    }

    [Fact]
    public async Task Metrics_count_tokens_and_show_scheduler_gauges()
    {
        var before = await MetricsAsync(fx.Http);
        var body = ChatEndpointTests.Request("Hello", Steer.Chain("Paris", Steer.ImEnd));
        var (status, json, _) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", body.ToJsonString());
        Assert.Equal(200, status);
        var after = await MetricsAsync(fx.Http);
        var usage = json!.Value.GetProperty("usage");
        Assert.Equal(usage.GetProperty("completion_tokens").GetInt32(), after["llamacpp:tokens_predicted_total"] - before["llamacpp:tokens_predicted_total"]);
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32(), after["llamacpp:prompt_tokens_total"] - before["llamacpp:prompt_tokens_total"]);
        Assert.Equal(1, after["lfmsharp_requests_completed_total"] - before["lfmsharp_requests_completed_total"]);
        Assert.Equal(0, after["llamacpp:requests_processing"]);
        Assert.Equal(0, after["lfmsharp_queue_length"]);
        Assert.True(after["llamacpp:predicted_tokens_seconds"] > 0);
    }

    internal static async Task<Dictionary<string, double>> MetricsAsync(HttpClient http)
    {
        string text = await http.GetStringAsync("metrics");
        var result = new Dictionary<string, double>();
        foreach (string line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            int space = line.LastIndexOf(' ');
            result[line[..space]] = double.Parse(line[(space + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        return result;
    }

    /// <summary>A long free generation (the end tokens banned, so it cannot stop early whatever the sampled text),
    /// slowed down by the scheduler's step delay so it is still running when the test acts.</summary>
    private static string LongRequest(bool stream) => new JsonObject
    {
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Talk" }),
        ["max_tokens"] = 1500,
        ["temperature"] = 1.0,
        ["seed"] = 7,
        ["logit_bias"] = new JsonObject { [Steer.EndOfText.ToString()] = -100, [Steer.ImEnd.ToString()] = -100 },
        ["stream"] = stream,
    }.ToJsonString();

    [Fact]
    public async Task Full_queue_answers_429_with_retry_after()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, QueueCapacity = 1 });
        server.Scheduler!.StepDelay = TimeSpan.FromMilliseconds(5);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var cts = new CancellationTokenSource();

        // One request generating, one waiting: the queue is full.
        var running = http.PostAsync("v1/chat/completions", new StringContent(LongRequest(stream: true), Encoding.UTF8, "application/json"), cts.Token);
        await WaitUntilAsync(() => server.Scheduler.Active == 1);
        var waiting = http.PostAsync("v1/chat/completions", new StringContent(LongRequest(stream: false), Encoding.UTF8, "application/json"), cts.Token);
        await WaitUntilAsync(() => server.Scheduler.Waiting == 1);

        using var rejected = await http.PostAsync("v1/chat/completions", new StringContent(LongRequest(stream: false), Encoding.UTF8, "application/json"));
        Assert.Equal((HttpStatusCode)429, rejected.StatusCode);
        Assert.Equal("1", rejected.Headers.GetValues("Retry-After").Single());
        string text = await rejected.Content.ReadAsStringAsync();
        Assert.Equal("queue_full", ErrorTests.AssertErrorShape(ServerFixture.TryParse(text), text).GetProperty("code").GetString());
        Assert.Equal(1, server.Metrics.RequestsRejected);

        cts.Cancel();
        await Task.WhenAll(running, waiting).ContinueWith(_ => { });
        await WaitUntilAsync(() => server.Scheduler.Active == 0 && server.Scheduler.Waiting == 0);
    }

    [Fact]
    public async Task Client_disconnect_stops_the_generation_within_a_step_or_two()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1 });
        server.Scheduler!.StepDelay = TimeSpan.FromMilliseconds(10);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(LongRequest(stream: true), Encoding.UTF8, "application/json") };
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        for (int events = 0; events < 3;)
        {
            string? line = await reader.ReadLineAsync();
            Assert.NotNull(line);
            if (line!.StartsWith("data: ", StringComparison.Ordinal))
                events++;
        }
        // Walk away mid-stream.
        reader.Dispose();
        response.Dispose();
        request.Dispose();

        await WaitUntilAsync(() => server.Scheduler.Active == 0);
        long stepsAtStop = server.Scheduler.Steps;
        Assert.True(stepsAtStop < 1500, $"the generation ran {stepsAtStop} steps of 1500 although the client left");
        await WaitUntilAsync(() => server.Metrics.RequestsCancelled == 1);
        Assert.Equal(0, server.Metrics.RequestsCompleted);
        Assert.Equal(stepsAtStop, server.Scheduler.Steps);   // and nothing runs for it afterwards

        // The slot is free again for the next client.
        var body = ChatEndpointTests.Request("Hello", Steer.Chain("OK", Steer.ImEnd));
        var (status, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", body.ToJsonString());
        Assert.True(status == 200, text);
        Assert.Equal("OK", json!.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    internal static async Task WaitUntilAsync(Func<bool> condition, int timeoutSeconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not reached in time");
            await Task.Delay(10);
        }
    }
}
