using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;
using LLama.Native;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Quant;

/// <summary>
/// The synthetic writer's quantized files against <c>llama-quantize</c>: llama.cpp quantizes the F32 model and every
/// tensor of its output must have the same type, shape and bytes as the tensor our writer produces for that file
/// type straight from the same F32 values. This checks the per-tensor type recipe (tied output head, use_more_bits
/// for attn_v / ffn_down, fallbacks for rows that are not a multiple of 256, unquantized norms and conv kernels) and
/// the quantizers themselves on real model tensors.
/// </summary>
public sealed class QuantizeModelOracleTests(QuantizeModelOracleTests.SourceModel source, ITestOutputHelper output)
    : IClassFixture<QuantizeModelOracleTests.SourceModel>
{
    /// <summary>
    /// Hidden 256 so the K-quants really apply to the projections; ffn 288 so ffn_down rows (288) are not a multiple
    /// of 256 and take llama-quantize's fallbacks (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0); 8 layers with 3 attention layers
    /// so use_more_bits picks some attn_v and ffn_down tensors and not others.
    /// </summary>
    internal static readonly ModelShape Shape = new()
    {
        Name = "oracle-quant", GeneralName = "lfm2-oracle-quant", EmbeddingLength = 256, FeedForwardLength = 288,
        HeadCount = 4, KvHeadCount = 2, BlockCount = 8, AttentionLayers = [1, 4, 6], VocabSize = 512, ContextLength = 2048,
    };

    public static TheoryData<SyntheticFileType, LLamaFtype> FileTypes() => new()
    {
        { SyntheticFileType.Q8_0, LLamaFtype.MOSTLY_Q8_0 },
        { SyntheticFileType.Q4_0, LLamaFtype.MOSTLY_Q4_0 },
        { SyntheticFileType.Q4_1, LLamaFtype.MOSTLY_Q4_1 },
        { SyntheticFileType.Q5_0, LLamaFtype.MOSTLY_Q5_0 },
        { SyntheticFileType.Q5_1, LLamaFtype.MOSTLY_Q5_1 },
        { SyntheticFileType.Q4_K_M, LLamaFtype.MOSTLY_Q4_K_M },
        { SyntheticFileType.Q5_K_M, LLamaFtype.MOSTLY_Q5_K_M },
        { SyntheticFileType.Q6_K, LLamaFtype.MOSTLY_Q6_K },
        // IQ4: Q6_K tied head, Q5_K then Q5_1 for the first ffn_down, IQ4_XS's 288-wide ffn_down rows fall back to IQ4_NL.
        { SyntheticFileType.IQ4_NL, LLamaFtype.MOSTLY_IQ4_NL },
        { SyntheticFileType.IQ4_XS, LLamaFtype.MOSTLY_IQ4_XS },
        { SyntheticFileType.F16, LLamaFtype.MOSTLY_F16 },
        { SyntheticFileType.BF16, LLamaFtype.MOSTLY_BF16 },
    };

    [Theory]
    [MemberData(nameof(FileTypes))]
    public void EveryTensorMatchesLlamaQuantize(SyntheticFileType fileType, LLamaFtype ftype)
    {
        string dir = TestData.NewTempDir();
        try
        {
            string theirsPath = Path.Combine(dir, "llama.gguf");
            string oursPath = Path.Combine(dir, "ours.gguf");
            LlamaCpp.Quantize(source.Path, theirsPath, ftype);
            SyntheticModel.Write(oursPath, new SyntheticModelOptions { Shape = Shape, FileType = fileType, Seed = SourceModel.Seed, MaxDegreeOfParallelism = 2 });

            using var theirs = GgufFile.Open(theirsPath);
            using var ours = GgufFile.Open(oursPath);
            Assert.Equal(fileType.LlamaFileType(), theirs.Metadata.GetUInt32("general.file_type"));
            Assert.Equal(theirs.Tensors.Select(t => t.Name).Order(), ours.Tensors.Select(t => t.Name).Order());

            var failures = new List<string>();
            foreach (var t in theirs.Tensors)
            {
                var o = ours.GetTensor(t.Name);
                if (o.Type != t.Type || !o.Dimensions.SequenceEqual(t.Dimensions))
                {
                    failures.Add($"{t.Name}: ours {GgmlTypes.Name(o.Type)} {o.ShapeString}, llama-quantize {GgmlTypes.Name(t.Type)} {t.ShapeString}");
                    continue;
                }
                var a = ours.GetTensorData(o);
                var b = theirs.GetTensorData(t);
                if (!a.SequenceEqual(b))
                {
                    int row = FirstDifferentRow(a, b, GgmlTypes.RowBytes(t.Type, t.RowLength));
                    failures.Add($"{t.Name} ({GgmlTypes.Name(t.Type)}): bytes differ, first in row {row}");
                }
            }
            output.WriteLine($"{fileType}: " + string.Join(", ", theirs.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.Name(g.Key)} x{g.Count()}")));
            Assert.True(failures.Count == 0, $"{fileType}: {failures.Count} of {theirs.Tensors.Count} tensors differ from llama-quantize:\n" + string.Join("\n", failures));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static int FirstDifferentRow(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b, long rowBytes)
    {
        for (int i = 0; i < a.Length; i++)
            if (a[i] != b[i])
                return (int)(i / rowBytes);
        return -1;
    }

    /// <summary>The F32 master every case quantizes, written once per test run.</summary>
    public sealed class SourceModel : IDisposable
    {
        public const ulong Seed = 77;
        private readonly string _dir = TestData.NewTempDir();

        public SourceModel()
        {
            Path = System.IO.Path.Combine(_dir, "f32.gguf");
            SyntheticModel.Write(Path, new SyntheticModelOptions { Shape = Shape, FileType = SyntheticFileType.F32, Seed = Seed, MaxDegreeOfParallelism = 2 });
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }
}
