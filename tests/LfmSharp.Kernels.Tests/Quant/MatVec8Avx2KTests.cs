using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The AVX2 8-row Q3_K and Q2_K decodes (<see cref="MatVec8Q3KAvx2"/>, <see cref="MatVec8Q2KAvx2"/>, the kernels of
/// AVX2 machines without AVX-512) against the row dots (<see cref="Q3K.DotAvx2"/>, <see cref="Q2K.DotAvx2"/>) and
/// against those orders written out here from the formats, bit for bit: random and extreme blocks (all bytes 0x00 or
/// 0xFF, every scale and min value, activations at the int8 limits), 1 to 8 super-blocks, over GGUF rows and over the
/// interleaved block copy, and with an Inf or NaN scale (the exact fallback).
/// </summary>
public sealed unsafe class MatVec8Avx2KTests
{
    [Avx2Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Q3KDecodeGivesTheRowDotsBits(int nb)
        => Decode8Check.Run(110, nb, 31 + nb, FillQ3K, CanonicalQ3K, &Q3K.DotAvx2, &MatVec8Q3KAvx2.Group, &MatVec8Q3KAvx2.GroupBlocks);

    [Avx2Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    public void Q2KDecodeGivesTheRowDotsBits(int nb)
        => Decode8Check.Run(84, nb, 41 + nb, FillQ2K, CanonicalQ2K, &Q2K.DotAvx2, &MatVec8Q2KAvx2.Group, &MatVec8Q2KAvx2.GroupBlocks);

    /// <summary>
    /// Trials 0-3: every byte 0x00 or 0xFF (all quants, hmask bits and scales at their extremes) against activations of
    /// all −128 or all 127; trials 4-7: sub-block j of row r has scale 16·(r mod 4) + j (all 64 values in a group),
    /// random quants; later trials random bytes. d is a random finite f16 except in trial 9 (one Inf), 10 (one NaN)
    /// and 11 (one −Inf).
    /// </summary>
    internal static void FillQ3K(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        int rowBytes = nb * 110;
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int r = 0; r < 8; r++)
            for (int b = 0; b < nb; b++)
            {
                var blk = w.AsSpan(r * rowBytes + b * 110, 110);
                BitConverter.TryWriteBytes(blk.Slice(108), (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                if (trial is >= 4 and < 8)
                {
                    var sc = blk.Slice(96, 12);
                    sc.Clear();
                    for (int j = 0; j < 16; j++)
                    {
                        int s = 16 * (r % 4) + j;
                        sc[j % 8] |= (byte)((s & 0xF) << (j < 8 ? 0 : 4));
                        sc[8 + j % 4] |= (byte)((s >> 4) << (2 * (j / 4)));
                    }
                }
            }
        if (trial is 9 or 10 or 11)
            BitConverter.TryWriteBytes(w.AsSpan(5 * rowBytes + (nb - 1) * 110 + 108), (ushort)(trial == 9 ? 0x7C00 : trial == 10 ? 0xFE01 : 0xFC00));
        MatVec8LowKTests.FillActivations(act, nb, trial, rng);
    }

    /// <summary>
    /// The canonical order from the format: per super-block the exact integer Σ_j (sc_j − 32)·Σ q·a with
    /// q = (2-bit quant) − 4 where the hmask bit is clear, then acc = fma(sum, d_w·d_a, acc).
    /// </summary>
    internal static float CanonicalQ3K(ReadOnlySpan<byte> row, ReadOnlySpan<byte> act, int nb)
    {
        float acc = 0f;
        for (int b = 0; b < nb; b++)
        {
            var x = row.Slice(b * 110, 110);
            var q8 = act.Slice(b * 292, 292);
            long sum = 0;
            for (int i = 0; i < 256; i++)
            {
                int c = i / 128, k = i % 128 / 32, l = i % 32, j = i / 16;
                int q = ((x[32 + 32 * c + l] >> (2 * k)) & 3) - (((x[l] >> (4 * c + k)) & 1) != 0 ? 0 : 4);
                int sc = (x[96 + j % 8] >> (j < 8 ? 0 : 4) & 0xF) | ((x[104 + j % 4] >> (2 * (j / 4))) & 3) << 4;
                sum += (long)(sc - 32) * q * (sbyte)q8[4 + i];
            }
            float d = (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x.Slice(108))) * BitConverter.ToSingle(q8);
            acc = MathF.FusedMultiplyAdd((float)(int)sum, d, acc);
        }
        return acc;
    }

    /// <summary>
    /// Trials 0-3: every byte 0x00 or 0xFF (quants 0 / 3, scales and mins 0 / 15) against activations of all −128 or
    /// all 127; trials 4-7: sub-block j of row r has scale (r + j) mod 16 and min (r + 15 − j) mod 16, random quants;
    /// later trials random bytes. d and dmin are random finite f16 except in trial 9 (one Inf d), 10 (one NaN dmin) and
    /// 11 (one −Inf dmin).
    /// </summary>
    internal static void FillQ2K(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        int rowBytes = nb * 84;
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int r = 0; r < 8; r++)
            for (int b = 0; b < nb; b++)
            {
                var blk = w.AsSpan(r * rowBytes + b * 84, 84);
                BitConverter.TryWriteBytes(blk.Slice(80), (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                BitConverter.TryWriteBytes(blk.Slice(82), (ushort)(rng.Next(0x7C00) | rng.Next(2) << 15));
                if (trial is >= 4 and < 8)
                    for (int j = 0; j < 16; j++)
                        blk[j] = (byte)((r + j) % 16 | ((r + 15 - j) % 16) << 4);
            }
        if (trial is 9 or 10 or 11)
            BitConverter.TryWriteBytes(w.AsSpan(6 * rowBytes + (nb - 1) * 84 + (trial == 9 ? 80 : 82)), (ushort)(trial == 9 ? 0x7C00 : trial == 10 ? 0xFE01 : 0xFC00));
        MatVec8LowKTests.FillActivations(act, nb, trial, rng);
    }

    /// <summary>
    /// The canonical order from the format: per super-block the exact integers isum = Σ_j sc_j·Σ q·a and
    /// msum = Σ_j m_j·bsum_j, then acc += d_w·d_a·isum − dmin_w·d_a·msum (products rounded, no fma).
    /// </summary>
    internal static float CanonicalQ2K(ReadOnlySpan<byte> row, ReadOnlySpan<byte> act, int nb)
    {
        float acc = 0f;
        for (int b = 0; b < nb; b++)
        {
            var x = row.Slice(b * 84, 84);
            var q8 = act.Slice(b * 292, 292);
            long isum = 0, msum = 0;
            for (int i = 0; i < 256; i++)
            {
                int c = i / 128, k = i % 128 / 32, l = i % 32, j = i / 16;
                isum += (long)(x[j] & 0xF) * ((x[16 + 32 * c + l] >> (2 * k)) & 3) * (sbyte)q8[4 + i];
            }
            for (int j = 0; j < 16; j++)
                msum += (long)(x[j] >> 4) * BitConverter.ToInt16(q8.Slice(260 + 2 * j));
            float da = BitConverter.ToSingle(q8);
            float d = da * (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x.Slice(80)));
            float dmin = da * (float)BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(x.Slice(82)));
            acc += d * (int)isum - dmin * (int)msum;
        }
        return acc;
    }
}
