using System.Net;
using System.Text;
using System.Text.Json;
using LfmSharp.Server;

namespace LfmSharp.Server.Tests;

/// <summary>Every kind of bad input gets the right 4xx and OpenAI's error shape — never a 500.</summary>
[Collection("server")]
public sealed class ErrorTests(ServerFixture fx)
{
    private const string Msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";

    public static TheoryData<string, int, string?, string> ChatCases => new()
    {
        // body, status, param, a word the message must contain
        { "{not json", 400, null, "parse" },
        { "[1,2,3]", 400, "body", "object" },
        { "{}", 400, "messages", "messages" },
        { "{\"messages\":[]}", 400, "messages", "at least one" },
        { "{\"messages\":\"hi\"}", 400, "messages", "array" },
        { "{\"messages\":[42]}", 400, "messages[0]", "object" },
        { "{\"messages\":[{\"content\":\"hi\"}]}", 400, "messages[0].role", "role" },
        { "{\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "messages[0].role", "wizard" },
        { "{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content", "content" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content", "string" },
        { "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, "messages[0].content[0].type", "text only" },
        { "{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{bad\"}}]}]}", 400, "messages[0].tool_calls[0].function.arguments", "JSON" },
        { "{" + Msg + ",\"temperature\":\"hot\"}", 400, "temperature", "number" },
        { "{" + Msg + ",\"temperature\":-1}", 400, "temperature", "between" },
        { "{" + Msg + ",\"top_p\":0}", 400, "top_p", "greater" },
        { "{" + Msg + ",\"top_p\":1.5}", 400, "top_p", "between" },
        { "{" + Msg + ",\"top_k\":2.5}", 400, "top_k", "integer" },
        { "{" + Msg + ",\"max_tokens\":0}", 400, "max_tokens", "between" },
        { "{" + Msg + ",\"max_completion_tokens\":\"many\"}", 400, "max_completion_tokens", "integer" },
        { "{" + Msg + ",\"stop\":7}", 400, "stop", "string" },
        { "{" + Msg + ",\"stop\":[\"a\",3]}", 400, "stop[1]", "string" },
        { "{" + Msg + ",\"seed\":\"x\"}", 400, "seed", "integer" },
        { "{" + Msg + ",\"n\":9}", 400, "n", "between 1 and 8" },
        { "{" + Msg + ",\"stream\":\"yes\"}", 400, "stream", "boolean" },
        { "{" + Msg + ",\"logit_bias\":{\"abc\":1}}", 400, "logit_bias", "token id" },
        { "{" + Msg + ",\"logit_bias\":{\"99999\":1}}", 400, "logit_bias", "token id" },
        { "{" + Msg + ",\"logit_bias\":{\"5\":\"up\"}}", 400, "logit_bias.5", "number" },
        { "{" + Msg + ",\"frequency_penalty\":3}", 400, "frequency_penalty", "between" },
        { "{" + Msg + ",\"reasoning_format\":\"fancy\"}", 400, "reasoning_format", "fancy" },
        { "{" + Msg + ",\"reasoning_effort\":\"extreme\"}", 400, "reasoning_effort", "extreme" },
        { "{" + Msg + ",\"thinking_budget_tokens\":-5}", 400, "thinking_budget_tokens", "between" },
        { "{" + Msg + ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "between 0 and 20" },
        { "{" + Msg + ",\"top_logprobs\":3}", 400, "top_logprobs", "needs 'logprobs'" },
        { "{" + Msg + ",\"tools\":{}}", 400, "tools", "array" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"retrieval\"}]}", 400, "tools[0].type", "function" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\"}]}", 400, "tools[0].function", "function" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"bad name!\"}}]}", 400, "tools[0].function.name", "bad name!" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":\"{}\"}}]}", 400, "tools[0].function.parameters", "JSON Schema" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"array\"}}}]}", 400, "tools[0].function.parameters", "object" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":[]}}}]}", 400, "tools[0].function.parameters", "properties" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}},{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 400, "tools[1].function.name", "Two tools" },
        { "{" + Msg + ",\"tool_choice\":\"required\"}", 400, "tool_choice", "no 'tools'" },
        { "{" + Msg + ",\"tool_choice\":\"sometimes\"}", 400, "tool_choice", "sometimes" },
        { "{" + Msg + ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", 400, "tool_choice", "'g'" },
        { "{" + Msg + ",\"response_format\":{\"type\":\"xml\"}}", 400, "response_format.type", "xml" },
        { "{" + Msg + ",\"response_format\":{\"type\":\"json_schema\"}}", 400, "response_format.json_schema", "json_schema" },
        { "{" + Msg + ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":[1]}}}", 400, "response_format.json_schema.schema", "JSON Schema" },
        { "{" + Msg + ",\"stream_options\":{\"include_usage\":1}}", 400, "stream_options.include_usage", "boolean" },
    };

    [Theory]
    [MemberData(nameof(ChatCases))]
    public async Task Chat_completions_refuses_bad_input_with_openai_error(string body, int status, string? param, string word)
    {
        var (code, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", body);
        Assert.True(code == status, $"expected {status}, got {code}: {text}");
        var error = AssertErrorShape(json, text);
        Assert.Contains(word, error.GetProperty("message").GetString()!, StringComparison.OrdinalIgnoreCase);
        if (param is null)
            Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        else
            Assert.Equal(param, error.GetProperty("param").GetString());
    }

    public static TheoryData<string, string, int, string> OtherCases => new()
    {
        { "v1/completions", "{}", 400, "prompt" },
        { "v1/completions", "{\"prompt\":5}", 400, "prompt" },
        { "v1/completions", "{\"prompt\":[1,-3]}", 400, "prompt" },
        { "v1/completions", "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt" },
        { "v1/completions", "{\"prompt\":\"hi\",\"echo\":true}", 400, "echo" },
        { "tokenize", "{}", 400, "content" },
        { "tokenize", "{\"content\":1}", 400, "content" },
        { "detokenize", "{\"tokens\":[1,\"x\"]}", 400, "tokens[1]" },
        { "detokenize", "{\"tokens\":[100000]}", 400, "tokens" },
        { "apply-template", "{\"messages\":[{\"role\":\"nobody\",\"content\":\"x\"}]}", 400, "messages[0].role" },
    };

    [Theory]
    [MemberData(nameof(OtherCases))]
    public async Task Other_endpoints_refuse_bad_input_with_openai_error(string path, string body, int status, string param)
    {
        var (code, json, text) = await ServerFixture.PostAsync(fx.Http, path, body);
        Assert.True(code == status, $"expected {status}, got {code}: {text}");
        var error = AssertErrorShape(json, text);
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Fact]
    public async Task Oversized_body_is_413_with_openai_error()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { MaxRequestBodyBytes = 4096 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        string big = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('a', 10_000) + "\"}]}";
        var (code, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", big);
        Assert.Equal(413, code);
        Assert.Contains("too large", AssertErrorShape(json, text).GetProperty("message").GetString()!);
    }

    [Fact]
    public async Task Prompt_longer_than_the_context_is_400_with_both_token_counts()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { ContextLength = 64 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        string content = string.Join(' ', Enumerable.Repeat("word", 200));
        string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}";
        var (code, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", body);
        Assert.Equal(400, code);
        var error = AssertErrorShape(json, text);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());

        // The reported prompt size is the token count of the rendered template (checked through the server's own
        // /apply-template and /tokenize, i.e. the same tokenizer and template llama.cpp's goldens verify).
        var (_, applied, _) = await ServerFixture.PostAsync(http, "apply-template", body);
        string prompt = applied!.Value.GetProperty("prompt").GetString()!;
        var (_, tokens, _) = await ServerFixture.PostAsync(http, "tokenize",
            JsonSerializer.Serialize(new { content = prompt, add_special = false, parse_special = true }));
        int promptTokens = tokens!.Value.GetProperty("tokens").GetArrayLength();
        string message = error.GetProperty("message").GetString()!;
        Assert.Contains("64 tokens", message);
        Assert.Contains($"{promptTokens} tokens", message);
    }

    [Fact]
    public async Task Unknown_route_is_404_with_openai_error()
    {
        var (code, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/embeddings", "{}");
        Assert.Equal(404, code);
        AssertErrorShape(json, text);
    }

    [Fact]
    public async Task Api_key_is_required_everywhere_but_health()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { ApiKey = "sekrit" });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        string body = "{" + Msg + ",\"max_tokens\":2}";

        var (code, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", body);
        Assert.Equal(401, code);
        Assert.Equal("invalid_api_key", AssertErrorShape(json, text).GetProperty("code").GetString());
        Assert.Equal(401, (await ServerFixture.PostAsync(http, "v1/chat/completions", body, apiKey: "wrong")).Status);
        Assert.Equal(401, (await ServerFixture.GetAsync(http, "v1/models")).Status);

        Assert.Equal(200, (await ServerFixture.PostAsync(http, "v1/chat/completions", body, apiKey: "sekrit")).Status);
        Assert.Equal(200, (await ServerFixture.GetAsync(http, "health")).Status);
    }

    internal static JsonElement AssertErrorShape(JsonElement? json, string text)
    {
        Assert.True(json is not null, "the body is not JSON: " + text);
        var root = json!.Value;
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        var error = root.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("param", out _), "error.param is missing: " + text);
        Assert.True(error.TryGetProperty("code", out _), "error.code is missing: " + text);
        return error;
    }
}
