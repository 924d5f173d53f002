using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LfmSharp.Constraints;
using LfmSharp.Server;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>
/// The fault suite: hostile schemas, cross-site requests, invalid text, huge prompts, shutdown, NaN weights. Each
/// must end in a clear 4xx (or a clean stop) in bounded memory, never a 500.
/// </summary>
[Collection("server")]
public sealed class ReliabilityTests(ServerFixture fx)
{
    private static string EnumRequest(int n) => JsonSerializer.Serialize(new
    {
        messages = new[] { new { role = "user", content = "hi" } },
        max_tokens = 16,
        response_format = new { type = "json_schema", json_schema = new { name = "x", schema = new { @enum = Enumerable.Range(0, n).Select(i => "v" + i) } } },
    });

    [Fact]
    public async Task Hostile_enum_schemas_are_400_naming_the_limit_in_bounded_memory()
    {
        long before = ServerMetrics.ResidentBytes();
        // 100k values used to add ~1.9 GB each and keep it; 300k and 400k used to be 500s (overflow, index error).
        foreach (int n in new[] { 100_000, 100_000, 100_000, 300_000, 400_000, 10_000 })
        {
            var (code, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", EnumRequest(n));
            Assert.True(code == 400, $"{n} values: expected 400, got {code}: {text}");
            var error = ErrorTests.AssertErrorShape(json, text);
            Assert.Equal("schema_too_large", error.GetProperty("code").GetString());
            Assert.Equal("response_format", error.GetProperty("param").GetString());
            Assert.Contains(n == 10_000 ? "limit: enum values" : "limit: schema size", error.GetProperty("message").GetString()!, StringComparison.Ordinal);
        }
        long grown = ServerMetrics.ResidentBytes() - before;
        Assert.True(grown < 400L << 20, $"resident memory grew by {grown >> 20} MiB");
    }

    public static TheoryData<string, string> HostileSchemas => new()
    {
        { JsonSerializer.Serialize(new { anyOf = Enumerable.Range(0, 1000).Select(i => new { @const = i }) }), "alternatives" },
        { JsonSerializer.Serialize(new { type = "object", properties = Enumerable.Range(0, 2000).ToDictionary(i => "p" + i, _ => new { type = "integer" }) }), "properties" },
    };

    [Theory]
    [MemberData(nameof(HostileSchemas))]
    public async Task Other_hostile_schemas_and_tool_lists_are_400_naming_the_limit(string schema, string limit)
    {
        string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":" + schema + "}}}";
        var (code, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", body);
        Assert.True(code == 400, text);
        Assert.Contains($"limit: {limit}", ErrorTests.AssertErrorShape(json, text).GetProperty("message").GetString()!, StringComparison.Ordinal);

        string tools = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":4,\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":" + schema + "}}}}]}";
        (code, json, text) = await ServerFixture.PostAsync(fx.Http, "v1/chat/completions", tools);
        Assert.True(code == 400, text);
        Assert.Equal("tools", ErrorTests.AssertErrorShape(json, text).GetProperty("param").GetString());
    }

    public static TheoryData<string?> NonJsonTypes => new() { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", null };

    [Theory]
    [MemberData(nameof(NonJsonTypes))]
    public async Task Cross_site_simple_posts_are_415(string? contentType)
    {
        // What a web page can send cross-site without a CORS preflight.
        foreach (string path in new[] { "v1/chat/completions", "v1/completions", "tokenize", "apply-template" })
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"prompt\":\"hi\",\"content\":\"hi\",\"max_tokens\":2}"));
            if (contentType is not null)
                content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
            using var response = await fx.Http.PostAsync(path, content);
            string text = await response.Content.ReadAsStringAsync();
            Assert.True((int)response.StatusCode == 415, $"{path} with {contentType ?? "no type"}: {(int)response.StatusCode} {text}");
            Assert.Equal("unsupported_media_type", ErrorTests.AssertErrorShape(ServerFixture.TryParse(text), text).GetProperty("code").GetString());
        }
        // A JSON type with parameters is fine.
        using var json = new StringContent("{\"content\":\"hi\"}", Encoding.UTF8, "application/json");
        Assert.Equal(HttpStatusCode.OK, (await fx.Http.PostAsync("tokenize", json)).StatusCode);
    }

    [Theory]
    [InlineData("attacker.example", 403)]
    [InlineData("attacker.example:8080", 403)]
    [InlineData("localhost", 200)]
    [InlineData("127.0.0.1", 200)]
    [InlineData("[::1]", 200)]
    [InlineData("my.box", 200)]
    public async Task Host_header_must_name_this_server(string host, int status)
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { AllowedHosts = ["my.box"] });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
        request.Headers.Host = host;
        using var response = await http.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        if (status == 403)
            Assert.Contains("--allowed-host", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> InvalidText => new()
    {
        // path, body (\uD800 as a JSON escape; {FF} as a raw byte), the field the 400 must name
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\ud800b\"}]}", "messages[0].content" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"a{FF}b\"}]}", "messages[0].content" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"us\\udc00er\",\"content\":\"hi\"}]}", "messages[0].role" },
        { "v1/chat/completions", "{\"model\":\"\\ud800\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stop\":[\"ok\",\"\\ud800\"]}", "stop[1]" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f{C3}\"}}]}", "tools[0].function.name" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"enum\":[\"\\ud800\"]}}}}", "response_format.json_schema.schema.enum[0]" },
        { "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"\\ud800\":1}]}", "messages[0].(a property name)" },
        { "v1/completions", "{\"prompt\":\"x\\ud800\"}", "prompt" },
        { "v1/completions", "{\"prompt\":[\"x{FE}\"]}", "prompt[0]" },
        { "tokenize", "{\"content\":\"\\udbff\\u0041\"}", "content" },
        { "apply-template", "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}", "messages[0].content" },
    };

    [Theory]
    [MemberData(nameof(InvalidText))]
    public async Task Invalid_utf8_and_lone_surrogates_are_400_naming_the_field(string path, string body, string field)
    {
        byte[] bytes = RawBytes(body);
        using var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await fx.Http.PostAsync(path, content);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 400, $"{(int)response.StatusCode}: {text}");
        var error = ErrorTests.AssertErrorShape(ServerFixture.TryParse(text), text);
        Assert.Equal(field, error.GetProperty("param").GetString());
        Assert.Equal("invalid_text", error.GetProperty("code").GetString());
    }

    /// <summary>The body as UTF-8, with each <c>{XX}</c> replaced by that raw byte.</summary>
    private static byte[] RawBytes(string body)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < body.Length; i++)
        {
            if (body[i] == '{' && i + 3 < body.Length && body[i + 3] == '}' && Uri.IsHexDigit(body[i + 1]) && Uri.IsHexDigit(body[i + 2]))
            {
                bytes.Add(Convert.ToByte(body.Substring(i + 1, 2), 16));
                i += 3;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(body[i].ToString()));
            }
        }
        return [.. bytes];
    }

    [Fact]
    public async Task A_multi_megabyte_prompt_is_refused_from_its_length()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { ContextLength = 64 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        string big = new('a', 4 << 20);
        var (code, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"" + big + "\"}]}");
        Assert.Equal(400, code);
        var error = ErrorTests.AssertErrorShape(json, text);
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Contains("at least", error.GetProperty("message").GetString()!, StringComparison.Ordinal);
        (code, json, text) = await ServerFixture.PostAsync(http, "v1/completions", "{\"prompt\":\"" + big + "\"}");
        Assert.Equal(400, code);
        Assert.Contains("at least", ErrorTests.AssertErrorShape(json, text).GetProperty("message").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Head_health_and_memory_gauges()
    {
        using var head = await fx.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "health"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        string metrics = await fx.Http.GetStringAsync("metrics");
        var line = metrics.Split('\n').Single(l => l.StartsWith("process_resident_memory_bytes ", StringComparison.Ordinal));
        Assert.InRange(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), 1 << 20, 64.0 * (1L << 30));
        Assert.Contains("lfmsharp_grammar_cache_bytes ", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shutdown_drains_running_streams_and_health_says_503_meanwhile()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { ShutdownGracePeriod = TimeSpan.FromSeconds(30) });
        server.Scheduler!.StepDelay = TimeSpan.FromMilliseconds(20);
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":40,\"stream\":true}", Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var shutdown = server.ShutdownAsync();
        Assert.True(server.Draining);
        using (var probe = new HttpClient { BaseAddress = server.BaseAddress })
        {
            Assert.Equal(503, (await ServerFixture.GetAsync(probe, "health")).Status);
            Assert.Equal(503, (await ServerFixture.PostAsync(probe, "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}")).Status);
        }
        var events = await ServerFixture.ReadEventsAsync(response);
        Assert.Equal("[DONE]", events[^1]);
        Assert.Contains(events, e => e.Contains("\"finish_reason\":\"", StringComparison.Ordinal));   // finished, not cut off
        Assert.True(await shutdown, "the running stream did not finish within the grace period");
    }

    [Fact]
    public async Task Nan_weights_end_the_answer_with_finish_reason_error()
    {
        await using var server = LfmServer.Create(new LfmServerOptions { ModelPath = NanModel.Create(), Port = 0, Threads = 1, Slots = 1, ContextLength = 256 });
        await server.StartAsync();
        await server.ModelLoaded;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var (code, json, text) = await ServerFixture.PostAsync(http, "v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8}");
        Assert.True(code == 200, text);
        var root = json!.Value;
        Assert.Equal("error", root.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal("numerical_fault", root.GetProperty("error").GetProperty("code").GetString());

        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8,\"stream\":true}", Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var events = await ServerFixture.ReadEventsAsync(response);
        Assert.Contains(events, e => e.Contains("\"finish_reason\":\"error\"", StringComparison.Ordinal));
        Assert.Equal("[DONE]", events[^1]);

        // The Responses API reports the fault as a failed response (never "ended without a result"), and does not
        // keep it for previous_response_id.
        var (rcode, rjson, rtext) = await ServerFixture.PostAsync(http, "v1/responses", "{\"input\":\"hi\",\"max_output_tokens\":8}");
        Assert.True(rcode == 200, rtext);
        Assert.Equal("failed", rjson!.Value.GetProperty("status").GetString());
        Assert.Contains("non-finite", rjson.Value.GetProperty("error").GetProperty("message").GetString() ?? "", StringComparison.OrdinalIgnoreCase);
        using var streamed = new HttpRequestMessage(HttpMethod.Post, "v1/responses")
        {
            Content = new StringContent("{\"input\":\"hi\",\"max_output_tokens\":8,\"stream\":true}", Encoding.UTF8, "application/json"),
        };
        using var rs = await http.SendAsync(streamed, HttpCompletionOption.ResponseHeadersRead);
        var revents = await ServerFixture.ReadEventsAsync(rs);
        Assert.Contains(revents, e => e.Contains("\"type\":\"response.failed\"", StringComparison.Ordinal));

        // Ollama's API answers with its error shape, naming the fault.
        var (ocode, ojson, otext) = await ServerFixture.PostAsync(http, "api/chat", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":false,\"options\":{\"num_predict\":8}}");
        Assert.True(ocode == 500, otext);
        Assert.Contains("non-finite", ojson!.Value.GetProperty("error").GetString() ?? "", StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_schema_being_compiled_does_not_hold_up_other_requests()
    {
        // The compile of a new schema is held open; a plain request sent meanwhile must still stream to the end. When
        // grammars were compiled on the decode thread, every other sequence waited for the compile to finish.
        using var gate = new ManualResetEventSlim(false);
        using var entered = new ManualResetEventSlim(false);
        string marker = Guid.NewGuid().ToString("N");
        GrammarCache.BeforeCompile = input =>
        {
            if (!input.Contains(marker, StringComparison.Ordinal))
                return;   // another test's schema
            entered.Set();
            gate.Wait(TimeSpan.FromSeconds(60));
        };
        try
        {
            string schema = "{\"type\":\"object\",\"properties\":{\"held\":{\"type\":\"string\",\"enum\":[\"" + marker + "\"]}},\"required\":[\"held\"]}";
            var structured = ServerFixture.PostAsync(fx.Http, "v1/chat/completions",
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":64,\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"h\",\"schema\":" + schema + "}}}");
            Assert.True(entered.Wait(TimeSpan.FromSeconds(30)), "the schema's compile never started");

            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":8,\"stream\":true}", Encoding.UTF8, "application/json"),
            };
            using var response = await fx.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            var events = await ServerFixture.ReadEventsAsync(response);
            Assert.Equal("[DONE]", events[^1]);
            Assert.False(structured.IsCompleted, "the structured request finished although its compile was held open");

            gate.Set();
            var (code, _, text) = await structured;
            Assert.True(code == 200, text);
        }
        finally
        {
            GrammarCache.BeforeCompile = null;
            gate.Set();
        }
    }
}
