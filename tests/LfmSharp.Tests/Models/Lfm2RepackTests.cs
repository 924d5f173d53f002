using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Models;

/// <summary>
/// <see cref="ModelLoadOptions.RepackWeights"/>: Q4_0/Q8_0 matrices copied into the kernels' interleaved layout at
/// load, and TQ1_0 matrices converted to TQ2_0, must change nothing but speed (the golden tests run with it on, the default).
/// </summary>
public sealed class Lfm2RepackTests
{
    public static TheoryData<string> Models => ["tiny-q8_0", "tiny-q4_0", "small-q4_0", "small-q8_0", "tiny-q4_k_m"];

    [Theory]
    [MemberData(nameof(Models))]
    public void RepackedWeightsGiveTheSameLogitsBitForBit(string model)
    {
        long eligible = AssertSameLogits(TestData.Model(model));
        using var file = GgufFile.Open(TestData.Model(model));
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported && model.Contains("q4_0", StringComparison.Ordinal))
            Assert.True(eligible > file.Tensors.Sum(t => t.ByteSize) / 2, $"{model}: only {eligible} bytes interleaved");
    }

    [Fact]
    public void Tq1MatricesHeldAsTq2GiveTheSameLogitsBitForBit()
    {
        // Every matrix but the embedding TQ1_0 (the small shape's rows are multiples of 256 wide); with AVX2 the load
        // converts them to TQ2_0 (TypeTraits.LoadAs), which must change nothing but speed and bytes.
        var options = new SyntheticModelOptions
        {
            Shape = ModelShape.Small, FileType = SyntheticFileType.Q8_0, Seed = 11,
            TensorTypes = [TensorTypeOverride.Parse("(ffn_gate|ffn_up|ffn_down|attn_q\\.|attn_k\\.|attn_v|attn_output|shortconv\\.in_proj|shortconv\\.out_proj)=tq1_0")],
        };
        string path = Path.Combine(Path.GetTempPath(), $"lfm-tq1-repack-{Environment.ProcessId}.gguf");
        try
        {
            SyntheticModel.Write(path, options);
            using (var file = GgufFile.Open(path))
                Assert.True(file.Tensors.Count(t => t.Type == GgmlType.TQ1_0) >= 5 * 4, "the override made TQ1_0 matrices");
            long copies = AssertSameLogits(path);
            if (TypeTraits.For(GgmlType.TQ1_0).LoadAs != null)
                Assert.True(copies > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Loads <paramref name="path"/> with and without repacking, checks the bytes of the copies (the matrices the kernels
    /// stream interleaved, Q4_0/Q8_0/... with whole groups of 8 rows, and those converted at load) and the logits of a
    /// prefill, single-token and batched decode steps bit for bit; returns the copies' bytes.
    /// </summary>
    private static long AssertSameLogits(string path)
    {
        using var repacked = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2 });
        using var mapped = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2, RepackWeights = false });
        Assert.Equal(0, mapped.Model.InterleavedBytes);

        using var file = GgufFile.Open(path);
        long eligible = file.Tensors.Where(t => t.Dimensions.Length == 2).Sum(t => TypeTraits.TryFor(t.Type)?.LoadAs is { } to
            ? t.Dimensions[1] * GgmlTypes.RowBytes(to, (int)t.Dimensions[0])
            : WeightMatrix.CanInterleave(t.Type, (int)t.Dimensions[1]) ? t.ByteSize : 0);
        Assert.Equal(eligible, repacked.Model.InterleavedBytes);

        int[] ids = [1, 17, 300, 42, 99, 5, 250, 7, 12, 64, 3, 200];
        var a = Lfm2GoldenTests.Run(repacked, ids, KvCacheType.F16);
        var b = Lfm2GoldenTests.Run(mapped, ids, KvCacheType.F16);
        Assert.Equal(b, a);   // a prefill of 12 tokens: the GEMM (packed from the copy)

        // Decode steps: one token (8-row matvec) and a batch of three sequences (multi-token matvec).
        var s1 = repacked.CreateState(64);
        var s2 = mapped.CreateState(64);
        var l1 = new float[repacked.Config.VocabSize];
        var l2 = new float[mapped.Config.VocabSize];
        foreach (int id in ids[..4])
        {
            repacked.Forward([id], s1, l1);
            mapped.Forward([id], s2, l2);
            Assert.Equal(l2, l1);
        }
        var states1 = new[] { repacked.CreateState(8), repacked.CreateState(8), repacked.CreateState(8) };
        var states2 = new[] { mapped.CreateState(8), mapped.CreateState(8), mapped.CreateState(8) };
        var lb1 = new float[3 * repacked.Config.VocabSize];
        var lb2 = new float[3 * mapped.Config.VocabSize];
        repacked.ForwardBatch([5, 6, 7], states1, lb1);
        mapped.ForwardBatch([5, 6, 7], states2, lb2);
        Assert.Equal(lb2, lb1);
        return eligible;
    }

    [Fact]
    public void FloatPrecisionKeepsEveryWeightInTheMap()
    {
        using var lm = LanguageModel.Load(TestData.Model("tiny-q4_0"), new ModelLoadOptions { Threads = 1, Precision = MatMulPrecision.Float });
        Assert.Equal(0, lm.Model.InterleavedBytes);
    }
}
