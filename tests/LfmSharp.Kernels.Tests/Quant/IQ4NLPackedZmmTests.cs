using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The zmm IQ4_NL GEMM (16 rows × 4 tokens; <see cref="IQ4Packed.KernelIQ4NLZmm16"/>) against the row dot
/// (<see cref="IQ4NL.DotAvx2"/>) bit for bit, and against the 8-row packed path it replaces
/// (<see cref="PackedGemm.KernelQ8_0Dot4{TDot}"/> on <see cref="IQ4Packed.PackIQ4NL"/>) where the activations lie in ±127
/// (that path's sign move wraps at −128), packed from GGUF rows and from the interleaved copy (the same bytes).
/// </summary>
public sealed unsafe class IQ4NLPackedZmmTests
{
    /// <summary>
    /// Trials 0-3 fill all nibbles 0 or 15 (levels −127 / 113) per row against activations all −128 or 127 — the pair
    /// sums at their limits and the sign XOR on −128 — then random blocks with random activations in ±127. Negative and
    /// subnormal weight scales always; trial 4 has an Inf and a NaN d. 1, 3, 7 and 64 blocks (odd counts, and a panel
    /// wider than L1).
    /// </summary>
    [Avx512Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(64)]
    public void ZmmKernelGivesTheRowDotsBits(int nb)
    {
        int rowBytes = nb * 18, actRow = nb * 34;
        var rng = new Random(53 + nb);
        var w = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var il = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        var d = GC.AllocateArray<float>(4 * nb, pinned: true);
        var pz = GC.AllocateArray<byte>(nb * IQ4Packed.NLZmm16BlockBytes, pinned: true);
        var pzX8 = GC.AllocateArray<byte>(pz.Length, pinned: true);
        var p8 = GC.AllocateArray<byte>(nb * IQ4Packed.NLBlockBytes, pinned: true);
        var y = new float[64];
        var yX8 = new float[64];
        var y8 = new float[64];
        for (int trial = 0; trial < 12; trial++)
        {
            Fill(w, act, d, nb, trial, rng);
            Array.Fill(y, 12345f);
            Array.Fill(yX8, 12345f);
            fixed (byte* pw = w, pi = il, pa = act, pp = pz, ppx = pzX8, pq = p8)
            fixed (float* pd = d, py = y, pyx = yX8, py8 = y8)
            {
                for (int grp = 0; grp < 2; grp++)
                {
                    byte* g = pw + grp * 8 * rowBytes;
                    Interleaved8.PackGroup(GgmlType.IQ4_NL, g, rowBytes, nb, pi + grp * 8 * rowBytes);
                    IQ4Packed.PackIQ4NL(g, rowBytes, nb, pq);
                    PackedGemm.KernelQ8_0Dot4<Avx2Dot>(pq, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, py8 + 8 * grp, 16));
                }
                IQ4Packed.PackIQ4NLZmm16(pw, rowBytes, nb, pp);
                IQ4Packed.PackIQ4NLx8Zmm16(pi, 8 * rowBytes, nb, ppx);
                IQ4Packed.KernelIQ4NLZmm16(pp, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, py, 16));
                IQ4Packed.KernelIQ4NLZmm16(ppx, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, pyx, 16));
                Assert.Equal(pz, pzX8);
                for (int t = 0; t < 4; t++)
                    for (int r = 0; r < 16; r++)
                    {
                        float want = IQ4NL.DotAvx2(pw + r * rowBytes, pa + t * actRow, nb);
                        int i = 16 * t + r;
                        Assert.True(Decode8Check.SameBits(want, y[i]), $"nb {nb} trial {trial} token {t} row {r}: {y[i]:R} vs {want:R}");
                        Assert.True(Decode8Check.SameBits(want, yX8[i]), $"nb {nb} trial {trial} token {t} row {r} (copy)");
                        if (trial >= 4)
                            Assert.True(Decode8Check.SameBits(y8[i], y[i]), $"nb {nb} trial {trial} token {t} row {r}: {y[i]:R} vs the 8-row path's {y8[i]:R}");
                    }
            }
            if (trial == 4)
                Assert.Contains(y, v => !float.IsFinite(v));
            Assert.Contains(y, v => v != 0f && float.IsFinite(v));
        }
    }

    /// <summary>16 IQ4_NL rows and 4 Q8_0 token rows (with their scales as f32 in <paramref name="d"/>) for one trial.</summary>
    private static void Fill(byte[] w, byte[] act, float[] d, int nb, int trial, Random rng)
    {
        int rowBytes = nb * 18, actRow = nb * 34;
        rng.NextBytes(w);
        rng.NextBytes(act);
        for (int r = 0; r < 16; r++)
            for (int b = 0; b < nb; b++)
            {
                int o = r * rowBytes + b * 18;
                int bits = r == 5 ? rng.Next(1, 0x400) : rng.Next(0x3000, 0x4400);
                if (r == 3 || r == 12)
                    bits |= 0x8000;
                if (trial == 4 && b == nb - 1 && r is 9 or 14)
                    bits = r == 9 ? 0x7C00 : 0x7E00;
                BitConverter.TryWriteBytes(w.AsSpan(o, 2), (ushort)bits);
                if (trial < 4)
                    w.AsSpan(o + 2, 16).Fill(((r + trial) % 4) switch { 0 => 0x00, 1 => 0xFF, 2 => 0x0F, _ => 0xF0 });
            }
        for (int t = 0; t < 4; t++)
            for (int b = 0; b < nb; b++)
            {
                int o = t * actRow + b * 34;
                var q = act.AsSpan(o + 2, 32);
                if (trial < 4)
                    q.Fill((t + trial) % 2 == 0 ? (byte)0x80 : (byte)0x7F);
                else
                    for (int i = 0; i < 32; i++)
                        q[i] = (byte)(sbyte)rng.Next(-127, 128);
                var h = (Half)((rng.NextDouble() - 0.3) * 0.02);
                BitConverter.TryWriteBytes(act.AsSpan(o, 2), h);
                d[t * nb + b] = (float)h;
            }
    }
}
