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

    [Theory]
    [InlineData("tiny-f32", SyntheticFileType.F32)]
    [InlineData("tiny-f16", SyntheticFileType.F16)]
    public void TinyFloatFiles_AreByteIdenticalToTheFixtures(string fixture, SyntheticFileType type)
    {
        // Same metadata (order, types, values: hyper-parameters, trained vocabulary, template), same tensor
        // directory and the NumPy generator's weights bit for bit: the whole file is identical.
        string ours = WriteTemp(new SyntheticModelOptions { Shape = ModelShape.Tiny, FileType = type, Seed = 42 });
        byte[] want = File.ReadAllBytes(TestData.Model(fixture)), got = File.ReadAllBytes(ours);
        Assert.True(want.AsSpan().SequenceEqual(got), $"{fixture}: {got.Length} bytes vs {want.Length}, first difference at {want.AsSpan().CommonPrefixLength(got)}");
    }

    [Theory]
    [InlineData("lfm2-tiny-f32.gguf", "tiny", SyntheticFileType.F32)]
    [InlineData("lfm2-tiny-f16.gguf", "tiny", SyntheticFileType.F16)]
    [InlineData("lfm2-small-q4_k_m.gguf", "small", SyntheticFileType.Q4_K_M)]
    public void Metadata_MatchesTheFixture(string file, string shape, SyntheticFileType type)
    {
        // Every key of the fixture with the same type and value: hyper-parameters, the trained BPE vocabulary
        // (tokens, types, merges), special ids and the chat template. (Key order differs for llama-quantize output.)
        // Metadata does not depend on the weights, so the writer's entries are compared without writing tensors.
        var writer = SyntheticModel.CreateWriter(new SyntheticModelOptions { Shape = ModelShape.Preset(shape), FileType = type });
        var got = new GgufMetadata(writer.Metadata);
        using var want = GgufFile.Open(Path.Combine(TestData.Fixtures, "models", file));
        Assert.Equal(want.Metadata.Keys.Order(StringComparer.Ordinal), got.Keys.Order(StringComparer.Ordinal));
        foreach (var e in want.Metadata)
        {
            var v = got[e.Key];
            Assert.True(e.Value.Type == v.Type && e.Value.ElementType == v.ElementType, $"{e.Key}: type {v.Type}/{v.ElementType}, fixture {e.Value.Type}/{e.Value.ElementType}");
            Assert.True(e.Value.ToDisplayString(int.MaxValue) == v.ToDisplayString(int.MaxValue), $"{e.Key} differs");
        }
        Assert.Equal(want.Metadata.GetStringArray("tokenizer.ggml.merges"), got.GetStringArray("tokenizer.ggml.merges"));
        Assert.Equal(want.Metadata.GetStringArray("tokenizer.ggml.tokens"), got.GetStringArray("tokenizer.ggml.tokens"));
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
