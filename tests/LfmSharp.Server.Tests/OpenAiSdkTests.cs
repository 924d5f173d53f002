#pragma warning disable SCME0001 // JsonPatch (extra request fields) is experimental in System.ClientModel
#pragma warning disable OPENAI001
using System.ClientModel;
using System.Text;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;
using OpenAI;
using OpenAI.Chat;
using OaiChatMessage = OpenAI.Chat.ChatMessage;

namespace LfmSharp.Server.Tests;

/// <summary>The official OpenAI .NET SDK (2.15) against the real server: what a stock client sees.</summary>
[Collection("server")]
public sealed class OpenAiSdkTests(ServerFixture fx)
{
    private ChatClient Client() => new(fx.ModelId, new ApiKeyCredential("unused"),
        new OpenAIClientOptions { Endpoint = new Uri(fx.BaseAddress, "v1") });

    /// <summary>Steering through the SDK: logit_bias is a typed option; the penalty fields go in the JSON patch.</summary>
    internal static ChatCompletionOptions Options(Steer steer, int maxTokens = 32)
    {
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = maxTokens };
        foreach (var (id, bias) in steer.Bias)
            options.LogitBiases[id] = (int)bias;
        options.Patch.Set("$.repetition_penalty"u8, 100);
        options.Patch.Set("$.repeat_last_n"u8, steer.Window);
        return options;
    }

    [Fact]
    public async Task Chat_returns_the_answer_finish_reason_and_usage()
    {
        var steer = Steer.Chain("Paris", Steer.ImEnd);
        ChatCompletion completion = await Client().CompleteChatAsync([new UserChatMessage("Hello")], Options(steer));
        Assert.Equal("Paris", completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        int prompt = fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmSharp.Chat.LfmChatMessage.User("Hello")])).Length;
        Assert.Equal(prompt, completion.Usage.InputTokenCount);
        Assert.InRange(completion.Usage.OutputTokenCount, 5, 6);
        Assert.Equal(completion.Usage.InputTokenCount + completion.Usage.OutputTokenCount, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Streaming_delivers_incremental_text_and_a_usage_update()
    {
        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd);
        var options = Options(steer);
        var text = new StringBuilder();
        int textUpdates = 0;
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in Client().CompleteChatStreamingAsync([new UserChatMessage("Hello")], options))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
                if (part.Text.Length > 0)
                    textUpdates++;
            }
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }
        // The SDK has no reasoning field: the thinking stays out of the text.
        Assert.Equal("Paris", text.ToString());
        Assert.True(textUpdates >= 2);
        Assert.Equal(ChatFinishReason.Stop, finish);
        Assert.NotNull(usage);
        Assert.True(usage!.OutputTokenDetails.ReasoningTokenCount >= 2);
        Assert.True(usage.OutputTokenCount > usage.OutputTokenDetails.ReasoningTokenCount);
    }

    [Fact]
    public async Task Tool_call_round_trip()
    {
        var tool = ChatTool.CreateFunctionTool("echo", "Echo a number",
            BinaryData.FromString("{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}"));
        var options = Options(Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd));
        options.Tools.Add(tool);
        List<OaiChatMessage> messages = [new UserChatMessage(Steer.DigitTailUser)];

        ChatCompletion first = await Client().CompleteChatAsync(messages, options);
        Assert.Equal(ChatFinishReason.ToolCalls, first.FinishReason);
        var call = Assert.Single(first.ToolCalls);
        Assert.Equal("echo", call.FunctionName);
        Assert.Equal(1, JsonDocument.Parse(call.FunctionArguments).RootElement.GetProperty("x").GetInt32());

        messages.Add(new AssistantChatMessage(first));
        messages.Add(new ToolChatMessage(call.Id, "42"));
        var options2 = Options(Steer.Chain("OK", Steer.ImEnd));
        options2.Tools.Add(tool);
        ChatCompletion second = await Client().CompleteChatAsync(messages, options2);
        Assert.Equal("OK", second.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, second.FinishReason);

        // The SDK's own serialization of the assistant call and the tool result reached the template.
        var expected = new List<LfmSharp.Chat.LfmChatMessage>
        {
            LfmSharp.Chat.LfmChatMessage.User(Steer.DigitTailUser),
            LfmSharp.Chat.LfmChatMessage.Assistant("", toolCalls: [new ToolCall(call.Id, "echo", call.FunctionArguments.ToString())]),
            LfmSharp.Chat.LfmChatMessage.Tool("42", call.Id),
        };
        var tools = new[] { new ToolDefinition("echo", "Echo a number", "{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}},\"required\":[\"x\"]}") };
        // The system block (tools) is the same in both prompts and tokenized apart (special tokens bound it), so the
        // growth of the prompt is exactly the tokens of the assistant call and the tool result as the template renders them.
        int Count(IReadOnlyList<LfmSharp.Chat.LfmChatMessage> m) => fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render(m, tools)).Length;
        Assert.Equal(Count(expected) - Count(expected.Take(1).ToList()), second.Usage.InputTokenCount - first.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Json_schema_response_deserializes()
    {
        var options = Options(Steer.Chain("7", "}", Steer.ImEnd));
        options.ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("number",
            BinaryData.FromString("{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}},\"required\":[\"n\"],\"additionalProperties\":false}"),
            jsonSchemaIsStrict: true);
        ChatCompletion completion = await Client().CompleteChatAsync([new UserChatMessage("A number please")], options);
        using var doc = JsonDocument.Parse(completion.Content[0].Text);
        Assert.Equal(7, doc.RootElement.GetProperty("n").GetInt32());
    }
}
