using System.Text;
using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

/// <summary>
/// <see cref="GrammarMatcher.MinBytesToComplete"/> is exact: 0 exactly when complete, no byte lowers it by more
/// than one, and some byte lowers it by exactly one. Together (by induction) that makes it the true shortest
/// completion, which is what the budget-aware mask relies on.
/// </summary>
public class CompletionDistanceTests
{
    public static TheoryData<string> SchemaNames => JsonConstraintRandomTests.SchemaNames;

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void Distance_is_exact_along_random_documents(string name)
    {
        var grammar = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas[name]);
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        for (int seed = 0; seed < 3; seed++)
        {
            var run = RandomRun(constraint, 500 + seed, 60);
            CheckAlong(grammar, run.Bytes);
        }
    }

    [Fact]
    public void Distance_is_exact_for_tool_calls()
    {
        var grammar = Grammar.ForToolCalls(ToolCallGrammarTests.Tools, new ToolCallGrammarOptions { AllowParallelCalls = true });
        var constraint = new GrammarConstraint(grammar, FixtureVocab);
        for (int seed = 0; seed < 6; seed++)
        {
            var run = RandomRun(constraint, 900 + seed, 80);
            var m = new GrammarMatcher(grammar);
            Assert.True(m.TryAdvanceSpecial("<|tool_call_start|>"));
            var body = run.Bytes.AsSpan(Encoding.UTF8.GetByteCount("<|tool_call_start|>"));
            body = body[..^Encoding.UTF8.GetByteCount("<|tool_call_end|>")];
            for (int i = 0; i <= body.Length; i++)
            {
                CheckHere(m, body[..i].ToArray());
                if (i < body.Length)
                    Assert.True(m.TryAdvance(body[i]));
            }
        }
    }

    private static void CheckAlong(Grammar grammar, byte[] doc)
    {
        var m = new GrammarMatcher(grammar);
        for (int i = 0; i <= doc.Length; i++)
        {
            CheckHere(m, doc[..i]);
            if (i < doc.Length)
                Assert.True(m.TryAdvance(doc[i]), $"rejected its own output at byte {i}: {Show(doc)}");
        }
    }

    private static void CheckHere(GrammarMatcher m, byte[] prefix)
    {
        int d = m.MinBytesToComplete;
        Assert.Equal(d == 0, m.IsComplete);
        bool decreasing = d == 0;
        for (int b = 0; b < 256; b++)
        {
            var next = m.Clone();
            if (!next.TryAdvance((byte)b))
                continue;
            int dn = next.MinBytesToComplete;
            Assert.True(dn >= d - 1, $"byte 0x{b:X2} drops the distance from {d} to {dn} after '{Show(prefix)}'");
            decreasing |= dn == d - 1;
        }
        foreach (string special in m.Grammar.SpecialTokens)
        {
            var next = m.Clone();
            if (next.TryAdvanceSpecial(special))
            {
                Assert.True(next.MinBytesToComplete >= d - 1);
                decreasing |= next.MinBytesToComplete == d - 1;
            }
        }
        Assert.True(decreasing, $"no byte brings the distance {d} closer after '{Show(prefix)}'");
    }
}
