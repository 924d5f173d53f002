using System.Text;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Gguf;
using LfmSharp.Synthetic;
using LfmSharp.Testing;
using LfmSharp.Tests.Constraints;

namespace LfmSharp.Tests.Sessions;

/// <summary>
/// A tiny synthetic model whose chat template opens &lt;think&gt; in the generation prompt (LFM2.5-2.6B style), so
/// the random-weight model starts every answer inside its reasoning without any steering.
/// </summary>
public sealed class ThinkingModelFixture : IDisposable
{
    public ThinkingModelFixture()
    {
        Dir = TestData.NewTempDir();
        string plain = Path.Combine(Dir, "tiny-lfm25.gguf");
        SyntheticModel.Write(plain, new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F32, ChatTemplate = ChatTemplateStyle.Lfm25 });
        Path_ = Path.Combine(Dir, "tiny-lfm25-think.gguf");
        using (var src = GgufFile.Open(plain))
        {
            var w = new GgufWriter();
            foreach (var e in src.Metadata)
            {
                if (e.Key == "tokenizer.chat_template")
                {
                    string t = (string)e.Value.Value;
                    string opened = t.Replace("assistant\\n\" -}}", "assistant\\n<think>\" -}}", StringComparison.Ordinal);
                    if (opened == t)
                        throw new InvalidOperationException("could not open <think> in the template");
                    w.AddString(e.Key, opened);
                }
                else
                {
                    w.Add(e.Key, e.Value);
                }
            }
            foreach (var t in src.Tensors)
                w.AddTensor(t.Name, t.Type, t.Dimensions, src.GetTensorData(t).ToArray());
            w.WriteTo(Path_);
        }
        Model = LanguageModel.Load(Path_, new ModelLoadOptions { Threads = 1 });
        Plain = LanguageModel.Load(plain, new ModelLoadOptions { Threads = 1 });
        // Random weights love the 40 [PAD] tokens, which print nothing; tests that look at text ban them.
        var vocab = Model.Tokenizer.Vocabulary;
        Visible = Enumerable.Range(0, vocab.Count).Where(i => vocab.GetTokenType(i) == LfmSharp.Tokenizers.TokenType.Unused)
            .ToDictionary(i => i, _ => float.NegativeInfinity);
    }

    /// <summary>The same weights with the stock LFM2.5-style template (no &lt;think&gt; in the generation prompt).</summary>
    public LanguageModel Plain { get; }

    /// <summary>Logit bias that bans tokens which print nothing.</summary>
    public IReadOnlyDictionary<int, float> Visible { get; }

    public string Dir { get; }
    public string Path_ { get; }
    public LanguageModel Model { get; }

    public void Dispose()
    {
        Model.Dispose();
        Plain.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

public sealed class ChatSessionTests(ThinkingModelFixture fx) : IClassFixture<ThinkingModelFixture>
{
    // Greedy decoding of the random model starts with <|im_end|> or repeats <think>; ban those too so a turn has text.
    /// <summary>Tokens the turn after history[<paramref name="asked"/>] (answered by <paramref name="answer"/>) resumes
    /// from: its prompt and the answer's tokens fed when the next prompt starts with them, else that prompt − 1.</summary>
    private static int Resumed(ChatSession s, int asked, List<GenerationEvent> answer)
    {
        int[] prompt = s.RenderPrompt([.. s.History.Take(asked)]).Tokens;
        int[] next = s.RenderPrompt([.. s.History.Take(asked + 2)]).Tokens;
        int fed = Assert.IsType<Done>(answer[^1]).Usage.CompletionTokens - 1;
        int[] withAnswer = [.. prompt, .. answer.OfType<TokenLogprobs>().Select(l => l.TokenId).Take(fed)];
        return next.AsSpan().StartsWith(withAnswer) ? withAnswer.Length : prompt.Length - 1;
    }

    private ChatRequestOptions Greedy(int max) => new()
    {
        MaxTokens = max,
        Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float>(fx.Visible) { [2] = float.NegativeInfinity, [7] = float.NegativeInfinity, [14] = float.NegativeInfinity, [15] = float.NegativeInfinity } },
        LoopGuardEnabled = false,
    };

    private SamplingOptions Random(float temperature, ulong seed) => new() { Temperature = temperature, Seed = seed, LogitBias = fx.Visible };

    private static string Text<T>(IEnumerable<GenerationEvent> events) where T : GenerationEvent =>
        string.Concat(events.OfType<T>().Select(e => e switch { ReasoningDelta r => r.Text, ContentDelta c => c.Text, _ => "" }));

    [Fact]
    public void The_template_opens_thinking_so_output_starts_as_reasoning()
    {
        Assert.True(fx.Model.ChatTemplate.GenerationPromptOpensThinking);
        using var s = fx.Model.CreateChatSession(512);
        var events = s.Complete([LfmChatMessage.User("What is 17*23?")], Greedy(12)).ToList();
        Assert.IsType<ReasoningDelta>(events[0]);
        Assert.Empty(events.OfType<ContentDelta>());
        var done = Assert.IsType<Done>(events[^1]);
        Assert.Equal(FinishReason.Length, done.Reason);
        Assert.Equal(12, done.Usage.ReasoningTokens);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Thinking_budget_forces_the_close_and_continues_in_answer_mode(int budget)
    {
        using var s = fx.Model.CreateChatSession(512);
        var events = s.Complete([LfmChatMessage.User("What is 17*23?")], Greedy(20) with { MaxThinkingTokens = budget, ThinkingBudgetNotice = budget > 0 ? " Time is up." : null }).ToList();
        var done = Assert.IsType<Done>(events[^1]);
        // Counted as reasoning: the budget's sampled tokens, the forced notice and the forced </think> itself.
        Assert.Equal(budget + (budget > 0 ? NoticeTokens(" Time is up.") : 0) + 1, done.Usage.ReasoningTokens);
        string answer = Text<ContentDelta>(events);
        Assert.False(string.IsNullOrEmpty(answer), "after the forced </think> the model answers");
        if (budget > 0)
            Assert.EndsWith("Time is up.", Text<ReasoningDelta>(events), StringComparison.Ordinal);
        else
            Assert.Empty(events.OfType<ReasoningDelta>());
        Assert.Equal(20, done.Usage.CompletionTokens);
    }

    private int NoticeTokens(string notice) => fx.Model.Tokenizer.Encode(notice, addBos: false, parseSpecial: false).Length;

    [Fact]
    public void Reasoning_can_be_left_out_of_the_stream_but_is_still_counted()
    {
        using var s = fx.Model.CreateChatSession(512);
        var events = s.Complete([LfmChatMessage.User("hi")], Greedy(8) with { IncludeReasoning = false }).ToList();
        Assert.Empty(events.OfType<ReasoningDelta>());
        Assert.Equal(8, Assert.IsType<Done>(events[^1]).Usage.ReasoningTokens);
    }

    [Fact]
    public void Loop_guard_closes_a_looping_reasoning_then_stops_a_looping_answer()
    {
        using var s = fx.Model.CreateChatSession(1024);
        var guard = new LoopGuardOptions { MinRunTokens = 16, MinRunChars = 24, CheckIntervalChars = 16 };
        var events = s.Complete([LfmChatMessage.User("hi")], Greedy(400) with { LoopGuardEnabled = true, LoopGuard = guard }).ToList();
        var loops = events.OfType<LoopDetectedEvent>().ToList();
        Assert.NotEmpty(loops);
        Assert.True(loops[0].InReasoning);
        Assert.Equal("ForceEndThinking", loops[0].Action);
        var done = Assert.IsType<Done>(events[^1]);
        Assert.Equal(FinishReason.Loop, done.Reason);
        Assert.True(done.Usage.CompletionTokens < 400);
        Assert.Contains(loops, l => !l.InReasoning && l.Action == "Stop");
    }

    [Fact]
    public void Loop_guard_with_stop_policy_stops_inside_the_reasoning()
    {
        using var s = fx.Model.CreateChatSession(1024);
        var guard = new LoopGuardOptions { MinRunTokens = 16, MinRunChars = 24, CheckIntervalChars = 16, Policy = LoopPolicy.Stop };
        var events = s.Complete([LfmChatMessage.User("hi")], Greedy(400) with { LoopGuardEnabled = true, LoopGuard = guard }).ToList();
        Assert.Equal(FinishReason.Loop, Assert.IsType<Done>(events[^1]).Reason);
        Assert.Empty(events.OfType<ContentDelta>());
    }

    [Fact]
    public void A_multi_turn_chat_prefills_only_the_new_turn_and_matches_a_cold_start()
    {
        // The stock template: an answer's rendering starts with the previous generation prompt, so the prefix holds.
        // The state after each answer is kept too (keyed by the prompt and the answer's tokens fed: all chosen but
        // the last), so a turn resumes after the previous answer when it re-renders as the tokens generated, and
        // after the previous prompt's last-but-one token when it does not.
        using var s = fx.Plain.CreateChatSession(1024);
        var opts = Greedy(10) with { Logprobs = 0, Sampling = Random(1.0f, 1234) with { LogitBias = new Dictionary<int, float>(fx.Visible) { [2] = float.NegativeInfinity, [7] = float.NegativeInfinity } } };
        var first = s.SendAsync("Hello there", opts).ToBlockingEnumerable().ToList();
        int firstPrompt = s.LastPromptTokens;
        Assert.Equal(firstPrompt, s.LastPrefilledTokens);
        var second = s.SendAsync("And again", opts).ToBlockingEnumerable().ToList();
        int secondPrompt = s.LastPromptTokens;
        Assert.NotEmpty(first.OfType<ContentDelta>());
        Assert.Equal(4, s.History.Count);
        Assert.True(s.LastPrefilledTokens < s.LastPromptTokens);
        Assert.Equal(s.LastPromptTokens - Resumed(s, 1, first), s.LastPrefilledTokens);
        Assert.Equal(s.LastPrefilledTokens, Assert.IsType<Done>(second[^1]).Usage.PrefilledTokens);
        var third = s.SendAsync("Third turn", opts).ToBlockingEnumerable().ToList();
        Assert.Equal(s.LastPromptTokens - Resumed(s, 3, second), s.LastPrefilledTokens);
        Assert.Equal(6, s.History.Count);
        Assert.Equal(secondPrompt, s.RenderPrompt([.. s.History.Take(3)]).Tokens.Length);

        // The same conversation from a cold state gives the same answer.
        using var cold = fx.Plain.CreateChatSession(1024);
        var again = cold.Complete([.. s.History.Take(5)], opts).ToList();
        Assert.Equal(s.LastPromptTokens, cold.LastPrefilledTokens);
        Assert.Equal(Text<ContentDelta>(third), Text<ContentDelta>(again));
    }

    [Fact]
    public void A_history_started_with_a_system_message_is_kept_by_SendAsync_and_cleared_by_Reset()
    {
        using var s = fx.Plain.CreateChatSession(1024);
        var opts = Greedy(6);
        s.Reset([LfmChatMessage.System("You are terse.")]);
        var answer = s.SendAsync("Hello there", opts).ToBlockingEnumerable().ToList();
        Assert.Equal(3, s.History.Count);
        Assert.Equal(LfmChatMessage.System("You are terse."), s.History[0]);
        // The prompt that was answered is the system message plus the user turn.
        var (_, tokens) = s.RenderPrompt([LfmChatMessage.System("You are terse."), LfmChatMessage.User("Hello there")]);
        Assert.Equal(tokens.Length, s.LastPromptTokens);
        Assert.Equal(Text<ContentDelta>(answer), s.History[2].Content);
        s.Reset([]);
        Assert.Empty(s.History);
        Assert.Throws<ArgumentException>(() => s.Reset([null!]));
    }

    [Fact]
    public void With_a_thinking_prefill_template_later_turns_reuse_only_true_prefixes_and_match_a_cold_start()
    {
        // The generation prompt ends in <think>, but the rendered answer of that turn does not (its thinking is
        // dropped), so the cached prompt is not a prefix of the next one: the session must not reuse it blindly.
        using var s = fx.Model.CreateChatSession(1024);
        var opts = Greedy(10) with { Sampling = Random(1.0f, 99) with { LogitBias = new Dictionary<int, float>(fx.Visible) { [2] = float.NegativeInfinity, [7] = float.NegativeInfinity } } };
        _ = s.SendAsync("Hello there", opts).ToBlockingEnumerable().ToList();
        var (firstText, _) = s.RenderPrompt([LfmChatMessage.User("Hello there")]);
        Assert.EndsWith("<|im_start|>assistant\n<think>", firstText, StringComparison.Ordinal);
        var second = s.SendAsync("And again", opts).ToBlockingEnumerable().ToList();
        var (secondText, secondTokens) = s.RenderPrompt(s.History.Take(3).ToList());
        Assert.Equal(secondTokens.Length, s.LastPromptTokens);
        Assert.True(s.LastPrefilledTokens <= s.LastPromptTokens);

        using var cold = fx.Model.CreateChatSession(1024);
        var again = cold.Complete([.. s.History.Take(3)], opts).ToList();
        Assert.Equal(cold.LastPromptTokens, cold.LastPrefilledTokens);
        Assert.Equal(Text<ReasoningDelta>(second) + Text<ContentDelta>(second), Text<ReasoningDelta>(again) + Text<ContentDelta>(again));
        Assert.StartsWith(firstText[..firstText.LastIndexOf("<|im_start|>assistant", StringComparison.Ordinal)], secondText, StringComparison.Ordinal);
    }

    [Fact]
    public void A_prompt_longer_than_the_context_is_rejected_with_the_counts()
    {
        using var s = fx.Model.CreateChatSession(32);
        var ex = Assert.Throws<ContextOverflowException>(() => s.Complete([LfmChatMessage.User(new string('x', 400))]).ToList());
        Assert.True(ex.PromptTokens >= 32);
        Assert.Equal(32, ex.ContextLength);
    }

    private static bool IsJson(string s)
    {
        try { using var _ = JsonDocument.Parse(s); return true; }
        catch (JsonException) { return false; }
    }

    public static TheoryData<string> SchemaNames => JsonConstraintRandomTests.SchemaNames;

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void Json_schema_answers_always_parse_and_validate(string name)
    {
        using var s = fx.Model.CreateChatSession(1024);
        string schema = JsonConstraintRandomTests.Schemas[name];
        var opts = new ChatRequestOptions
        {
            MaxTokens = 160,
            MaxThinkingTokens = 8,
            ResponseFormat = ResponseFormat.JsonSchema(schema),
            Sampling = Random(1.0f, (ulong)name.Length * 7919),
            LoopGuardEnabled = false,
        };
        var events = s.Complete([LfmChatMessage.User("Extract the data as JSON.")], opts).ToList();
        string json = Text<ContentDelta>(events);
        var done = Assert.IsType<Done>(events[^1]);
        Assert.True(IsJson(json), $"{name}: not JSON after {done.Reason} ({done.Usage.CompletionTokens} tokens): '{json}'");
        using var doc = JsonDocument.Parse(json);
        using var schemaDoc = JsonDocument.Parse(schema);
        Assert.Empty(MiniSchemaValidator.Validate(schemaDoc.RootElement, doc.RootElement));
        Assert.NotEqual(FinishReason.Loop, Assert.IsType<Done>(events[^1]).Reason);
    }

    [Fact]
    public void Json_mode_gives_an_object_after_the_reasoning()
    {
        using var s = fx.Model.CreateChatSession(1024);
        var events = s.Complete([LfmChatMessage.User("JSON please")], new ChatRequestOptions
        {
            MaxTokens = 120, MaxThinkingTokens = 6, ResponseFormat = ResponseFormat.JsonObject,
            Sampling = Random(1.2f, 5), LoopGuardEnabled = false,
        }).ToList();
        Assert.NotEmpty(events.OfType<ReasoningDelta>());
        using var doc = JsonDocument.Parse(Text<ContentDelta>(events));
        Assert.Equal(JsonValueKind.Object, doc.RootElement.ValueKind);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("get_weather")]
    public void Required_tool_choice_always_yields_a_valid_call(string? forced)
    {
        var tools = new[]
        {
            new ToolDefinition("get_weather", "Weather for a city", """{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"]}"""),
            new ToolDefinition("search", "Web search", """{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"""),
        };
        using var s = fx.Model.CreateChatSession(1024);
        var events = s.Complete([LfmChatMessage.User("Weather in Paris?")], new ChatRequestOptions
        {
            MaxTokens = 120, MaxThinkingTokens = 4, Tools = tools,
            ToolChoice = forced is null ? ToolChoice.Required : ToolChoice.Function(forced),
            Sampling = Random(1.0f, 9), LoopGuardEnabled = false,
        }).ToList();
        Assert.True(events.OfType<ToolCallEvent>().Count() == 1, string.Join("\n", events));
        var call = Assert.Single(events.OfType<ToolCallEvent>()).Call;
        if (forced is not null)
            Assert.Equal(forced, call.Name);
        Assert.Contains(call.Name, tools.Select(t => t.Name));
        using var args = JsonDocument.Parse(call.ArgumentsJson);
        string required = call.Name == "get_weather" ? "city" : "query";
        Assert.Equal(JsonValueKind.String, args.RootElement.GetProperty(required).ValueKind);
        Assert.Empty(events.OfType<ParseErrorEvent>());
        Assert.Equal(FinishReason.ToolCalls, Assert.IsType<Done>(events[^1]).Reason);
    }

    [Fact]
    public void Tool_choice_none_bans_the_tool_call_marker()
    {
        var tools = new[] { new ToolDefinition("f", null, """{"type":"object","properties":{}}""") };
        using var s = fx.Model.CreateChatSession(512);
        var bias = new Dictionary<int, float> { [fx.Model.Tokenizer.Vocabulary.GetId("<|tool_call_start|>")] = 1000f };
        var events = s.Complete([LfmChatMessage.User("x")], Greedy(10) with { Tools = tools, ToolChoice = ToolChoice.None, MaxThinkingTokens = 0, Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float>(fx.Visible) { [bias.Keys.First()] = 1000f } } }).ToList();
        Assert.Empty(events.OfType<ToolCallEvent>());
        Assert.Empty(events.OfType<ParseErrorEvent>());
        Assert.DoesNotContain("<|tool_call_start|>", Text<ContentDelta>(events), StringComparison.Ordinal);
    }

    [Fact]
    public void Cancellation_of_the_async_stream_ends_with_cancelled()
    {
        using var s = fx.Model.CreateChatSession(512);
        using var cts = new CancellationTokenSource();
        var list = new List<GenerationEvent>();
        foreach (var e in s.CompleteAsync([LfmChatMessage.User("hi")], Greedy(400), cts.Token).ToBlockingEnumerable())
        {
            list.Add(e);
            if (list.Count == 3)
                cts.Cancel();
        }
        var done = Assert.IsType<Done>(list[^1]);
        Assert.Equal(FinishReason.Cancelled, done.Reason);
        Assert.True(done.Usage.CompletionTokens < 100, $"{done.Usage.CompletionTokens} tokens after cancelling at the 3rd event");
    }
}
