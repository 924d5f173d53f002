using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The activation quantizers the matmul uses (Q8_0, Q8_1, Q8_K). Checked against their definition (fixtures README §5
/// and ggml-quants.c), independently of our own code: the extreme element hits ±127, every value is within half a step,
/// bsums / s are the sums they claim to be; and QuantizeRow must equal QuantizeRowReference (guards future SIMD paths).
/// </summary>
public class ActivationQuantizerTests
{
    private static float[] Data(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        // Exact ties of the rounding: half-integers after scaling (x = (k + 0.5)·amax/127) in the first block.
        if (n >= 32)
        {
            x[0] = 127f;
            for (int i = 1; i < 32; i++)
                x[i] = (i - 16) + 0.5f;
        }
        return x;
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.Q8_K)]
    public void QuantizeRowEqualsReference(GgmlType type)
    {
        foreach (int seed in new[] { 1, 2, 3 })
        {
            float[] x = Data(2048, seed, seed == 3 ? 1e-3f : 1f);
            var a = new byte[GgmlTypes.RowBytes(type, x.Length)];
            var b = new byte[a.Length];
            Quantize.Row(type, x, a);
            Quantize.RowReference(type, x, b);
            Assert.Equal(b, a);
        }
    }

    [Fact]
    public void Q8KMatchesItsDefinition()
    {
        float[] x = Data(1024, 7);
        x[300] = -9f; // a negative extreme in block 1: iscale = -127/max flips the sign convention there
        var q = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, x.Length)];
        Q8K.QuantizeRow(x, q);
        var blocks = MemoryMarshal.Cast<byte, BlockQ8K>(q);
        for (int b = 0; b < blocks.Length; b++)
        {
            ref readonly BlockQ8K blk = ref blocks[b];
            var xs = x.AsSpan(b * 256, 256);
            int imax = 0;
            for (int j = 1; j < 256; j++)
                if (MathF.Abs(xs[j]) > MathF.Abs(xs[imax])) imax = j;
            // The extreme element maps to exactly -127 (iscale = -127/max), so d = -max/127 carries the sign.
            Assert.Equal(-127, blk.Qs[imax]);
            Assert.Equal(1f / (-127f / xs[imax]), blk.D);
            for (int j = 0; j < 256; j++)
                Assert.True(MathF.Abs(xs[j] - blk.D * blk.Qs[j]) <= 0.5f * MathF.Abs(blk.D) * 1.0001f, $"block {b} value {j}");
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += blk.Qs[16 * g + j];
                Assert.Equal(sum, blk.BSums[g]);
            }
        }
    }

    [Fact]
    public void Q8_0AndQ8_1MatchTheirDefinition()
    {
        float[] x = Data(512, 11);
        var q0 = new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, x.Length)];
        var q1 = new byte[GgmlTypes.RowBytes(GgmlType.Q8_1, x.Length)];
        Q8_0.QuantizeRow(x, q0);
        Q8_1.QuantizeRow(x, q1);
        var b0 = MemoryMarshal.Cast<byte, BlockQ8_0>(q0);
        var b1 = MemoryMarshal.Cast<byte, BlockQ8_1>(q1);
        for (int b = 0; b < b0.Length; b++)
        {
            var xs = x.AsSpan(b * 32, 32);
            float amax = 0;
            foreach (float v in xs) amax = MathF.Max(amax, MathF.Abs(v));
            float d = amax / 127f;
            Assert.Equal((Half)d, b0[b].D);
            int sum = 0;
            for (int j = 0; j < 32; j++)
            {
                // roundf: ties away from zero (the AVX path would round them to even).
                int expected = (int)MathF.Round(xs[j] * (1f / d), MidpointRounding.AwayFromZero);
                Assert.Equal(expected, b0[b].Qs[j]);
                Assert.Equal(expected, b1[b].Qs[j]);
                sum += expected;
            }
            Assert.Equal(b0[b].D, b1[b].D);
            Assert.Equal((Half)(sum * d), b1[b].S);
        }
        // Block 0 holds exact ties (x = k + 0.5 with amax = 127, so d = 1): ties must go away from zero.
        Assert.Equal(-15, b0[0].Qs[1]); // -14.5
        Assert.Equal(1, b0[0].Qs[16]);  // 0.5 (round-half-even would give 0)
        Assert.Equal(16, b0[0].Qs[31]); // 15.5
    }

    [Fact]
    public void AllZeroBlocksQuantizeToZero()
    {
        var x = new float[512];
        foreach (GgmlType t in new[] { GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q8_K, GgmlType.Q4_0, GgmlType.Q4_1,
                     GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            var q = new byte[GgmlTypes.RowBytes(t, x.Length)];
            Array.Fill(q, (byte)0xAB);
            Quantize.RowReference(t, x, q);
            var y = new float[x.Length];
            Array.Fill(y, float.NaN);
            Dequantize.Row(t, q, y);
            Assert.All(y, v => Assert.Equal(0f, v));
        }
    }
}
