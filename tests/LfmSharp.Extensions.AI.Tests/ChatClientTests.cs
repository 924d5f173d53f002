using System.ComponentModel;
using System.Text;
using LfmSharp.Extensions.AI;
using LfmSharp.Testing;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using MeaiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace LfmSharp.Extensions.AI.Tests;

/// <summary>The in-process <see cref="LfmChatClient"/> with Microsoft.Extensions.AI middleware (MEAI's OpenAI client over
/// the real server is in LfmSharp.Server.Tests).</summary>
[Collection("model")]
public sealed class ChatClientTests(ModelFixture fx)
{
    /// <summary>Per-call steering: the options' raw-representation factory hands the session its sampling.</summary>
    private ChatOptions Steered(Steer steer, int maxTokens = 32, ChatOptions? options = null)
    {
        options ??= new ChatOptions();
        options.MaxOutputTokens = maxTokens;
        var sampling = steer.Sampling(fx.Model.DefaultSampling);
        options.RawRepresentationFactory = _ => new ChatRequestOptions { Sampling = sampling };
        return options;
    }

    [Fact]
    public async Task Response_has_text_finish_reason_usage_and_ids()
    {
        using var client = fx.Model.AsChatClient();
        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")], Steered(Steer.Chain("Paris", Steer.ImEnd)));
        Assert.Equal("Paris", response.Text);
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal(MeaiChatRole.Assistant, response.Messages.Single().Role);
        Assert.NotNull(response.ResponseId);
        Assert.Equal(fx.Model.Name, response.ModelId);
        int prompt = fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmSharp.Chat.LfmChatMessage.User("Hello")])).Length;
        Assert.Equal(prompt, response.Usage!.InputTokenCount);
        Assert.InRange(response.Usage.OutputTokenCount!.Value, 5, 6);
        Assert.Equal(0, response.Usage.ReasoningTokenCount);
    }

    [Fact]
    public async Task Streaming_keeps_reasoning_and_text_apart()
    {
        using var client = fx.Model.AsChatClient();
        var reasoning = new StringBuilder();
        var text = new StringBuilder();
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")],
            Steered(Steer.Chain(Steer.Think, "hm", Steer.EndThink, "OK", Steer.ImEnd))))
        {
            updates.Add(update);
            foreach (var content in update.Contents)
            {
                if (content is TextReasoningContent r)
                    reasoning.Append(r.Text);
                else if (content is TextContent t)
                    text.Append(t.Text);
            }
            // One kind per update, never a mix.
            Assert.False(update.Contents.OfType<TextReasoningContent>().Any() && update.Contents.OfType<TextContent>().Any());
        }
        Assert.Equal("hm", reasoning.ToString());
        Assert.Equal("OK", text.ToString());
        // All reasoning arrives before the answer.
        int lastReasoning = updates.FindLastIndex(u => u.Contents.OfType<TextReasoningContent>().Any());
        int firstText = updates.FindIndex(u => u.Contents.OfType<TextContent>().Any());
        Assert.True(lastReasoning < firstText);
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single().Details;
        Assert.InRange(usage.ReasoningTokenCount!.Value, 2, 4);
        Assert.Equal(ChatFinishReason.Stop, updates.Last(u => u.FinishReason is not null).FinishReason);
    }

    [Fact]
    public async Task Reasoning_output_none_hides_the_reasoning_but_counts_it()
    {
        using var client = fx.Model.AsChatClient();
        var options = Steered(Steer.Chain(Steer.Think, "hm", Steer.EndThink, "OK", Steer.ImEnd));
        options.Reasoning = new ReasoningOptions { Output = ReasoningOutput.None };
        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")], options);
        Assert.Equal("OK", response.Text);
        Assert.Empty(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>());
        Assert.True(response.Usage!.ReasoningTokenCount >= 2);
    }

    [Fact]
    public async Task Reasoning_effort_none_closes_the_thinking_at_once()
    {
        using var client = fx.Model.AsChatClient();
        var options = Steered(Steer.Chain(Steer.Think, "abcdefgh", Steer.EndThink, "OK", Steer.ImEnd));
        options.Reasoning = new ReasoningOptions { Effort = ReasoningEffort.None };
        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")], options);
        string reasoning = string.Concat(response.Messages.SelectMany(m => m.Contents).OfType<TextReasoningContent>().Select(r => r.Text));
        Assert.Equal("", reasoning);
        Assert.True(response.Usage!.ReasoningTokenCount <= 1);
    }

    private sealed record ToolLog
    {
        public List<int> Calls { get; } = new();
    }

    [Fact]
    public async Task Function_invocation_runs_the_csharp_function_and_feeds_the_result_back()
    {
        var log = new ToolLog();
        var echo = AIFunctionFactory.Create(([Description("a number")] int x) =>
        {
            log.Calls.Add(x);
            return $"result-{x * 2}";
        }, "echo", "Echo a number");
        var callChain = Steer.Chain(Steer.ToolCallStart, "[echo(x=3)]", Steer.ToolCallEnd, Steer.ImEnd);
        var answerChain = Steer.Chain("OK", Steer.ImEnd);
        var seenByModel = new List<IReadOnlyList<MeaiChatMessage>>();

        using var inner = fx.Model.AsChatClient();
        // The steering middleware sits under the function loop: before the tool has run the model is steered to
        // call it, afterwards to answer — the loop itself is Microsoft.Extensions.AI's.
        using var client = new ChatClientBuilder(inner)
            .UseFunctionInvocation()
            .Use((messages, options, next, ct) =>
            {
                var list = messages.ToList();
                seenByModel.Add(list);
                bool answered = list.SelectMany(m => m.Contents).OfType<FunctionResultContent>().Any();
                var steered = Steered(answered ? answerChain : callChain, options: options!.Clone());
                return next(list, steered, ct);
            })
            .Build();

        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, Steer.DigitTailUser)], new ChatOptions { Tools = [echo] });

        Assert.Equal([3], log.Calls);
        Assert.Equal("OK", response.Text);
        Assert.Equal(2, seenByModel.Count);
        var result = seenByModel[1].SelectMany(m => m.Contents).OfType<FunctionResultContent>().Single();
        Assert.Equal("result-6", result.Result?.ToString());
        var call = response.Messages.SelectMany(m => m.Contents).OfType<FunctionCallContent>().Single();
        Assert.Equal("echo", call.Name);
        Assert.Equal(call.CallId, result.CallId);
        // The function's result reached the model's prompt: the second prompt is the template's render of the whole
        // exchange, with the result text inside the tool message.
        Assert.Contains("result-6", fx.Model.ChatTemplate.Render(
            [LfmSharp.Chat.LfmChatMessage.User(Steer.DigitTailUser),
             LfmSharp.Chat.LfmChatMessage.Assistant("", toolCalls: [new LfmSharp.Generation.ToolCall(call.CallId, "echo", "{\"x\":3}")]),
             LfmSharp.Chat.LfmChatMessage.Tool("result-6", call.CallId)]));
    }

    public sealed record Reading(int N);

    [Fact]
    public async Task Structured_output_deserializes_to_the_type()
    {
        using var client = fx.Model.AsChatClient();
        var response = await client.GetResponseAsync<Reading>([new MeaiChatMessage(MeaiChatRole.User, "A number please")],
            Steered(Steer.Chain("7", "}", Steer.ImEnd)));
        Assert.True(response.TryGetResult(out var reading), "not JSON of the schema: " + response.Text);
        Assert.Equal(7, reading!.N);
    }

    [Fact]
    public async Task Concurrent_calls_each_get_their_own_answer()
    {
        using var client = fx.Model.AsChatClient(new LfmChatClientOptions { MaxConcurrentSessions = 2 });
        string[] words = ["Paris", "Rome", "Lima", "Kyiv"];
        var responses = await Task.WhenAll(words.Select(w =>
            client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")], Steered(Steer.Chain(w, Steer.ImEnd)))));
        Assert.Equal(words, responses.Select(r => r.Text).ToArray());
    }

    [Fact]
    public async Task Cancellation_stops_a_streaming_call()
    {
        using var client = fx.Model.AsChatClient();
        using var cts = new CancellationTokenSource();
        int updates = 0;
        var options = new ChatOptions
        {
            MaxOutputTokens = 1500,
            Temperature = 1,
            Seed = 3,
            // End tokens banned: the generation cannot finish on its own before the cancellation.
            AdditionalProperties = new() { ["logit_bias"] = new Dictionary<int, float> { [Steer.EndOfText] = -100, [Steer.ImEnd] = -100 } },
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in client.GetStreamingResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Talk")], options, cts.Token))
            {
                if (++updates == 3)
                    cts.Cancel();
            }
        });
        Assert.True(updates < 1500);
    }

    [Fact]
    public void GetService_returns_metadata_the_model_and_the_client()
    {
        using var client = fx.Model.AsChatClient(new LfmChatClientOptions { ModelId = "tiny" });
        var metadata = client.GetService<ChatClientMetadata>();
        Assert.Equal("lfmsharp", metadata!.ProviderName);
        Assert.Equal("tiny", metadata.DefaultModelId);
        Assert.Same(fx.Model, client.GetService<LanguageModel>());
        Assert.Same(client, client.GetService<LfmChatClient>());
        Assert.Null(client.GetService<ChatClientMetadata>("some key"));
    }

    [Fact]
    public async Task Dependency_injection_registers_model_and_client()
    {
        var services = new ServiceCollection();
        services.AddLfmSharpChatClient(fx.ModelPath, new LfmChatClientOptions { ModelId = "di" }, new ModelLoadOptions { Threads = 1 });
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<IChatClient>();
        Assert.Equal("di", client.GetService<ChatClientMetadata>()!.DefaultModelId);
        var response = await client.GetResponseAsync([new MeaiChatMessage(MeaiChatRole.User, "Hello")], Steered(Steer.Chain("OK", Steer.ImEnd)));
        Assert.Equal("OK", response.Text);
    }
}
