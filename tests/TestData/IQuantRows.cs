using System.Buffers.Binary;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Testing;

/// <summary>
/// Random rows of the i-quant and ternary block formats and of their activation formats, for the SIMD-twin and
/// oracle tests. Any byte pattern is a valid block of these formats except the f16 scales, which are kept finite
/// (mixing zeros, subnormals, ordinary and large values); Q8_K rows get bsums that agree with their quants.
/// </summary>
internal static class IQuantRows
{
    /// <summary>The weight types of this family, in the order the issue ranks them.</summary>
    public static readonly GgmlType[] Types =
    [
        GgmlType.IQ4_NL, GgmlType.IQ4_XS, GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.IQ2_XXS, GgmlType.IQ2_XS,
        GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
    ];

    /// <summary>How the quant bytes of a weight row are drawn.</summary>
    public enum Fill { Random, AllOnes, AllZeros, Extremes }

    public static readonly Fill[] Fills = Enum.GetValues<Fill>();

    /// <summary>A finite f16 scale: with <paramref name="mixed"/>, also ±0, subnormals and values near the f16 maximum.</summary>
    public static ushort HalfScale(Random rng, bool mixed)
    {
        int kind = mixed ? rng.Next(4) : 0;
        ushort sign = (ushort)(rng.Next(2) << 15);
        return kind switch
        {
            0 => BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 1)))),
            1 => sign,
            2 => (ushort)(sign | rng.Next(1, 0x400)),
            _ => (ushort)(sign | BitConverter.HalfToUInt16Bits((Half)(1000 + rng.NextDouble() * 60000))),
        };
    }

    /// <summary><paramref name="nb"/> blocks of <paramref name="type"/>: quant bytes by <paramref name="fill"/>, finite scales.</summary>
    public static byte[] Weights(GgmlType type, int nb, Random rng, Fill fill, bool mixedScales)
    {
        int size = GgmlTypes.TypeSize(type);
        var row = new byte[nb * size];
        byte[] extremes = [0x00, 0xFF, 0x0F, 0xF0, 0x7F, 0x80, 0x55, 0xAA];
        for (int i = 0; i < row.Length; i++)
            row[i] = fill switch
            {
                Fill.AllOnes => 0xFF,
                Fill.AllZeros => 0x00,
                Fill.Extremes => extremes[rng.Next(extremes.Length)],
                _ => (byte)rng.Next(256),
            };
        for (int b = 0; b < nb; b++)
            SetScale(type, row.AsSpan(b * size, size), HalfScale(rng, mixedScales));
        return row;
    }

    /// <summary>Writes the f16 super-scale of one block (IQ1_M spreads it over the top nibbles of its four scale words).</summary>
    public static void SetScale(GgmlType type, Span<byte> block, ushort half)
    {
        switch (type)
        {
            case GgmlType.TQ1_0: BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(52), half); break;
            case GgmlType.TQ2_0: BinaryPrimitives.WriteUInt16LittleEndian(block.Slice(64), half); break;
            case GgmlType.IQ1_M:
                for (int k = 0; k < 4; k++)
                {
                    int at = 48 + 2 * k + 1;   // high byte of scale word k carries nibble k of the f16
                    block[at] = (byte)((block[at] & 0x0F) | (((half >> (4 * k)) & 0xF) << 4));
                }
                break;
            default: BinaryPrimitives.WriteUInt16LittleEndian(block, half); break;
        }
    }

    /// <summary>
    /// A raw activation row in <paramref name="act"/> (Q8_0 or Q8_K) for n weights: quants over the full int8 range
    /// (−128 included) unless <paramref name="symmetric"/>, finite scales, Q8_K bsums consistent with the quants.
    /// </summary>
    public static byte[] Activations(GgmlType act, int n, Random rng, bool symmetric, bool mixedScales)
    {
        var row = new byte[GgmlTypes.RowBytes(act, n)];
        int lo = symmetric ? -127 : -128;
        if (act == GgmlType.Q8_0)
        {
            for (int b = 0; b < n / 32; b++)
            {
                var blk = row.AsSpan(34 * b, 34);
                BinaryPrimitives.WriteUInt16LittleEndian(blk, HalfScale(rng, mixedScales));
                for (int j = 0; j < 32; j++)
                    blk[2 + j] = (byte)(sbyte)rng.Next(lo, 128);
            }
            return row;
        }
        for (int b = 0; b < n / 256; b++)
        {
            var blk = row.AsSpan(292 * b, 292);
            float d = mixedScales ? (new[] { 0f, 1e-30f, 3e-3f, 1e3f })[rng.Next(4)] : (float)(rng.NextDouble() * 0.02 - 0.01);
            BinaryPrimitives.WriteSingleLittleEndian(blk, d);
            for (int g = 0; g < 16; g++)
            {
                int sum = 0;
                for (int l = 0; l < 16; l++)
                {
                    sbyte q = (sbyte)rng.Next(lo, 128);
                    blk[4 + 16 * g + l] = (byte)q;
                    sum += q;
                }
                BinaryPrimitives.WriteInt16LittleEndian(blk.Slice(260 + 2 * g), (short)sum);
            }
        }
        return row;
    }
}
