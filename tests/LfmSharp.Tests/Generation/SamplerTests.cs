using LfmSharp.Generation;

namespace LfmSharp.Tests.Generation;

public class SamplerTests
{
    [Fact]
    public void ArgMax_prefers_the_lowest_id_on_ties_and_ignores_NaN()
    {
        Assert.Equal(1, Sampler.ArgMax([0f, 3f, 3f, float.NaN]));
        Assert.Equal(2, Sampler.ArgMax([float.NaN, -1f, 5f]));
        Assert.Equal(0, Sampler.ArgMax([float.NegativeInfinity, float.NegativeInfinity]));
    }

    [Fact]
    public void Greedy_sampler_returns_argmax_after_bias()
    {
        var s = new Sampler(SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [0] = 10f, [3] = float.NegativeInfinity } }, 4);
        Assert.Equal(0, s.Sample([1f, 2f, 3f, 9f], []));
    }

    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits()
    {
        float[] logits = [2f, -2f, 2f, 1f];
        var counts = new int[4];
        Sampler.ApplyPenalties(logits, [0, 1, 1], 2f, 0f, 0f, counts);
        Assert.Equal([1f, -4f, 2f, 1f], logits);
        Assert.All(counts, c => Assert.Equal(0, c));
    }

    [Fact]
    public void Frequency_and_presence_penalties_follow_the_OpenAI_rule()
    {
        float[] logits = [1f, 1f, 1f];
        Sampler.ApplyPenalties(logits, [0, 0, 0, 2], 1f, 0.5f, 0.25f, new int[3]);
        Assert.Equal(1f - 3 * 0.5f - 0.25f, logits[0], 6);
        Assert.Equal(1f, logits[1]);
        Assert.Equal(1f - 0.5f - 0.25f, logits[2], 6);
    }

    [Fact]
    public void Penalty_window_only_looks_at_the_last_N_tokens()
    {
        var s = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 100f, PenaltyLastN = 1 }, 3);
        // Token 0 is outside the window (only the last token, 2, is penalized), so 0 still wins.
        Assert.Equal(0, s.Sample([5f, 1f, 4.9f], [0, 2]));
        var all = new Sampler(SamplingOptions.Greedy with { RepetitionPenalty = 100f, PenaltyLastN = -1 }, 3);
        Assert.Equal(1, all.Sample([5f, 1f, 4.9f], [0, 2]));
    }

    [Fact]
    public void TopK_keeps_the_k_largest_sorted()
    {
        int[] ids = [0, 1, 2, 3, 4, 5];
        float[] v = [0.1f, 5f, 3f, 5f, -1f, 4f];
        int n = Sampler.TopK(ids, v, 6, 3, new float[6]);
        Assert.Equal(3, n);
        Assert.Equal([1, 3, 5], ids[..3]);
        Assert.Equal([5f, 5f, 4f], v[..3]);
    }

    [Fact]
    public void Softmax_sums_to_one_and_handles_minus_infinity()
    {
        float[] v = [1f, 2f, float.NegativeInfinity, 3f];
        Sampler.Softmax(v);
        Assert.Equal(1.0, v.Sum(), 5);
        Assert.Equal(0f, v[2]);
        Assert.True(v[3] > v[1] && v[1] > v[0]);
        Assert.Equal(Math.Exp(1) / (Math.Exp(1) + Math.Exp(2) + Math.Exp(3)), v[0], 5);
    }

    [Fact]
    public void TopP_keeps_the_smallest_prefix_reaching_p()
    {
        int[] ids = [0, 1, 2, 3];
        float[] p = [0.1f, 0.5f, 0.3f, 0.1f];
        int n = Sampler.TopP(ids, p, 4, 0.75f, sorted: false, new float[4]);
        Assert.Equal(2, n);
        Assert.Equal([1, 2], ids[..2]);
    }

    [Fact]
    public void MinP_drops_tokens_below_the_scaled_maximum()
    {
        int[] ids = [0, 1, 2, 3];
        float[] p = [0.5f, 0.3f, 0.04f, 0.16f];
        int n = Sampler.MinP(ids, p, 4, 0.1f);
        Assert.Equal(3, n);
        Assert.Equal([0, 1, 3], ids[..3]);
    }

    [Fact]
    public void Draw_follows_the_distribution()
    {
        var rng = new Rng(7);
        int[] hits = new int[3];
        for (int i = 0; i < 20000; i++)
            hits[Sampler.Draw([0, 1, 2], [0.2f, 0.5f, 0.3f], ref rng)]++;
        Assert.InRange(hits[0] / 20000.0, 0.18, 0.22);
        Assert.InRange(hits[1] / 20000.0, 0.48, 0.52);
        Assert.InRange(hits[2] / 20000.0, 0.28, 0.32);
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_seed_dependent()
    {
        var logits = Enumerable.Range(0, 256).Select(i => MathF.Sin(i * 0.37f) * 3f).ToArray();
        int[] Run(ulong seed)
        {
            var s = new Sampler(new SamplingOptions { Temperature = 1.2f, TopK = 40, TopP = 0.95f, MinP = 0.01f, Seed = seed }, 256);
            var outIds = new int[64];
            for (int i = 0; i < outIds.Length; i++)
                outIds[i] = s.Sample((float[])logits.Clone(), outIds.AsSpan(0, i));
            return outIds;
        }
        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void Low_temperature_with_top_k_one_is_greedy()
    {
        var s = new Sampler(new SamplingOptions { Temperature = 1f, TopK = 1, Seed = 1 }, 5);
        for (int i = 0; i < 20; i++)
            Assert.Equal(3, s.Sample([0f, 1f, 2f, 3f, 2.5f], []));
    }

    [Fact]
    public void Model_defaults_follow_the_model_card()
    {
        Assert.Same(SamplingOptions.Lfm25Thinking, SamplingOptions.ForModel("LFM2.5-1.2B-Thinking", null));
        Assert.Same(SamplingOptions.Lfm25Thinking, SamplingOptions.ForModel("LFM2.5 1.2B", "Thinking"));
        Assert.Same(SamplingOptions.Lfm25Instruct, SamplingOptions.ForModel("LFM2.5-1.2B-Instruct", null));
        Assert.Same(SamplingOptions.Neutral, SamplingOptions.ForModel("lfm2-tiny", null));
        Assert.Equal(0.05f, SamplingOptions.Lfm25Thinking.Temperature);
        Assert.Equal(50, SamplingOptions.Lfm25Thinking.TopK);
        Assert.Equal(1.05f, SamplingOptions.Lfm25Thinking.RepetitionPenalty);
    }

    [Fact]
    public void Invalid_options_are_rejected_by_name()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(new SamplingOptions { TopP = 0f }, 4));
        Assert.Equal("TopP", ex.ParamName);
        Assert.Throws<ArgumentException>(() => new Sampler(SamplingOptions.Greedy, 4).Sample(new float[3], []));
    }
}
