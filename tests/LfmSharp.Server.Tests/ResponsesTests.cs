#pragma warning disable SCME0001 // JsonPatch (extra request fields) is experimental in System.ClientModel
#pragma warning disable OPENAI001
using System.ClientModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Testing;
using OpenAI.Responses;

namespace LfmSharp.Server.Tests;

/// <summary><c>/v1/responses</c> through the OpenAI .NET SDK's <see cref="ResponsesClient"/> and as raw HTTP.</summary>
[Collection("server")]
public sealed class ResponsesTests(ServerFixture fx)
{
    private ResponsesClient Client() => new(new ApiKeyCredential("unused"), new ResponsesClientOptions { Endpoint = new Uri(fx.BaseAddress, "v1") });

    private const string EchoSchema = "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}";

    /// <summary>The Responses API has no logit_bias: the steering fields go in the JSON patch.</summary>
    private static CreateResponseOptions Options(Steer steer, string input, string model = "gpt-4o-mini", int maxTokens = 32)
    {
        var options = new CreateResponseOptions { Model = model, Temperature = 0, MaxOutputTokenCount = maxTokens };
        options.InputItems.Add(ResponseItem.CreateUserMessageItem(input));
        var bias = new JsonObject();
        foreach (var (id, b) in steer.Bias)
            bias[id.ToString(CultureInfo.InvariantCulture)] = b;
        options.Patch.Set("$.logit_bias"u8, BinaryData.FromString(bias.ToJsonString()));
        options.Patch.Set("$.repetition_penalty"u8, 100);
        options.Patch.Set("$.repeat_last_n"u8, steer.Window);
        return options;
    }

    private int PromptTokens(params LfmSharp.Chat.LfmChatMessage[] messages) =>
        fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render(messages)).Length;

    [Fact]
    public async Task Sdk_response_has_the_text_usage_and_the_requested_model_name()
    {
        ResponseResult response = await Client().CreateResponseAsync(Options(Steer.Chain("Paris", Steer.ImEnd), "Hello"));
        Assert.Equal("Paris", response.GetOutputText());
        Assert.Equal("gpt-4o-mini", response.Model);
        Assert.Equal(PromptTokens(LfmSharp.Chat.LfmChatMessage.User("Hello")), response.Usage.InputTokenCount);
        Assert.InRange(response.Usage.OutputTokenCount, 5, 6);
        Assert.Equal(response.Usage.InputTokenCount + response.Usage.OutputTokenCount, response.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Sdk_streaming_delivers_text_deltas_and_reasoning_usage()
    {
        var options = Options(Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd), "Hello");
        options.StreamingEnabled = true;
        var text = new StringBuilder();
        int deltas = 0;
        ResponseResult? completed = null;
        await foreach (var update in await Client().CreateResponseStreamingAsync(options))
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
                deltas++;
            }
            else if (update is StreamingResponseCompletedUpdate done)
            {
                completed = done.Response;
            }
        }
        Assert.Equal("Paris", text.ToString());
        Assert.True(deltas >= 2);
        Assert.NotNull(completed);
        Assert.Equal("Paris", completed!.GetOutputText());
        Assert.True(completed.Usage.OutputTokenDetails.ReasoningTokenCount >= 2);
        Assert.Contains(completed.OutputItems, i => i is ReasoningResponseItem);
    }

    [Fact]
    public async Task Sdk_forced_tool_call_then_its_output_via_previous_response_id()
    {
        var client = Client();
        // Forced choice puts the grammar on; the steering picks the argument inside it.
        var options = Options(Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd), Steer.DigitTailUser);
        options.Tools.Add(ResponseTool.CreateFunctionTool("echo", BinaryData.FromString(EchoSchema), strictModeEnabled: false, functionDescription: "Echo a number"));
        options.ToolChoice = ResponseToolChoice.CreateFunctionChoice("echo");
        ResponseResult first = await client.CreateResponseAsync(options);
        var call = Assert.Single(first.OutputItems.OfType<FunctionCallResponseItem>());
        Assert.Equal("echo", call.FunctionName);
        using (var args = JsonDocument.Parse(call.FunctionArguments.ToString()))
            Assert.Equal(1, args.RootElement.GetProperty("x").GetInt32());

        var next = Options(Steer.Chain("OK", Steer.ImEnd), "unused");
        next.InputItems.Clear();
        next.InputItems.Add(ResponseItem.CreateFunctionCallOutputItem(call.CallId, "42"));
        next.PreviousResponseId = first.Id;
        ResponseResult second = await client.CreateResponseAsync(next);
        Assert.Equal("OK", second.GetOutputText());
        // The prompt held the whole conversation: the first input, the call and its output.
        Assert.Equal(PromptTokens(
            LfmSharp.Chat.LfmChatMessage.User(Steer.DigitTailUser),
            LfmSharp.Chat.LfmChatMessage.Assistant("", toolCalls: [new LfmSharp.Generation.ToolCall(call.CallId, "echo", call.FunctionArguments.ToString())]),
            LfmSharp.Chat.LfmChatMessage.Tool("42", call.CallId, "echo")), second.Usage.InputTokenCount);
    }

    private static string RawBody(Steer steer, Action<JsonObject>? extra = null)
    {
        var body = steer.Apply(new JsonObject { ["model"] = "anything", ["input"] = "Hello", ["max_output_tokens"] = 32 });
        extra?.Invoke(body);
        return body.ToJsonString();
    }

    [Fact]
    public async Task Unknown_previous_response_id_is_a_clear_400()
    {
        var (status, body, _) = await ServerFixture.PostAsync(fx.Http, "/v1/responses",
            RawBody(Steer.Chain("Hi", Steer.ImEnd), b => b["previous_response_id"] = "resp_nope"));
        Assert.Equal(400, status);
        var error = body!.Value.GetProperty("error");
        Assert.Equal("previous_response_not_found", error.GetProperty("code").GetString());
        Assert.Contains("resp_nope", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Store_false_keeps_nothing_to_continue()
    {
        var (status, body, text) = await ServerFixture.PostAsync(fx.Http, "/v1/responses", RawBody(Steer.Chain("Hi", Steer.ImEnd), b => b["store"] = false));
        Assert.True(status == 200, text);
        string id = body!.Value.GetProperty("id").GetString()!;
        var (again, _, _) = await ServerFixture.PostAsync(fx.Http, "/v1/responses", RawBody(Steer.Chain("Hi", Steer.ImEnd), b => b["previous_response_id"] = id));
        Assert.Equal(400, again);
    }

    [Fact]
    public async Task Json_schema_text_format_constrains_the_answer()
    {
        var schema = JsonNode.Parse("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"],\"additionalProperties\":false}");
        var (status, body, text) = await ServerFixture.PostAsync(fx.Http, "/v1/responses", RawBody(Steer.Chain("7", "}", Steer.ImEnd),
            b => b["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "number", ["schema"] = schema, ["strict"] = true } }));
        Assert.True(status == 200, text);
        var message = body!.Value.GetProperty("output").EnumerateArray().Single(i => i.GetProperty("type").GetString() == "message");
        using var doc = JsonDocument.Parse(message.GetProperty("content")[0].GetProperty("text").GetString()!);
        Assert.Equal(7, doc.RootElement.GetProperty("n").GetInt32());
        Assert.Equal("json_schema", body.Value.GetProperty("text").GetProperty("format").GetProperty("type").GetString());
    }

    [Fact]
    public async Task Stream_events_come_in_order_with_rising_sequence_numbers()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/responses")
        {
            Content = new StringContent(RawBody(Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd), b => b["stream"] = true), Encoding.UTF8, "application/json"),
        };
        using var response = await fx.Http.SendAsync(request);
        string sse = await response.Content.ReadAsStringAsync();
        var types = new List<string>();
        int last = -1;
        var reasoning = new StringBuilder();
        foreach (string block in sse.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            var lines = block.Split('\n');
            Assert.StartsWith("event: ", lines[0]);
            using var doc = JsonDocument.Parse(lines[1]["data: ".Length..]);
            string type = doc.RootElement.GetProperty("type").GetString()!;
            Assert.Equal(lines[0]["event: ".Length..], type);
            int seq = doc.RootElement.GetProperty("sequence_number").GetInt32();
            Assert.Equal(last + 1, seq);
            last = seq;
            types.Add(type);
            if (type == "response.reasoning_text.delta")
                reasoning.Append(doc.RootElement.GetProperty("delta").GetString());
        }
        Assert.Equal("hm", reasoning.ToString());
        string[] expected =
        [
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done", "response.content_part.done", "response.output_item.done",
            "response.completed",
        ];
        // Deltas repeat; compare the sequence with consecutive duplicates folded.
        var folded = types.Where((t, i) => i == 0 || t != types[i - 1]).ToArray();
        Assert.Equal(expected, folded);
    }

    [Fact]
    public async Task Function_call_items_in_input_become_the_assistant_turn_and_the_tool_result()
    {
        var body = Steer.Chain("OK", Steer.ImEnd).Apply(new JsonObject
        {
            ["model"] = "m",
            ["max_output_tokens"] = 8,
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "echo", ["description"] = "Echo a number", ["parameters"] = JsonNode.Parse(EchoSchema) }),
            ["input"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Use the tool" },
                new JsonObject { ["type"] = "function_call", ["call_id"] = "call_1", ["name"] = "echo", ["arguments"] = "{\"x\":1}" },
                new JsonObject { ["type"] = "function_call_output", ["call_id"] = "call_1", ["output"] = "42" }),
        });
        var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/responses", body.ToJsonString());
        Assert.True(status == 200, text);
        var tools = new[] { new LfmSharp.Chat.ToolDefinition("echo", "Echo a number", EchoSchema) };
        LfmSharp.Chat.LfmChatMessage[] messages =
        [
            LfmSharp.Chat.LfmChatMessage.User("Use the tool"),
            LfmSharp.Chat.LfmChatMessage.Assistant("", toolCalls: [new LfmSharp.Generation.ToolCall("call_1", "echo", "{\"x\":1}")]),
            LfmSharp.Chat.LfmChatMessage.Tool("42", "call_1", "echo"),
        ];
        int expected = fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render(messages, tools)).Length;
        Assert.Equal(expected, json!.Value.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal("OK", json.Value.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Reasoning_effort_sets_the_thinking_budget()
    {
        async Task<int> ReasoningTokens(string effort)
        {
            var (status, json, text) = await ServerFixture.PostAsync(fx.Http, "/v1/responses",
                RawBody(Steer.Chain(Steer.Think, "abcdefgh", Steer.EndThink, "OK", Steer.ImEnd), b => b["reasoning"] = new JsonObject { ["effort"] = effort }));
            Assert.True(status == 200, text);
            Assert.Equal(effort, json!.Value.GetProperty("reasoning").GetProperty("effort").GetString());
            return json.Value.GetProperty("usage").GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32();
        }
        int high = await ReasoningTokens("high");
        int none = await ReasoningTokens("none");
        Assert.True(high >= 9, $"high: {high}");
        Assert.True(none <= 2, $"none: {none}");
    }
}
