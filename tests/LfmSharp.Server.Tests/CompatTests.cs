using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>Model names apps send, and CORS for browser pages.</summary>
[Collection("server")]
public sealed class CompatTests(ServerFixture fx)
{
    private static string Body(string model, Steer steer) =>
        steer.Apply(new JsonObject { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Hello" }), ["max_tokens"] = 8 }).ToJsonString();

    [Theory]
    [InlineData("gpt-4o-mini")]
    [InlineData("gpt-3.5-turbo")]
    [InlineData("my-setup-name")]
    public async Task Any_model_name_is_answered_and_echoed(string name)
    {
        var (status, body, text) = await ServerFixture.PostAsync(fx.Http, "/v1/chat/completions", Body(name, Steer.Chain("Hi", Steer.ImEnd)));
        Assert.True(status == 200, text);
        Assert.Equal(name, body!.Value.GetProperty("model").GetString());
        Assert.Equal("Hi", body.Value.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
    }

    [Fact]
    public async Task Strict_model_refuses_unknown_names_but_takes_every_alias()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, StrictModel = true, ModelAlias = "first", Aliases = ["second", "third"] });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var (status, body, _) = await ServerFixture.PostAsync(http, "/v1/chat/completions", Body("gpt-4o-mini", Steer.Chain("Hi", Steer.ImEnd)));
        Assert.Equal(404, status);
        Assert.Equal("model_not_found", body!.Value.GetProperty("error").GetProperty("code").GetString());
        var (completion, _, _) = await ServerFixture.PostAsync(http, "/v1/completions", "{\"prompt\":\"hi\",\"model\":\"other\",\"max_tokens\":1}");
        Assert.Equal(404, completion);
        foreach (string alias in new[] { "first", "second", "third" })
        {
            var (ok, answer, text) = await ServerFixture.PostAsync(http, "/v1/chat/completions", Body(alias, Steer.Chain("Hi", Steer.ImEnd)));
            Assert.True(ok == 200, text);
            Assert.Equal(alias, answer!.Value.GetProperty("model").GetString());
        }
        Assert.Equal(404, (await ServerFixture.GetAsync(http, "/v1/models/gpt-4")).Status);
        var (_, models, _) = await ServerFixture.GetAsync(http, "/v1/models");
        var ids = models!.Value.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()).ToList();
        Assert.Equal(["first", "second", "third"], ids);
    }

    private static HttpRequestMessage Preflight(string origin, string method = "POST") => new(HttpMethod.Options, "/v1/chat/completions")
    {
        Headers =
        {
            { "Origin", origin },
            { "Access-Control-Request-Method", method },
            { "Access-Control-Request-Headers", "authorization, content-type" },
        },
    };

    [Theory]
    [InlineData("http://localhost:5173")]
    [InlineData("http://127.0.0.1:3000")]
    [InlineData("http://[::1]:8081")]
    public async Task Loopback_origins_pass_preflight_and_get_cors_headers(string origin)
    {
        using var preflight = await fx.Http.SendAsync(Preflight(origin));
        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Equal(origin, preflight.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.Contains("POST", preflight.Headers.GetValues("Access-Control-Allow-Methods").Single());
        Assert.Contains("authorization", preflight.Headers.GetValues("Access-Control-Allow-Headers").Single());

        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { { "Origin", origin } } };
        using var response = await fx.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(origin, response.Headers.GetValues("Access-Control-Allow-Origin").Single());
    }

    [Fact]
    public async Task Foreign_origins_are_refused_unless_configured()
    {
        using var preflight = await fx.Http.SendAsync(Preflight("https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, preflight.StatusCode);
        Assert.False(preflight.Headers.Contains("Access-Control-Allow-Origin"));
        // A "simple" request (no preflight) from a foreign page must not reach the model either.
        using var simple = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Headers = { { "Origin", "https://evil.example" } },
            Content = new StringContent(Body("x", Steer.Chain("Hi", Steer.ImEnd)), Encoding.UTF8, "text/plain"),
        };
        using var refused = await fx.Http.SendAsync(simple);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("--cors-origin", await refused.Content.ReadAsStringAsync());

        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, CorsOrigins = ["https://app.example"] });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var allowed = await http.SendAsync(Preflight("https://app.example"));
        Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        using var other = await http.SendAsync(Preflight("https://other.example"));
        Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);

        await using var open = await fx.StartAsync(new LfmServerOptions { Slots = 1, CorsOrigins = ["*"] });
        using var openHttp = new HttpClient { BaseAddress = open.BaseAddress };
        using var any = await openHttp.SendAsync(Preflight("https://other.example"));
        Assert.Equal(HttpStatusCode.NoContent, any.StatusCode);
    }

    [Fact]
    public async Task The_servers_own_origin_is_allowed_whatever_its_address()
    {
        // A page served by the server (the chat page at /) reached as http://address:port calls back to that origin.
        // (A host name would need --allowed-host: the Host check refuses unknown names against DNS rebinding.)
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { { "Origin", "http://192.168.1.20:8080" }, { "Host", "192.168.1.20:8080" } } };
        using var response = await fx.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var other = new HttpRequestMessage(HttpMethod.Get, "/v1/models") { Headers = { { "Origin", "http://192.168.1.20:9999" }, { "Host", "192.168.1.20:8080" } } };
        using var refused = await fx.Http.SendAsync(other);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
    }

    [Fact]
    public async Task A_preflight_never_bypasses_the_api_key()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, ApiKey = "secret" });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var preflight = await http.SendAsync(Preflight("http://localhost:5173"));
        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);

        // The real request after it still needs the key, and its 401 is readable by the page (CORS headers on it).
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Headers = { { "Origin", "http://localhost:5173" } },
            Content = new StringContent(Body("x", Steer.Chain("Hi", Steer.ImEnd)), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("http://localhost:5173", response.Headers.GetValues("Access-Control-Allow-Origin").Single());

        // An OPTIONS that is not a preflight is an ordinary request: no key, no answer.
        using var bare = new HttpRequestMessage(HttpMethod.Options, "/v1/chat/completions") { Headers = { { "Origin", "http://localhost:5173" } } };
        using var bareResponse = await http.SendAsync(bare);
        Assert.Equal(HttpStatusCode.Unauthorized, bareResponse.StatusCode);

        var (ok, _, text) = await ServerFixture.PostAsync(http, "/v1/chat/completions", Body("x", Steer.Chain("Hi", Steer.ImEnd)), "secret");
        Assert.True(ok == 200, text);
    }
}
