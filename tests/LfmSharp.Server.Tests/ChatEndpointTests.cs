using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>/v1/chat/completions over raw HTTP: the wire format, steered to exact outputs on the fixture model.</summary>
[Collection("server")]
public sealed class ChatEndpointTests(ServerFixture fx)
{
    private static readonly LfmChatMessage[] s_hello = [LfmChatMessage.User("Hello")];

    internal static JsonObject Request(string user, Steer steer, int maxTokens = 32)
    {
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = user }),
            ["max_tokens"] = maxTokens,
        };
        return steer.Apply(body);
    }

    private async Task<JsonElement> PostOkAsync(JsonObject body)
    {
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", body.ToJsonString());
        Assert.True(status == 200, $"HTTP {status}: {text}");
        return json!.Value;
    }

    private int PromptTokens(IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null) =>
        fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render(messages, tools)).Length;

    [Fact]
    public async Task Non_streaming_answer_is_the_steered_text_with_usage()
    {
        var steer = Steer.Chain("Paris", Steer.ImEnd);
        steer.AssertPromptAllows(fx.Model, s_hello);
        var json = await PostOkAsync(Request("Hello", steer));

        Assert.Equal("chat.completion", json.GetProperty("object").GetString());
        Assert.StartsWith("chatcmpl-", json.GetProperty("id").GetString());
        Assert.Equal(fx.ModelId, json.GetProperty("model").GetString());
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("assistant", choice.GetProperty("message").GetProperty("role").GetString());
        Assert.Equal("Paris", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.False(choice.GetProperty("message").TryGetProperty("tool_calls", out _));
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());

        var usage = json.GetProperty("usage");
        Assert.Equal(PromptTokens(s_hello), usage.GetProperty("prompt_tokens").GetInt32());
        int completion = usage.GetProperty("completion_tokens").GetInt32();
        Assert.InRange(completion, 5, 6);   // five letters, plus the end token if the session counts it
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + completion, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.True(json.GetProperty("timings").GetProperty("predicted_n").GetInt32() == completion);
    }

    [Fact]
    public async Task Max_tokens_cuts_the_answer_with_finish_reason_length()
    {
        var steer = Steer.Chain("Paris", Steer.ImEnd);
        var json = await PostOkAsync(Request("Hello", steer, maxTokens: 3));
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("Par", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(3, json.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Stop_string_ends_the_answer_without_leaking_it()
    {
        var steer = Steer.Chain("Paris", Steer.ImEnd);
        var body = Request("Hello", steer);
        body["stop"] = "ri";
        var json = await PostOkAsync(body);
        var choice = json.GetProperty("choices")[0];
        Assert.Equal("Pa", choice.GetProperty("message").GetProperty("content").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
    }

    [Fact]
    public async Task Reasoning_goes_to_reasoning_content_and_counts_as_reasoning_tokens()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "OK", Steer.ImEnd);
        steer.AssertPromptAllows(fx.Model, s_hello);
        var json = await PostOkAsync(Request("Hello", steer));
        var message = json.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal("hm", message.GetProperty("reasoning_content").GetString());
        Assert.Equal("OK", message.GetProperty("content").GetString());
        int reasoning = json.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32();
        Assert.InRange(reasoning, 2, 4);   // 'h', 'm', and the think tags if the session counts them
    }

    [Fact]
    public async Task Reasoning_format_none_leaves_the_thinking_inline()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "OK", Steer.ImEnd);
        var body = Request("Hello", steer);
        body["reasoning_format"] = "none";
        var json = await PostOkAsync(body);
        var message = json.GetProperty("choices")[0].GetProperty("message");
        Assert.False(message.TryGetProperty("reasoning_content", out _));
        Assert.Equal("<think>hm</think>OK", message.GetProperty("content").GetString());
    }

    [Fact]
    public async Task Streaming_sends_role_reasoning_content_finish_usage_then_done()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "OK", Steer.ImEnd);
        var body = Request("Hello", steer);
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        using var response = await fx.Http.PostAsync("v1/chat/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var events = await ServerFixture.ReadEventsAsync(response);

        Assert.Equal("[DONE]", events[^1]);
        var chunks = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c.GetProperty("object").GetString()));
        Assert.Single(chunks.Select(c => c.GetProperty("id").GetString()).Distinct());
        Assert.Equal("assistant", chunks[0].GetProperty("choices")[0].GetProperty("delta").GetProperty("role").GetString());

        var reasoning = new StringBuilder();
        var content = new StringBuilder();
        string? finish = null;
        JsonElement? usage = null;
        foreach (var c in chunks)
        {
            if (c.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object)
            {
                Assert.Equal(0, c.GetProperty("choices").GetArrayLength());   // OpenAI: the usage chunk has no choices
                usage = u;
                continue;
            }
            var choice = c.GetProperty("choices")[0];
            var delta = choice.GetProperty("delta");
            if (delta.TryGetProperty("reasoning_content", out var r))
                reasoning.Append(r.GetString());
            if (delta.TryGetProperty("content", out var t))
                content.Append(t.GetString());
            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
                finish = choice.GetProperty("finish_reason").GetString();
        }
        Assert.Equal("hm", reasoning.ToString());
        Assert.Equal("OK", content.ToString());
        Assert.Equal("stop", finish);
        Assert.NotNull(usage);
        Assert.Equal(PromptTokens(s_hello), usage!.Value.GetProperty("prompt_tokens").GetInt32());
        Assert.True(usage.Value.GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32() >= 2);
        // Deltas are incremental: more than one chunk carried text.
        Assert.True(chunks.Count(c => c.GetProperty("choices").GetArrayLength() > 0
            && c.GetProperty("choices")[0].GetProperty("delta").EnumerateObject().Any(p => p.Name is "content" or "reasoning_content" && p.Value.GetString()!.Length > 0)) >= 2);
    }

    internal static readonly string EchoTool =
        "{\"type\":\"function\",\"function\":{\"name\":\"echo\",\"description\":\"Echo a number\",\"parameters\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}}}";

    [Fact]
    public async Task Tool_call_streams_index_id_type_name_then_arguments()
    {
        var tools = new[] { ToolDefinition.FromJson(EchoTool) };
        var steer = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd);
        steer.AssertPromptAllows(fx.Model, [LfmChatMessage.User(Steer.DigitTailUser)], tools);
        var body = Request(Steer.DigitTailUser, steer);
        body["tools"] = JsonNode.Parse("[" + EchoTool + "]");
        body["stream"] = true;
        using var response = await fx.Http.PostAsync("v1/chat/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var events = await ServerFixture.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1]);

        var deltas = events.Take(events.Count - 1).Select(e => JsonDocument.Parse(e).RootElement.GetProperty("choices")[0]).ToList();
        var callDeltas = deltas.Where(d => d.GetProperty("delta").TryGetProperty("tool_calls", out _))
            .Select(d => d.GetProperty("delta").GetProperty("tool_calls")[0]).ToList();
        Assert.True(callDeltas.Count >= 1);
        var head = callDeltas[0];
        Assert.Equal(0, head.GetProperty("index").GetInt32());
        Assert.StartsWith("call_", head.GetProperty("id").GetString());
        Assert.Equal("function", head.GetProperty("type").GetString());
        Assert.Equal("echo", head.GetProperty("function").GetProperty("name").GetString());
        Assert.All(callDeltas, d => Assert.Equal(0, d.GetProperty("index").GetInt32()));
        string args = string.Concat(callDeltas.Select(d => d.GetProperty("function").TryGetProperty("arguments", out var a) ? a.GetString() : ""));
        Assert.Equal(1, JsonDocument.Parse(args).RootElement.GetProperty("x").GetInt32());
        Assert.Equal("tool_calls", deltas[^1].GetProperty("finish_reason").GetString());
        // No tool-call markup leaks into the text.
        Assert.DoesNotContain(deltas, d => d.GetProperty("delta").TryGetProperty("content", out var c) && c.GetString()!.Contains("echo"));
    }

    [Fact]
    public async Task Tool_result_round_trip_renders_the_call_and_the_result_into_the_prompt()
    {
        var tools = new[] { ToolDefinition.FromJson(EchoTool) };
        var callChain = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd);
        callChain.AssertPromptAllows(fx.Model, [LfmChatMessage.User(Steer.DigitTailUser)], tools);
        var first = Request(Steer.DigitTailUser, callChain);
        first["tools"] = JsonNode.Parse("[" + EchoTool + "]");
        var json = await PostOkAsync(first);
        var message = json.GetProperty("choices")[0].GetProperty("message");
        Assert.Equal(JsonValueKind.Null, message.GetProperty("content").ValueKind);
        var call = message.GetProperty("tool_calls")[0];
        string id = call.GetProperty("id").GetString()!;
        Assert.Equal("echo", call.GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("tool_calls", json.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        // Send the call back with its result, as an OpenAI client does.
        var conversation = new JsonArray(
            new JsonObject { ["role"] = "user", ["content"] = Steer.DigitTailUser },
            JsonNode.Parse(message.GetRawText()),
            new JsonObject { ["role"] = "tool", ["tool_call_id"] = id, ["content"] = "42" });
        var steer = Steer.Chain("OK", Steer.ImEnd);
        var second = steer.Apply(new JsonObject { ["messages"] = conversation, ["tools"] = JsonNode.Parse("[" + EchoTool + "]"), ["max_tokens"] = 16 });
        var answer = await PostOkAsync(second);
        Assert.Equal("OK", answer.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());

        // The prompt the server built holds the call and the result: its size is the template's render of them.
        var expected = new List<LfmChatMessage>
        {
            LfmChatMessage.User(Steer.DigitTailUser),
            LfmChatMessage.Assistant("", toolCalls: [new ToolCall(id, "echo", call.GetProperty("function").GetProperty("arguments").GetString()!)]),
            LfmChatMessage.Tool("42", id),
        };
        Assert.Equal(PromptTokens(expected, tools), answer.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Json_schema_response_is_valid_json_of_that_schema()
    {
        var body = Request("Give me a number", Steer.Chain("7", "}", Steer.ImEnd));
        body["response_format"] = JsonNode.Parse(
            "{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\",\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"],\"additionalProperties\":false}}}");
        var json = await PostOkAsync(body);
        string content = json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        using var doc = JsonDocument.Parse(content);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
        Assert.Equal(JsonValueKind.Number, doc.RootElement.GetProperty("n").ValueKind);
        // The grammar writes the structure; the chain picks the digit and the close.
        Assert.Equal(7, doc.RootElement.GetProperty("n").GetInt32());
        Assert.Single(doc.RootElement.EnumerateObject());
    }

    [Fact]
    public async Task Json_object_mode_gives_a_json_object()
    {
        var body = Request("Give me JSON", Steer.Chain("}", Steer.ImEnd));
        body["response_format"] = new JsonObject { ["type"] = "json_object" };
        var json = await PostOkAsync(body);
        string content = json.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        using var doc = JsonDocument.Parse(content);
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
    }

    [Fact]
    public async Task Thinking_budget_closes_the_thinking_early()
    {
        var steer = Steer.Chain(Steer.Think, "abcdefgh", Steer.EndThink, "OK", Steer.ImEnd);
        var free = await PostOkAsync(Request("Hello", steer));
        Assert.Equal("abcdefgh", free.GetProperty("choices")[0].GetProperty("message").GetProperty("reasoning_content").GetString());

        var body = Request("Hello", steer);
        body["thinking_budget_tokens"] = 3;
        var capped = await PostOkAsync(body);
        var message = capped.GetProperty("choices")[0].GetProperty("message");
        string reasoning = message.GetProperty("reasoning_content").GetString()!;
        Assert.StartsWith(reasoning, "abcdefgh");
        Assert.True(reasoning.Length < "abcdefgh".Length, $"reasoning '{reasoning}' was not cut by a budget of 3 tokens");
        Assert.True(capped.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32() <= 4);
    }

    [Fact]
    public async Task Same_seeded_request_gives_the_same_answer()
    {
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Say anything" }),
            ["max_tokens"] = 12,
            ["temperature"] = 1.0,
            ["seed"] = 1234,
        };
        var a = await PostOkAsync(body);
        var b = await PostOkAsync(body);
        Assert.Equal(a.GetProperty("choices")[0].GetProperty("message").GetRawText(), b.GetProperty("choices")[0].GetProperty("message").GetRawText());
    }

    [Fact]
    public async Task Concurrent_requests_each_get_their_own_answer()
    {
        string[] words = ["Paris", "Rome", "Lima", "Kyiv"];
        var tasks = words.Select(w =>
        {
            var body = Request("Hello", Steer.Chain(w, Steer.ImEnd));
            return ServerFixture.PostAsync(fx.Http, "v1/chat/completions", body.ToJsonString());
        }).ToArray();
        var results = await Task.WhenAll(tasks);
        for (int i = 0; i < words.Length; i++)
        {
            Assert.True(results[i].Status == 200, results[i].Text);
            Assert.Equal(words[i], results[i].Body!.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        }
    }
}
