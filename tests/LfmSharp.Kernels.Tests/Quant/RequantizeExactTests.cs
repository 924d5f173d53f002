using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// Oracle: llama-quantize's own output. lfm2-tiny-{q8_0,q4_0,q4_k_m}.gguf were made by llama-quantize (no imatrix)
/// from lfm2-tiny-f32.gguf, so re-quantizing each f32 tensor with our reference quantizer for the type the file
/// stores must give exactly the file's bytes. tiny has 64-wide rows, so llama-quantize fell back from Q4_K to Q5_0 and
/// from Q6_K to Q8_0 (fixtures README §2): these files exercise Q8_0, Q4_0 and Q5_0.
/// lfm2-tiny-f16.gguf came from the generator (numpy astype(float16), round to nearest even), which must match F16.
/// </summary>
public class RequantizeExactTests(ITestOutputHelper output)
{
    private const string Master = "lfm2-tiny-f32.gguf";

    [Theory]
    [InlineData("lfm2-tiny-q8_0.gguf")]
    [InlineData("lfm2-tiny-q4_0.gguf")]
    [InlineData("lfm2-tiny-q4_k_m.gguf")]
    [InlineData("lfm2-tiny-f16.gguf")]
    public void ReferenceQuantizerReproducesFileBytes(string quantFile)
    {
        var seen = new Dictionary<GgmlType, int>();
        foreach (FixtureTensor q in QuantFixtures.Tensors(quantFile))
        {
            FixtureTensor f = QuantFixtures.Tensor(Master, q.Name);
            Assert.Equal(f.Ne, q.Ne);
            float[] master = QuantFixtures.F32Data(Master, f);

            byte[] ours = new byte[q.ByteSize];
            // Row by row: the K/legacy reference quantizers are row-agnostic, but this is how a converter would call it.
            for (int r = 0; r < q.RowCount; r++)
                Quantize.RowReference(q.Type, master.AsSpan(r * q.RowLength, q.RowLength), ours.AsSpan(r * q.RowBytes, q.RowBytes));

            ReadOnlySpan<byte> expected = QuantFixtures.Data(quantFile, q);
            int firstDiff = expected.CommonPrefixLength(ours);
            Assert.True(firstDiff == ours.Length,
                $"{quantFile} {q.Name} ({q.Type}): first differing byte at {firstDiff} (block {firstDiff / GgmlTypes.TypeSize(q.Type)})");
            seen[q.Type] = seen.GetValueOrDefault(q.Type) + 1;
        }
        output.WriteLine($"{quantFile}: identical tensors by type: {string.Join(", ", seen.Select(kv => $"{kv.Key}×{kv.Value}"))}");
        Assert.Contains(seen.Keys, t => t != GgmlType.F32);
    }
}
