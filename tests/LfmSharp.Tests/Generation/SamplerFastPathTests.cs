using LfmSharp.Generation;

namespace LfmSharp.Tests.Generation;

/// <summary>
/// The sampler's fast paths (top-p by growing selection instead of a vocabulary sort) choose exactly what the
/// reference pipeline of sort-based stages chooses, draw for draw with the same seed, on vocabulary-sized random logits.
/// </summary>
public class SamplerFastPathTests
{
    private const int Vocab = 65536;

    /// <summary>Gaussian logits of spread <paramref name="sigma"/> (small: flat, the fallback; large: peaky, the
    /// selection), with a few exact ties so the id order of equal values is exercised.</summary>
    private static float[] Logits(int seed, float sigma)
    {
        var r = new Random(seed);
        var l = new float[Vocab];
        for (int i = 0; i < Vocab; i++)
            l[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble())) * sigma;
        for (int i = 0; i < 64; i++)
            l[r.Next(Vocab)] = l[r.Next(Vocab)];
        return l;
    }

    /// <summary>The documented pipeline, composed from the static stages with the sort-based <see cref="Sampler.TopP"/>.</summary>
    private static int Reference(SamplingOptions o, float[] logits, ReadOnlySpan<int> history, ref Rng rng)
    {
        if (o.LogitBias is { Count: > 0 })
            Sampler.ApplyLogitBias(logits, o.LogitBias);
        if (o.PenaltyLastN != 0)
        {
            var window = o.PenaltyLastN < 0 || o.PenaltyLastN >= history.Length ? history : history[^o.PenaltyLastN..];
            Sampler.ApplyPenalties(logits, window, o.RepetitionPenalty, o.FrequencyPenalty, o.PresencePenalty, new int[Vocab]);
        }
        if (o.Temperature <= 0f)
            return Sampler.ArgMax(logits);
        int n = Vocab;
        var ids = new int[n];
        var values = (float[])logits.Clone();
        for (int i = 0; i < n; i++)
            ids[i] = i;
        bool sorted = false;
        if (o.TopK > 0 && o.TopK < n)
        {
            n = Sampler.TopK(ids, values, n, o.TopK, new float[Vocab]);
            sorted = true;
        }
        for (int i = 0; i < n; i++)
            values[i] *= 1f / o.Temperature;
        Sampler.Softmax(values.AsSpan(0, n));
        if (o.TopP < 1f)
            n = Sampler.TopP(ids, values, n, o.TopP, sorted, new float[Vocab]);
        if (o.MinP > 0f)
            n = Sampler.MinP(ids, values, n, o.MinP);
        return Sampler.Draw(ids.AsSpan(0, n), values.AsSpan(0, n), ref rng);
    }

    public static TheoryData<string, float> Cases => new()
    {
        { "greedy", 1f }, { "greedy", 6f },
        { "top_p", 0.5f }, { "top_p", 2f }, { "top_p", 4f }, { "top_p", 8f },
        { "top_k+top_p", 3f }, { "top_p+min_p", 4f }, { "penalties+top_p", 5f }, { "temperature", 2f },
    };

    private static SamplingOptions Options(string name, ulong seed) => name switch
    {
        "greedy" => new SamplingOptions { Temperature = 0f, Seed = seed },
        "top_p" => new SamplingOptions { Temperature = 1f, TopP = 0.9f, PenaltyLastN = 0, Seed = seed },
        "top_k+top_p" => new SamplingOptions { Temperature = 0.7f, TopK = 50, TopP = 0.9f, Seed = seed },
        "top_p+min_p" => new SamplingOptions { Temperature = 0.8f, TopP = 0.95f, MinP = 0.05f, Seed = seed },
        "penalties+top_p" => new SamplingOptions { Temperature = 1f, TopP = 0.8f, RepetitionPenalty = 1.3f, FrequencyPenalty = 0.5f, PresencePenalty = 0.4f, Seed = seed },
        _ => new SamplingOptions { Temperature = 1.1f, Seed = seed },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Sample_chooses_what_the_sort_based_pipeline_chooses(string name, float sigma)
    {
        const ulong seed = 1234;
        var o = Options(name, seed);
        var sampler = new Sampler(o, Vocab);
        var rng = new Rng(seed);
        var history = new List<int>();
        for (int step = 0; step < 12; step++)
        {
            var logits = Logits(step * 31 + (int)(sigma * 10), sigma);
            int expected = Reference(o, (float[])logits.Clone(), history.ToArray(), ref rng);
            int actual = sampler.Sample(logits, history.ToArray());
            Assert.True(expected == actual, $"{name}, sigma {sigma}, step {step}: expected {expected}, got {actual}");
            history.Add(actual);
        }
    }

    [Theory]
    [InlineData(0.5f, 0.9f)]
    [InlineData(3f, 0.9f)]
    [InlineData(6f, 0.5f)]
    [InlineData(10f, 0.99f)]
    public void TopP_by_selection_keeps_the_same_prefix_in_the_same_order(float sigma, float p)
    {
        var probs = Logits((int)(sigma * 100), sigma);
        Sampler.Softmax(probs);
        var ids = new int[Vocab];
        var refIds = new int[Vocab];
        for (int i = 0; i < Vocab; i++)
            ids[i] = refIds[i] = i;
        var refProbs = (float[])probs.Clone();
        int expected = Sampler.TopP(refIds, refProbs, Vocab, p, sorted: false, new float[Vocab]);
        int actual = Sampler.TopPBySelection(ids, probs, Vocab, p, new float[Vocab], new float[Vocab]);
        Assert.Equal(expected, actual);
        Assert.Equal(refIds.AsSpan(0, expected).ToArray(), ids.AsSpan(0, actual).ToArray());
        Assert.Equal(refProbs.AsSpan(0, expected).ToArray(), probs.AsSpan(0, actual).ToArray());
    }
}
