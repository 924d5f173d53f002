using System.Text.Json;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>
/// llama-server's <c>ignore_eos</c>: the end-of-generation tokens are never sampled, so the answer runs to
/// <c>max_tokens</c> (benchmarks send it to make both servers generate the same number of tokens).
/// </summary>
[Collection("server")]
public sealed class IgnoreEosTests(ServerFixture fx)
{
    // A bias that makes the model end at once: without ignore_eos the first token is the end of the turn.
    private static string Body(string path, bool ignoreEos) =>
        (path == "v1/chat/completions"
            ? "{\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]"
            : "{\"prompt\":\"Hello\"")
        + $",\"temperature\":0,\"max_tokens\":9,\"logit_bias\":{{\"{Steer.ImEnd}\":100,\"{Steer.EndOfText}\":100}}"
        + (ignoreEos ? ",\"ignore_eos\":true}" : "}");

    [Theory]
    [InlineData("v1/chat/completions")]
    [InlineData("v1/completions")]
    public async Task Ignore_eos_runs_to_max_tokens_where_the_model_would_end_at_once(string path)
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };

        var (status, ended, text) = await ServerFixture.PostAsync(http, path, Body(path, ignoreEos: false));
        Assert.True(status == 200, text);
        Assert.True(Usage(ended!.Value) <= 1, text);   // the end-of-turn token itself, at most
        Assert.Equal("stop", FinishReason(ended.Value));

        (status, var ran, text) = await ServerFixture.PostAsync(http, path, Body(path, ignoreEos: true));
        Assert.True(status == 200, text);
        Assert.Equal(9, Usage(ran!.Value));
        Assert.Equal("length", FinishReason(ran.Value));
    }

    private static int Usage(JsonElement body) => body.GetProperty("usage").GetProperty("completion_tokens").GetInt32();

    private static string? FinishReason(JsonElement body) => body.GetProperty("choices")[0].GetProperty("finish_reason").GetString();
}
