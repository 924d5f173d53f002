using System.Text.Json;
using LfmSharp.Extensions.AI;
using Microsoft.Extensions.AI;
using LfmChatRole = LfmSharp.Chat.LfmChatRole;
using MeaiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace LfmSharp.Extensions.AI.Tests;

/// <summary>How <see cref="ChatOptions"/> and MEAI messages become the session's request (no generation).</summary>
[Collection("model")]
public sealed class ChatOptionsMappingTests(ModelFixture fx)
{
    private ChatRequestOptions Map(ChatOptions options, LfmChatClientOptions? client = null)
    {
        using var c = new LfmChatClient(fx.Model, client);
        return ChatRequestMapper.ToRequestOptions(options, fx.Model, client ?? new LfmChatClientOptions(), c);
    }

    [Fact]
    public void Sampling_fields_override_the_model_defaults_and_unset_ones_keep_them()
    {
        var r = Map(new ChatOptions { Temperature = 0.3f, TopP = 0.9f, TopK = 40, FrequencyPenalty = 0.5f, PresencePenalty = -0.25f, Seed = -1 });
        var s = r.Sampling!;
        Assert.Equal(0.3f, s.Temperature);
        Assert.Equal(0.9f, s.TopP);
        Assert.Equal(40, s.TopK);
        Assert.Equal(0.5f, s.FrequencyPenalty);
        Assert.Equal(-0.25f, s.PresencePenalty);
        Assert.Equal(ulong.MaxValue, s.Seed);   // the long's bits
        Assert.Equal(fx.Model.DefaultSampling.RepetitionPenalty, s.RepetitionPenalty);
        Assert.Equal(fx.Model.DefaultSampling.MinP, s.MinP);
    }

    [Fact]
    public void Additional_properties_carry_engine_extras()
    {
        var r = Map(new ChatOptions
        {
            AdditionalProperties = new()
            {
                ["min_p"] = 0.05f,
                ["repetition_penalty"] = 1.1f,
                ["max_thinking_tokens"] = 12,
                ["thinking_budget_notice"] = "Time is up.",
                ["keep_past_thinking"] = true,
                ["logit_bias"] = new Dictionary<int, float> { [14] = 5f },
            },
        });
        Assert.Equal(0.05f, r.Sampling!.MinP);
        Assert.Equal(1.1f, r.Sampling.RepetitionPenalty);
        Assert.Equal(5f, r.Sampling.LogitBias![14]);
        Assert.Equal(12, r.MaxThinkingTokens);
        Assert.Equal("Time is up.", r.ThinkingBudgetNotice);
        Assert.True(r.KeepPastThinking);
    }

    [Fact]
    public void Limits_stops_tools_and_tool_modes()
    {
        var f = AIFunctionFactory.Create((int x) => x, "f", "does f");
        var g = AIFunctionFactory.Create((string s) => s, "g");
        var r = Map(new ChatOptions { MaxOutputTokens = 77, StopSequences = ["END"], Tools = [f, g], AllowMultipleToolCalls = false });
        Assert.Equal(77, r.MaxTokens);
        Assert.Equal(["END"], r.Stop);
        Assert.Equal(["f", "g"], r.Tools!.Select(t => t.Name));
        Assert.Equal("does f", r.Tools![0].Description);
        Assert.Equal(["x"], r.Tools![0].ParameterNames);
        Assert.False(r.ParallelToolCalls);
        Assert.Equal(ToolChoice.Auto, r.ToolChoice);

        Assert.Equal(ToolChoice.None, Map(new ChatOptions { Tools = [f], ToolMode = ChatToolMode.None }).ToolChoice);
        Assert.Equal(ToolChoice.Required, Map(new ChatOptions { Tools = [f], ToolMode = ChatToolMode.RequireAny }).ToolChoice);
        Assert.Equal(ToolChoice.Function("g"), Map(new ChatOptions { Tools = [f, g], ToolMode = ChatToolMode.RequireSpecific("g") }).ToolChoice);
        Assert.Throws<ArgumentException>(() => Map(new ChatOptions { Tools = [f], ToolMode = ChatToolMode.RequireSpecific("h") }));
        Assert.Throws<ArgumentException>(() => Map(new ChatOptions { ToolMode = ChatToolMode.RequireAny }));
        Assert.Throws<ArgumentException>(() => Map(new ChatOptions { MaxOutputTokens = 0 }));
        Assert.Throws<ArgumentException>(() => Map(new ChatOptions { TopP = 2 }));
    }

    [Fact]
    public void Response_formats_and_reasoning_options()
    {
        Assert.IsType<ResponseFormat.JsonObjectFormat>(Map(new ChatOptions { ResponseFormat = ChatResponseFormat.Json }).ResponseFormat);
        var schema = JsonDocument.Parse("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}").RootElement;
        var js = Assert.IsType<ResponseFormat.JsonSchemaFormat>(Map(new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(schema, "thing") }).ResponseFormat);
        Assert.Equal("thing", js.Name);
        Assert.Equal(schema.GetRawText(), js.SchemaJson);
        Assert.IsType<ResponseFormat.TextFormat>(Map(new ChatOptions { ResponseFormat = ChatResponseFormat.Text }).ResponseFormat);

        Assert.Equal(0, Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.None } }).MaxThinkingTokens);
        Assert.Equal(256, Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.Low } }).MaxThinkingTokens);
        Assert.Null(Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.ExtraHigh } }).MaxThinkingTokens);
        var custom = new LfmChatClientOptions { ThinkingBudgets = new Dictionary<ReasoningEffort, int?> { [ReasoningEffort.Medium] = 99 } };
        Assert.Equal(99, Map(new ChatOptions { Reasoning = new ReasoningOptions { Effort = ReasoningEffort.Medium } }, custom).MaxThinkingTokens);
        Assert.False(Map(new ChatOptions { Reasoning = new ReasoningOptions { Output = ReasoningOutput.None } }).IncludeReasoning);
        Assert.True(Map(new ChatOptions { Reasoning = new ReasoningOptions { Output = ReasoningOutput.Summary } }).IncludeReasoning);
    }

    [Fact]
    public void Raw_representation_factory_gives_the_starting_request()
    {
        var r = Map(new ChatOptions { RawRepresentationFactory = _ => new ChatRequestOptions { LoopGuardEnabled = false, MaxTokens = 5 }, Temperature = 0 });
        Assert.False(r.LoopGuardEnabled);
        Assert.Equal(5, r.MaxTokens);
        Assert.Equal(0f, r.Sampling!.Temperature);
    }

    [Fact]
    public void Messages_map_roles_reasoning_calls_results_and_instructions()
    {
        var call = new FunctionCallContent("c1", "f", new Dictionary<string, object?> { ["x"] = 2 });
        var messages = new List<MeaiChatMessage>
        {
            new(MeaiChatRole.System, "Be brief."),
            new(MeaiChatRole.User, "Hi"),
            new(MeaiChatRole.Assistant, [new TextReasoningContent("thinking"), new TextContent("calling"), call]),
            new(MeaiChatRole.Tool, [new FunctionResultContent("c1", new { y = 3 })]),
            new(new MeaiChatRole("developer"), "Extra rule."),
        };
        var mapped = ChatRequestMapper.ToMessages(messages, instructions: "Obey.");
        Assert.Equal([LfmChatRole.System, LfmChatRole.User, LfmChatRole.Assistant, LfmChatRole.Tool, LfmChatRole.System], mapped.Select(m => m.Role));
        Assert.Equal("Obey.\n\nBe brief.", mapped[0].Content);
        Assert.Equal("thinking", mapped[2].Reasoning);
        Assert.Equal("calling", mapped[2].Content);
        var toolCall = Assert.Single(mapped[2].ToolCalls!);
        Assert.Equal(("c1", "f"), (toolCall.Id, toolCall.Name));
        Assert.Equal(2, JsonDocument.Parse(toolCall.ArgumentsJson).RootElement.GetProperty("x").GetInt32());
        Assert.Equal("{\"y\":3}", mapped[3].Content);
        Assert.Equal(("c1", "f"), (mapped[3].ToolCallId, mapped[3].Name));

        Assert.Throws<NotSupportedException>(() => ChatRequestMapper.ToMessages(
            [new MeaiChatMessage(MeaiChatRole.User, [new DataContent(new byte[] { 1 }, "image/png")])], null));
        Assert.Throws<ArgumentException>(() => ChatRequestMapper.ToMessages([], null));
    }
}
