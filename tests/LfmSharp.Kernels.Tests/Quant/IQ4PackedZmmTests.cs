using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The zmm IQ4_XS GEMM (16 rows × 4 tokens; <see cref="IQ4Packed.KernelIQ4XSZmm16"/>) against the row dot
/// (<see cref="IQ4XS.DotAvx2"/>) bit for bit, packed from GGUF rows and from the interleaved block copy (the same bytes).
/// </summary>
public sealed unsafe class IQ4PackedZmmTests
{
    /// <summary>
    /// Each 8-row half and each token filled by <see cref="MatVec8IQ4XSTests.Fill"/>: trials 0-3 all nibbles 0 or 15
    /// (levels −127 / 113, sub-block scales −32 / 31) against activations all −128 or 127 — the pair sums at their
    /// limits and the sign XOR on −128 — then every 6-bit scale, an Inf and a NaN d, random blocks. 1, 3 and 8
    /// super-blocks (odd counts, and a panel wider than L1).
    /// </summary>
    [Avx512Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(8)]
    public void ZmmKernelGivesTheRowDotsBits(int nb)
    {
        int rowBytes = nb * 136, actRow = nb * 292;
        var rng = new Random(41 + nb);
        var half = new byte[8 * rowBytes];
        var one = new byte[actRow];
        var w = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var il = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        var pz = GC.AllocateArray<byte>(nb * IQ4Packed.XSZmm16BlockBytes, pinned: true);
        var pzX8 = GC.AllocateArray<byte>(pz.Length, pinned: true);
        var y = new float[64];
        var yX8 = new float[64];
        int trials = nb == 8 ? 16 : 40;
        for (int trial = 0; trial < trials; trial++)
        {
            for (int g = 0; g < 2; g++)
            {
                MatVec8IQ4XSTests.Fill(half, one, nb, trial < 4 ? (trial + g) % 4 : trial, rng);
                half.CopyTo(w, g * 8 * rowBytes);
            }
            for (int t = 0; t < 4; t++)
            {
                MatVec8IQ4XSTests.Fill(half, one, nb, trial < 4 ? (trial + t) % 4 : trial, rng);
                one.CopyTo(act, t * actRow);
            }
            // The interleaved block copy: block b of a group's 8 rows side by side.
            for (int r = 0; r < 16; r++)
                for (int b = 0; b < nb; b++)
                    w.AsSpan(r * rowBytes + b * 136, 136).CopyTo(il.AsSpan((r / 8) * 8 * rowBytes + (8 * b + r % 8) * 136));
            Array.Fill(y, 12345f);
            Array.Fill(yX8, 12345f);
            fixed (byte* pw = w, pi = il, pa = act, pp = pz, ppx = pzX8)
            fixed (float* py = y, pyx = yX8)
            {
                IQ4Packed.PackIQ4XSZmm16(pw, rowBytes, nb, pp);
                IQ4Packed.PackIQ4XSx8Zmm16(pi, 8 * rowBytes, nb, ppx);
                IQ4Packed.KernelIQ4XSZmm16(pp, nb, TokenTiles.Consecutive(pa, actRow, 0, null, null, py, 16));
                IQ4Packed.KernelIQ4XSZmm16(ppx, nb, TokenTiles.Consecutive(pa, actRow, 0, null, null, pyx, 16));
                Assert.Equal(pz, pzX8);
                for (int t = 0; t < 4; t++)
                    for (int r = 0; r < 16; r++)
                    {
                        float want = IQ4XS.DotAvx2(pw + r * rowBytes, pa + t * actRow, nb);
                        Assert.True(Decode8Check.SameBits(want, y[16 * t + r]), $"nb {nb} trial {trial} token {t} row {r}: {y[16 * t + r]:R} vs {want:R}");
                        Assert.True(Decode8Check.SameBits(want, yX8[16 * t + r]), $"nb {nb} trial {trial} token {t} row {r} (copy)");
                    }
            }
            if (trial is 9 or 10)
                Assert.Contains(y, v => !float.IsFinite(v));
        }
    }
}
