using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;

namespace LfmSharp.Gguf.Tests;

public class GgufReaderTests
{
    [Theory]
    [InlineData("tiny-f32", 56)]
    [InlineData("tiny-q4_k_m", 56)]
    [InlineData("small-q4_k_m", 48)]
    public void Opens_fixture_models_and_reads_the_layer_pattern(string model, int tensorCount)
    {
        using var f = GgufFile.Open(TestData.Model(model));
        Assert.Equal(3u, f.Version);
        Assert.Equal(tensorCount, f.Tensors.Count);
        Assert.Equal("lfm2", f.Metadata.GetString("general.architecture"));
        int[] kv = f.Metadata.GetInt32Array("lfm2.attention.head_count_kv");
        int[] expected = model.StartsWith("tiny", StringComparison.Ordinal) ? [0, 0, 2, 0, 2, 0] : [0, 1, 0, 1, 0];
        Assert.Equal(expected, kv);
        Assert.Equal(f.Metadata.GetUInt32("lfm2.vocab_size"), (uint)f.Metadata.GetStringArray("tokenizer.ggml.tokens").Length);
    }

    [Fact]
    public void Tensor_directory_matches_tensor_types_json()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.Fixtures, "models", "tensor-types.json")));
        foreach (var file in doc.RootElement.EnumerateObject())
        {
            using var f = GgufFile.Open(TestData.Model(file.Name));
            var tensors = file.Value.GetProperty("tensors");
            int count = 0;
            foreach (var t in tensors.EnumerateArray())
            {
                var info = f.GetTensor(t.GetProperty("name").GetString()!);
                Assert.Equal(t.GetProperty("type").GetString(), GgmlTypes.Name(info.Type));
                Assert.Equal(t.GetProperty("ne").EnumerateArray().Select(e => e.GetInt64()).ToArray(), info.Dimensions);
                Assert.Equal(t.GetProperty("nbytes").GetInt64(), info.ByteSize);
                // tensor-types.json stores absolute file offsets.
                Assert.Equal(t.GetProperty("offset").GetInt64(), f.DataOffset + info.Offset);
                count++;
            }
            Assert.Equal(f.Tensors.Count, count);
        }
    }
}
