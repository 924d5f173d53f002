using System.Security.Cryptography;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Synthetic;

public class SyntheticModelTests
{
    private static string TempPath(string name) => Path.Combine(TestData.NewTempDir(), name);

    [Fact]
    public void RoundTrip_EveryKeyAndTensorReadsBackAsWritten()
    {
        var options = new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 7 };
        GgufWriter writer = SyntheticModel.CreateWriter(options);
        string path = TempPath("rt.gguf");
        writer.WriteTo(path);

        using var file = GgufFile.Open(path);
        Assert.Equal(writer.Metadata.Count, file.Metadata.Count);
        foreach (var e in writer.Metadata)
        {
            Assert.True(file.Metadata.TryGetValue(e.Key, out var v), $"missing {e.Key}");
            Assert.Equal(e.Value.Type, v.Type);
            Assert.Equal(e.Value.ToDisplayString(int.MaxValue), v.ToDisplayString(int.MaxValue));
        }

        var plan = SyntheticModel.PlanTensors(options.Shape, options.FileType);
        Assert.Equal(plan.Select(t => t.Name), file.Tensors.Select(t => t.Name));
        foreach (var t in plan)
        {
            var info = file.GetTensor(t.Name);
            Assert.Equal(t.Type, info.Type);
            Assert.Equal(t.Dimensions, info.Dimensions);
            // The stored values are the generated f32 values, rounded to the tensor type.
            float[] values = SyntheticModel.GenerateValues(t, options);
            var stored = new float[values.Length];
            Dequantize.Row(info.Type, file.GetTensorData(info), stored);
            for (int i = 0; i < values.Length; i++)
            {
                float expected = t.Type == GgmlType.F16 ? (float)(Half)values[i] : values[i];
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(stored[i]), $"{t.Name}[{i}]: {stored[i]} vs {expected}");
            }
        }
    }

    public static TheoryData<SyntheticFileType> AllFileTypes => new(SyntheticFileTypes.All.Where(t => t.IsWritable()));

    [Theory]
    [MemberData(nameof(AllFileTypes))]
    public void EveryFileType_ReadsBackWithThePlannedTypesAndCloseValues(SyntheticFileType type)
    {
        // Rows of 256 so the K-quants apply without fallbacks; two layers (conv + attention) keep it fast.
        var shape = ModelShape.Small with { Name = "mini", FeedForwardLength = 256, BlockCount = 2, AttentionLayers = [1], VocabSize = 512 };
        var options = new SyntheticModelOptions { Shape = shape, FileType = type, Seed = 11 };
        string path = TempPath($"small-{type.Name()}.gguf");
        SyntheticModel.Write(path, options);
        using var file = GgufFile.Open(path);
        Assert.Equal(type.LlamaFileType(), file.Metadata.GetUInt32("general.file_type"));
        Assert.Equal(type.IsQuantized(), file.Metadata.Contains("general.quantization_version"));
        var plan = SyntheticModel.PlanTensors(options.Shape, type);
        Assert.Contains(plan, t => t.Type == type.DefaultTensorType());
        foreach (var t in plan)
        {
            var info = file.GetTensor(t.Name);
            Assert.Equal(t.Type, info.Type);
            Assert.Equal(t.Dimensions, info.Dimensions);
            if (t.Name != "blk.1.attn_v.weight" && t.Name != "token_embd.weight" && t.Name != "blk.0.attn_norm.weight")
                continue;
            // Dequantized values stay within the type's error of the generated ones (relative RMS error).
            float[] want = SyntheticModel.GenerateValues(t, options);
            var got = new float[want.Length];
            Dequantize.Row(info.Type, file.GetTensorData(info), got);
            double err = 0, norm = 0;
            for (int i = 0; i < want.Length; i++)
            {
                err += (got[i] - want[i]) * (double)(got[i] - want[i]);
                norm += want[i] * (double)want[i];
            }
            double rel = Math.Sqrt(err / norm);
            double bound = info.Type switch
            {
                GgmlType.F32 => 0,
                GgmlType.F16 => 1e-3,
                GgmlType.BF16 => 4e-3,
                GgmlType.Q8_0 => 0.01,
                GgmlType.Q6_K => 0.03,
                GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K => 0.06,
                GgmlType.Q3_K => 0.2,
                GgmlType.Q2_K => 0.35,
                _ => 0.12, // 4-bit types
            };
            Assert.True(rel <= bound, $"{t.Name} {info.Type}: relative error {rel:G3} > {bound}");
        }
    }

    [Fact]
    public void Metadata_DescribesTheShape()
    {
        var shape = ModelShape.Small with { Name = "odd", GeneralName = "lfm2-odd", AttentionLayers = [0, 4], ContextLength = 4096, RopeFreqBase = 5e5f, ConvCache = 4 };
        string path = TempPath("odd.gguf");
        SyntheticModel.Write(path, new SyntheticModelOptions { Shape = shape, FileType = SyntheticFileType.BF16 });
        using var f = GgufFile.Open(path);
        var m = f.Metadata;
        Assert.Equal("lfm2", m.GetString("general.architecture"));
        Assert.Equal("lfm2-odd", m.GetString("general.name"));
        Assert.Equal(32u, m.GetUInt32("general.file_type"));
        Assert.False(m.Contains("general.quantization_version"));
        Assert.Equal(5u, m.GetUInt32("lfm2.block_count"));
        Assert.Equal(4096u, m.GetUInt32("lfm2.context_length"));
        Assert.Equal(256u, m.GetUInt32("lfm2.embedding_length"));
        Assert.Equal(768u, m.GetUInt32("lfm2.feed_forward_length"));
        Assert.Equal(4u, m.GetUInt32("lfm2.attention.head_count"));
        Assert.Equal([1, 0, 0, 0, 1], m.GetInt32Array("lfm2.attention.head_count_kv"));
        Assert.Equal(5e5f, m.GetFloat32("lfm2.rope.freq_base"));
        Assert.Equal(1e-5f, m.GetFloat32("lfm2.attention.layer_norm_rms_epsilon"));
        Assert.Equal(1024u, m.GetUInt32("lfm2.vocab_size"));
        Assert.Equal(4u, m.GetUInt32("lfm2.shortconv.l_cache"));
        Assert.Equal([4, 256], f.GetTensor("blk.1.shortconv.conv.weight").Dimensions);
        Assert.Equal(GgmlType.F32, f.GetTensor("blk.1.shortconv.conv.weight").Type);
        Assert.Equal(GgmlType.BF16, f.GetTensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgmlType.F32, f.GetTensor("blk.0.attn_q_norm.weight").Type);
        Assert.Equal(1024, m.GetStringArray("tokenizer.ggml.tokens").Length);
    }

    [Fact]
    public void SameSeed_SameBytes_DifferentSeed_DifferentWeights()
    {
        static byte[] Hash(string p) => SHA256.HashData(File.ReadAllBytes(p));
        string a = TempPath("a.gguf"), b = TempPath("b.gguf"), c = TempPath("c.gguf");
        SyntheticModel.Write(a, new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 1 });
        SyntheticModel.Write(b, new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 1 });
        SyntheticModel.Write(c, new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 2 });
        Assert.Equal(Hash(a), Hash(b));
        Assert.Equal(new FileInfo(a).Length, new FileInfo(c).Length);
        using var fa = GgufFile.Open(a);
        using var fc = GgufFile.Open(c);
        foreach (var t in fa.Tensors)
            Assert.False(fa.GetTensorData(t).SequenceEqual(fc.GetTensorData(fc.GetTensor(t.Name))), $"{t.Name} did not change with the seed");
    }

    [Fact]
    public void TensorValues_DependOnlyOnSeedAndName()
    {
        // The same tensor name gives the same values in any shape with the same tensor shape (HOW-MADE §1.3).
        var tiny = SyntheticModel.PlanTensors(ModelShape.Tiny, SyntheticFileType.F32).Single(t => t.Name == "blk.0.ffn_norm.weight");
        var other = ModelShape.Tiny with { BlockCount = 2, AttentionLayers = [1] };
        var moved = SyntheticModel.PlanTensors(other, SyntheticFileType.F32).Single(t => t.Name == "blk.0.ffn_norm.weight");
        var opt = new SyntheticModelOptions { Shape = ModelShape.Tiny };
        Assert.Equal(SyntheticModel.GenerateValues(tiny, opt), SyntheticModel.GenerateValues(moved, opt with { Shape = other }));
    }

    [Fact]
    public void ParameterCounts_MatchTheFamily()
    {
        // Spec §1: LFM2.5-1.2B has 1,170,340,608 parameters.
        Assert.Equal(1_170_340_608L, ModelShape.Lfm25_1_2B.ParameterCount);
        // Fixture README: tiny 345.7 K, small 4.3 M.
        Assert.InRange(ModelShape.Tiny.ParameterCount, 345_650, 345_749);
        Assert.InRange(ModelShape.Small.ParameterCount, 4_250_000, 4_349_999);
        Assert.Equal(148, SyntheticModel.PlanTensors(ModelShape.Lfm25_1_2B, SyntheticFileType.Q8_0).Count);
    }

    [Fact]
    public void Plan_1_2B_Q8_0_Has93QuantizedAnd55F32Tensors()
    {
        // Spec §4.3, from the real LFM2.5-1.2B-Instruct-Q8_0 GGUF.
        var plan = SyntheticModel.PlanTensors(ModelShape.Lfm25_1_2B, SyntheticFileType.Q8_0);
        Assert.Equal(93, plan.Count(t => t.Type == GgmlType.Q8_0));
        Assert.Equal(55, plan.Count(t => t.Type == GgmlType.F32));
    }

    [Theory]
    [InlineData(SyntheticFileType.Q4_K_M, GgmlType.Q4_K)]
    [InlineData(SyntheticFileType.Q5_K_M, GgmlType.Q5_K)]
    public void Plan_1_2B_KM_UsesQ6KWhereLlamaQuantizeDoes(SyntheticFileType ft, GgmlType baseType)
    {
        // Spec §4.3/§9.3: ffn_down Q6_K on layers 0,1,4,7,10,13,14,15; attn_v Q6_K on layers 8 and 14; token_embd Q6_K.
        var plan = SyntheticModel.PlanTensors(ModelShape.Lfm25_1_2B, ft).ToDictionary(t => t.Name);
        Assert.Equal(GgmlType.Q6_K, plan["token_embd.weight"].Type);
        int[] downQ6 = [0, 1, 4, 7, 10, 13, 14, 15];
        for (int i = 0; i < 16; i++)
            Assert.Equal(downQ6.Contains(i) ? GgmlType.Q6_K : baseType, plan[$"blk.{i}.ffn_down.weight"].Type);
        foreach (int i in new[] { 2, 5, 8, 10, 12, 14 })
            Assert.Equal(i is 8 or 14 ? GgmlType.Q6_K : baseType, plan[$"blk.{i}.attn_v.weight"].Type);
        Assert.Equal(baseType, plan["blk.3.shortconv.in_proj.weight"].Type);
        Assert.Equal(GgmlType.F32, plan["blk.3.shortconv.conv.weight"].Type);
        Assert.Equal(GgmlType.F32, plan["token_embd_norm.weight"].Type);
    }

    [Fact]
    public void Plan_Q4_0_TokenEmbdIsQ6K_AndFloatTypesKeepNormsF32()
    {
        var q4 = SyntheticModel.PlanTensors(ModelShape.Lfm25_1_2B, SyntheticFileType.Q4_0);
        Assert.Equal(GgmlType.Q6_K, q4.Single(t => t.Name == "token_embd.weight").Type);
        Assert.All(q4.Where(t => t.Dimensions.Length == 2 && t.Kind == SyntheticTensorKind.Matrix), t => Assert.Equal(GgmlType.Q4_0, t.Type));
        var f16 = SyntheticModel.PlanTensors(ModelShape.Lfm25_1_2B, SyntheticFileType.F16);
        Assert.All(f16, t => Assert.Equal(t.Kind is SyntheticTensorKind.Norm or SyntheticTensorKind.Conv ? GgmlType.F32 : GgmlType.F16, t.Type));
    }

    [Theory]
    [InlineData(63, 4, 2, "hidden size 63 is not divisible by the head count 4")]
    [InlineData(64, 4, 3, "head count 4 is not divisible by the kv head count 3")]
    [InlineData(48, 8, 2, "head dim 6")]
    [InlineData(64, 0, 1, "head count must be positive")]
    public void Validate_RejectsInconsistentHeads(int hidden, int heads, int kv, string message)
    {
        var shape = ModelShape.Tiny with { EmbeddingLength = hidden, HeadCount = heads, KvHeadCount = kv };
        if (hidden == 48)
            shape = shape with { HeadCount = 16, KvHeadCount = 2 }; // 48/16 = 3: odd head dim
        var ex = Assert.Throws<ArgumentException>(shape.Validate);
        Assert.Contains(hidden == 48 ? "head dim 3" : message, ex.Message);
    }

    [Fact]
    public void Validate_RejectsBadLayersAndVocab()
    {
        Assert.Contains("must lie in 0..5", Assert.Throws<ArgumentException>(() => (ModelShape.Tiny with { AttentionLayers = [2, 6] }).Validate()).Message);
        Assert.Contains("repeat", Assert.Throws<ArgumentException>(() => (ModelShape.Tiny with { AttentionLayers = [2, 2] }).Validate()).Message);
        Assert.Contains("vocab size 100", Assert.Throws<ArgumentException>(() => (ModelShape.Tiny with { VocabSize = 100 }).Validate()).Message);
        Assert.Contains("rope base", Assert.Throws<ArgumentException>(() => (ModelShape.Tiny with { RopeFreqBase = 0 }).Validate()).Message);
    }

    [Fact]
    public void QuantizedTypes_NeedBlockAlignedRows()
    {
        // hidden 48 (heads 4 → head dim 12): Q4_0 cannot block 48-wide rows; llama-quantize (v0.5.0 tensor_type_fallback)
        // stores such a tensor as F16, since a 32-block type has no smaller block to fall back to.
        var shape = ModelShape.Tiny with { EmbeddingLength = 48, FeedForwardLength = 96 };
        Assert.NotEmpty(SyntheticModel.PlanTensors(shape, SyntheticFileType.F16));
        var plan = SyntheticModel.PlanTensors(shape, SyntheticFileType.Q4_0).ToDictionary(t => t.Name, t => t.Type);
        Assert.Equal(GgmlType.F16, plan["blk.0.ffn_gate.weight"]);   // 48-wide rows
        Assert.Equal(GgmlType.Q4_0, plan["blk.0.ffn_down.weight"]);  // 96-wide rows
    }

    [Fact]
    public void ParseLayers_AcceptsPatternsAndIndexLists()
    {
        var (n, attn) = ModelShape.ParseLayers("ccAcAc");
        Assert.Equal(6, n);
        Assert.Equal([2, 4], attn);
        (n, attn) = ModelShape.ParseLayers("2,5,8,10,12,14", 16);
        Assert.Equal(16, n);
        Assert.Equal([2, 5, 8, 10, 12, 14], attn);
        Assert.Equal("ccAccAccAcAcAcAc", ModelShape.Lfm25_1_2B.LayerPattern);
        Assert.Throws<ArgumentException>(() => ModelShape.ParseLayers("2,5"));
        Assert.Throws<ArgumentException>(() => ModelShape.ParseLayers("2,x", 4));
    }

    [Fact]
    public void Presets_AreValidAndFoundByName()
    {
        foreach (var p in ModelShape.Presets)
        {
            p.Validate();
            Assert.Same(p, ModelShape.Preset(p.Name.ToUpperInvariant()));
        }
        Assert.Same(ModelShape.Lfm25_1_2B, ModelShape.Preset("full"));
        Assert.Equal(ChatTemplateStyle.Lfm25, ModelShape.Lfm25_1_2B.DefaultChatTemplate);
        Assert.Equal(ChatTemplateStyle.Lfm2, ModelShape.Tiny.DefaultChatTemplate);
        Assert.Contains("unknown model shape 'huge'", Assert.Throws<ArgumentException>(() => ModelShape.Preset("huge")).Message);
    }

    [Fact]
    public void FileTypes_ParseLikeLlamaCpp()
    {
        Assert.Equal(SyntheticFileType.Q4_K_M, SyntheticFileTypes.Parse("q4_k_m"));
        Assert.Equal(SyntheticFileType.Q4_K_M, SyntheticFileTypes.Parse("Q4KM"));
        Assert.Equal(SyntheticFileType.BF16, SyntheticFileTypes.Parse("bf16"));
        Assert.False(SyntheticFileTypes.TryParse("q3_k", out _));
        // llama_ftype ids (spec §4.1).
        Assert.Equal(15u, SyntheticFileType.Q4_K_M.LlamaFileType());
        Assert.Equal(17u, SyntheticFileType.Q5_K_M.LlamaFileType());
        Assert.Equal(18u, SyntheticFileType.Q6_K.LlamaFileType());
        Assert.Equal(32u, SyntheticFileType.BF16.LlamaFileType());
    }

    [Fact]
    public void Lfm25Template_IsTheDefaultForLfm25Shapes()
    {
        var shape = ModelShape.Tiny with { DefaultChatTemplate = ChatTemplateStyle.Lfm25 };
        string path = TempPath("t25.gguf");
        SyntheticModel.Write(path, new SyntheticModelOptions { Shape = shape });
        using var f = GgufFile.Open(path);
        string t = f.Metadata.GetString("tokenizer.chat_template");
        Assert.Equal(ChatTemplates.Lfm25, t);
        Assert.Contains("List of tools: [", t);
        Assert.DoesNotContain("tool_list_start", t);
        Assert.Contains("keep_past_thinking", t);
    }

    [Fact]
    public void Progress_IsMonotonicAndEndsAtOne()
    {
        var seen = new List<double>();
        var progress = new SyncProgress(seen.Add);
        SyntheticModel.Write(TempPath("p.gguf"), new SyntheticModelOptions { Shape = ModelShape.Tiny }, progress);
        Assert.True(seen.Count >= 10);
        for (int i = 1; i < seen.Count; i++)
            Assert.True(seen[i] >= seen[i - 1]);
        Assert.Equal(1.0, seen[^1]);
    }

    [Fact]
    public void Cache_WritesOnceAndReuses()
    {
        string dir = TestData.NewTempDir();
        var options = new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 3 };
        string p1 = SyntheticModel.GetOrCreateCached(options, dir);
        Assert.True(File.Exists(p1));
        DateTime written = File.GetLastWriteTimeUtc(p1);
        string p2 = SyntheticModel.GetOrCreateCached(options, dir);
        Assert.Equal(p1, p2);
        Assert.Equal(written, File.GetLastWriteTimeUtc(p2));
        Assert.Single(Directory.GetFiles(dir)); // no temporary left behind
        string p3 = SyntheticModel.GetOrCreateCached(options with { Seed = 4 }, dir);
        Assert.NotEqual(p1, p3);
        using var f = GgufFile.Open(p1);
        Assert.Equal(1u, f.Metadata.GetUInt32("general.file_type"));
    }

    [Fact]
    public void Cache_CancelledWriteLeavesNoFile()
    {
        string dir = TestData.NewTempDir();
        var options = new SyntheticModelOptions { Shape = ModelShape.Small, FileType = SyntheticFileType.F32 };
        var progress = new SyncProgress(p => { if (p > 0.3) throw new OperationCanceledException(); });
        Assert.ThrowsAny<OperationCanceledException>(() => SyntheticModel.GetOrCreateCached(options, dir, progress));
        Assert.Empty(Directory.GetFiles(dir, "*", SearchOption.AllDirectories));
    }

    /// <summary>IProgress that reports synchronously (System.Progress posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}

public class SyntheticChatTemplateTests
{
    [Fact]
    public void Templates_AreRecognisedByTheChatLayer()
    {
        // LfmSharp.Chat picks the layout by the same markers llama.cpp uses; the synthetic templates must select
        // the intended one without a warning, and neither prefills <think>.
        var v1 = LfmSharp.Chat.ChatTemplate.FromGguf(ChatTemplates.Lfm2);
        Assert.Equal(LfmSharp.Chat.ChatTemplateFamily.Lfm2, v1.Family);
        Assert.Null(v1.Warning);
        var v25 = LfmSharp.Chat.ChatTemplate.FromGguf(ChatTemplates.Lfm25);
        Assert.Equal(LfmSharp.Chat.ChatTemplateFamily.Lfm25, v25.Family);
        Assert.Null(v25.Warning);
        Assert.False(v25.GenerationPromptOpensThinking);
        // llama.cpp only splits reasoning when the template contains the literal <think>; like the real LFM2.5-1.2B
        // template, ours mentions only </think>.
        Assert.DoesNotContain("<think>", ChatTemplates.Lfm25);
        Assert.Contains("</think>", ChatTemplates.Lfm25);
    }
}
