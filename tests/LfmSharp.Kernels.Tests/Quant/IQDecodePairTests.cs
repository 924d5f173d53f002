using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The two-row IQ2 / IQ3 decodes of the batched path (<see cref="IQ2DecodePair512"/>, <see cref="IQ3DecodePair512"/>)
/// against their scalar twins (the types' DecodeBlock): the same signed bytes, scales and d_w bits for random blocks (any bytes are a block, NaN/Inf scales
/// included) in which every grid index and every sign pattern of the format occurs, and the table uses it exactly
/// where it runs.
/// </summary>
public sealed unsafe class IQDecodePairTests
{
    public static TheoryData<GgmlType> Types() => [GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S, GgmlType.IQ3_XXS, GgmlType.IQ3_S];

    [Theory]
    [MemberData(nameof(Types))]
    public void The_table_has_the_pair_decode_exactly_where_it_runs(GgmlType type)
        => Assert.Equal(IQ2DecodePair512.IsSupported && IQ3DecodePair512.IsSupported, TypeTraits.For(type).Decoder!.DecodePair != null);

    [Iq2Simd512Theory]
    [MemberData(nameof(Types))]
    public void The_pair_decode_gives_the_scalar_decodes_bytes_scales_and_scale_bits(GgmlType type)
    {
        var decoder = TypeTraits.For(type).Decoder!;
        int size = GgmlTypes.TypeSize(type);
        int points = type switch { GgmlType.IQ2_XXS or GgmlType.IQ3_XXS => 256, GgmlType.IQ2_XS or GgmlType.IQ3_S => 512, _ => 1024 };
        int perBlock = type is GgmlType.IQ3_XXS or GgmlType.IQ3_S ? 64 : 32;
        // Enough blocks that point l of block j = index perBlock·j + l covers the grid, and an odd count.
        int blocks = points / perBlock + 3;
        var rng = new Random(5 + (int)type);
        var x = new byte[blocks * size];
        rng.NextBytes(x);
        for (int j = 0; j < blocks; j++)
            for (int l = 0; l < perBlock; l++)
                SetPoint(type, x.AsSpan(j * size, size), l, (perBlock * j + l) % points, (perBlock * j + l) & 255);
        var want = new byte[512 + 64 + 8];
        var got = new byte[512 + 64 + 8];
        fixed (byte* px = x, pw = want, pg = got)
            for (int j = 0; j < blocks; j++)
            {
                byte* x0 = px + j * size, x1 = px + (blocks - 1 - j) * size;
                Array.Clear(want);
                Array.Fill(got, (byte)0xA5);
                float* dw = (float*)(pw + 576);
                dw[0] = decoder.Decode(x0, (sbyte*)pw, (short*)(pw + 512));
                dw[1] = decoder.Decode(x1, (sbyte*)(pw + 256), (short*)(pw + 544));
                decoder.DecodePair(x0, x1, (sbyte*)pg, (short*)(pg + 512), (float*)(pg + 576));
                Assert.True(want.AsSpan().SequenceEqual(got), $"{type} blocks {j} and {blocks - 1 - j}: first difference at byte {Mismatch(want, got)}");
            }
    }

    /// <summary>
    /// Grid point l of a block (a group of 8 weights for IQ2, 4 for IQ3) gets index <paramref name="index"/> and, where
    /// the format has its own sign bytes (IQ2_XS's 7-bit index, IQ2_S's and IQ3_S's bytes), sign bits <paramref name="signs"/>.
    /// </summary>
    private static void SetPoint(GgmlType type, Span<byte> block, int l, int index, int signs)
    {
        int ib = l / 4, gl = l % 4;
        switch (type)
        {
            case GgmlType.IQ3_XXS:
                block[2 + l] = (byte)index;
                break;
            case GgmlType.IQ3_S:
                block[2 + l] = (byte)index;
                block[66 + l / 8] = (byte)((block[66 + l / 8] & ~(1 << (l % 8))) | (index >> 8) << (l % 8));
                if (l < 32)
                    block[74 + l] = (byte)signs;
                break;
            case GgmlType.IQ2_XXS:
                block[2 + 8 * ib + gl] = (byte)index;
                break;
            case GgmlType.IQ2_XS:
                int word = index | (signs & 127) << 9;
                block[2 + 2 * l] = (byte)word;
                block[3 + 2 * l] = (byte)(word >> 8);
                break;
            default:
                block[2 + l] = (byte)index;
                block[34 + l] = (byte)signs;
                block[66 + ib] = (byte)((block[66 + ib] & ~(3 << (2 * gl))) | (index >> 8) << (2 * gl));
                break;
        }
    }

    private static int Mismatch(byte[] a, byte[] b)
    {
        for (int i = 0; i < a.Length; i++)
            if (a[i] != b[i])
                return i;
        return -1;
    }
}
