using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Kernels.Tests.Quant;

namespace LfmSharp.Kernels.Tests;

/// <summary>
/// IQ4_NL prefill on Q4_0's VNNI pairs kernels (<see cref="IQ4Packed.PackIQ4NLPairs"/>: levels stored as v + 128, the
/// kernels subtract 128·Σa per block): every batch size, with and without the interleaved copy, gives the row dots'
/// bits, including activations at ±127 against the widest biased level 241.
/// </summary>
/// <remarks>
/// The matmul tests run on whatever path the table picks here (pairs with AVX-VNNI, the signed Q8_0 GEMM with AVX2
/// only), so they also hold the fallback; the direct kernel test needs vpdpbusd (maddubs would saturate on 241·127·2).
/// </remarks>
public sealed unsafe class IQ4FastPathPairsTests
{
    /// <summary>Random IQ4_NL rows (any nibble) with f16 block scales of either sign in [2^-12, 2^-6).</summary>
    private static byte[] Weights(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        int rowBytes = (int)GgmlTypes.RowBytes(GgmlType.IQ4_NL, cols);
        var bytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        rng.NextBytes(bytes);
        for (int o = 0; o < bytes.Length; o += 18)
        {
            // Every block's first level is 113 (nibble 15, biased 241), the widest u8 operand of vpdpbusd.
            bytes[o + 2] |= 0x0F;
            var d = (Half)((rng.NextDouble() + 0.25) / 64 * (rng.Next(2) == 0 ? 1 : -1));
            BitConverter.TryWriteBytes(bytes.AsSpan(o, 2), BitConverter.HalfToUInt16Bits(d));
        }
        return bytes;
    }

    /// <summary>
    /// Activations whose every third block (shifted per token) is ±1 only — quantized to ±127 throughout, the Q8_0
    /// quantizer's extremes (it never writes −128) — and random values with spikes elsewhere.
    /// </summary>
    private static float[] Activations(int tokens, int cols, int seed)
    {
        var rng = new Random(seed);
        var x = new float[tokens * cols];
        for (int t = 0; t < tokens; t++)
            for (int i = 0; i < cols; i++)
                x[t * cols + i] = (i / 32 + t) % 3 == 0
                    ? (rng.Next(2) == 0 ? 1f : -1f)
                    : (float)(rng.NextDouble() * 2 - 1) * (i % 37 == 0 ? 8 : 1);
        return x;
    }

    /// <summary>
    /// Batches 1–21 (odd and even token counts: decode, the 16-row × 2-token kernel with an odd last token, the 8 × 4
    /// kernel with ragged tiles) over row counts that are not a multiple of 16 (a lone group after the pairs) nor, for
    /// 44 and 20, of 8 (row dots for the rest), from the GGUF rows and, where the rows allow one, from the copy alone.
    /// </summary>
    [Avx2Theory]
    [InlineData(24, 256)]
    [InlineData(40, 96)]
    [InlineData(44, 128)]
    [InlineData(20, 64)]
    [InlineData(8, 512)]
    public void MatMulGivesTheRowDotsBitsForEveryBatch(int rows, int cols)
    {
        const int maxTokens = 21;
        var bytes = Weights(rows, cols, rows * 7 + cols);
        var x = Activations(maxTokens, cols, rows);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, maxTokens, cols);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        fixed (byte* p = bytes, q = il)
        {
            var plain = new WeightMatrix(GgmlType.IQ4_NL, rows, cols, p);
            var yRef = new float[maxTokens * rows];
            MatMul.Reference(plain, x, yRef, MatMulPrecision.LlamaCpp);
            Assert.Contains(yRef, v => v != 0f);
            AssertEveryBatch(plain, x, yRef, ws, "GGUF rows");
            if (!WeightMatrix.CanInterleave(GgmlType.IQ4_NL, rows))
            {
                Assert.NotEqual(0, rows % 8);   // only ragged row counts lack the copy on an AVX2 machine
                return;
            }
            WeightMatrix.InterleaveRows(GgmlType.IQ4_NL, cols, bytes, il);
            var w = plain.WithInterleaved(q);
            Array.Clear(bytes);   // only the copy holds the weights now
            AssertEveryBatch(w, x, yRef, ws, "copy");
        }
    }

    private static void AssertEveryBatch(in WeightMatrix w, float[] x, float[] yRef, MatMulWorkspace ws, string what)
    {
        for (int n = 1; n <= 21; n++)
        {
            var y = new float[n * w.Rows];
            MatMul.Compute(w, x.AsSpan(0, n * w.Columns), y, ws);
            for (int i = 0; i < y.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(yRef[i]) == BitConverter.SingleToInt32Bits(y[i]),
                    $"IQ4_NL {what} batch {n} row {i % w.Rows} token {i / w.Rows}: {y[i]:R} vs {yRef[i]:R}");
        }
    }

    /// <summary>
    /// The table's choice on a VNNI machine, and the pairs packing (from GGUF rows and from the copy, byte for byte the
    /// same) with the 8 × 4 and 16 × 2 kernels called directly, the 128·Σq sums computed here, against the row dot.
    /// </summary>
    [VnniTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void PairsKernelsGiveTheRowDotsBits(bool fromCopy)
    {
        const int rows = 16, cols = 512, nb = cols / 32, tokens = 4;
        var k = TypeTraits.For(GgmlType.IQ4_NL);
        Assert.Equal(ActivationSide.Q8_0ScalesAndSums128, k.Side);
        Assert.True(k.Gemm16 != null);
        Assert.Equal(IQ4Packed.NLBlockBytes, k.PackedBlockBytes);
        int rowBytes = nb * 18, actBytes = nb * 34;
        var bytes = Weights(rows, cols, 91);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        WeightMatrix.InterleaveRows(GgmlType.IQ4_NL, cols, bytes, il);
        var x = Activations(tokens, cols, 4);
        var act = GC.AllocateArray<byte>(tokens * actBytes, pinned: true);
        var d = GC.AllocateArray<float>(tokens * nb, pinned: true);
        var sums = GC.AllocateArray<int>(tokens * nb, pinned: true);
        for (int t = 0; t < tokens; t++)
        {
            Quantize.Row(GgmlType.Q8_0, x.AsSpan(t * cols, cols), act.AsSpan(t * actBytes, actBytes));
            for (int b = 0; b < nb; b++)
            {
                int o = t * actBytes + 34 * b, s = 0;
                d[t * nb + b] = (float)BitConverter.ToHalf(act, o);
                for (int i = 0; i < 32; i++)
                    s += (sbyte)act[o + 2 + i];
                sums[t * nb + b] = 128 * s;
            }
        }
        Assert.Contains(act, v => v == 127);
        Assert.Contains(act, v => v == 0x81);   // −127
        var packed = GC.AllocateArray<byte>(2 * nb * IQ4Packed.NLBlockBytes, pinned: true);
        var other = GC.AllocateArray<byte>(packed.Length, pinned: true);
        var want = new float[tokens * rows];
        var got = new float[tokens * rows];
        fixed (byte* w = bytes, g = il, a = act, pk = packed, po = other)
        fixed (float* pd = d, py = got)
        fixed (int* ps = sums)
        {
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < rows; r++)
                    want[t * rows + r] = k.DotSimd(w + r * rowBytes, a + t * actBytes, nb);
            for (int grp = 0; grp < 2; grp++)
            {
                byte* dst = pk + grp * nb * IQ4Packed.NLBlockBytes, alt = po + grp * nb * IQ4Packed.NLBlockBytes;
                if (fromCopy) IQ4Packed.PackIQ4NLx8Pairs(g + grp * 8 * rowBytes, nb, dst); else IQ4Packed.PackIQ4NLPairs(w + grp * 8 * rowBytes, rowBytes, nb, dst);
                if (fromCopy) IQ4Packed.PackIQ4NLPairs(w + grp * 8 * rowBytes, rowBytes, nb, alt); else IQ4Packed.PackIQ4NLx8Pairs(g + grp * 8 * rowBytes, nb, alt);
            }
            Assert.Equal(packed, other);

            // 8 × 4: each group against all four tokens; outputs [token][row].
            for (int grp = 0; grp < 2; grp++)
            {
                var tile = new PackedGemm.TokenTile
                {
                    A0 = a, A1 = a + actBytes, A2 = a + 2 * actBytes, A3 = a + 3 * actBytes,
                    D0 = pd, D1 = pd + nb, D2 = pd + 2 * nb, D3 = pd + 3 * nb,
                    S0 = ps, S1 = ps + nb, S2 = ps + 2 * nb, S3 = ps + 3 * nb,
                    Y0 = py + 8 * grp, Y1 = py + rows + 8 * grp, Y2 = py + 2 * rows + 8 * grp, Y3 = py + 3 * rows + 8 * grp,
                };
                PackedGemm.KernelQ4_0Pairs<VnniDot>(pk + grp * nb * IQ4Packed.NLBlockBytes, nb, tile);
            }
            AssertBits(want, got, "8 x 4");

            // 16 × 2: both groups, tokens (0, 1) then (2, 3).
            Array.Clear(got);
            for (int t0 = 0; t0 < tokens; t0 += 2)
            {
                var tile = new PackedGemm.TokenTile
                {
                    A0 = a + t0 * actBytes, A1 = a + (t0 + 1) * actBytes, D0 = pd + t0 * nb, D1 = pd + (t0 + 1) * nb,
                    S0 = ps + t0 * nb, S1 = ps + (t0 + 1) * nb,
                    Y0 = py + t0 * rows, Y1 = py + (t0 + 1) * rows, Y2 = py + t0 * rows + 8, Y3 = py + (t0 + 1) * rows + 8,
                };
                PackedGemm.KernelQ4_0Pairs16<VnniDot>(pk, nb, tile);
            }
            AssertBits(want, got, "16 x 2");
        }
    }

    private static void AssertBits(float[] want, float[] got, string what)
    {
        Assert.Contains(want, v => v != 0f);
        for (int i = 0; i < want.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"{what} token {i / 16} row {i % 16}: {got[i]:R} vs {want[i]:R}");
    }
}
