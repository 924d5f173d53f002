using System.Text.Json;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Synthetic;

/// <summary>The generator against the llama.cpp fixture files (made by the NumPy generator + llama-quantize).</summary>
public class SyntheticFixtureTests
{
    private static string WriteTemp(SyntheticModelOptions options)
    {
        string path = Path.Combine(TestData.NewTempDir(), $"{options.Shape.Name}-{options.FileType.Name()}.gguf");
        SyntheticModel.Write(path, options);
        return path;
    }

    private static void AssertSameTensorData(string fixture, string ours)
    {
        using var want = GgufFile.Open(fixture);
        using var got = GgufFile.Open(ours);
        Assert.Equal(want.Tensors.Count, got.Tensors.Count);
        foreach (var wt in want.Tensors)
        {
            Assert.True(got.TryGetTensor(wt.Name, out var gt), $"missing tensor {wt.Name}");
            Assert.Equal(wt.Dimensions, gt.Dimensions);
            Assert.True(wt.Type == gt.Type, $"{wt.Name}: type {gt.Type}, fixture {wt.Type}");
            ReadOnlySpan<byte> a = want.GetTensorData(wt), b = got.GetTensorData(gt);
            if (!a.SequenceEqual(b))
            {
                int i = a.CommonPrefixLength(b);
                Assert.Fail($"{wt.Name}: bytes differ from offset {i} of {a.Length}");
            }
        }
    }

    [Fact]
    public void TinyF32_ReproducesTheFixtureTensorDataBitExactly()
    {
        string ours = WriteTemp(new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F32, Seed = 42 });
        AssertSameTensorData(TestData.Model("tiny-f32"), ours);
    }

    [Fact]
    public void TinyF16_ReproducesTheFixtureTensorDataBitExactly()
    {
        string ours = WriteTemp(new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F16, Seed = 42 });
        AssertSameTensorData(TestData.Model("tiny-f16"), ours);
    }

    [Fact]
    public void TinyF32_MetadataMatchesTheFixture()
    {
        string ours = WriteTemp(new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = SyntheticFileType.F32 });
        using var want = GgufFile.Open(TestData.Model("tiny-f32"));
        using var got = GgufFile.Open(ours);
        foreach (var e in want.Metadata)
        {
            // Merges (and the merged tokens after the 272 specials/bytes) come from the BPE trainer.
            if (e.Key is "tokenizer.ggml.merges" or "tokenizer.ggml.tokens" or "tokenizer.ggml.token_type")
                continue;
            Assert.True(got.Metadata.TryGetValue(e.Key, out var v), $"missing key {e.Key}");
            Assert.True(e.Value.Type == v.Type, $"{e.Key}: type {v.Type}, fixture {e.Value.Type}");
            Assert.Equal(e.Value.ToDisplayString(int.MaxValue), v.ToDisplayString(int.MaxValue));
        }
        Assert.Equal(want.Metadata.GetString("tokenizer.chat_template"), got.Metadata.GetString("tokenizer.chat_template"));
        string[] wantTokens = want.Metadata.GetStringArray("tokenizer.ggml.tokens");
        string[] gotTokens = got.Metadata.GetStringArray("tokenizer.ggml.tokens");
        int[] wantTypes = want.Metadata.GetInt32Array("tokenizer.ggml.token_type");
        int[] gotTypes = got.Metadata.GetInt32Array("tokenizer.ggml.token_type");
        Assert.Equal(wantTokens.Length, gotTokens.Length);
        Assert.Equal(wantTokens[..272], gotTokens[..272]);
        Assert.Equal(wantTypes[..272], gotTypes[..272]);
        Assert.Equal(wantTokens[^1], gotTokens[^1]);
        Assert.Equal(wantTypes[^1], gotTypes[^1]);
    }

    public static TheoryData<string, string, SyntheticFileType> FixtureFiles => new()
    {
        { "lfm2-tiny-f32.gguf", "tiny", SyntheticFileType.F32 },
        { "lfm2-tiny-f16.gguf", "tiny", SyntheticFileType.F16 },
        { "lfm2-tiny-q8_0.gguf", "tiny", SyntheticFileType.Q8_0 },
        { "lfm2-tiny-q4_0.gguf", "tiny", SyntheticFileType.Q4_0 },
        { "lfm2-tiny-q4_k_m.gguf", "tiny", SyntheticFileType.Q4_K_M },
        { "lfm2-small-q8_0.gguf", "small", SyntheticFileType.Q8_0 },
        { "lfm2-small-q4_0.gguf", "small", SyntheticFileType.Q4_0 },
        { "lfm2-small-q4_k_m.gguf", "small", SyntheticFileType.Q4_K_M },
    };

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void TensorData_EqualsTheFixtureBitExactly(string file, string shape, SyntheticFileType type)
    {
        // The quantized fixtures came from llama-quantize on the F32 master without an imatrix, i.e. from the
        // reference quantizers; small's F32 master is not shipped, so this also shows we regenerate it exactly.
        string ours = WriteTemp(new SyntheticModelOptions { Shape = ModelShape.Preset(shape), FileType = type, Seed = 42 });
        AssertSameTensorData(Path.Combine(TestData.Fixtures, "models", file), ours);
    }

    [Theory]
    [MemberData(nameof(FixtureFiles))]
    public void TypeAssignment_EqualsLlamaQuantizeOutput(string file, string shape, SyntheticFileType type)
    {
        // tensor-types.json lists what llama-quantize actually produced for every shipped file.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Fixtures, "models", "tensor-types.json")));
        var entry = doc.RootElement.GetProperty(file);
        Assert.Equal((int)type.LlamaFileType(), entry.GetProperty("file_type").GetInt32());
        var want = entry.GetProperty("tensors").EnumerateArray()
            .ToDictionary(t => t.GetProperty("name").GetString()!, t => (Type: t.GetProperty("type").GetString()!, Ne: t.GetProperty("ne").EnumerateArray().Select(x => x.GetInt64()).ToArray()));
        var plan = SyntheticModel.PlanTensors(ModelShape.Preset(shape), type);
        Assert.Equal(want.Count, plan.Count);
        foreach (var t in plan)
        {
            Assert.True(want.TryGetValue(t.Name, out var w), $"unexpected tensor {t.Name}");
            Assert.True(w.Type == GgmlTypes.Name(t.Type), $"{t.Name}: planned {GgmlTypes.Name(t.Type)}, llama-quantize made {w.Type}");
            Assert.Equal(w.Ne, t.Dimensions);
        }
    }
}
