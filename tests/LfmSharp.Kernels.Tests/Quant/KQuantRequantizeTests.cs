using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The small model's f32 master is not shipped, so the K-quant reference quantizers are checked by a fixed-point
/// argument: take llama-quantize's Q4_K / Q6_K tensors, dequantize them (bit-exact, see DequantizeGoldenTests),
/// quantize the result again with our quantize_row_*_ref port and compare. The weights already sit on the
/// quantization grid, so a faithful port returns the same bytes for almost every block, and nearly all of the rest are
/// an equivalent encoding of the same values (Q6_K: one sub-block scale and its quants flip sign, because after
/// dequantization a different element is the first largest |x| that make_qx_quants keys on). Measured on the full
/// files: Q4_K 14267/14272 blocks byte-identical, 5 differ by one step in one 6-bit scale or min; Q6_K (q4_k_m)
/// 2144/2624 byte-identical, 2623/2624 value-identical. That residue is the search landing on a neighbouring optimum,
/// which quantize-of-dequantize does not rule out. What this catches: wrong packing, scale/min quantization or
/// re-quantization rounding. What it barely sees: the scale-search constants, because on-grid data is already fitted
/// exactly by the first min/max guess (changing Q4_K's rdelta 0.1 → 0.11 still passes here). The direct proof against
/// llama.cpp's own quantize_row_*_ref, which does catch that, is LfmSharp.Oracle.Tests/Quant/GgmlQuantOracleTests.
/// </summary>
public class KQuantRequantizeTests(ITestOutputHelper output)
{
    [Theory]
    // Q4_K's scale search costs ~20x Q6_K's, so only its first rows are checked (Debug builds run this unoptimized).
    [InlineData("lfm2-small-q4_k_m.gguf", GgmlType.Q4_K, 48, 0.995)]
    [InlineData("lfm2-small-q4_k_m.gguf", GgmlType.Q6_K, int.MaxValue, 0.75)]
    [InlineData("lfm2-small-q4_0.gguf", GgmlType.Q6_K, int.MaxValue, 0.75)]
    public void RequantizingDequantizedBlocksGivesTheSameBlocks(string file, GgmlType type, int maxRows, double minByteIdentical)
    {
        int blockBytes = GgmlTypes.TypeSize(type);
        int blockSize = GgmlTypes.BlockSize(type);
        long blocks = 0, byteIdentical = 0, valueIdentical = 0;
        float[] y1 = new float[blockSize], y2 = new float[blockSize];
        foreach (FixtureTensor t in QuantFixtures.Tensors(file).Where(t => t.Type == type))
        {
            int rows = Math.Min(maxRows, t.RowCount);
            ReadOnlySpan<byte> original = QuantFixtures.Data(file, t).Slice(0, rows * t.RowBytes);
            float[] values = new float[rows * t.RowLength];
            Dequantize.Row(type, original, values);
            byte[] again = new byte[original.Length];
            Quantize.RowReference(type, values, again);

            int same = 0, equivalent = 0, n = original.Length / blockBytes;
            for (int b = 0; b < n; b++)
            {
                ReadOnlySpan<byte> o = original.Slice(b * blockBytes, blockBytes);
                ReadOnlySpan<byte> a = again.AsSpan(b * blockBytes, blockBytes);
                if (o.SequenceEqual(a)) { same++; equivalent++; continue; }
                Dequantize.Row(type, o, y1);
                Dequantize.Row(type, a, y2);
                if (y1.AsSpan().SequenceEqual(y2))
                    equivalent++;
            }
            output.WriteLine($"{t.Name} rows 0..{rows - 1}: {same}/{n} blocks byte-identical, {equivalent}/{n} value-identical");
            blocks += n;
            byteIdentical += same;
            valueIdentical += equivalent;
        }
        double fraction = (double)byteIdentical / blocks;
        output.WriteLine($"{file} {type}: {byteIdentical}/{blocks} = {fraction:P2} byte-identical, {valueIdentical}/{blocks} value-identical");
        Assert.True(blocks > 0);
        Assert.True(fraction >= minByteIdentical, $"only {fraction:P2} byte-identical");
        Assert.True(blocks - valueIdentical <= blocks / 1000, $"{blocks - valueIdentical} blocks changed value");
    }
}
