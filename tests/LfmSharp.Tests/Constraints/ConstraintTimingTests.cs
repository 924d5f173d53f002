using System.Diagnostics;
using System.Text;
using LfmSharp.Constraints;
using Xunit.Abstractions;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

/// <summary>Prints the mask cost for a 65,536-token vocabulary in typical states. Measures only; asserts behaviour, not time.</summary>
public class ConstraintTimingTests(ITestOutputHelper output)
{
    [Fact]
    public void Mask_cost_for_a_65k_vocabulary_is_printed()
    {
        var sw = Stopwatch.StartNew();
        var vocab = Synthetic65k;
        var schema = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["defs-ref"]);
        output.WriteLine($"vocabulary trie (built once per vocabulary, maybe by another test): {sw.Elapsed.TotalMilliseconds:F0} ms to get, {vocab.Trie.NodeCount} nodes, longest token {vocab.Trie.MaxDepth} bytes");

        var logits = new float[vocab.Count];
        var cases = new (string Name, Grammar Grammar, string Prefix)[]
        {
            ("json mode, start", Grammar.AnyJsonObject(), ""),
            ("json mode, after '{'", Grammar.AnyJsonObject(), "{"),
            ("json mode, in a key", Grammar.AnyJsonObject(), "{\"ab"),
            ("json mode, in a string value", Grammar.AnyJsonObject(), "{\"a\": \"hello wor"),
            ("json mode, in a number", Grammar.AnyJsonObject(), "{\"a\": [12"),
            ("schema, in a string value", schema, "{\"items\": [{\"sku\": \"abc"),
            ("schema, expecting a key", schema, "{\"items\": [{"),
            ("schema, bounded integer", schema, "{\"items\": [{\"sku\": \"a\", \"qty\": "),
            ("schema, string maxLength 12", Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["nested"]), "{\"user\": {\"name\": \"ab"),
            ("schema, free key beside defined", Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["additional-true"]), "{\"a\": \"x\", \"b"),
        };
        foreach (var (name, grammar, prefix) in cases)
        {
            var k = new GrammarConstraint(grammar, vocab);
            foreach (byte b in Encoding.UTF8.GetBytes(prefix))
                k.Accept(b + Lfm2Specials.Length); // ids 14..269 are the single bytes
            foreach (int budget in new[] { int.MaxValue, 200 })
            {
                const int reps = 25;
                // Warm up past tier-0 JIT code: at least 30 calls and 60 ms.
                sw.Restart();
                for (int w = 0; w < 30 || sw.ElapsedMilliseconds < 60; w++)
                    k.ApplyMask(logits, budget);
                // The minimum and median over single calls: the machine running the tests may be busy.
                var times = new double[reps];
                for (int r = 0; r < reps; r++)
                {
                    sw.Restart();
                    k.ApplyMask(logits, budget);
                    times[r] = sw.Elapsed.TotalMilliseconds;
                }
                long allocated = SteadyAllocations.Measure(() =>
                {
                    for (int r = 0; r < reps; r++)
                        k.ApplyMask(logits, budget);
                });
                Array.Sort(times);
                int allowed = k.AllowedCount();
                output.WriteLine($"{name,-32} budget {(budget == int.MaxValue ? "none" : budget.ToString()),4}: min {times[0],7:F3} / median {times[reps / 2],7:F3} ms/token, {allowed,6} allowed, {allocated / reps} B allocated/token");
                Assert.True(allowed > 0);
                Assert.True(allocated == 0, $"{name}: {allocated} bytes allocated over {reps} calls");
            }
        }
    }
}
