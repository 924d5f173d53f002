using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The zmm Q8_0 kernel (16 rows × 4 tokens; <see cref="PackedGemm.KernelQ8_0Zmm16"/>) against
/// the AVX2 8 × 4 kernel (<see cref="PackedGemm.KernelQ8_0Dot4{TDot}"/> with <see cref="Avx2Dot"/>) on each 8-row group:
/// the same bits per row and token, packed from GGUF rows and from the interleaved copy (the same bytes).
/// </summary>
public sealed unsafe class PackedGemmZmmQ8Tests
{
    /// <summary>
    /// Random rows and tokens over several block counts; the extreme case puts −128 and 127 weights against −128 and 127
    /// activations (the int16 pair sums at their limits) and an Inf scale. Negative and subnormal scales always.
    /// </summary>
    [Avx512Theory]
    [InlineData(1, false)]
    [InlineData(3, false)]
    [InlineData(16, false)]
    [InlineData(7, true)]
    public void ZmmKernelGivesTheAvx2KernelsBits(int nb, bool extreme)
    {
        const GgmlType type = GgmlType.Q8_0;
        int blockBytes = 34, rowBytes = nb * blockBytes, actRow = nb * 34;
        var rng = new Random(nb * 31 + (extreme ? 1 : 0));
        var w = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        rng.NextBytes(w);
        rng.NextBytes(act);
        for (int r = 0; r < 16; r++)
            for (int b = 0; b < nb; b++)
            {
                int o = r * rowBytes + b * blockBytes;
                int bits = r == 5 ? rng.Next(1, 0x400) : rng.Next(0x3000, 0x4400);
                if (r == 3 || r == 12)
                    bits |= 0x8000;
                if (extreme && r == 9 && b == nb - 1)
                    bits = 0x7C00;
                BitConverter.TryWriteBytes(w.AsSpan(o, 2), (ushort)bits);
                if (extreme)
                    w.AsSpan(o + 2, blockBytes - 2).Fill(r % 2 == 0 ? (byte)0x80 : (byte)0x7F);
            }
        var d = GC.AllocateArray<float>(4 * nb, pinned: true);
        for (int t = 0; t < 4; t++)
            for (int b = 0; b < nb; b++)
            {
                if (extreme)
                    act.AsSpan(t * actRow + b * 34 + 2, 32).Fill(t % 2 == 0 ? (byte)0x80 : (byte)0x7F);
                d[t * nb + b] = (float)((rng.NextDouble() - 0.3) * 0.02);
            }

        var want = new float[2 * 32];
        var got = new float[64];
        var gotX8 = new float[64];
        var pk = GC.AllocateArray<byte>(nb * 288, pinned: true);
        var pz = GC.AllocateArray<byte>(nb * PackedGemm.Zmm16BlockBytes, pinned: true);
        var pzX8 = GC.AllocateArray<byte>(nb * PackedGemm.Zmm16BlockBytes, pinned: true);
        var inter = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        fixed (byte* pw = w, pp = pk, pzz = pz, pzx = pzX8, pi = inter, pa = act)
        fixed (float* pd = d, py = want, pg = got, pgx = gotX8)
        {
            for (int grp = 0; grp < 2; grp++)
            {
                byte* g = pw + grp * 8 * rowBytes;
                PackedGemm.PackQ8_0(g, rowBytes, nb, pp);
                PackedGemm.KernelQ8_0Dot4<Avx2Dot>(pp, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, py + 32 * grp, 8));   // [group][token][row]
                Interleaved8.PackGroup(type, g, rowBytes, nb, pi + grp * 8 * rowBytes);
            }
            PackedGemm.PackQ8_0Zmm16(pw, rowBytes, nb, pzz);
            PackedGemm.PackQ8_0x8Zmm16(pi, 8 * rowBytes, nb, pzx);
            PackedGemm.KernelQ8_0Zmm16(pzz, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, pg, 16));
            PackedGemm.KernelQ8_0Zmm16(pzx, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, null, pgx, 16));
        }
        Assert.Equal(pz, pzX8);
        for (int i = 0; i < 64; i++)
        {
            int token = i / 16, row = i % 16;
            float expected = want[32 * (row / 8) + 8 * token + row % 8];
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[i]), $"{type} token {token} row {row}: {got[i]:R} vs {expected:R}");
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(gotX8[i]), $"{type} interleaved: token {token} row {row}");
        }
        Assert.Contains(got, v => v != 0f && float.IsFinite(v));
        if (extreme)
            Assert.Contains(got, v => !float.IsFinite(v));
    }
}
