using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

/// <summary>
/// The trie walk (with its string fast paths and budget pruning) allows exactly the tokens that a plain
/// byte-by-byte check of each token allows.
/// </summary>
public class MaskOracleTests
{
    public static TheoryData<string, bool> Cases => new()
    {
        { "json-mode", false },
        { "nested", false },
        { "string-lengths", false },
        { "additional-true", false },
        { "additional-schema", false },
        { "unicode-keys", false },
        { "anyOf-shapes", false },
        { "tools", false },
        { "json-mode", true },
        { "nested", true },
        { "additional-true", true },
        { "tools", true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Mask_equals_per_token_check(string name, bool synthetic)
    {
        var grammar = name switch
        {
            "json-mode" => Grammar.AnyJsonObject(),
            "tools" => Grammar.ForToolCalls(ToolCallGrammarTests.Tools, new ToolCallGrammarOptions { AllowParallelCalls = true }),
            _ => Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas[name]),
        };
        var vocab = synthetic ? Synthetic65k : FixtureVocab;
        var driver = new GrammarConstraint(grammar, vocab);
        var probe = new GrammarConstraint(grammar, vocab);
        var logits = new float[vocab.Count];
        int runs = synthetic ? 1 : 4;
        int every = synthetic ? 12 : 1;
        for (int seed = 0; seed < runs; seed++)
        {
            var run = RandomRunTokens(driver, seed, grammar.MinLength + 40);
            var matcher = new GrammarMatcher(grammar);
            probe.Reset();
            for (int step = 0; step <= run.Count; step++)
            {
                if (step % every == 0 || step == run.Count)
                {
                    int budget = 3 + step % 5 * 7; // tight budgets exercise the distance pruning
                    foreach (int remaining in new[] { int.MaxValue, budget })
                    {
                        Array.Clear(logits);
                        probe.ApplyMask(logits, remaining);
                        bool budgetFits = remaining == int.MaxValue || matcher.MinBytesToComplete <= remaining;
                        for (int t = 0; t < vocab.Count; t++)
                        {
                            bool expected = Allowed(matcher, grammar, vocab, t, remaining);
                            if (!budgetFits)
                                continue; // the mask then falls back to best effort
                            Assert.True(expected == (logits[t] == 0f), $"token {t} '{Show(vocab.GetBytes(t).ToArray())}' after {step} tokens, budget {remaining}: expected {(expected ? "allowed" : "masked")}");
                        }
                    }
                }
                if (step == run.Count)
                    break;
                int token = run[step];
                probe.Accept(token);
                AdvanceMatcher(matcher, grammar, vocab, token);
            }
        }
    }

    private static bool Allowed(GrammarMatcher m, Grammar g, TokenVocabulary v, int t, int remaining)
    {
        if (v.EndOfGenerationIds.Contains(t))
            return m.IsComplete;
        var next = m.Clone();
        int special = g.SpecialTokens.ToList().IndexOf(System.Text.Encoding.UTF8.GetString(v.GetBytes(t)));
        bool ok = special >= 0 ? next.TryAdvanceSpecial(g.SpecialTokens[special])
            : !v.IsSpecial(t) && v.GetBytes(t).Length > 0 && next.TryAdvance(v.GetBytes(t));
        return ok && (remaining == int.MaxValue || next.MinBytesToComplete <= remaining - 1);
    }

    private static void AdvanceMatcher(GrammarMatcher m, Grammar g, TokenVocabulary v, int t)
    {
        string text = System.Text.Encoding.UTF8.GetString(v.GetBytes(t));
        Assert.True(g.SpecialTokens.Contains(text) ? m.TryAdvanceSpecial(text) : m.TryAdvance(v.GetBytes(t)));
    }

    /// <summary>The sampled token ids of one random run (end token excluded).</summary>
    private static List<int> RandomRunTokens(GrammarConstraint c, int seed, int budget)
    {
        var rng = new Random(seed);
        var logits = new float[c.Vocabulary.Count];
        var tokens = new List<int>();
        c.Reset();
        for (int step = 0; step < budget; step++)
        {
            for (int i = 0; i < logits.Length; i++)
                logits[i] = (float)(Gaussian(rng) * 2);
            c.ApplyMask(logits, budget - step);
            int t = Sample(logits, 1.5, rng);
            c.Accept(t);
            if (c.IsFinished)
                break;
            tokens.Add(t);
        }
        return tokens;
    }
}
