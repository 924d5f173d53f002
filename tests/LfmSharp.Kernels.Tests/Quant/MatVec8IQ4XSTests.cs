using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The AVX-512 8-row IQ4_XS decode (<see cref="MatVec8IQ4XS"/>) against the row dot (<see cref="IQ4XS.DotAvx2"/>, the
/// engine's canonical order) and against that order written out here from the format's definition, bit for bit: random
/// and extreme blocks (nibbles 0 and 15, every 6-bit sub-block scale, activations at the int8 limits), 1 to 8
/// super-blocks, over GGUF rows and over the interleaved block copy, and with an Inf or NaN d (the exact fallback);
/// likewise the AVX-VNNI packed GEMM on biased levels.
/// </summary>
public sealed unsafe class MatVec8IQ4XSTests
{
    [Avx512Theory(vbmi: true)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void DecodeGivesTheRowDotsBits(int nb)
    {
        Assert.True(MatVec8IQ4XS.IsSupported);   // the attribute skipped the machines without it
        Decode8Check.Run(136, nb, 11 + nb, Fill, Canonical, &IQ4XS.DotAvx2, &MatVec8IQ4XS.Group, &MatVec8IQ4XS.GroupBlocks);
    }

    /// <summary>
    /// The AVX2 8-row decode (<see cref="MatVec8IQ4XSAvx2"/>, the kernel of machines without AVX-512) on the same
    /// blocks: the row dots' bits over GGUF rows and the interleaved copy, Inf/NaN d included.
    /// </summary>
    [Avx2Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Avx2DecodeGivesTheRowDotsBits(int nb)
        => Decode8Check.Run(136, nb, 31 + nb, Fill, Canonical, &IQ4XS.DotAvx2, &MatVec8IQ4XSAvx2.Group, &MatVec8IQ4XSAvx2.GroupBlocks);

    /// <summary>
    /// The AVX-VNNI packed GEMM on biased levels (<see cref="IQ4Packed.KernelIQ4XSBiased"/>) on the same blocks, 8 rows
    /// × 4 tokens (each token its own activations; trials 0-3 at the int8 limits), packed from GGUF rows and from the
    /// interleaved copy: every output the row dot's bits.
    /// </summary>
    [VnniTheory]
    [InlineData(1)]
    [InlineData(3)]
    public void BiasedGemmGivesTheRowDotsBits(int nb)
    {
        int rowBytes = nb * 136;
        var rng = new Random(23 + nb);
        var w = new byte[8 * rowBytes];
        var il = new byte[8 * rowBytes];
        var act = new byte[4 * nb * 292];
        var one = new byte[nb * 292];
        var packed = new byte[nb * IQ4Packed.XSBlockBytes];
        var y = new float[32];
        for (int trial = 0; trial < 60; trial++)
        {
            for (int t = 0; t < 4; t++)
            {
                Fill(w, one, nb, trial < 4 ? (trial + t) % 4 : trial, rng);
                one.CopyTo(act, t * nb * 292);
            }
            for (int b = 0; b < nb; b++)
                for (int r = 0; r < 8; r++)
                    w.AsSpan(r * rowBytes + b * 136, 136).CopyTo(il.AsSpan((8 * b + r) * 136));
            fixed (byte* pw = w, pi = il, pa = act, pk = packed)
            fixed (float* py = y)
            {
                var tile = new PackedGemm.TokenTile
                {
                    A0 = pa, A1 = pa + nb * 292, A2 = pa + 2 * nb * 292, A3 = pa + 3 * nb * 292,
                    Y0 = py, Y1 = py + 8, Y2 = py + 16, Y3 = py + 24,
                };
                for (int layout = 0; layout < 2; layout++)
                {
                    if (layout == 0) IQ4Packed.PackIQ4XSBiased(pw, rowBytes, nb, pk); else IQ4Packed.PackIQ4XSx8Biased(pi, nb, pk);
                    Array.Fill(y, 12345f);
                    IQ4Packed.KernelIQ4XSBiased(pk, nb, tile);
                    for (int t = 0; t < 4; t++)
                        for (int r = 0; r < 8; r++)
                        {
                            float want = IQ4XS.DotAvx2(pw + r * rowBytes, pa + t * nb * 292, nb);
                            Assert.True(Decode8Check.SameBits(want, y[8 * t + r]), $"nb {nb} trial {trial} token {t} row {r} ({(layout == 0 ? "rows" : "copy")}): {y[8 * t + r]:R} vs {want:R}");
                        }
                }
            }
        }
    }

    /// <summary>
    /// Trials 0-3: every weight byte 0x00 or 0xFF (nibbles 0 / 15, all sub-block scales 0 / 63) against activations of
    /// all −128 or all 127; trials 4-7: sub-block j of row r has scale 8r + j (all 64 values in one block) against
    /// random activations; later trials random bytes. d is a random finite f16 except in trial 9 (one Inf) and 10 (one NaN).
    /// </summary>
    internal static void Fill(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        int rowBytes = nb * 136;
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int r = 0; r < 8; r++)
            for (int b = 0; b < nb; b++)
            {
                var blk = w.AsSpan(r * rowBytes + b * 136, 136);
                BitConverter.TryWriteBytes(blk, (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                if (trial is >= 4 and < 8)
                {
                    ushort h = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        int ls = 8 * r + j;
                        h |= (ushort)((ls >> 4) << (2 * j));
                        blk[4 + j / 2] = (byte)(j % 2 == 0 ? (blk[4 + j / 2] & 0xF0) | (ls & 0xF) : (blk[4 + j / 2] & 0x0F) | (ls & 0xF) << 4);
                    }
                    BitConverter.TryWriteBytes(blk.Slice(2), h);
                }
            }
        if (trial is 9 or 10)
            BitConverter.TryWriteBytes(w.AsSpan(5 * rowBytes + (nb - 1) * 136), (ushort)(trial == 9 ? 0x7C00 : 0xFE01));
        MatVec8LowKTests.FillActivations(act, nb, trial, rng);
    }

    /// <summary>
    /// The canonical order from the format's definition: per super-block the exact integer
    /// T = Σ_j (ls_j − 32)·Σ kv[q]·a, then acc = fma(T, d_w·d_a, acc).
    /// </summary>
    private static float Canonical(ReadOnlySpan<byte> row, ReadOnlySpan<byte> act, int nb)
    {
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        float acc = 0f;
        for (int b = 0; b < nb; b++)
        {
            var x = row.Slice(b * 136, 136);
            var q8 = act.Slice(b * 292, 292);
            int h = BitConverter.ToUInt16(x.Slice(2));
            long total = 0;
            for (int j = 0; j < 8; j++)
            {
                int ls = ((x[4 + j / 2] >> (4 * (j % 2))) & 0xF) | ((h >> (2 * j)) & 3) << 4;
                int sum = 0;
                for (int i = 0; i < 16; i++)
                {
                    byte q = x[8 + 16 * j + i];
                    sum += kv[q & 0xF] * (sbyte)q8[4 + 32 * j + i] + kv[q >> 4] * (sbyte)q8[4 + 32 * j + 16 + i];
                }
                total += (long)(ls - 32) * sum;
            }
            float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x)) * BitConverter.ToSingle(q8);
            acc = MathF.FusedMultiplyAdd((float)(int)total, d, acc);
        }
        return acc;
    }
}
