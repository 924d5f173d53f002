using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Testing;
using OllamaSharp;
using OllamaSharp.Models;
using OllamaSharp.Models.Chat;

namespace LfmSharp.Server.Tests;

/// <summary>Ollama's API through the OllamaSharp client, as Ollama-only tools use it.</summary>
[Collection("server")]
public sealed class OllamaTests(ServerFixture fx)
{
    /// <summary>Ollama's options have no logit_bias: this handler adds the steering to the request's
    /// <c>options</c> (the server reads llama-server's sampling extras there), leaving the rest as OllamaSharp wrote it.</summary>
    private sealed class SteerHandler(Steer? steer) : DelegatingHandler(new HttpClientHandler())
    {
        public List<string> Bodies { get; } = new();

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (steer is not null && request.Content is not null && request.Method == HttpMethod.Post)
            {
                var body = JsonNode.Parse(await request.Content.ReadAsStringAsync(ct))!.AsObject();
                var options = body["options"] as JsonObject ?? new JsonObject();
                body["options"] = steer.Apply(options);
                Bodies.Add(body.ToJsonString());
                request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
            }
            return await base.SendAsync(request, ct);
        }
    }

    private OllamaApiClient Client(Steer? steer = null) =>
        new(new HttpClient(new SteerHandler(steer)) { BaseAddress = fx.BaseAddress, Timeout = TimeSpan.FromMinutes(1) }, "llama3.2:latest");

    private static Message User(string text) => new(ChatRole.User, text);

    [Fact]
    public async Task Chat_answers_with_thinking_and_statistics()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd);
        // A message no other test sends: prompt_eval_count leaves out what the prefix cache restores.
        string hello = $"Hello {Guid.NewGuid():N}";
        ChatResponseStream? last = null;
        await foreach (var chunk in Client(steer).ChatAsync(new ChatRequest { Model = "llama3.2:latest", Messages = [User(hello)], Stream = false }))
            last = chunk ?? last;
        var done = Assert.IsType<ChatDoneResponseStream>(last);
        Assert.Equal("Paris", done.Message.Content);
        Assert.Equal("hm", done.Message.Thinking);
        Assert.Equal("llama3.2:latest", done.Model);
        Assert.Equal("stop", done.DoneReason);
        Assert.Equal(fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmSharp.Chat.LfmChatMessage.User(hello)])).Length, done.PromptEvalCount);
        Assert.Equal(steer.Tokens.Count, done.EvalCount);
    }

    [Fact]
    public async Task Chat_streams_ndjson_deltas()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd);
        var content = new StringBuilder();
        var thinking = new StringBuilder();
        int chunks = 0;
        ChatDoneResponseStream? done = null;
        await foreach (var chunk in Client(steer).ChatAsync(new ChatRequest { Model = "llama3.2", Messages = [User("Hello")], Stream = true }))
        {
            chunks++;
            content.Append(chunk?.Message.Content);
            thinking.Append(chunk?.Message.Thinking);
            done = chunk as ChatDoneResponseStream ?? done;
        }
        Assert.Equal("Paris", content.ToString());
        Assert.Equal("hm", thinking.ToString());
        Assert.True(chunks >= 4, $"{chunks} chunks");
        Assert.NotNull(done);
        Assert.True(done!.EvalCount > 0);
    }

    [Fact]
    public async Task Chat_tool_call_comes_back_as_tool_calls_with_object_arguments()
    {
        var steer = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd);
        var tool = new Tool
        {
            Function = new Function
            {
                Name = "echo",
                Description = "Echo a number",
                Parameters = new Parameters { Properties = new Dictionary<string, Property> { ["x"] = new() { Type = "integer" } }, Required = ["x"] },
            },
        };
        ChatResponseStream? last = null;
        await foreach (var chunk in Client(steer).ChatAsync(new ChatRequest { Model = "llama3.2", Messages = [User(Steer.DigitTailUser)], Tools = [tool], Stream = false }))
            last = chunk ?? last;
        var call = Assert.Single(last!.Message.ToolCalls!);
        Assert.Equal("echo", call.Function!.Name);
        Assert.Equal(1, Convert.ToInt32(call.Function.Arguments!["x"]?.ToString(), System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Generate_streams_the_response_and_ends_done()
    {
        var text = new StringBuilder();
        GenerateDoneResponseStream? done = null;
        await foreach (var chunk in Client(Steer.Chain("Paris", Steer.ImEnd)).GenerateAsync(new GenerateRequest { Model = "llama3.2", Prompt = "Hello", Stream = true }))
        {
            text.Append(chunk?.Response);
            done = chunk as GenerateDoneResponseStream ?? done;
        }
        Assert.Equal("Paris", text.ToString());
        Assert.NotNull(done);
        Assert.Equal("stop", done!.DoneReason);
    }

    [Fact]
    public async Task Format_schema_and_num_predict_apply()
    {
        // num_predict 3 cuts the steered answer: done_reason length.
        var (status, body, text) = await ServerFixture.PostAsync(fx.Http, "/api/generate", Steer.Chain("Paris", Steer.ImEnd).Apply(new JsonObject()) is var o
            ? new JsonObject { ["model"] = "m", ["prompt"] = "Hello", ["stream"] = false, ["options"] = MergeNumPredict(o, 3) }.ToJsonString() : "");
        Assert.True(status == 200, text);
        Assert.Equal("Par", body!.Value.GetProperty("response").GetString());
        Assert.Equal("length", body.Value.GetProperty("done_reason").GetString());

        var schema = JsonNode.Parse("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"]}");
        var request = new JsonObject
        {
            ["model"] = "m", ["stream"] = false, ["format"] = schema, ["options"] = Steer.Chain("7", "}", Steer.ImEnd).Apply(new JsonObject()),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "A number please" }),
        };
        var (s2, b2, t2) = await ServerFixture.PostAsync(fx.Http, "/api/chat", request.ToJsonString());
        Assert.True(s2 == 200, t2);
        using var doc = JsonDocument.Parse(b2!.Value.GetProperty("message").GetProperty("content").GetString()!);
        Assert.Equal(7, doc.RootElement.GetProperty("n").GetInt32());
    }

    private static JsonObject MergeNumPredict(JsonObject options, int n)
    {
        options["num_predict"] = n;
        return options;
    }

    [Fact]
    public async Task Tags_show_ps_and_version_describe_the_model()
    {
        var client = Client();
        var models = (await client.ListLocalModelsAsync()).ToList();
        Assert.Contains(models, m => m.Name == fx.ModelId);
        Assert.Equal("gguf", models[0].Details.Format);
        var running = (await client.ListRunningModelsAsync()).ToList();
        Assert.Contains(running, m => m.Name == fx.ModelId);
        var show = await client.ShowModelAsync(new ShowModelRequest { Model = fx.ModelId });
        Assert.Contains("completion", show.Capabilities!);
        Assert.Contains("tools", show.Capabilities!);
        var version = await client.GetVersionAsync();
        Assert.True(Version.Parse(version) >= new Version(0, 5), version);
    }

    [Fact]
    public async Task Think_false_closes_the_thinking_at_once_and_shows_none()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd);
        var request = new JsonObject
        {
            ["model"] = "m", ["stream"] = false, ["think"] = false, ["options"] = steer.Apply(new JsonObject()),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hello" }),
        };
        var (status, body, text) = await ServerFixture.PostAsync(fx.Http, "/api/chat", request.ToJsonString());
        Assert.True(status == 200, text);
        var message = body!.Value.GetProperty("message");
        Assert.False(message.TryGetProperty("thinking", out _), text);
        // The budget of 0 forced </think> right after <think>: "hm" was never thought, the steering writes it as answer.
        Assert.EndsWith("Paris", message.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Prompt_eval_count_reports_the_tokens_evaluated_not_those_restored_from_the_cache()
    {
        // A message no other test sends, so nothing of it is cached before; sent twice, the second restores all but
        // its last token from the prefix cache and evaluates one, as Ollama reports a cache hit.
        string content = $"Count me {Guid.NewGuid():N}";
        var request = new JsonObject
        {
            ["model"] = "m", ["stream"] = false, ["options"] = new JsonObject { ["num_predict"] = 2, ["temperature"] = 0 },
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = content }),
        }.ToJsonString();
        int prompt = fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmSharp.Chat.LfmChatMessage.User(content)], null, addGenerationPrompt: true)).Length;
        var (s1, b1, t1) = await ServerFixture.PostAsync(fx.Http, "/api/chat", request);
        Assert.True(s1 == 200, t1);
        Assert.Equal(prompt, b1!.Value.GetProperty("prompt_eval_count").GetInt32());
        var (s2, b2, t2) = await ServerFixture.PostAsync(fx.Http, "/api/chat", request);
        Assert.True(s2 == 200, t2);
        Assert.Equal(1, b2!.Value.GetProperty("prompt_eval_count").GetInt32());
    }

    [Fact]
    public async Task Bad_requests_get_ollamas_error_shape()
    {
        var (status, body, _) = await ServerFixture.PostAsync(fx.Http, "/api/chat", "{\"model\":\"m\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}");
        Assert.Equal(400, status);
        Assert.Contains("wizard", body!.Value.GetProperty("error").GetString());
    }
}
