using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>A theory that xunit reports as skipped where the CPU lacks AVX-512BW (or the JIT has it switched off).</summary>
public sealed class Avx512TheoryAttribute : TheoryAttribute
{
    /// <param name="vbmi">Also require AVX-512 VBMI (vpermb, vpmultishiftqb), which the IQ4_XS and Q5_K decode kernels use.</param>
    public Avx512TheoryAttribute(bool vbmi = false)
    {
        if (!(Avx512BW.IsSupported && Avx2.IsSupported && Fma.IsSupported) || (vbmi && !Avx512Vbmi.IsSupported))
            Skip = vbmi ? "AVX-512BW with VBMI not available here (or disabled via DOTNET_EnableAVX512)" : "AVX-512BW not available here (or disabled via DOTNET_EnableAVX512)";
    }
}

/// <summary>
/// The zmm Q4_0 kernel (16 rows × 4 tokens, vpmaddubsw in int16; <see cref="PackedGemm.KernelQ4_0Zmm16"/>) against the
/// maddubs 8 × 4 kernel on each 8-row group: the same bits per row and token, from GGUF rows and from the interleaved copy.
/// </summary>
public sealed unsafe class PackedGemmZmmTests
{
    /// <summary>
    /// Random rows and tokens, and the int16 worst case: every quant 15 against activations of −128 or 127 (with an Inf
    /// scale). Negative and subnormal scales always.
    /// </summary>
    [Avx512Theory]
    [InlineData(512, false)]
    [InlineData(96, false)]
    [InlineData(512, true)]
    [InlineData(64, true)]
    public void ZmmKernelGivesTheMaddubsKernelsBits(int cols, bool extreme)
    {
        int nb = cols / 32, rowBytes = nb * 18, actRow = nb * 34;
        var rng = new Random(cols + (extreme ? 1 : 0));
        var w = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        rng.NextBytes(w);
        rng.NextBytes(act);
        for (int r = 0; r < 16; r++)
            for (int b = 0; b < nb; b++)
            {
                // Finite f16 scales (exponent below 31) and, for the extreme case, all quants 15 in every other row.
                int o = r * rowBytes + b * 18;
                // Negative scales in row 3, f16 subnormals in row 5, and (extreme case) an Inf in row 6's first block,
                // which the zmm packers convert on their exact per-lane path.
                int bits = r == 5 ? rng.Next(1, 0x400) : rng.Next(0x3000, 0x4400);
                if (r == 3)
                    bits |= 0x8000;
                if (extreme && r == 6 && b == 0)
                    bits = 0x7C00;
                BitConverter.TryWriteBytes(w.AsSpan(o, 2), (ushort)bits);
                if (extreme && r % 2 == 0)
                    w.AsSpan(o + 2, 16).Fill(0xFF);
            }
        var d = GC.AllocateArray<float>(4 * nb, pinned: true);
        var sums = GC.AllocateArray<int>(4 * nb, pinned: true);
        for (int t = 0; t < 4; t++)
            for (int b = 0; b < nb; b++)
            {
                var blk = act.AsSpan(t * actRow + b * 34, 34);
                if (extreme)
                    blk.Slice(2).Fill(t % 2 == 0 ? (byte)0x80 : (byte)0x7F);
                d[t * nb + b] = (float)(rng.NextDouble() * 0.02);
                int s = 0;
                for (int k = 0; k < 32; k++)
                    s += (sbyte)blk[2 + k];
                sums[t * nb + b] = 8 * s;
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
        fixed (int* ps = sums)
        {
            for (int grp = 0; grp < 2; grp++)
            {
                PackedGemm.PackQ4_0(pw + grp * 8 * rowBytes, rowBytes, nb, pp);
                PackedGemm.KernelQ4_0(pp, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, ps, py + 32 * grp, 8));   // [group][token][row]
                Interleaved8.PackGroup(GgmlType.Q4_0, pw + grp * 8 * rowBytes, rowBytes, nb, pi + grp * 8 * rowBytes);
            }
            PackedGemm.PackQ4_0Zmm16(pw, rowBytes, nb, pzz);
            PackedGemm.KernelQ4_0Zmm16(pzz, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, ps, pg, 16));
            PackedGemm.PackQ4_0x8Zmm16(pi, 8 * rowBytes, nb, pzx);
            PackedGemm.KernelQ4_0Zmm16(pzx, nb, TokenTiles.Consecutive(pa, actRow, nb, pd, ps, pgx, 16));
        }
        Assert.Equal(pz, pzX8);
        for (int i = 0; i < 64; i++)
        {
            int token = i / 16, row = i % 16;
            float expected = want[32 * (row / 8) + 8 * token + row % 8];
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[i]), $"token {token} row {row}: {got[i]:R} vs {expected:R}");
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(gotX8[i]), $"interleaved: token {token} row {row}");
        }
        Assert.Contains(got, v => v != 0f);
    }
}
