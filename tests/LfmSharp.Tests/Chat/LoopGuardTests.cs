using System.Text;
using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Tests.Chat;

public class LoopGuardTests
{
    private const string Natural = """
        The question asks for the number of ways to choose 3 items from 7. Let me recall the formula: C(n, k) = n! / (k! (n - k)!).
        So C(7, 3) = 5040 / (6 * 24) = 5040 / 144 = 35. Wait, let me double-check the factorials: 7! = 5040, 3! = 6, 4! = 24.
        Yes, that is right. Alternatively, I can count directly: 7 * 6 * 5 / 6 = 35. Both methods agree, so the answer is 35.
        Now let me think about whether the order matters. The problem says "choose", which usually means combinations, so order
        does not matter. If it did matter, the answer would be 7 * 6 * 5 = 210. Let me re-read the question once more to be sure.
        It says "in how many ways can a committee of 3 be chosen from 7 people". A committee has no order, so 35 is correct.
        """;

    private const string NumberedList = """
        Here is the plan:
        1. Install the package.
        2. Configure the options.
        3. Run the tests.
        4. Check the output.
        5. Fix any failures.
        6. Commit the changes.
        7. Open a pull request.
        8. Wait for review.
        9. Merge.
        10. Celebrate.
        11. Repeat for the next feature.
        12. Done.
        | Step | Owner | Status |
        |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
        """;

    private const string Code = """
        public static int[] Table = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

        public static int Sum(int[] values)
        {
            int total = 0;
            for (int i = 0; i < values.Length; i++)
            {
                total += values[i];
            }
            return total;
        }

        public static int Max(int[] values)
        {
            int best = int.MinValue;
            for (int i = 0; i < values.Length; i++)
            {
                best = Math.Max(best, values[i]);
            }
            return best;
        }
        // ============================================================================================
        """;

    [Theory]
    [InlineData(Natural)]
    [InlineData(NumberedList)]
    [InlineData(Code)]
    [InlineData("ha ha ha ha ha ha ha ha ha, that is funny. ")]
    public void Natural_text_lists_and_code_are_not_loops(string text)
    {
        foreach (bool reasoning in new[] { true, false })
        {
            var guard = new LoopGuard();
            // Pseudo-tokens: words and separators, ids from a dictionary, as a tokenizer would give.
            foreach (var (id, piece) in Tokenize(text))
                Assert.Null(guard.Observe(id, piece, reasoning));
            var textOnly = new LoopGuard();
            foreach (var (_, piece) in Tokenize(text))
                Assert.Null(textOnly.Observe(piece, reasoning));
        }
    }

    [Fact]
    public void A_repeated_reasoning_paragraph_is_caught_by_the_token_detector()
    {
        string block = "Wait, let me reconsider the second step because the sum might be off by one. ";
        var guard = new LoopGuard();
        LoopDetection? hit = null;
        int fed = 0;
        foreach (var (id, piece) in Tokenize("Let me start. " + string.Concat(Enumerable.Repeat(block, 10))))
        {
            fed += piece.Length;
            hit ??= guard.Observe(id, piece, inReasoning: true);
            if (hit is not null)
                break;
        }
        Assert.NotNull(hit);
        Assert.Equal(LoopKind.Tokens, hit.Kind);
        Assert.True(hit.InReasoning);
        Assert.Equal(LoopAction.ForceEndThinking, hit.Action);
        Assert.Equal(3, hit.Repeats);
        // One period of the loop is a rotation of the block.
        Assert.Equal(block.Length, hit.Pattern.Length);
        Assert.Contains(hit.Pattern, block + block, StringComparison.Ordinal);
        // Caught within the third copy, long before the tenth.
        Assert.True(fed <= "Let me start. ".Length + 3 * block.Length, $"fed {fed}");
        var ev = hit.ToEvent();
        Assert.Equal(new LoopDetectedEvent(hit.Pattern, 3, true, "ForceEndThinking"), ev);
    }

    [Fact]
    public void A_loop_with_differently_split_text_is_caught_by_the_text_detector()
    {
        // Same characters, random chunk boundaries, no token ids: only the text detector can see it.
        string block = "I need to check the value of x again. ";
        string text = "Start. " + string.Concat(Enumerable.Repeat(block, 8));
        var rng = new Random(7);
        var guard = new LoopGuard(new LoopGuardOptions { Policy = LoopPolicy.Stop });
        LoopDetection? hit = null;
        for (int i = 0; i < text.Length && hit is null;)
        {
            int len = Math.Min(rng.Next(1, 6), text.Length - i);
            hit = guard.Observe(text.AsSpan(i, len), inReasoning: true);
            i += len;
        }
        Assert.NotNull(hit);
        Assert.Equal(LoopKind.Text, hit.Kind);
        Assert.Equal(block.Length, hit.Period);
        Assert.Equal(LoopAction.Stop, hit.Action);
        Assert.True(hit.Repeats >= 3);
        Assert.Contains(hit.Pattern, block + block, StringComparison.Ordinal);
    }

    [Fact]
    public void A_loop_in_the_answer_stops_even_with_the_force_end_policy()
    {
        var guard = new LoopGuard();
        LoopDetection? hit = null;
        foreach (var (id, piece) in Tokenize(string.Concat(Enumerable.Repeat("The answer is 42 and nothing else matters here. ", 6))))
            hit ??= guard.Observe(id, piece, inReasoning: false);
        Assert.NotNull(hit);
        Assert.False(hit.InReasoning);
        Assert.Equal(LoopAction.Stop, hit.Action);
    }

    [Fact]
    public void A_single_token_repeated_is_caught_once_the_run_is_long_enough()
    {
        var guard = new LoopGuard(new LoopGuardOptions { MaxBlockChars = 0 });
        int n = 0;
        LoopDetection? hit = null;
        while (hit is null && n < 1000)
        {
            hit = guard.Observe(17, "!", inReasoning: false);
            n++;
        }
        Assert.NotNull(hit);
        Assert.Equal(1, hit.Period);
        Assert.Equal(64, n); // MinRunTokens
        Assert.Equal("!", hit.Pattern);
    }

    [Fact]
    public void Switching_between_reasoning_and_answer_starts_over()
    {
        string block = "Let me verify this once more to be completely sure about it. ";
        var tokens = Tokenize(string.Concat(Enumerable.Repeat(block, 4))).ToList();
        var guard = new LoopGuard();
        // Two copies in the reasoning, two in the answer: never three on one side.
        int half = tokens.Count / 2;
        for (int i = 0; i < tokens.Count; i++)
            Assert.Null(guard.Observe(tokens[i].Id, tokens[i].Text, inReasoning: i < half));
    }

    [Fact]
    public void Long_outputs_stay_cheap()
    {
        // 20,000 tokens of non-repeating text: the guard must keep up (a quadratic check would hang this test).
        var guard = new LoopGuard();
        var rng = new Random(3);
        for (int i = 0; i < 20_000; i++)
        {
            int id = rng.Next(50_000);
            Assert.Null(guard.Observe(id, "w" + id.ToString(System.Globalization.CultureInfo.InvariantCulture) + " ", inReasoning: true));
        }
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoopGuard(new LoopGuardOptions { MinRepeats = 1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LoopGuard(new LoopGuardOptions { MaxPeriodTokens = -1 }));
    }

    /// <summary>Splits text roughly like the LFM2 pre-tokenizer (runs of letters/digits, runs of punctuation, single
    /// whitespace) and gives each distinct piece an id.</summary>
    private static IEnumerable<(int Id, string Text)> Tokenize(string text)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            if (char.IsLetterOrDigit(text[i]))
            {
                while (i < text.Length && char.IsLetterOrDigit(text[i]))
                    i++;
            }
            else if (char.IsWhiteSpace(text[i]))
            {
                i++;
            }
            else
            {
                while (i < text.Length && !char.IsLetterOrDigit(text[i]) && !char.IsWhiteSpace(text[i]) && i - start < 16)
                    i++;
            }
            string s = text[start..i];
            if (!ids.TryGetValue(s, out int id))
                ids[s] = id = ids.Count;
            yield return (id, s);
        }
    }
}
