using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Tests.Sessions;

/// <summary>
/// JSON mode after thinking: a model pushed to write a stray special token (here &lt;|tool_call_end|&gt;) while it
/// thinks must not get that text into content ahead of the document (LangChain's jsonMode then fails on '&lt;').
/// </summary>
public sealed class JsonModeThinkingTests(ThinkingModelFixture fx) : IClassFixture<ThinkingModelFixture>
{
    [Theory]
    [InlineData("<|tool_call_end|>")]
    [InlineData("<|tool_call_start|>")]
    [InlineData("<|im_start|>")]
    public void Content_is_only_the_document_even_when_the_model_favours_a_special_token_while_thinking(string special)
    {
        var vocab = fx.Model.Tokenizer.Vocabulary;
        Assert.True(vocab.TryGetId(special, out int id));
        var sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float>(fx.Visible) { [id] = 50f } };
        foreach (var format in new[] { ResponseFormat.JsonObject, ResponseFormat.JsonSchema("""{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}""") })
        {
            using var session = fx.Model.CreateChatSession(512);
            var events = session.Complete([LfmChatMessage.User("answer in JSON")],
                new ChatRequestOptions { MaxTokens = 40, ResponseFormat = format, Sampling = sampling, LoopGuardEnabled = false }).ToList();
            string content = string.Concat(events.Select(e => e switch
            {
                ContentDelta c => c.Text,
                ParseErrorEvent p => p.RawText,
                _ => "",
            }));
            string reasoning = string.Concat(events.OfType<ReasoningDelta>().Select(r => r.Text));
            Assert.StartsWith("{", content.TrimStart(), StringComparison.Ordinal);
            Assert.DoesNotContain("<|", content, StringComparison.Ordinal);
            Assert.DoesNotContain(special, reasoning, StringComparison.Ordinal);
            Assert.Empty(events.OfType<ToolCallEvent>());
        }
    }
}
