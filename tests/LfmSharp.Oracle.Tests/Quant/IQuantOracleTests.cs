using System.Buffers.Binary;
using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using Xunit.Abstractions;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Oracle.Tests.Quant;

/// <summary>
/// llama.cpp as the oracle for the i-quant and ternary formats (IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, IQ2_XXS/XS/S,
/// IQ3_XXS/S, IQ1_S/M), through the "noavx" ggml libraries LLamaSharp.Backend.Cpu ships (no FMA contraction, so
/// ggml's generic C is plain IEEE single precision): dequantize_row_* must give our floats bit for bit on random
/// blocks, ggml_vec_dot_*_generic our dots bit for bit (scalar twin and the dispatched SIMD path alike), and the grid
/// and sign tables must be ggml's, entry by entry, read back through ggml's own dequantizer.
/// </summary>
public sealed class IQuantOracleTests(ITestOutputHelper output)
{
    public static TheoryData<GgmlType> AllTypes() => [.. Types];

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void DequantizationIsBitIdenticalToGgml(GgmlType type)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var dequantize = ggml.Base<DequantizeRowFn>($"dequantize_row_{CName(type)}");
        var rng = new Random(31 + (int)type);
        int nb = GgmlTypes.BlockSize(type) == 32 ? 256 : 32;
        int n = nb * GgmlTypes.BlockSize(type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var w = Weights(type, nb, rng, fill, mixed);
                float[] ours = new float[n], theirs = new float[n];
                Dequantize.Row(type, w, ours);
                dequantize(w, theirs, n);
                for (int i = 0; i < n; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(ours[i]) == BitConverter.SingleToInt32Bits(theirs[i]),
                        $"{type} {fill}{(mixed ? " mixed scales" : "")}: value {i} is {ours[i]:R}, ggml {theirs[i]:R}");
            }
    }

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void DotProductIsBitIdenticalToGgmlGeneric(GgmlType type)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var act = QuantTraits.VecDotType(type);
        string fn = $"ggml_vec_dot_{CName(type)}_{(act == GgmlType.Q8_0 ? "q8_0" : "q8_K")}_generic";
        var dot = ggml.Cpu<VecDotFn>(fn);
        var rng = new Random(57 + (int)type);
        int bs = GgmlTypes.BlockSize(type);
        foreach (int nb in bs == 32 ? new[] { 1, 8, 64, 256 } : new[] { 1, 4, 16 })
        {
            int n = nb * bs;
            for (int rep = 0; rep < 6; rep++)
            {
                var w = Weights(type, nb, rng, rep == 5 ? Fill.Extremes : Fill.Random, mixedScales: rep >= 3);
                byte[] a;
                if (rep % 2 == 0)   // what the matmul feeds: our activation quantizer (ggml's bytes) on random floats
                {
                    var x = new float[n];
                    for (int i = 0; i < n; i++)
                        x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 7 == 0 ? 4 : 1);
                    a = new byte[GgmlTypes.RowBytes(act, n)];
                    Quantize.Row(act, x, a);
                }
                else
                {
                    a = Activations(act, n, rng, symmetric: false, mixedScales: rep >= 3);
                }
                dot(n, out float theirs, 0, w, 0, a, 0, 1);
                float scalar = VecDot.RowScalar(type, w, a, n);
                float dispatched = VecDot.Row(type, w, a, n);
                Assert.True(BitConverter.SingleToInt32Bits(scalar) == BitConverter.SingleToInt32Bits(theirs), $"{type} n={n} rep {rep}: scalar {scalar:R}, {fn} {theirs:R}");
                // The grid/ternary SIMD dots repeat the generic float steps; IQ4_NL/IQ4_XS sum in float lanes.
                if (type is GgmlType.IQ4_NL or GgmlType.IQ4_XS)
                    Assert.True(MathF.Abs(dispatched - theirs) <= 1e-5f * (1 + MathF.Abs(theirs)) || MathF.Abs(dispatched - theirs) <= 1e-5f * Magnitude(type, w, a, n),
                        $"{type} n={n} rep {rep}: dispatched {dispatched:R}, {fn} {theirs:R}");
                else
                    Assert.True(BitConverter.SingleToInt32Bits(dispatched) == BitConverter.SingleToInt32Bits(theirs), $"{type} n={n} rep {rep}: dispatched {dispatched:R}, {fn} {theirs:R}");
            }
        }
    }

    /// <summary>Σ|w_i·a_i| of the dequantized rows (the scale of f32 summation rounding).</summary>
    private static float Magnitude(GgmlType type, byte[] w, byte[] a, int n)
    {
        var wd = new float[n];
        var ad = new float[n];
        Dequantize.Row(type, w, wd);
        Dequantize.Row(QuantTraits.VecDotType(type), a, ad);
        double m = 0;
        for (int i = 0; i < n; i++)
            m += Math.Abs((double)wd[i] * ad[i]);
        return (float)m;
    }

    /// <summary>
    /// Every grid point, read back through ggml's dequantizer from blocks that address it with scale 1 and no signs,
    /// equals our table entry; likewise every ksigns_iq2xs entry (through IQ2_XXS's sign indices) and kvalues_iq4nl.
    /// </summary>
    [Fact]
    public void GridAndSignTablesAreGgmls()
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        AssertGrid(ggml, GgmlType.IQ2_XXS, 256, 8, Half(8f), (blk, group, index) =>   // db = 8·0.5·0.25 = 1
            blk[2 + 8 * (group / 4) + group % 4] = (byte)index, e => ((ReadOnlySpan<ulong>)IQ2Grids.Iq2XxsGrid)[e], 0f);
        AssertGrid(ggml, GgmlType.IQ2_XS, 512, 8, Half(8f), (blk, group, index) =>
            BinaryPrimitives.WriteUInt16LittleEndian(blk.Slice(2 + 2 * group), (ushort)index), e => ((ReadOnlySpan<ulong>)IQ2Grids.Iq2XsGrid)[e], 0f);
        AssertGrid(ggml, GgmlType.IQ2_S, 1024, 8, Half(8f), (blk, group, index) =>
        {
            blk[2 + group] = (byte)index;
            blk[66 + group / 4] |= (byte)((index >> 8) << (2 * (group % 4)));
        }, e => ((ReadOnlySpan<ulong>)IQ2Grids.Iq2SGrid)[e], 0f);
        AssertGrid(ggml, GgmlType.IQ3_XXS, 256, 4, Half(4f), (blk, group, index) =>   // db = 4·0.5·0.5 = 1
            blk[2 + group] = (byte)index, e => ((ReadOnlySpan<uint>)IQTables.Iq3XxsGrid)[e], 0f);
        AssertGrid(ggml, GgmlType.IQ3_S, 512, 4, Half(1f), (blk, group, index) =>   // db = 1·(1 + 0)
        {
            blk[2 + group] = (byte)index;
            blk[66 + group / 8] |= (byte)((index >> 8) << (group % 8));
        }, e => ((ReadOnlySpan<uint>)IQTables.Iq3SGrid)[e], 0f);
        AssertGrid(ggml, GgmlType.IQ1_S, 2048, 8, Half(1f), (blk, group, index) =>   // y = 1·(g + 1/8)
        {
            blk[2 + group] = (byte)index;
            int at = 34 + 2 * (group / 4);
            BinaryPrimitives.WriteUInt16LittleEndian(blk.Slice(at), (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(blk.Slice(at)) | ((index >> 8) << (3 * (group % 4)))));
        }, e => ((ReadOnlySpan<ulong>)IQ1Grid.Iq1SGrid)[e], 0.125f);

        // ksigns_iq2xs: IQ2_XXS group 0 on grid point 0 (all magnitudes 8) with sign index s in the second word.
        var dequantize = ggml.Base<DequantizeRowFn>("dequantize_row_iq2_xxs");
        var block = new byte[66];
        var y = new float[256];
        for (int s = 0; s < 128; s++)
        {
            block.AsSpan().Clear();
            BinaryPrimitives.WriteUInt16LittleEndian(block, Half(8f));
            BinaryPrimitives.WriteUInt32LittleEndian(block.AsSpan(6), (uint)s);
            dequantize(block, y, 256);
            int bits = 0;
            for (int j = 0; j < 8; j++)
                bits |= y[j] < 0 ? 1 << j : 0;
            Assert.True(bits == IQTables.KSigns[s], $"ksigns_iq2xs[{s}]: ggml 0x{bits:x2}, ours 0x{IQTables.KSigns[s]:x2}");
        }

        // kvalues_iq4nl: an IQ4_NL block with d = 1 and nibbles 0..15.
        var nl = new byte[18];
        BinaryPrimitives.WriteUInt16LittleEndian(nl, Half(1f));
        for (int j = 0; j < 16; j++)
            nl[2 + j] = (byte)j;
        var v = new float[32];
        ggml.Base<DequantizeRowFn>("dequantize_row_iq4_nl")(nl, v, 32);
        for (int j = 0; j < 16; j++)
            Assert.Equal(v[j], IQTables.KValuesIq4Nl[j]);
    }

    /// <summary>
    /// Addresses grid entries 0..count−1 with <paramref name="set"/> (group → index) in as many blocks as needed, all
    /// other fields zero but the f16 scale, dequantizes with ggml and compares each group's values with the entry's
    /// bytes (plus <paramref name="shift"/>: IQ1's +1/8); <paramref name="width"/> bytes per entry.
    /// </summary>
    private static void AssertGrid(NoAvxGgml ggml, GgmlType type, int count, int width, ushort scale,
        Action<Span<byte>, int, int> set, Func<int, ulong> entry, float shift)
    {
        var dequantize = ggml.Base<DequantizeRowFn>($"dequantize_row_{CName(type)}");
        int size = GgmlTypes.TypeSize(type), groups = 256 / width, nb = count / groups;
        var row = new byte[nb * size];
        for (int b = 0; b < nb; b++)
        {
            var blk = row.AsSpan(b * size, size);
            BinaryPrimitives.WriteUInt16LittleEndian(blk, scale);
            for (int g = 0; g < groups; g++)
                set(blk, g, b * groups + g);
        }
        var y = new float[nb * 256];
        dequantize(row, y, y.Length);
        for (int e = 0; e < count; e++)
        {
            ulong want = entry(e);
            for (int j = 0; j < width; j++)
            {
                float g = y[e * width + j] - shift;
                int expected = width == 8 && shift != 0 ? (sbyte)(want >> (8 * j)) : (byte)(want >> (8 * j));
                Assert.True(g == expected, $"{type} grid[{e}] byte {j}: ggml {g}, ours {expected}");
            }
        }
    }

    private static ushort Half(float v) => BitConverter.HalfToUInt16Bits((Half)v);

    private static string CName(GgmlType t) => t.ToString().ToLowerInvariant();
}
