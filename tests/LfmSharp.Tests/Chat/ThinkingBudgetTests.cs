using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Tests.Chat;

public class ThinkingBudgetTests
{
    /// <summary>Simulates a generator: tokens go through the parser; when the budget says so, the notice and
    /// &lt;/think&gt; are forced in as generated text.</summary>
    private static (List<GenerationEvent> Events, ThinkingBudget Budget, int Forced) Run(int? budget, string? notice, string[] modelTokens, bool startInReasoning = false)
    {
        var parser = new ChatOutputParser(new ChatOutputParserOptions { StartInReasoning = startInReasoning });
        var b = new ThinkingBudget(budget, notice);
        var events = new List<GenerationEvent>();
        int forced = 0;
        var queue = new Queue<string>(modelTokens);
        while (queue.Count > 0)
        {
            if (b.ShouldForceEnd(parser.InReasoning))
            {
                if (b.Notice is not null)
                    parser.Push(b.Notice, events);
                parser.Push("</think>", events);
                b.MarkForced();
                forced++;
                // The model would now answer; drop its remaining thinking tokens up to its own </think>.
                while (queue.Count > 0 && queue.Peek() != "</think>")
                    queue.Dequeue();
                if (queue.Count > 0)
                    queue.Dequeue();
                continue;
            }
            parser.Push(queue.Dequeue(), events);
            b.CountToken(parser.InReasoning);
        }
        parser.Finish(events);
        return (ChatOutputParserTests.Merge(events), b, forced);
    }

    private static readonly string[] Tokens = ["<think>", "a", " b", " c", " d", " e", "</think>", "The", " end"];

    [Fact]
    public void Unlimited_budget_counts_reasoning_tokens_only()
    {
        var (events, b, forced) = Run(null, null, Tokens);
        Assert.Equal(0, forced);
        Assert.Equal(6, b.ReasoningTokens); // <think> and the five thoughts
        Assert.Equal([new ReasoningDelta("a b c d e"), new ContentDelta("The end")], events);
    }

    [Fact]
    public void Budget_forces_the_close_with_the_notice()
    {
        var (events, b, forced) = Run(3, "\nOut of time.\n", Tokens);
        Assert.Equal(1, forced);
        Assert.True(b.Forced);
        Assert.Equal(3, b.ReasoningTokens);
        Assert.Equal([new ReasoningDelta("a b\nOut of time."), new ContentDelta("The end")], events);
    }

    [Fact]
    public void Zero_budget_closes_at_once()
    {
        var (events, b, forced) = Run(0, null, ["Still", " thinking", "</think>", "Answer"], startInReasoning: true);
        Assert.Equal(1, forced);
        Assert.Equal(0, b.ReasoningTokens);
        Assert.Equal([new ContentDelta("Answer")], events);
        Assert.True(b.ShouldForceEnd(true)); // a spent budget stays spent: a reopened <think> is closed again
        b.Reset();
        Assert.True(b.ShouldForceEnd(true));
        Assert.False(b.ShouldForceEnd(false));
    }

    [Fact]
    public void Negative_budget_is_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ThinkingBudget(-1));
    }
}
