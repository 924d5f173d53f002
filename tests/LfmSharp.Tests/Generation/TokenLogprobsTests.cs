using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Generation;

/// <summary>The log-softmax and top-k behind <c>logprobs</c>, and where the generator emits them.</summary>
public sealed class TokenLogprobsTests
{
    [Fact]
    public void Compute_is_a_log_softmax_with_the_top_alternatives_in_order()
    {
        float[] logits = [1f, 3f, 2f, 3f, float.NegativeInfinity, 0f];
        var lp = TokenLogprobs.Compute(logits, 2, 3);
        double z = Math.Log(Math.Exp(1) + Math.Exp(3) + Math.Exp(2) + Math.Exp(3) + Math.Exp(0));
        Assert.Equal(2, lp.TokenId);
        Assert.Equal(2 - z, lp.Logprob, 5);
        // Descending, ties to the lower id; the masked token never appears.
        Assert.Equal([1, 3, 2], lp.Top.Select(t => t.TokenId));
        Assert.Equal(3 - z, lp.Top[0].Logprob, 5);
        Assert.Equal(1.0, lp.Top.Sum(t => Math.Exp(t.Logprob)) + Math.Exp(1 - z) + Math.Exp(0 - z), 5);
        Assert.Empty(TokenLogprobs.Compute(logits, 0, 0).Top);
        // Fewer allowed tokens than asked for: the banned one is left out, and a banned chosen token gets the floor.
        var banned = TokenLogprobs.Compute(logits, 4, 20);
        Assert.Equal(5, banned.Top.Count);
        Assert.Equal(TokenLogprobs.Floor, banned.Logprob);
        Assert.Throws<ArgumentOutOfRangeException>(() => TokenLogprobs.Compute(logits, 0, 21));
    }

    [Fact]
    public void Generator_emits_one_entry_before_each_tokens_text_only_when_asked()
    {
        using var model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1 });
        int[] prompt = model.Tokenizer.EncodePrompt("Hello");
        var options = new GenerationOptions { MaxTokens = 5, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false };
        var plain = new Generator(model).Generate(model.CreateState(256), prompt, options).ToList();
        Assert.DoesNotContain(plain, e => e is TokenLogprobs);

        var events = new Generator(model).Generate(model.CreateState(256), prompt, options with { Logprobs = 2 }).ToList();
        var entries = events.OfType<TokenLogprobs>().ToList();
        Assert.Equal(5, entries.Count);
        Assert.All(entries, e => Assert.Equal(e.TokenId, e.Top[0].TokenId));   // greedy: the chosen token is the top one
        // The same text as without logprobs, and every entry precedes its token's text.
        Assert.Equal(string.Concat(plain.OfType<TextDelta>().Select(t => t.Text)), string.Concat(events.OfType<TextDelta>().Select(t => t.Text)));
        Assert.IsType<TokenLogprobs>(events.First(e => e is TokenLogprobs or TextDelta));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Generator(model).Generate(model.CreateState(256), prompt, options with { Logprobs = 21 }));
    }
}
