using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Tests.Sessions;

/// <summary>
/// Chat sessions sharing one <see cref="PrefixCache"/> (as a server's slots do) reuse each other's prompt prefixes:
/// a shared system prompt, an identical request, every earlier turn of a conversation; and answer exactly as a
/// session without any cache does.
/// </summary>
public sealed class SharedPrefixCacheTests(ThinkingModelFixture fx) : IClassFixture<ThinkingModelFixture>
{
    private const int Context = 2048;

    private ChatRequestOptions Options(ulong seed) => new()
    {
        MaxTokens = 10,
        Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed, LogitBias = new Dictionary<int, float>(fx.Visible) { [2] = float.NegativeInfinity, [7] = float.NegativeInfinity } },
        LoopGuardEnabled = false,
        Logprobs = 3,
    };

    private static readonly string SystemPrompt = string.Join(' ', Enumerable.Range(0, 60).Select(i => $"rule {i}: answer briefly and politely."));

    /// <summary>Every event, logprobs bit for bit, and the finish reason: what "the same output" means.</summary>
    private static List<string> Output(IEnumerable<GenerationEvent> events) => events.Select(e => e switch
    {
        ContentDelta c => "c:" + c.Text,
        ReasoningDelta r => "r:" + r.Text,
        TokenLogprobs l => "lp:" + l.TokenId + ":" + BitConverter.SingleToInt32Bits(l.Logprob),
        Done d => "done:" + d.Reason + ":" + d.Usage.CompletionTokens,
        _ => e.GetType().Name,
    }).ToList();

    private List<string> Cold(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, ChatRequestOptions o)
    {
        using var cold = new ChatSession(model, Context, KvCacheType.F16, new PrefixCache(0));
        var output = Output(cold.Complete(messages, o));
        Assert.Equal(cold.LastPromptTokens, cold.LastPrefilledTokens);
        return output;
    }

    [Fact]
    public void A_shared_system_prompt_is_reused_by_another_session_up_to_its_end()
    {
        var cache = new PrefixCache(256L << 20);
        using var a = new ChatSession(fx.Model, Context, KvCacheType.F16, cache);
        using var b = new ChatSession(fx.Model, Context, KvCacheType.F16, cache);
        _ = a.Complete([LfmChatMessage.System(SystemPrompt), LfmChatMessage.User("What is the capital of France?")], Options(1)).ToList();

        LfmChatMessage[] second = [LfmChatMessage.System(SystemPrompt), LfmChatMessage.User("Name three colours.")];
        var hot = Output(b.Complete(second, Options(2)));
        int systemEnd = fx.Model.Tokenizer.EncodePrompt(fx.Model.ChatTemplate.Render([LfmChatMessage.System(SystemPrompt)], null, addGenerationPrompt: false)).Length;
        Assert.True(systemEnd > 256, $"system block of {systemEnd} tokens");
        Assert.Equal(systemEnd, b.LastPromptTokens - b.LastPrefilledTokens);
        Assert.Equal(Cold(fx.Model, second, Options(2)), hot);
    }

    [Fact]
    public void Tools_without_a_system_message_are_reused_up_to_the_end_of_the_system_block_they_make()
    {
        var tools = Enumerable.Range(0, 6).Select(i => new ToolDefinition($"tool_{i}", $"Does thing number {i} for the user.",
            """{"type":"object","properties":{"query":{"type":"string","description":"what to look for"}},"required":["query"]}""")).ToList();
        var cache = new PrefixCache(256L << 20);
        using var a = new ChatSession(fx.Plain, Context, KvCacheType.F16, cache);
        using var b = new ChatSession(fx.Plain, Context, KvCacheType.F16, cache);
        _ = a.Complete([LfmChatMessage.User("Find me a hotel.")], Options(4) with { Tools = tools }).ToList();
        LfmChatMessage[] second = [LfmChatMessage.User("What is the weather?")];
        var hot = Output(b.Complete(second, Options(5) with { Tools = tools }));
        string block = fx.Plain.ChatTemplate.Render([], tools, addGenerationPrompt: false);
        Assert.Contains("tool_5", block, StringComparison.Ordinal);
        Assert.Equal(fx.Plain.Tokenizer.EncodePrompt(block).Length, b.LastPromptTokens - b.LastPrefilledTokens);
        Assert.Equal(Cold(fx.Plain, second, Options(5) with { Tools = tools }), hot);
    }

    [Fact]
    public void An_identical_request_in_another_session_prefills_only_its_last_token_and_answers_the_same()
    {
        var cache = new PrefixCache(256L << 20);
        LfmChatMessage[] messages = [LfmChatMessage.System(SystemPrompt), LfmChatMessage.User("Tell me a story.")];
        using var a = new ChatSession(fx.Model, Context, KvCacheType.F16, cache);
        var first = Output(a.Complete(messages, Options(3)));
        using var b = new ChatSession(fx.Model, Context, KvCacheType.F16, cache);
        var second = Output(b.Complete(messages, Options(3)));
        Assert.Equal(1, b.LastPrefilledTokens);
        Assert.Equal(first, second);
        Assert.Equal(Cold(fx.Model, messages, Options(3)), second);
    }

    [Fact]
    public void Each_turn_of_an_eight_turn_conversation_in_a_fresh_session_reuses_the_previous_prompt_and_answer()
    {
        // The stock template: a turn's prompt starts with the whole previous prompt (its answer begins with the
        // generation prompt) and then the previous answer as text. The state at the end of a generation is stored
        // with the answer's tokens fed so far (all but the last one chosen), so when the answer re-tokenizes to the
        // tokens generated, the next turn resumes after it; otherwise after the previous prompt's last-but-one token.
        var cache = new PrefixCache(256L << 20, interval: 64);
        var history = new List<LfmChatMessage> { LfmChatMessage.System(SystemPrompt) };
        int[] previous = [];
        int[] answer = [];
        int answerReused = 0;
        for (int turn = 0; turn < 8; turn++)
        {
            history.Add(LfmChatMessage.User($"Question number {turn}: what comes next?"));
            using var s = new ChatSession(fx.Plain, Context, KvCacheType.F16, cache);
            int[] prompt = s.RenderPrompt(history).Tokens;
            var events = s.Complete(history, Options((ulong)turn)).ToList();
            int[] fedAnswer = previous.Concat(answer).ToArray();
            int expected = turn == 0 ? 0 : prompt.AsSpan().StartsWith(fedAnswer) ? fedAnswer.Length : previous.Length - 1;
            Assert.Equal(expected, s.LastPromptTokens - s.LastPrefilledTokens);
            if (expected == fedAnswer.Length && answer.Length > 0)
                answerReused++;
            if (turn is 3 or 7)
                Assert.Equal(Cold(fx.Plain, history, Options((ulong)turn)), Output(events));
            previous = prompt;
            // Fed: every token chosen but the last (it ends the generation before it is fed).
            int completion = events.OfType<Done>().Single().Usage.CompletionTokens;
            answer = events.OfType<TokenLogprobs>().Select(l => l.TokenId).Take(completion - 1).ToArray();
            history.Add(LfmChatMessage.Assistant(string.Concat(events.OfType<ContentDelta>().Select(c => c.Text))));
        }
        Assert.Equal(7, cache.Hits);
        Assert.True(answerReused > 0, "no turn re-tokenized its previous answer the same: the answer checkpoint went untested");
    }

    [Fact]
    public void A_request_stores_one_copy_per_kind_of_reuse_the_system_end_the_last_but_one_token_and_the_answer()
    {
        var cache = new PrefixCache(256L << 20, interval: 4096);
        var messages = new List<LfmChatMessage> { LfmChatMessage.System(SystemPrompt), LfmChatMessage.User("What comes next?") };
        List<GenerationEvent> first;
        using (var a = new ChatSession(fx.Plain, Context, KvCacheType.F16, cache))
            first = a.Complete(messages, Options(1)).ToList();
        // The user message ends just before the generation prompt, which the answer re-renders, so the copy at
        // prompt − 1 serves whatever a copy at that end would; the whole prompt is superseded by the answer's copy,
        // made when the answer (all but the last token chosen) tokenizes back into the same tokens.
        int[] answer = [.. first.OfType<TokenLogprobs>().Select(l => l.TokenId).SkipLast(1)];
        var tok = fx.Plain.Tokenizer;
        int copies = answer.SequenceEqual(tok.Encode(tok.Decode(answer), addBos: false, parseSpecial: true)) ? 3 : 2;
        Assert.Equal(copies, cache.Stores);
        Assert.Equal(copies, cache.Count);

        // The reuse they give: the same request again prefills its last token; a new question resumes at the system end.
        using var b = new ChatSession(fx.Plain, Context, KvCacheType.F16, cache);
        Assert.Equal(Output(b.Complete(messages, Options(1))), Cold(fx.Plain, messages, Options(1)));
        Assert.Equal(1, b.LastPrefilledTokens);
        LfmChatMessage[] other = [messages[0], LfmChatMessage.User("Something else entirely?")];
        _ = b.Complete(other, Options(2)).ToList();
        Assert.Equal(Len(fx.Plain.ChatTemplate, other, 1), b.LastPromptTokens - b.LastPrefilledTokens);
    }

    [Fact]
    public void Message_boundaries_are_where_the_prefix_renders_end()
    {
        var template = fx.Model.ChatTemplate;
        LfmChatMessage[] messages = [LfmChatMessage.System("Be brief."), LfmChatMessage.User("Hi"), LfmChatMessage.Assistant("Hello!"), LfmChatMessage.User("Bye")];
        Assert.Equal([Len(template, messages, 1), Len(template, messages, 2), Len(template, messages, 3), Len(template, messages, 4)], Boundaries(template, messages));
    }

    [Fact]
    public void A_conversations_next_turn_tokenizes_only_the_prefixes_that_end_in_its_new_messages()
    {
        var template = fx.Model.ChatTemplate;
        LfmChatMessage[] turn1 = [LfmChatMessage.System("Be brief."), LfmChatMessage.User("Hi"), LfmChatMessage.Assistant("Hello!"), LfmChatMessage.User("Bye")];
        LfmChatMessage[] turn2 = [.. turn1, LfmChatMessage.Assistant("Goodbye."), LfmChatMessage.User("Wait, one more thing?")];
        var memo = new PrefixTokenMemo();
        Assert.Equal(Boundaries(template, turn1, new PrefixTokenMemo()), Boundaries(template, turn1, memo));
        Assert.Equal(4, memo.Encodes);
        // Each prefix of turn 1 renders the same text again: only the ends of the two new messages are tokenized.
        int[] ends = Boundaries(template, turn2, memo);
        Assert.Equal(6, memo.Encodes);
        Assert.Equal([.. Enumerable.Range(1, 6).Select(n => Len(template, turn2, n))], ends);
        Assert.Equal(Boundaries(template, turn2, new PrefixTokenMemo()), ends);
    }

    [Fact]
    public void The_prefix_token_memo_answers_as_the_tokenizer_and_stays_under_its_budget()
    {
        var tok = fx.Model.Tokenizer;
        string[] texts = [.. Enumerable.Range(0, 12).Select(i => $"<|im_start|>user\nquestion {i}: " + string.Concat(Enumerable.Repeat("words ", i + 3)) + "<|im_end|>\n")];
        var memo = new PrefixTokenMemo(budget: 700);
        foreach (string t in texts)
        {
            Assert.Equal(tok.EncodePrompt(t), memo.EncodePrompt(tok, t));
            Assert.InRange(memo.Bytes, 1, memo.Budget);
        }
        Assert.Equal(texts.Length, memo.Encodes);
        // The newest text is still held; the oldest was dropped to stay under the budget and is tokenized again.
        Assert.Equal(tok.EncodePrompt(texts[^1]), memo.EncodePrompt(tok, texts[^1]));
        Assert.Equal(texts.Length, memo.Encodes);
        Assert.Equal(tok.EncodePrompt(texts[0]), memo.EncodePrompt(tok, texts[0]));
        Assert.Equal(texts.Length + 1, memo.Encodes);
        // A text larger than the whole budget is tokenized but not kept.
        string huge = new('x', 1000);
        Assert.Equal(tok.EncodePrompt(huge), memo.EncodePrompt(tok, huge));
        Assert.InRange(memo.Bytes, 1, memo.Budget);
    }

    private const string Loop = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

    [Fact]
    public void A_template_that_refuses_a_partial_conversation_gives_only_the_ends_it_renders()
    {
        var template = ChatTemplate.FromGguf("{% if messages[-1].role != 'user' %}{{ raise_exception('the last message must be a user message') }}{% endif %}" + Loop);
        Assert.Null(template.Warning);
        LfmChatMessage[] messages = [LfmChatMessage.System("Be brief."), LfmChatMessage.User("Hi"), LfmChatMessage.Assistant("Hello!"), LfmChatMessage.User("Bye")];
        Assert.Equal([Len(template, messages, 2), Len(template, messages, 4)], Boundaries(template, messages));
    }

    [Fact]
    public void A_template_whose_prefixes_render_differently_gives_only_the_last_end_and_intervals_from_the_start()
    {
        // The message count at the top changes with every shorter prefix, so only the whole conversation's render
        // is a prefix of the prompt.
        var template = ChatTemplate.FromGguf("{{ messages | length }}" + Loop);
        Assert.Null(template.Warning);
        LfmChatMessage[] messages = [LfmChatMessage.System("Be brief."), LfmChatMessage.User("Hi"), LfmChatMessage.Assistant("Hello!"), LfmChatMessage.User("Bye")];
        Assert.Equal([Len(template, messages, 4)], Boundaries(template, messages));
        Assert.Equal([16, 32, 40], PromptCheckpoints.Positions([], 41, 16, 0));
    }

    private int[] Boundaries(ChatTemplate template, LfmChatMessage[] messages, PrefixTokenMemo? memo = null)
    {
        string text = template.Render(messages, null, addGenerationPrompt: true);
        int[] tokens = fx.Model.Tokenizer.EncodePrompt(text);
        return PromptCheckpoints.MessageBoundaries(template, fx.Model.Tokenizer, messages, null, null, text, tokens, memo);
    }

    private int Len(ChatTemplate template, LfmChatMessage[] messages, int n) =>
        fx.Model.Tokenizer.EncodePrompt(template.Render(messages[..n], null, addGenerationPrompt: false)).Length;
}
