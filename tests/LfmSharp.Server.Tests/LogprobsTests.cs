using System.ClientModel;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Generation;
using LfmSharp.Testing;
using OpenAI;
using OpenAI.Chat;

namespace LfmSharp.Server.Tests;

/// <summary>
/// <c>logprobs</c> checked against the model's own logits (the <c>lfm logits</c> computation: a forward pass and a
/// log-softmax) at temperature 0, and <c>n</c> choices run as sequences of the batched decode.
/// </summary>
[Collection("server")]
public sealed class LogprobsTests(ServerFixture fx)
{
    private const float Tolerance = 2e-3f;

    /// <summary>The reference: log-softmax of the model's logits after <paramref name="prompt"/> and each of
    /// <paramref name="generated"/>, with the tokens in <paramref name="masked"/> removed as the session removes them.</summary>
    private float[][] ReferenceLogprobs(int[] prompt, IReadOnlyList<int> generated, params int[] masked)
    {
        var model = fx.Model;
        var state = model.CreateState(1024);
        var logits = new float[model.Config.VocabSize];
        model.Forward(prompt, state, logits);
        var rows = new float[generated.Count][];
        for (int i = 0; i < generated.Count; i++)
        {
            foreach (int m in masked)
                logits[m] = float.NegativeInfinity;
            rows[i] = LogSoftmax(logits);
            model.Forward([generated[i]], state, logits);
        }
        return rows;
    }

    private static float[] LogSoftmax(float[] logits)
    {
        double max = logits.Max();
        double sum = logits.Where(float.IsFinite).Sum(l => Math.Exp(l - max));
        double logZ = max + Math.Log(sum);
        return logits.Select(l => (float)(l - logZ)).ToArray();
    }

    private int TokenId(string token, JsonElement bytes) =>
        Enumerable.Range(0, fx.Model.Config.VocabSize).First(id => fx.Model.Tokenizer.Vocabulary.GetTokenBytes(id).SequenceEqual(bytes.EnumerateArray().Select(b => (byte)b.GetInt32()).ToArray()));

    private void AssertAgrees(JsonElement content, int[] prompt, int top, params int[] masked)
    {
        var entries = content.EnumerateArray().ToList();
        Assert.NotEmpty(entries);
        var ids = entries.Select(e => TokenId(e.GetProperty("token").GetString()!, e.GetProperty("bytes"))).ToList();
        var reference = ReferenceLogprobs(prompt, ids, masked);
        for (int i = 0; i < entries.Count; i++)
        {
            var row = reference[i];
            // Greedy: the chosen token is the most likely one, and its logprob is the model's.
            Assert.Equal(Array.IndexOf(row, row.Max()), ids[i]);
            Assert.InRange(entries[i].GetProperty("logprob").GetSingle(), row[ids[i]] - Tolerance, row[ids[i]] + Tolerance);
            var alternatives = entries[i].GetProperty("top_logprobs").EnumerateArray().ToList();
            Assert.Equal(top, alternatives.Count);
            var expected = row.Select((v, id) => (v, id)).OrderByDescending(x => x.v).ThenBy(x => x.id).Take(top).ToList();
            for (int k = 0; k < top; k++)
                Assert.InRange(alternatives[k].GetProperty("logprob").GetSingle(), expected[k].v - Tolerance, expected[k].v + Tolerance);
        }
    }

    private int[] ChatPrompt(string user) => fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmSharp.Chat.LfmChatMessage.User(user)]));

    [Fact]
    public async Task Chat_logprobs_match_the_models_logits_at_temperature_0()
    {
        string body = """{"model":"m","messages":[{"role":"user","content":"Hello"}],"temperature":0,"max_tokens":6,"logprobs":true,"top_logprobs":5,"reasoning_format":"none"}""";
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/chat/completions", body);
        Assert.True(status == 200, text);
        var content = json!.Value.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content");
        // Without tools the session bans the tool-call start token: the distribution it samples has it masked.
        AssertAgrees(content, ChatPrompt("Hello"), 5, Steer.ToolCallStart);
        var message = json.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.StartsWith(string.Concat(content.EnumerateArray().Select(e => e.GetProperty("token").GetString())).Replace("\uFFFD", ""), message.Replace("\uFFFD", ""));
    }

    [Fact]
    public async Task Streamed_chat_logprobs_equal_the_non_streamed_ones()
    {
        string body = """{"model":"m","messages":[{"role":"user","content":"Hi there"}],"temperature":0,"max_tokens":6,"logprobs":true,"top_logprobs":2,"reasoning_format":"none"STREAM}""";
        var (_, json, _) = await ServerFixture.PostAsync(fx.Http, "/v1/chat/completions", body.Replace("STREAM", ""));
        var expected = json!.Value.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("content").EnumerateArray()
            .Select(e => (e.GetProperty("token").GetString(), e.GetProperty("logprob").GetSingle())).ToList();

        var (status, _, sse) = await ServerFixture.PostAsync(fx.Http, "/v1/chat/completions", body.Replace("STREAM", ",\"stream\":true"));
        Assert.Equal(200, status);
        var streamed = new List<(string?, float)>();
        foreach (string line in sse.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line[6..]);
            if (chunk.RootElement.GetProperty("choices")[0].GetProperty("logprobs") is { ValueKind: JsonValueKind.Object } lp)
                streamed.AddRange(lp.GetProperty("content").EnumerateArray().Select(e => (e.GetProperty("token").GetString(), e.GetProperty("logprob").GetSingle())));
        }
        Assert.Equal(expected, streamed);
    }

    [Fact]
    public async Task Logprobs_under_a_grammar_mask_never_report_banned_tokens()
    {
        // A forced call: the grammar leaves few tokens allowed at each step, fewer than the 20 alternatives asked for.
        var body = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd).Apply(new JsonObject
        {
            ["model"] = "m", ["max_tokens"] = 32, ["logprobs"] = true, ["top_logprobs"] = 20,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Steer.DigitTailUser }),
            ["tools"] = JsonNode.Parse("""[{"type":"function","function":{"name":"echo","parameters":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"]}}}]"""),
            ["tool_choice"] = JsonNode.Parse("""{"type":"function","function":{"name":"echo"}}"""),
        });
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/chat/completions", body.ToJsonString());
        Assert.True(status == 200, text);
        var choice = json!.Value.GetProperty("choices")[0];
        Assert.Equal("echo", choice.GetProperty("message").GetProperty("tool_calls")[0].GetProperty("function").GetProperty("name").GetString());
        var entries = choice.GetProperty("logprobs").GetProperty("content").EnumerateArray().ToList();
        Assert.NotEmpty(entries);
        Assert.Contains(entries, e => e.GetProperty("top_logprobs").GetArrayLength() < 20);
        Assert.All(entries.SelectMany(e => e.GetProperty("top_logprobs").EnumerateArray()), t => Assert.True(t.GetProperty("logprob").GetDouble() > -1000));
    }

    [Fact]
    public async Task Completion_logprobs_match_the_models_logits()
    {
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/completions", """{"model":"m","prompt":"The capital","temperature":0,"max_tokens":5,"logprobs":3}""");
        Assert.True(status == 200, text);
        var lp = json!.Value.GetProperty("choices")[0].GetProperty("logprobs");
        int[] prompt = fx.Model.Tokenizer.EncodePrompt("The capital");
        var tokens = lp.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToList();
        var values = lp.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetSingle()).ToList();
        Assert.Equal(tokens.Count, values.Count);
        Assert.Equal(tokens.Count, lp.GetProperty("top_logprobs").GetArrayLength());
        // The ids of a raw continuation: greedy, so each is the argmax of the reference row.
        var model = fx.Model;
        var state = model.CreateState(1024);
        var logits = new float[model.Config.VocabSize];
        model.Forward(prompt, state, logits);
        for (int i = 0; i < tokens.Count; i++)
        {
            var row = LogSoftmax(logits);
            int id = Array.IndexOf(row, row.Max());
            Assert.Equal(LfmSharp.Server.OpenAi.LogprobsJson.TokenText(model.Tokenizer.Vocabulary, id), tokens[i]);
            Assert.InRange(values[i], row[id] - Tolerance, row[id] + Tolerance);
            model.Forward([id], state, logits);
        }
    }

    [Fact]
    public async Task Sdk_reads_content_token_logprobs()
    {
        var client = new ChatClient("gpt-4o-mini", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fx.BaseAddress, "v1") });
        var options = OpenAiSdkTests.Options(Steer.Chain("Paris", Steer.ImEnd));
        options.IncludeLogProbabilities = true;
        options.TopLogProbabilityCount = 3;
        ChatCompletion completion = await client.CompleteChatAsync([new UserChatMessage("Hello")], options);
        Assert.Equal("Paris", completion.Content[0].Text);
        Assert.Equal(["P", "a", "r", "i", "s"], completion.ContentTokenLogProbabilities.Select(t => t.Token));
        Assert.All(completion.ContentTokenLogProbabilities, t =>
        {
            Assert.Equal(3, t.TopLogProbabilities.Count);
            Assert.True(t.LogProbability <= 0);
            // The chosen token is the most likely under the steering (the bias is part of the distribution).
            Assert.Equal(t.Token, t.TopLogProbabilities[0].Token);
        });
    }

    [Fact]
    public async Task N_choices_are_sequences_of_the_batched_decode()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 4, QueueCapacity = 8, ContextLength = 512 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        // Sampled (temperature 1, a seed) and kept from ending early, so the four sequences run side by side.
        string body = """{"model":"m","messages":[{"role":"user","content":"Hello"}],"temperature":1,"seed":42,"max_tokens":12,"n":4,"logit_bias":{"2":-100,"7":-100}}""";
        var (status, json, text) = await ServerFixture.PostAsync(http, "/v1/chat/completions", body);
        Assert.True(status == 200, text);
        var choices = json!.Value.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.True(choices.Select(c => c.GetProperty("message").GetProperty("content").GetString()).Distinct().Count() > 1, "seed + i gives different choices");
        Assert.Equal(48, json.Value.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.True(server.Scheduler!.LargestBatch >= 2, $"largest batch {server.Scheduler.LargestBatch}");

        // The same request again gives the same choices (each one's seed is fixed).
        var (_, again, _) = await ServerFixture.PostAsync(http, "/v1/chat/completions", body);
        Assert.Equal(choices.Select(c => c.GetProperty("message").GetProperty("content").GetString()),
            again!.Value.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()));

        // Streamed: every choice's text arrives under its index, and each ends with its finish reason.
        var (s2, _, sse) = await ServerFixture.PostAsync(http, "/v1/chat/completions", body.Replace("\"n\":4", "\"n\":2,\"stream\":true"));
        Assert.Equal(200, s2);
        var texts = new[] { new StringBuilder(), new StringBuilder() };
        var finished = new string?[2];
        foreach (string line in sse.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var chunk = JsonDocument.Parse(line[6..]);
            foreach (var c in chunk.RootElement.GetProperty("choices").EnumerateArray())
            {
                int i = c.GetProperty("index").GetInt32();
                if (c.GetProperty("delta").TryGetProperty("content", out var piece))
                    texts[i].Append(piece.GetString());
                if (c.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
                    finished[i] = c.GetProperty("finish_reason").GetString();
            }
        }
        Assert.Equal(new string?[] { "length", "length" }, finished.AsEnumerable());
        Assert.Equal(choices[0].GetProperty("message").GetProperty("content").GetString(), texts[0].ToString());
        Assert.Equal(choices[1].GetProperty("message").GetProperty("content").GetString(), texts[1].ToString());
    }

    [Fact]
    public async Task N_completions_each_have_their_own_text()
    {
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/completions", """{"model":"m","prompt":"Once","temperature":1,"seed":7,"max_tokens":6,"n":3,"logit_bias":{"2":-100,"7":-100}}""");
        Assert.True(status == 200, text);
        var choices = json!.Value.GetProperty("choices").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(18, json.Value.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
