using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The AVX-512 8-row decode kernels of Q2_K and Q3_K (<see cref="MatVec8Q2K"/>, <see cref="MatVec8Q3K"/>) against the
/// row dots (DotAvx2, the engine's canonical order; for Q2_K also the scalar's), bit for bit, on random and extreme blocks (every scale, min and hmask bit pattern; activations at
/// the int8 limits), over GGUF rows and over the interleaved block copy, and with an Inf scale (the exact fallback).
/// </summary>
public sealed unsafe class MatVec8LowKTests
{
    [Avx512Fact]
    public void Q2KDecodeGivesTheRowDotsBits() => Check(GgmlType.Q2_K, 84, 80, &MatVec8Q2K.Group, &MatVec8Q2K.GroupBlocks);

    [Avx512Fact]
    public void Q3KDecodeGivesTheRowDotsBits() => Check(GgmlType.Q3_K, 110, 108, &MatVec8Q3K.Group, &MatVec8Q3K.GroupBlocks);

    /// <summary>
    /// 1 to 8 super-blocks (odd counts leave the last row pair's blocks unshared) with the fills of
    /// <see cref="MatVec8Avx2KTests"/>: every byte 0x00 or 0xFF (q = 3, sc = m = 15 against activations of all −128 or
    /// 127: the int16 and int32 extremes), every scale/min value, and Inf, NaN and −Inf d/dmin; against the format's order.
    /// </summary>
    [Avx512Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Q2KDecodeGivesTheFormatsBits(int nb)
        => Decode8Check.Run(84, nb, 61 + nb, MatVec8Avx2KTests.FillQ2K, MatVec8Avx2KTests.CanonicalQ2K, &Q2K.DotAvx2, &MatVec8Q2K.Group, &MatVec8Q2K.GroupBlocks);

    /// <summary>As <see cref="Q2KDecodeGivesTheFormatsBits"/> for Q3_K (every hmask bit pattern, all 64 scales, Inf/NaN/−Inf d).</summary>
    [Avx512Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Q3KDecodeGivesTheFormatsBits(int nb)
        => Decode8Check.Run(110, nb, 71 + nb, MatVec8Avx2KTests.FillQ3K, MatVec8Avx2KTests.CanonicalQ3K, &Q3K.DotAvx2, &MatVec8Q3K.Group, &MatVec8Q3K.GroupBlocks);

    /// <summary>
    /// 8 rows of 3 blocks of <paramref name="blockBytes"/> random bytes (trials 0-3: all bits 0 or 1 against
    /// activations of −128 or 127), each f16 scale at <paramref name="scaleAt"/> (and dmin after it for Q2_K) a random
    /// finite value, in trial 5 one Inf; the outputs of both layouts must be the row dots' bits.
    /// </summary>
    private static void Check(GgmlType type, int blockBytes, int scaleAt, delegate*<in Group8, void> rows, delegate*<in Group8, void> blocks)
    {
        const int nb = 3;
        int rowBytes = nb * blockBytes;
        var rng = new Random(5);
        var w = new byte[8 * rowBytes];
        var il = new byte[8 * rowBytes];
        var act = new byte[nb * 292];
        var y = new float[8];
        for (int trial = 0; trial < 300; trial++)
        {
            for (int i = 0; i < w.Length; i++)
                w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
            for (int r = 0; r < 8; r++)
                for (int b = 0; b < nb; b++)
                    for (int h = 0; h < (type == GgmlType.Q2_K ? 2 : 1); h++)
                        BitConverter.TryWriteBytes(w.AsSpan(r * rowBytes + b * blockBytes + scaleAt + 2 * h), (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
            if (trial == 5)
                BitConverter.TryWriteBytes(w.AsSpan(3 * rowBytes + blockBytes + scaleAt), (ushort)0x7C00);
            FillActivations(act, nb, trial, rng);
            for (int b = 0; b < nb; b++)
                for (int r = 0; r < 8; r++)
                    w.AsSpan(r * rowBytes + b * blockBytes, blockBytes).CopyTo(il.AsSpan((8 * b + r) * blockBytes));
            var want = new float[8];
            fixed (byte* pw = w, pi = il, pa = act)
            fixed (float* py = y)
            {
                for (int r = 0; r < 8; r++)
                    want[r] = TypeTraits.For(type).DotSimd(pw + r * rowBytes, pa, nb);
                if (type == GgmlType.Q2_K)   // Q2_K's row dot is the scalar's float steps (Q3_K's ends each block with an fma)
                    for (int r = 0; r < 8; r++)
                        Assert.Equal(want[r], TypeTraits.For(type).DotScalar(w.AsSpan(r * rowBytes, rowBytes), act, nb));
                var g = new Group8 { Rows = pw, RowBytes = rowBytes, Interleaved = pi, Nb = nb, Act = pa, Y = py };
                foreach (var kernel in new[] { (nint)rows, (nint)blocks })
                {
                    Array.Clear(y);
                    ((delegate*<in Group8, void>)kernel)(in g);
                    for (int r = 0; r < 8; r++)
                        Assert.True(BitConverter.SingleToInt32Bits(want[r]) == BitConverter.SingleToInt32Bits(y[r]) || (float.IsNaN(want[r]) && float.IsNaN(y[r])),
                            $"{type} trial {trial} row {r} ({(kernel == (nint)rows ? "rows" : "blocks")}): {y[r]:R} vs {want[r]:R}");
                }
            }
        }
    }

    /// <summary>Q8_K blocks: a random f32 d, quants random (or all −128 / 127 in trials 0-3) and their bsums (shared with <see cref="MatVec8IQ4XSTests"/> and <see cref="MatVec8Q5KTests"/>).</summary>
    internal static void FillActivations(byte[] act, int nb, int trial, Random rng)
    {
        for (int b = 0; b < nb; b++)
        {
            var blk = act.AsSpan(b * 292, 292);
            BitConverter.TryWriteBytes(blk, (float)(rng.NextDouble() * 0.1));
            for (int i = 0; i < 256; i++)
                blk[4 + i] = (byte)(trial < 4 ? (trial < 2 ? -128 : 127) : rng.Next(-128, 128));
            for (int j = 0; j < 16; j++)
            {
                int s = 0;
                for (int l = 0; l < 16; l++)
                    s += (sbyte)blk[4 + 16 * j + l];
                BitConverter.TryWriteBytes(blk.Slice(260 + 2 * j), (short)s);
            }
        }
    }
}
