using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Models;

/// <summary>
/// <see cref="ModelLoadOptions.RepackWeights"/>: Q4_0/Q8_0 matrices copied into the kernels' interleaved layout at
/// load must change nothing but speed (the golden tests run with it on, the default).
/// </summary>
public sealed class Lfm2RepackTests
{
    public static TheoryData<string> Models => ["tiny-q8_0", "tiny-q4_0", "small-q4_0", "small-q8_0", "tiny-q4_k_m"];

    [Theory]
    [MemberData(nameof(Models))]
    public void RepackedWeightsGiveTheSameLogitsBitForBit(string model)
    {
        using var repacked = LanguageModel.Load(TestData.Model(model), new ModelLoadOptions { Threads = 2 });
        using var mapped = LanguageModel.Load(TestData.Model(model), new ModelLoadOptions { Threads = 2, RepackWeights = false });
        Assert.Equal(0, mapped.Model.InterleavedBytes);

        // Bytes of the matrices the kernels can stream interleaved (Q4_0/Q8_0 with whole groups of 8 rows).
        using var file = GgufFile.Open(TestData.Model(model));
        long eligible = file.Tensors.Where(t => t.Dimensions.Length == 2 && WeightMatrix.CanInterleave(t.Type, (int)t.Dimensions[1])).Sum(t => t.ByteSize);
        Assert.Equal(eligible, repacked.Model.InterleavedBytes);
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported && model.Contains("q4_0", StringComparison.Ordinal))
            Assert.True(eligible > file.Tensors.Sum(t => t.ByteSize) / 2, $"{model}: only {eligible} bytes interleaved");

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
    }

    [Fact]
    public void FloatPrecisionKeepsEveryWeightInTheMap()
    {
        using var lm = LanguageModel.Load(TestData.Model("tiny-q4_0"), new ModelLoadOptions { Threads = 1, Precision = MatMulPrecision.Float });
        Assert.Equal(0, lm.Model.InterleavedBytes);
    }
}
