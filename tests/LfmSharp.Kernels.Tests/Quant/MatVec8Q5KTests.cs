using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The AVX-512 8-row Q5_K decode (<see cref="MatVec8Q5K"/>) against the row dot (<see cref="Q5K.DotAvx2"/>, the
/// engine's canonical order) and against that order written out here from the format's definition, bit for bit: random
/// and extreme blocks (all weight bytes 0x00 or 0xFF, every 6-bit scale and min, activations at the int8 limits), 1 to
/// 8 super-blocks, over GGUF rows and over the interleaved block copy, and with an Inf or NaN d or dmin (the exact fallback).
/// </summary>
public sealed unsafe class MatVec8Q5KTests
{
    [Avx512Theory(vbmi: true)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void DecodeGivesTheRowDotsBits(int nb)
    {
        Assert.True(MatVec8Q5K.IsSupported);   // the attribute skipped the machines without it
        Decode8Check.Run(176, nb, 17 + nb, Fill, Canonical, &Q5K.DotAvx2, &MatVec8Q5K.Group, &MatVec8Q5K.GroupBlocks);
    }

    /// <summary>
    /// Trials 0-3: every weight byte 0x00 or 0xFF (quants 0 / 31, all scales and mins 0 / 63) against activations of
    /// all −128 or all 127; trials 4-7: sub-block j of row r has scale 8r + j and min 63 − 8r − j (all 64 values in one
    /// block) against random activations; later trials random bytes. d and dmin are random finite f16 except in trial 9
    /// (one Inf d), 10 (one NaN dmin) and 11 (one −Inf dmin).
    /// </summary>
    private static void Fill(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        int rowBytes = nb * 176;
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int r = 0; r < 8; r++)
            for (int b = 0; b < nb; b++)
            {
                var blk = w.AsSpan(r * rowBytes + b * 176, 176);
                BitConverter.TryWriteBytes(blk, (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                BitConverter.TryWriteBytes(blk.Slice(2), (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                if (trial is >= 4 and < 8)
                {
                    ulong sc = 0, mn = 0;
                    for (int j = 0; j < 8; j++)
                    {
                        sc |= (ulong)(8 * r + j) << (8 * j);
                        mn |= (ulong)(63 - 8 * r - j) << (8 * j);
                    }
                    fixed (byte* p = blk)
                        Q4K.PackScaleMin(sc, mn, p + 4);
                }
            }
        if (trial is 9 or 10 or 11)
            BitConverter.TryWriteBytes(w.AsSpan(5 * rowBytes + (nb - 1) * 176 + (trial == 9 ? 0 : 2)), (ushort)(trial == 9 ? 0x7C00 : trial == 10 ? 0xFE01 : 0xFC00));
        MatVec8LowKTests.FillActivations(act, nb, trial, rng);
    }

    /// <summary>
    /// The canonical order from the format's definition: per super-block the exact integers
    /// sumi = Σ_j sc_j·Σ q·a and msum = Σ_j m_j·(bsum_2j + bsum_2j+1), then acc = fma(sumi, d_w·d_a, acc) and
    /// acc = fma(−msum, dmin_w·d_a, acc).
    /// </summary>
    private static float Canonical(ReadOnlySpan<byte> row, ReadOnlySpan<byte> act, int nb)
    {
        float acc = 0f;
        for (int b = 0; b < nb; b++)
        {
            var x = row.Slice(b * 176, 176);
            var q8 = act.Slice(b * 292, 292);
            var s = x.Slice(4, 12);
            long sumi = 0, msum = 0;
            for (int j = 0; j < 8; j++)
            {
                int sc = j < 4 ? s[j] & 63 : (s[j + 4] & 0xF) | (s[j - 4] >> 6) << 4;
                int m = j < 4 ? s[j + 4] & 63 : (s[j + 4] >> 4) | (s[j] >> 6) << 4;
                int sum = 0;
                for (int l = 0; l < 32; l++)
                {
                    byte qs = x[48 + 32 * (j / 2) + l];
                    int q = (j % 2 == 0 ? qs & 0xF : qs >> 4) | ((x[16 + l] >> j) & 1) << 4;
                    sum += q * (sbyte)q8[4 + 32 * j + l];
                }
                sumi += (long)sc * sum;
                msum += (long)m * (BitConverter.ToInt16(q8.Slice(260 + 4 * j)) + BitConverter.ToInt16(q8.Slice(262 + 4 * j)));
            }
            float da = BitConverter.ToSingle(q8);
            float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x)) * da;
            float dmin = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x.Slice(2))) * da;
            acc = MathF.FusedMultiplyAdd((float)(int)sumi, d, acc);
            acc = MathF.FusedMultiplyAdd((float)(int)-msum, dmin, acc);
        }
        return acc;
    }
}
