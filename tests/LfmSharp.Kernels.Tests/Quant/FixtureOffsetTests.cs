using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The quant tests read tensor bytes through models/tensor-types.json. Cross-check that listing against the GGUF
/// reader: its offsets are absolute, i.e. GgufFile.DataOffset + GgufTensorInfo.Offset (which is data-relative),
/// and type, shape and bytes agree for every tensor of every fixture.
/// </summary>
public class FixtureOffsetTests
{
    [Theory]
    [InlineData("lfm2-tiny-f32.gguf")]
    [InlineData("lfm2-tiny-f16.gguf")]
    [InlineData("lfm2-tiny-q8_0.gguf")]
    [InlineData("lfm2-tiny-q4_0.gguf")]
    [InlineData("lfm2-tiny-q4_k_m.gguf")]
    [InlineData("lfm2-small-q8_0.gguf")]
    [InlineData("lfm2-small-q4_0.gguf")]
    [InlineData("lfm2-small-q4_k_m.gguf")]
    public void TensorTypesJsonOffsetsAreAbsoluteAndAgreeWithTheReader(string file)
    {
        using var gguf = GgufFile.Open(TestData.Model(file));
        var listed = QuantFixtures.Tensors(file);
        Assert.Equal(gguf.Tensors.Count, listed.Count);
        foreach (FixtureTensor t in listed)
        {
            GgufTensorInfo info = gguf.GetTensor(t.Name);
            Assert.Equal(t.Type, info.Type);
            Assert.Equal(t.Ne, info.Dimensions);
            Assert.Equal(gguf.DataOffset + info.Offset, t.Offset);
            Assert.True(gguf.GetTensorData(info).SequenceEqual(QuantFixtures.Data(file, t)), t.Name);
        }
    }
}
