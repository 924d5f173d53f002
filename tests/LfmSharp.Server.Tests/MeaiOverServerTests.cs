#pragma warning disable SCME0001
#pragma warning disable OPENAI001
using System.ClientModel;
using LfmSharp.Testing;
using Microsoft.Extensions.AI;
using OpenAI;
using MeaiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace LfmSharp.Server.Tests;

/// <summary>Microsoft.Extensions.AI's OpenAI <see cref="IChatClient"/> against the real server, with MEAI middleware.</summary>
[Collection("server")]
public sealed class MeaiOverServerTests(ServerFixture fx)
{
    private sealed record ToolLog
    {
        public List<int> Calls { get; } = new();
    }

    [Fact]
    public async Task Meai_openai_client_over_the_server_runs_a_tool_loop()
    {
        var log = new ToolLog();
        var echo = AIFunctionFactory.Create((int x) => { log.Calls.Add(x); return x + 1; }, "echo", "Echo a number");
        var callChain = Steer.Chain(Steer.ToolCallStart, "[echo(x=5)]", Steer.ToolCallEnd, Steer.ImEnd);
        var answerChain = Steer.Chain("OK", Steer.ImEnd);
        IChatClient remote = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(fx.BaseAddress, "v1") })
            .GetChatClient(fx.ModelId).AsIChatClient();
        using var client = new ChatClientBuilder(remote)
            .UseFunctionInvocation()
            .Use((messages, options, next, ct) =>
            {
                var list = messages.ToList();
                bool answered = list.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Any();
                var steer = answered ? answerChain : callChain;
                var steered = options!.Clone();
                steered.RawRepresentationFactory = _ => OpenAiSdkTests.Options(steer);
                return next(list, steered, ct);
            })
            .Build();

        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, Steer.DigitTailUser)], new ChatOptions { Tools = [echo] });
        Assert.Equal([5], log.Calls);
        Assert.Equal("OK", response.Text);
        Assert.True(response.Usage?.InputTokenCount > 0);
    }
}
