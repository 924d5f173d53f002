using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The AVX2 8-row IQ4_NL decode kernels of machines without VNNI — <see cref="MatVec8IQ4.NLRing"/> over GGUF rows
/// (block scales through the ring of scale copies) and <see cref="MatVec8IQ4.NLx8{TDot}"/> over the interleaved copy —
/// against the row dot (<see cref="IQ4NL.DotAvx2"/>), bit for bit: blocks of all-0 / all-15 nibbles against
/// activations at the int8 limits, random blocks, f16 subnormal and Inf/NaN scales (the exact fallback), and block
/// counts below, at and past the ring's lead and its 8 slots. Where AVX-512 VBMI is present the levels are looked up
/// with vpermb on the unmasked bytes, else (and in the AVX2 leg) with vpshufb: both lookups are checked this way.
/// </summary>
public sealed unsafe class MatVec8IQ4NLAvx2Tests
{
    [Avx2Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(21)]
    public void DecodeGivesTheRowDotsBits(int nb)
    {
        int cols = 32 * nb, rowBytes = 18 * nb;
        var rng = new Random(5 + nb);
        var w = new byte[8 * rowBytes];
        var il = new byte[w.Length];
        var act = new byte[34 * nb];
        var scales = new float[nb];
        var y = new float[8];
        var want = new float[8];
        for (int trial = 0; trial < 200; trial++)
        {
            Fill(w, act, nb, trial, rng);
            for (int b = 0; b < nb; b++)
                scales[b] = (float)BitConverter.ToHalf(act, 34 * b);
            WeightMatrix.InterleaveRows(GgmlType.IQ4_NL, cols, w, il);
            fixed (byte* pw = w, pi = il, pa = act)
            fixed (float* ps = scales, py = y)
            {
                for (int r = 0; r < 8; r++)
                    want[r] = IQ4NL.DotAvx2(pw + r * rowBytes, pa, nb);
                var g = new Group8 { Rows = pw, RowBytes = rowBytes, Interleaved = pi, Nb = nb, Act = pa, Scales = ps, Y = py };
                for (int layout = 0; layout < 2; layout++)
                {
                    Array.Fill(y, 12345f);
                    if (layout == 0) MatVec8IQ4.NLRing(in g); else MatVec8IQ4.NLx8<Avx2Dot>(in g);
                    for (int r = 0; r < 8; r++)
                        Assert.True(Decode8Check.SameBits(want[r], y[r]), $"nb {nb} trial {trial} row {r} ({(layout == 0 ? "rows" : "copy")}): {y[r]:R} vs {want[r]:R}");
                }
            }
        }
    }

    /// <summary>
    /// Trials 0-3: every weight byte 0x00 or 0xFF (levels −127 / 113) against activations of all −128 or all 127;
    /// later trials random bytes. d is a random finite f16 (every third trial often subnormal), except in trial 9
    /// (one Inf) and 10 (one NaN) in row 5's last block.
    /// </summary>
    private static void Fill(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        int rowBytes = 18 * nb;
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int r = 0; r < 8; r++)
            for (int b = 0; b < nb; b++)
            {
                int bits = trial % 3 == 2 && rng.Next(2) == 0 ? rng.Next(1, 0x400) : rng.Next(0x7C00);
                BitConverter.TryWriteBytes(w.AsSpan(r * rowBytes + b * 18), (ushort)(bits | rng.Next(2) << 15));
            }
        if (trial is 9 or 10)
            BitConverter.TryWriteBytes(w.AsSpan(5 * rowBytes + (nb - 1) * 18), (ushort)(trial == 9 ? 0x7C00 : 0xFE01));
        for (int b = 0; b < nb; b++)
        {
            BitConverter.TryWriteBytes(act.AsSpan(34 * b), BitConverter.HalfToUInt16Bits((Half)(rng.NextDouble() / 64 + 1e-4)));
            for (int i = 0; i < 32; i++)
                act[34 * b + 2 + i] = trial < 4 ? (byte)(trial / 2 == 0 ? 0x80 : 0x7F) : (byte)rng.Next(256);
        }
    }
}
