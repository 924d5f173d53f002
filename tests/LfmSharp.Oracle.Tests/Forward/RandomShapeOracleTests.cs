using System.Globalization;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Forward;

/// <summary>
/// Differential test of the LFM2 forward pass against llama.cpp on synthetic models of random shapes, in every file
/// type the synthetic writer produces. Each case draws a shape from its seed (layer pattern, heads, kv heads, head
/// dim, hidden and ffn sizes, rope base, vocabulary), writes the model, runs one random token sequence through
/// llama.cpp and through LfmSharp, and compares the logits of every position.
///
/// <para>What must agree: the argmax and the top-5 set at every position. A disagreement is accepted only where
/// llama.cpp itself cannot tell the tokens apart within the type's tolerance: our pick (or every token in the
/// symmetric difference of the top-5 sets) must lie within <c>tol</c> of llama.cpp's top-1 (5th) logit, which can
/// only happen where llama.cpp's top-1/top-2 (top-5/top-6) margin is below <c>tol</c>.</para>
///
/// <para>Tolerances (README §5 of the fixtures measured them on the fixture models; the random networks amplify
/// rounding 10–20×): F32 weights 1e-4 (float32 summation order alone gives ~2e-6; measured here ≤ 3e-6); F16 2e-2
/// (llama.cpp rounds the activations to F16 before each such matmul, and so do we, but a different summation order
/// can put one activation on the other side of a rounding boundary: measured ≤ 3.3e-3); BF16 5e-2 (the same with
/// 8 instead of 11 significant bits, so flips cost ~8× more: measured ≤ 1.8e-2); quantized 0.3 (activations
/// quantized to Q8_0/Q8_1/Q8_K; we emulate that and often match to ~1e-6, until an activation lands on a rounding
/// boundary and every later logit shifts by 0.02–0.25: measured ≤ 0.11 here, ≤ 0.15 on the fixtures). On top, max
/// |Δlogit| over all positions must stay below a bound (f32 1e-3, f16 0.05, bf16 0.1, quantized 0.35, the fixture
/// README's atol for quantized models): an architecture bug moves logits by whole units (zeroing the conv blocks of
/// tiny moves them by 3.4), and even halving the rope base moves them by ~0.6 (see
/// <see cref="ComparisonCatchesAWrongRopeBase"/>).</para>
/// </summary>
public sealed class RandomShapeOracleTests(ITestOutputHelper output)
{
    private const int CasesPerType = 3;

    /// <summary>(file type, case index): the shape and tokens of a case are a pure function of both.</summary>
    public static TheoryData<SyntheticFileType, int> Cases()
    {
        var data = new TheoryData<SyntheticFileType, int>();
        foreach (var t in SyntheticFileTypes.All.Where(t => t.IsWritable()))
            for (int k = 0; k < CasesPerType; k++)
                data.Add(t, k);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void LogitsAgreeWithLlamaCpp(SyntheticFileType fileType, int caseIndex)
    {
        var c = OracleCase.Create(fileType, caseIndex);
        string dir = TestData.NewTempDir();
        string path = Path.Combine(dir, "m.gguf");
        try
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            SyntheticModel.Write(path, new SyntheticModelOptions { Shape = c.Shape, FileType = fileType, Seed = c.WeightSeed, MaxDegreeOfParallelism = 2 });
            output.WriteLine($"{fileType} case {caseIndex}: {c.Shape.Describe()} head_dim={c.Shape.HeadDim} tokens={c.Ids.Length}");
            output.WriteLine($"  tensor types: {TypeSummary(path)}; written in {sw.ElapsedMilliseconds} ms");
            sw.Restart();

            // llama.cpp must load and evaluate every type the writer produces. It aborts on an all-conv or
            // all-attention model, so those get an equivalent copy with one zero layer of the other kind.
            string oraclePath = path;
            if (c.Shape.AttentionLayers.Count == 0 || c.Shape.AttentionLayers.Count == c.Shape.BlockCount)
            {
                oraclePath = Path.Combine(dir, "oracle.gguf");
                IdentityLayer.AppendMissingKind(path, oraclePath);
                output.WriteLine($"  llama.cpp runs it with an appended zero {(c.Shape.AttentionLayers.Count == 0 ? "attention" : "conv")} layer (see IdentityLayer)");
            }
            float[] theirs = LlamaCpp.Logits(oraclePath, c.Ids, out int vocab);
            Assert.Equal(c.Shape.VocabSize, vocab);
            long llamaMs = sw.ElapsedMilliseconds;
            sw.Restart();
            Assert.True(Array.TrueForAll(theirs, float.IsFinite), "llama.cpp produced a non-finite logit");

            float[] ours = new float[c.Ids.Length * vocab]; // [n_tokens, n_vocab]
            using (var model = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2 }))
            {
                // Every third case feeds the sequence in random chunks (single tokens included), so the conv
                // state and KV cache carried between calls are checked against llama.cpp's one-batch pass too.
                var state = model.CreateState(c.Ids.Length, KvCacheType.F32);
                foreach (var (start, length) in c.Chunks)
                    model.Forward(c.Ids.AsSpan(start, length), state, ours.AsSpan(start * vocab, length * vocab), LogitPositions.All);
            }
            if (c.Chunks.Count > 1)
                output.WriteLine($"  LfmSharp fed in chunks of {string.Join(",", c.Chunks.Select(x => x.Length))}");

            output.WriteLine($"  llama.cpp {llamaMs} ms, LfmSharp {sw.ElapsedMilliseconds} ms");
            Tolerance tol = Tolerance.For(fileType);
            var report = LogitComparison.Compare(ours, theirs, c.Ids.Length, vocab, tol.Rank);
            output.WriteLine($"  max |Δlogit| = {report.MaxAbsDiff:E2} (at position {report.MaxAbsDiffPosition}, max |logit| {report.MaxAbsLogit:F2}); " +
                $"argmax agree {c.Ids.Length - report.ArgmaxDisagreements}/{c.Ids.Length}, top-5 sets agree {c.Ids.Length - report.Top5Disagreements}/{c.Ids.Length} (rank tolerance {tol.Rank})");
            foreach (string note in report.Notes)
                output.WriteLine("  " + note);

            Assert.True(report.Failures.Count == 0, $"{fileType} case {caseIndex} ({c.Shape.Describe()}):\n" + string.Join("\n", report.Failures));
            Assert.True(report.MaxAbsDiff <= tol.MaxAbsDiff,
                $"{fileType} case {caseIndex} ({c.Shape.Describe()}): max |Δlogit| {report.MaxAbsDiff:E2} at position {report.MaxAbsDiffPosition} exceeds {tol.MaxAbsDiff}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The shape generator honours what the cases promise (so the theory covers the edge cases it claims to).</summary>
    [Fact]
    public void CasesCoverTheEdgeShapes()
    {
        var all = SyntheticFileTypes.All.Where(t => t.IsWritable()).SelectMany(t => Enumerable.Range(0, CasesPerType).Select(k => (Type: t, Case: OracleCase.Create(t, k)))).ToList();
        Assert.Contains(all, x => x.Case.Shape.AttentionLayers.Count == 0);                                   // all conv
        Assert.Contains(all, x => x.Case.Shape.AttentionLayers.Count == x.Case.Shape.BlockCount);            // all attention
        Assert.Contains(all, x => x.Case.Shape.IsAttentionLayer(0) && x.Case.Shape.AttentionLayers.Count < x.Case.Shape.BlockCount);
        Assert.Contains(all, x => x.Case.Shape.HeadDim == 32);
        Assert.Contains(all, x => x.Case.Shape.HeadDim == 64);
        Assert.Contains(all, x => x.Case.Shape.KvHeadCount == x.Case.Shape.HeadCount);                      // MHA
        Assert.Contains(all, x => x.Case.Shape.KvHeadCount < x.Case.Shape.HeadCount);                       // GQA
        Assert.Contains(all, x => x.Case.Shape.EmbeddingLength % 256 != 0);
        Assert.Contains(all, x => x.Case.Shape.VocabSize == 512);
        Assert.Contains(all, x => x.Case.Shape.VocabSize == 1024);
        // K-quants must really occur (hidden a multiple of 256) for every K-quant type, and the fallbacks too.
        foreach (var t in new[] { SyntheticFileType.Q4_K_M, SyntheticFileType.Q5_K_M, SyntheticFileType.Q6_K })
        {
            Assert.Contains(all, x => x.Type == t && x.Case.Shape.EmbeddingLength % 256 == 0);
            Assert.Contains(all, x => x.Type == t && x.Case.Shape.EmbeddingLength % 256 != 0);
        }
        foreach (var x in all)
        {
            x.Case.Shape.Validate();
            Assert.InRange(x.Case.Ids.Length, 40, 100);
            Assert.All(x.Case.Ids, id => Assert.InRange(id, 0, x.Case.Shape.VocabSize - 1));
        }
    }

    /// <summary>
    /// Negative control: the comparison must catch a subtle bug. LfmSharp evaluates a copy of the model whose only
    /// change is the rope base (1e6 → 5e5, which moves attention but leaves position 0 and every conv layer alone);
    /// against llama.cpp on the original, the rank checks must report failures even at the loose quantized tolerance.
    /// </summary>
    [Theory]
    [InlineData(SyntheticFileType.F32)]
    [InlineData(SyntheticFileType.Q4_K_M)]
    public void ComparisonCatchesAWrongRopeBase(SyntheticFileType fileType)
    {
        var shape = new ModelShape
        {
            Name = "oracle", EmbeddingLength = 256, FeedForwardLength = 512, HeadCount = 4, KvHeadCount = 2, BlockCount = 4,
            AttentionLayers = [1, 3], VocabSize = 512, ContextLength = 2048, RopeFreqBase = 1_000_000f,
        };
        string dir = TestData.NewTempDir();
        try
        {
            string path = Path.Combine(dir, "m.gguf"), wrong = Path.Combine(dir, "wrong-rope.gguf");
            SyntheticModel.Write(path, new SyntheticModelOptions { Shape = shape, FileType = fileType, Seed = 5, MaxDegreeOfParallelism = 2 });
            using (var f = GgufFile.Open(path))
            {
                var w = new GgufWriter();
                foreach (var e in f.Metadata)
                    w.Add(e.Key, e.Key == "lfm2.rope.freq_base" ? GgufValue.From(500_000f) : e.Value);
                foreach (var t in f.Tensors)
                    w.AddTensor(t.Name, t.Type, t.Dimensions, f.GetTensorData(t).ToArray());
                w.WriteTo(wrong);
            }
            int[] ids = Enumerable.Range(0, 64).Select(i => (i * 131 + 7) % 512).ToArray();
            float[] theirs = LlamaCpp.Logits(path, ids, out int vocab);
            float[] ours = new float[ids.Length * vocab];
            using (var model = LanguageModel.Load(wrong, new ModelLoadOptions { Threads = 2 }))
                model.Forward(ids, model.CreateState(ids.Length, KvCacheType.F32), ours, LogitPositions.All);

            var tol = Tolerance.For(fileType);
            var report = LogitComparison.Compare(ours, theirs, ids.Length, vocab, tol.Rank);
            output.WriteLine($"{fileType} with rope base 5e5 instead of 1e6: max |Δlogit| {report.MaxAbsDiff:E2}, {report.Failures.Count} rank failures " +
                $"(argmax disagree {report.ArgmaxDisagreements}/{ids.Length}, top-5 {report.Top5Disagreements}/{ids.Length})");
            // LogitsAgreeWithLlamaCpp would fail. (The rank checks alone catch it at f32, 17 positions here, but barely
            // at the quantized tolerance, 1 position: the max |Δ| bound is what makes the quantized cases sensitive.)
            Assert.True(report.Failures.Count > 0 || report.MaxAbsDiff > tol.MaxAbsDiff,
                $"the comparison missed the bug: {report.Failures.Count} rank failures, max |Δlogit| {report.MaxAbsDiff:E2} (bound {tol.MaxAbsDiff})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string TypeSummary(string path)
    {
        using var f = GgufFile.Open(path);
        return string.Join(", ", f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.Name(g.Key)} x{g.Count()}"));
    }
}

/// <summary>Per-type tolerances; see <see cref="RandomShapeOracleTests"/> for where they come from.</summary>
internal readonly record struct Tolerance(double Rank, double MaxAbsDiff)
{
    public static Tolerance For(SyntheticFileType t) => t switch
    {
        SyntheticFileType.F32 => new(1e-4, 1e-3),
        SyntheticFileType.F16 => new(2e-2, 0.05),
        SyntheticFileType.BF16 => new(5e-2, 0.1),
        _ => new(0.3, 0.35),
    };
}

/// <summary>One oracle case: a random LFM2 shape, a weight seed and a token sequence, all derived from (type, index).</summary>
internal sealed record OracleCase(ModelShape Shape, ulong WeightSeed, int[] Ids, IReadOnlyList<(int Start, int Length)> Chunks)
{
    public static OracleCase Create(SyntheticFileType fileType, int caseIndex)
    {
        int global = (int)fileType * 16 + caseIndex;
        var rng = new Random(9000 + global);
        bool kQuant = GgmlTypes.BlockSize(fileType.DefaultTensorType()) == 256;

        // Head dim 32 or 64; the hidden size is heads × head dim (at most 256, to keep the suite fast). K-quant cases
        // alternate between hidden 256 (K-quants really used) and a size that is not a multiple of 256
        // (llama-quantize's fallbacks to Q5_0/Q5_1/Q8_0).
        int headDim, heads;
        if (kQuant && caseIndex % 2 == 0)
            (headDim, heads) = Pick(rng, [(32, 8), (64, 4)]);
        else
        {
            do
            {
                headDim = rng.Next(2) == 0 ? 32 : 64;
                heads = Pick(rng, [1, 2, 3, 4, 5, 6, 8]);
            }
            while (heads * headDim > 256 || (kQuant && heads * headDim % 256 == 0));
        }
        int hidden = heads * headDim;
        int[] kvChoices = Enumerable.Range(1, heads).Where(d => heads % d == 0).ToArray();
        int kv = Pick(rng, kvChoices);

        // ffn: a multiple of 32 in [hidden, 3·hidden] (at most 768); for K-quants at hidden 256 sometimes a multiple
        // of 256, so that ffn_down (row length ffn) takes K-quants too.
        int ffn = kQuant && hidden % 256 == 0 && rng.Next(2) == 0
            ? 256 * rng.Next(1, 3)
            : 32 * rng.Next(hidden / 32, Math.Min(3 * hidden, 768) / 32 + 1);

        // Layer pattern by case kind, so every file type meets different ones over its cases:
        // 0 attention at layer 0 then mixed, 1 all short-conv, 2 all attention, 3/4 random mixed.
        int layers = rng.Next(1, 7);
        int kind = ((int)fileType + caseIndex) % 5;
        if (kind is 0 or 3 or 4)
            layers = Math.Max(layers, 2);
        var isAttn = new bool[layers];
        for (int i = 0; i < layers; i++)
            isAttn[i] = kind switch
            {
                0 => i == 0 || rng.Next(3) == 0,
                1 => false,
                2 => true,
                _ => rng.Next(2) == 0,
            };
        if ((kind is 0 or 3 or 4) && isAttn.All(a => a))
            isAttn[layers - 1] = false;
        if ((kind is 3 or 4) && isAttn.All(a => !a))
            isAttn[rng.Next(layers)] = true;
        var attn = Enumerable.Range(0, layers).Where(i => isAttn[i]).ToList();

        float rope = Pick(rng, [10_000f, 500_000f, 1_000_000f, (float)Math.Round(Math.Exp(rng.NextDouble() * Math.Log(1e6 / 100)) * 100)]);
        int vocab = rng.Next(2) == 0 ? 512 : 1024;
        if (caseIndex == 0 && fileType == SyntheticFileType.F32)
            vocab = 512;
        if (caseIndex == 1 && fileType == SyntheticFileType.F32)
            vocab = 1024;

        var shape = new ModelShape
        {
            Name = "oracle",
            GeneralName = $"lfm2-oracle-{fileType.Name()}-{caseIndex}",
            EmbeddingLength = hidden,
            FeedForwardLength = ffn,
            HeadCount = heads,
            KvHeadCount = kv,
            BlockCount = layers,
            AttentionLayers = attn,
            VocabSize = vocab,
            ContextLength = 2048,
            RopeFreqBase = rope,
            ConvCache = 3,
        };

        int n = rng.Next(40, 101);
        var ids = new int[n];
        ids[0] = 1; // BOS, as a real prompt starts
        for (int i = 1; i < n; i++)
            ids[i] = rng.Next(vocab); // hits specials and [PAD] ids too, like the fixtures' random300
        var chunks = new List<(int, int)>();
        for (int start = 0; start < n;)
        {
            int len = caseIndex == 2 ? Math.Min(n - start, Pick(rng, [1, 1, 2, 3, 7, 16, 33])) : n;
            chunks.Add((start, len));
            start += len;
        }
        return new OracleCase(shape, (ulong)(100 + global), ids, chunks);
    }

    private static T Pick<T>(Random rng, T[] choices) => choices[rng.Next(choices.Length)];

    public override string ToString() => Shape.Describe();
}

/// <summary>Rank agreement and max |Δ| between two [n, vocab] logit matrices, llama.cpp's being the reference.</summary>
internal sealed class LogitComparison
{
    public double MaxAbsDiff { get; private set; }
    public int MaxAbsDiffPosition { get; private set; }
    public double MaxAbsLogit { get; private set; }
    public int ArgmaxDisagreements { get; private set; }
    public int Top5Disagreements { get; private set; }
    public List<string> Failures { get; } = [];
    public List<string> Notes { get; } = [];

    public static LogitComparison Compare(ReadOnlySpan<float> ours, ReadOnlySpan<float> theirs, int n, int vocab, double tol)
    {
        var r = new LogitComparison();
        for (int p = 0; p < n; p++)
        {
            var o = ours.Slice(p * vocab, vocab);
            var t = theirs.Slice(p * vocab, vocab);
            for (int i = 0; i < vocab; i++)
            {
                double d = Math.Abs(o[i] - t[i]);
                if (!(d <= r.MaxAbsDiff)) // NaN in ours counts as the largest difference
                {
                    r.MaxAbsDiff = float.IsNaN(o[i]) ? double.PositiveInfinity : d;
                    r.MaxAbsDiffPosition = p;
                }
                r.MaxAbsLogit = Math.Max(r.MaxAbsLogit, Math.Abs(t[i]));
            }

            int[] ot = TopK(o, 5), tt = TopK(t, 6);
            if (ot[0] != tt[0])
            {
                r.ArgmaxDisagreements++;
                double gap = t[tt[0]] - t[ot[0]]; // how much worse llama.cpp scores our pick than its own
                string msg = string.Create(CultureInfo.InvariantCulture,
                    $"position {p}: argmax ours {ot[0]}, llama.cpp {tt[0]}; llama.cpp scores ours {gap:G3} lower (top-1/top-2 margin {t[tt[0]] - t[tt[1]]:G3})");
                (gap < tol ? r.Notes : r.Failures).Add(msg);
            }

            var oSet = ot.ToHashSet();
            var tSet = tt.Take(5).ToHashSet();
            if (!oSet.SetEquals(tSet))
            {
                r.Top5Disagreements++;
                float fifth = t[tt[4]];
                // Every token in only one of the sets must sit within tol of llama.cpp's 5th logit.
                double worst = 0;
                foreach (int i in oSet.Union(tSet).Except(oSet.Intersect(tSet)))
                    worst = Math.Max(worst, Math.Abs(t[i] - fifth));
                string msg = string.Create(CultureInfo.InvariantCulture,
                    $"position {p}: top-5 ours [{string.Join(",", ot)}], llama.cpp [{string.Join(",", tt.Take(5))}]; worst boundary gap {worst:G3} (top-5/top-6 margin {fifth - t[tt[5]]:G3})");
                (worst < tol ? r.Notes : r.Failures).Add(msg);
            }
        }
        return r;
    }

    /// <summary>Indices of the k largest values, largest first (ties to the lower index, like llama.cpp's greedy).</summary>
    private static int[] TopK(ReadOnlySpan<float> v, int k)
    {
        var idx = new int[k];
        var val = new float[k];
        int filled = 0;
        for (int i = 0; i < v.Length; i++)
        {
            float x = float.IsNaN(v[i]) ? float.NegativeInfinity : v[i];
            if (filled == k && x <= val[k - 1])
                continue;
            int j = filled < k ? filled++ : k - 1;
            while (j > 0 && val[j - 1] < x)
            {
                val[j] = val[j - 1];
                idx[j] = idx[j - 1];
                j--;
            }
            val[j] = x;
            idx[j] = i;
        }
        return idx;
    }
}
