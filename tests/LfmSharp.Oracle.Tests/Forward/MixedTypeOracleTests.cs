using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;
using LLama.Native;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Forward;

/// <summary>
/// Files whose tensors do not share one type, against llama.cpp: per-tensor mixes written by the synthetic writer
/// (<c>--tensor-type</c> overrides, an untied output head) and files quantized by llama.cpp's own quantizer to each
/// mix name. On 3 prompts each, the argmax must equal llama.cpp's wherever llama.cpp's top-1 margin exceeds 0.35 (the
/// quantized tolerance of the fixtures), and no logit may be off by more than 1 (a wrong kernel moves them by units).
/// </summary>
public sealed class MixedTypeOracleTests(ITestOutputHelper output)
{
    private const double Margin = 0.35;
    private const double MaxAbsDiff = 1.0;

    /// <summary>Hidden 256 and ffn 512 so every K-quant applies; layer 0 is a conv layer as in the real models.</summary>
    private static readonly ModelShape Shape = new()
    {
        Name = "oracle-mix", GeneralName = "lfm2-oracle-mix", EmbeddingLength = 256, FeedForwardLength = 512,
        HeadCount = 4, KvHeadCount = 2, BlockCount = 6, AttentionLayers = [1, 3, 5], VocabSize = 512, ContextLength = 2048,
    };

    public static TheoryData<string, SyntheticFileType, string[], bool> Mixes() => new()
    {
        // The file of the issue: ffn_gate Q8_0 and ffn_up Q4_1 (the fused gate/up path refused it).
        { "gate Q8_0, up Q4_1", SyntheticFileType.Q8_0, ["ffn_up=q4_1"], false },
        { "gate, up, down of three types", SyntheticFileType.Q4_K_M, ["ffn_gate=q4_0", "ffn_up=q6_k", "ffn_down=q3_k"], false },
        { "q, k, v, attn_output, output of five types", SyntheticFileType.Q8_0,
            ["attn_q=q4_k", "attn_k=q5_0", "attn_v=q2_k", "attn_output=q4_1", "^output\\.weight=q5_k"], true },
        { "untied output of another type than token_embd", SyntheticFileType.Q4_0, ["token_embd=q8_0", "^output\\.weight=q6_k"], true },
        { "Q3_K_M mix with untied head", SyntheticFileType.Q3_K_M, [], true },
        { "IQ4_NL mix (our quantizer)", SyntheticFileType.IQ4_NL, [], false },
        { "IQ4_XS mix with untied head (our quantizer)", SyntheticFileType.IQ4_XS, [], true },
    };

    [Theory]
    [MemberData(nameof(Mixes))]
    public void SynthesizedMixAgreesWithLlamaCpp(string name, SyntheticFileType fileType, string[] overrides, bool untied)
    {
        string dir = TestData.NewTempDir();
        try
        {
            string path = Path.Combine(dir, "mix.gguf");
            SyntheticModel.Write(path, new SyntheticModelOptions
            {
                Shape = Shape, FileType = fileType, Seed = 31, MaxDegreeOfParallelism = 2,
                TensorTypes = overrides.Select(TensorTypeOverride.Parse).ToArray(), UntiedOutput = untied,
            });
            output.WriteLine($"{name}: {TypeSummary(path)}");
            Compare(path);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    public static TheoryData<LLamaFtype> LlamaQuantizeMixes() => new()
    {
        LLamaFtype.MOSTLY_Q2_K, LLamaFtype.MOSTLY_Q3_K_S, LLamaFtype.MOSTLY_Q3_K_M, LLamaFtype.MOSTLY_Q3_K_L,
        LLamaFtype.MOSTLY_Q4_K_S, LLamaFtype.MOSTLY_Q5_K_S, LLamaFtype.MOSTLY_IQ4_NL, LLamaFtype.MOSTLY_IQ4_XS,
    };

    /// <summary>
    /// llama.cpp's quantizer (no imatrix, as llama-quantize runs by default) turns the F32 model into each mix; both
    /// engines then evaluate llama.cpp's file. Mixes whose main type this build cannot compute report so and stop.
    /// </summary>
    [Theory]
    [MemberData(nameof(LlamaQuantizeMixes))]
    public void LlamaQuantizedMixAgreesWithLlamaCpp(LLamaFtype ftype)
    {
        string dir = TestData.NewTempDir();
        try
        {
            string src = Path.Combine(dir, "f32.gguf"), dst = Path.Combine(dir, "q.gguf");
            SyntheticModel.Write(src, new SyntheticModelOptions { Shape = Shape, FileType = SyntheticFileType.F32, Seed = 32, MaxDegreeOfParallelism = 2 });
            LlamaCpp.Quantize(src, dst, ftype);
            output.WriteLine($"{ftype}: {TypeSummary(dst)}");
            using (var f = GgufFile.Open(dst))
            {
                var missing = f.Tensors.Where(t => t.Dimensions.Length == 2 && !GgmlTypes.IsComputeSupported(t.Type)).Select(t => GgmlTypes.Name(t.Type)).Distinct().ToList();
                if (missing.Count > 0)
                {
                    // Only the IQ formats can be missing here (they plug into the kernel table separately).
                    Assert.All(missing, m => Assert.StartsWith("IQ", m));
                    output.WriteLine($"  not run: this build has no kernels for {string.Join(", ", missing)}");
                    return;
                }
            }
            Compare(dst);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private void Compare(string path)
    {
        int[][] prompts =
        [
            [.. Enumerable.Range(0, 24).Select(i => (i * 37 + 11) % Shape.VocabSize)],
            [.. Enumerable.Range(0, 32).Select(i => (i * i * 13 + 5) % Shape.VocabSize)],
            [1, 2, 3, 4, 5, 400, 401, 402, 7, 7, 7, 7, 300, 200, 100, 50, 25, 12, 6, 3],
        ];
        using var model = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2 });
        int checkedPositions = 0;
        for (int p = 0; p < prompts.Length; p++)
        {
            int[] ids = prompts[p];
            float[] theirs = LlamaCpp.Logits(path, ids, out int vocab);
            float[] ours = new float[ids.Length * vocab];
            model.Forward(ids, model.CreateState(ids.Length, KvCacheType.F32), ours, LogitPositions.All);
            double maxDiff = 0;
            var failures = new List<string>();
            for (int i = 0; i < ids.Length; i++)
            {
                var o = ours.AsSpan(i * vocab, vocab);
                var t = theirs.AsSpan(i * vocab, vocab);
                for (int v = 0; v < vocab; v++)
                    maxDiff = Math.Max(maxDiff, float.IsFinite(o[v]) ? Math.Abs(o[v] - t[v]) : double.PositiveInfinity);
                var (top, margin) = TopWithMargin(t);
                if (margin <= Margin)
                    continue;
                checkedPositions++;
                int mine = TopWithMargin(o).Top;
                if (mine != top)
                    failures.Add($"prompt {p} position {i}: argmax {mine}, llama.cpp {top} (its margin {margin:F3})");
            }
            output.WriteLine($"  prompt {p}: max |Δlogit| {maxDiff:E2}");
            Assert.True(failures.Count == 0, string.Join("\n", failures));
            Assert.True(maxDiff <= MaxAbsDiff, $"prompt {p}: max |Δlogit| {maxDiff:E2} exceeds {MaxAbsDiff}");
        }
        output.WriteLine($"  argmax checked at {checkedPositions} positions with margin > {Margin}");
        Assert.True(checkedPositions > 0, "no position had a clear top-1; the comparison checked nothing");
    }

    private static (int Top, double Margin) TopWithMargin(ReadOnlySpan<float> logits)
    {
        int top = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[top])
                top = i;
        double second = double.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++)
            if (i != top && logits[i] > second)
                second = logits[i];
        return (top, logits[top] - second);
    }

    private static string TypeSummary(string path)
    {
        using var f = GgufFile.Open(path);
        return string.Join(", ", f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.Name(g.Key)} x{g.Count()}"));
    }
}
