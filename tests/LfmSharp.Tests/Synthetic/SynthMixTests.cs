using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;

namespace LfmSharp.Tests.Synthetic;

/// <summary>
/// llama-quantize's per-tensor rules for the mix names (llama.cpp src/llama-quant.cpp, llama_tensor_get_type, no
/// imatrix, LFM2: n_gqa() is 0 because layer 0 is a conv layer), the --tensor-type overrides and the untied head.
/// </summary>
public class SynthMixTests
{
    private static Dictionary<string, GgmlType> Plan(SyntheticFileType ft, string[]? overrides = null, bool untied = false) =>
        SyntheticModel.PlanTensors(new SyntheticModelOptions
        {
            Shape = ModelShape.Lfm25_1_2B, FileType = ft, UntiedOutput = untied,
            TensorTypes = (overrides ?? []).Select(TensorTypeOverride.Parse).ToArray(),
        }).ToDictionary(t => t.Name, t => t.Type);

    private static readonly int[] AttentionLayers = [2, 5, 8, 10, 12, 14];

    [Fact]
    public void Q2K_UsesQ3KForAttnVFfnDownAndAttnOutput()
    {
        var p = Plan(SyntheticFileType.Q2_K);
        Assert.Equal(GgmlType.Q6_K, p["token_embd.weight"]);
        for (int i = 0; i < 16; i++)
        {
            Assert.Equal(GgmlType.Q3_K, p[$"blk.{i}.ffn_down.weight"]);
            Assert.Equal(GgmlType.Q2_K, p[$"blk.{i}.ffn_gate.weight"]);
            Assert.Equal(GgmlType.Q2_K, p[$"blk.{i}.ffn_up.weight"]);
        }
        foreach (int i in AttentionLayers)
        {
            Assert.Equal(GgmlType.Q3_K, p[$"blk.{i}.attn_v.weight"]);
            Assert.Equal(GgmlType.Q3_K, p[$"blk.{i}.attn_output.weight"]);
            Assert.Equal(GgmlType.Q2_K, p[$"blk.{i}.attn_q.weight"]);
        }
        Assert.Equal(GgmlType.Q2_K, p["blk.0.shortconv.in_proj.weight"]);
    }

    [Fact]
    public void Q3KSizes_FollowTheirRecipes()
    {
        var s = Plan(SyntheticFileType.Q3_K_S);
        Assert.All(s.Where(kv => kv.Key.StartsWith("blk.", StringComparison.Ordinal) && kv.Value != GgmlType.F32), kv => Assert.Equal(GgmlType.Q3_K, kv.Value));
        var m = Plan(SyntheticFileType.Q3_K_M);
        // attn_v: the first two Q5_K, then Q4_K; ffn_down: layer 0 (< 16/16) Q5_K, then Q4_K; attn_output Q4_K.
        for (int k = 0; k < AttentionLayers.Length; k++)
        {
            Assert.Equal(k < 2 ? GgmlType.Q5_K : GgmlType.Q4_K, m[$"blk.{AttentionLayers[k]}.attn_v.weight"]);
            Assert.Equal(GgmlType.Q4_K, m[$"blk.{AttentionLayers[k]}.attn_output.weight"]);
        }
        for (int i = 0; i < 16; i++)
            Assert.Equal(i == 0 ? GgmlType.Q5_K : GgmlType.Q4_K, m[$"blk.{i}.ffn_down.weight"]);
        Assert.Equal(GgmlType.Q3_K, m["blk.3.ffn_up.weight"]);
        var l = Plan(SyntheticFileType.Q3_K_L);
        Assert.Equal(GgmlType.Q5_K, l["blk.2.attn_v.weight"]);
        Assert.Equal(GgmlType.Q5_K, l["blk.9.ffn_down.weight"]);
        Assert.Equal(GgmlType.Q5_K, l["blk.14.attn_output.weight"]);
    }

    [Fact]
    public void KSmallSizes_RaiseTheFirstLayers()
    {
        var s4 = Plan(SyntheticFileType.Q4_K_S);
        for (int k = 0; k < AttentionLayers.Length; k++)
            Assert.Equal(k < 4 ? GgmlType.Q5_K : GgmlType.Q4_K, s4[$"blk.{AttentionLayers[k]}.attn_v.weight"]);
        for (int i = 0; i < 16; i++)
            Assert.Equal(i < 2 ? GgmlType.Q5_K : GgmlType.Q4_K, s4[$"blk.{i}.ffn_down.weight"]);
        var s5 = Plan(SyntheticFileType.Q5_K_S);
        Assert.All(s5.Where(kv => kv.Key.StartsWith("blk.", StringComparison.Ordinal) && kv.Value != GgmlType.F32), kv => Assert.Equal(GgmlType.Q5_K, kv.Value));
        var nl = Plan(SyntheticFileType.IQ4_NL);
        Assert.Equal(GgmlType.Q5_K, nl["blk.1.ffn_down.weight"]);
        Assert.Equal(GgmlType.IQ4_NL, nl["blk.2.ffn_down.weight"]);
        Assert.Equal(GgmlType.IQ4_XS, Plan(SyntheticFileType.IQ4_XS)["blk.0.ffn_gate.weight"]);
    }

    [Fact]
    public void Overrides_FirstMatchWins_AndTheUntiedHeadTakesTheOutputType()
    {
        var p = Plan(SyntheticFileType.Q4_K_M, ["blk\\.3\\.ffn_up=q8_0", "ffn_up=q4_1", "attn_k=Q5_0"], untied: true);
        Assert.Equal(GgmlType.Q8_0, p["blk.3.ffn_up.weight"]);
        Assert.Equal(GgmlType.Q4_1, p["blk.4.ffn_up.weight"]);
        Assert.Equal(GgmlType.Q5_0, p["blk.2.attn_k.weight"]);
        Assert.Equal(GgmlType.Q4_K, p["blk.4.ffn_gate.weight"]);
        Assert.Equal(GgmlType.Q6_K, p["output.weight"]);     // the output head rule
        Assert.Equal(GgmlType.Q4_K, p["token_embd.weight"]);  // untied: the default type
        Assert.Equal(GgmlType.F32, p["blk.4.ffn_norm.weight"]); // never quantized
        // Overrides also apply to float files (a convenience llama-quantize does not need).
        Assert.Equal(GgmlType.Q8_0, Plan(SyntheticFileType.F16, ["ffn_down=q8_0"])["blk.0.ffn_down.weight"]);
    }

    [Theory]
    [InlineData("ffn_up", "NAME=TYPE")]
    [InlineData("ffn_up=", "NAME=TYPE")]
    [InlineData("=q4_0", "NAME=TYPE")]
    [InlineData("ffn_up=q9_9", "unknown ggml type")]
    [InlineData("ffn_up=7", "unknown ggml type")]
    [InlineData("ffn_(up=q4_0", "regular expression")]
    public void BadOverridesAreRejectedWithTheReason(string text, string reason)
    {
        var e = Assert.Throws<ArgumentException>(() => TensorTypeOverride.Parse(text));
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void EveryMixNameIsWritable()
    {
        // IQ4_NL/IQ4_XS were the last mix names without a quantizer; a type losing its quantizer must show up here.
        Assert.All(SyntheticFileTypes.All, t => Assert.True(t.IsWritable(), $"{t.Name()} has no quantizer"));
    }

    [Theory]
    [InlineData("ffn_up=q8_k", "Q8_K")]
    [InlineData("attn_q=q8_1", "Q8_1")]
    public void OverridesToTypesWithoutAnEncoderFailNamingTheTypeAndTensor(string overrideText, string typeName)
    {
        // Activation formats are ggml types but never weights: writing them is refused by name.
        var options = new SyntheticModelOptions { Shape = ModelShape.Small, FileType = SyntheticFileType.Q8_0, TensorTypes = [TensorTypeOverride.Parse(overrideText)] };
        var e = Assert.Throws<NotSupportedException>(() => SyntheticModel.CreateWriter(options));
        Assert.Matches($"no quantizer for {typeName} .*tensor blk\\.\\d+\\.", e.Message);
    }

    public static TheoryData<GgmlType> RandomCodeTypes => new(GgmlType.IQ1_S, GgmlType.IQ1_M, GgmlType.IQ2_XXS, GgmlType.IQ2_XS,
        GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.TQ1_0, GgmlType.TQ2_0);

    [Theory]
    [MemberData(nameof(RandomCodeTypes))]
    public void GridAndTernaryOverrides_WriteRandomCodesScaledLikeTheirRows(GgmlType type)
    {
        // The small shape's 256-wide rows keep the 256-block types (narrower rows fall back to IQ4_NL / Q4_0).
        var options = new SyntheticModelOptions
        {
            Shape = ModelShape.Small, FileType = SyntheticFileType.Q8_0, Seed = 5,
            TensorTypes = [TensorTypeOverride.Parse($"blk\\.1\\.ffn_up={GgmlTypes.Name(type)}")],
        };
        string a = Path.Combine(Path.GetTempPath(), $"lfm-codes-{type}-{Environment.ProcessId}-a.gguf");
        string b = Path.Combine(Path.GetTempPath(), $"lfm-codes-{type}-{Environment.ProcessId}-b.gguf");
        try
        {
            SyntheticModel.Write(a, options);
            SyntheticModel.Write(b, options);
            Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));   // seeded: the same file twice
            using var file = Gguf.GgufFile.Open(a);
            var info = file.GetTensor("blk.1.ffn_up.weight");
            Assert.Equal(type, info.Type);
            var plan = SyntheticModel.PlanTensors(options).Single(t => t.Name == info.Name);
            float[] source = SyntheticModel.GenerateValues(plan, options);
            var got = new float[source.Length];
            Dequantize.Row(type, file.GetTensorData(info), got);
            // Every value finite; per 256-block, the largest |y| is the source block's largest |x| (up to the f16
            // rounding of d, which may be subnormal for the IQ3 grids), and the codes are not all the same.
            Assert.All(got, v => Assert.True(float.IsFinite(v)));
            for (int blk = 0; blk < source.Length / 256; blk++)
            {
                float want = source.AsSpan(blk * 256, 256).ToArray().Max(MathF.Abs), have = got.AsSpan(blk * 256, 256).ToArray().Max(MathF.Abs);
                Assert.InRange(have, want * 0.98f, want * 1.02f);
            }
            Assert.True(got.Distinct().Count() > 8, "random codes decode to varied values");
        }
        finally
        {
            File.Delete(a);
            File.Delete(b);
        }
    }
}
