using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The i-quant and ternary formats (IQ4_NL, IQ4_XS, TQ1_0, TQ2_0, IQ2_XXS/XS/S, IQ3_XXS/S, IQ1_S/M) without llama.cpp:
/// block layouts, the AVX2 dots against their scalar twins (bit for bit: both compute ggml's exact integers and then
/// the same float steps), dispatch, the dots against the dequantized rows, and the shape of the format tables.
/// The bit-identity with ggml itself is in the oracle tests (IQuantOracleTests).
/// </summary>
public sealed unsafe class IQuantTests
{
    public static TheoryData<GgmlType> AllTypes() => [.. Types];

    public static TheoryData<GgmlType, int> BlockCases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in Types)
            foreach (int nb in GgmlTypes.BlockSize(t) == 32 ? new[] { 1, 3, 4, 7, 9, 64 } : new[] { 1, 2, 3, 8 })
                data.Add(t, nb);
        return data;
    }

    [Theory]
    [InlineData(GgmlType.IQ4_NL, typeof(BlockIQ4NL))]
    [InlineData(GgmlType.IQ4_XS, typeof(BlockIQ4XS))]
    [InlineData(GgmlType.TQ1_0, typeof(BlockTQ1_0))]
    [InlineData(GgmlType.TQ2_0, typeof(BlockTQ2_0))]
    [InlineData(GgmlType.IQ2_XXS, typeof(BlockIQ2XXS))]
    [InlineData(GgmlType.IQ2_XS, typeof(BlockIQ2XS))]
    [InlineData(GgmlType.IQ2_S, typeof(BlockIQ2S))]
    [InlineData(GgmlType.IQ3_XXS, typeof(BlockIQ3XXS))]
    [InlineData(GgmlType.IQ3_S, typeof(BlockIQ3S))]
    [InlineData(GgmlType.IQ1_S, typeof(BlockIQ1S))]
    [InlineData(GgmlType.IQ1_M, typeof(BlockIQ1M))]
    public void BlockStructsHaveGgmlsSizes(GgmlType type, Type block)
    {
        // ggml-common.h's static_asserts, e.g. sizeof(block_iq2_s) == sizeof(ggml_half) + QK_K/4 + QK_K/16.
        int expected = type switch
        {
            GgmlType.IQ4_NL => 2 + 16,
            GgmlType.IQ4_XS => 2 + 2 + 4 + 128,
            GgmlType.TQ1_0 => 2 + 4 + 48,
            GgmlType.TQ2_0 => 2 + 64,
            GgmlType.IQ2_XXS => 2 + 64,
            GgmlType.IQ2_XS => 2 + 64 + 8,
            GgmlType.IQ2_S => 2 + 64 + 16,
            GgmlType.IQ3_XXS => 2 + 96,
            GgmlType.IQ3_S => 2 + 13 * 8 + 4,
            GgmlType.IQ1_S => 2 + 32 + 16,
            GgmlType.IQ1_M => 32 + 16 + 8,
            _ => 0,
        };
        Assert.Equal(expected, Marshal.SizeOf(block));
        Assert.Equal(expected, GgmlTypes.TypeSize(type));
        Assert.Equal(expected, (int)block.GetField("SizeInBytes")!.GetValue(null)!);
        Assert.Equal(GgmlTypes.BlockSize(type), (int)block.GetField("BlockSize")!.GetValue(null)!);
    }

    [Fact]
    public void FieldOffsetsMatchGgml()
    {
        Assert.Equal(52, (int)Marshal.OffsetOf<BlockTQ1_0>(nameof(BlockTQ1_0.D)));
        Assert.Equal(64, (int)Marshal.OffsetOf<BlockTQ2_0>(nameof(BlockTQ2_0.D)));
        Assert.Equal(8, (int)Marshal.OffsetOf<BlockIQ4XS>(nameof(BlockIQ4XS.Qs)));
        Assert.Equal(66, (int)Marshal.OffsetOf<BlockIQ2XS>(nameof(BlockIQ2XS.Scales)));
        Assert.Equal(74, (int)Marshal.OffsetOf<BlockIQ2S>(nameof(BlockIQ2S.Scales)));
        Assert.Equal(74, (int)Marshal.OffsetOf<BlockIQ3S>(nameof(BlockIQ3S.Signs)));
        Assert.Equal(106, (int)Marshal.OffsetOf<BlockIQ3S>(nameof(BlockIQ3S.Scales)));
        Assert.Equal(34, (int)Marshal.OffsetOf<BlockIQ1S>(nameof(BlockIQ1S.Qh)));
        Assert.Equal(48, (int)Marshal.OffsetOf<BlockIQ1M>(nameof(BlockIQ1M.Scales)));
        Assert.Equal(66, Unsafe.SizeOf<BlockIQ2XXS>());
    }

    /// <summary>
    /// The grid and ternary kernels compute ggml's exact block integers and then the scalar's float steps, so they must
    /// match it bit for bit; IQ4_NL / IQ4_XS accumulate in float lanes (the engine's canonical order) and must match it
    /// up to f32 summation rounding.
    /// </summary>
    [Avx2Theory]
    [MemberData(nameof(BlockCases))]
    public void Avx2MatchesScalar(GgmlType type, int nb)
    {
        int n = nb * GgmlTypes.BlockSize(type);
        foreach (var (w, a) in Rows(type, nb))
        {
            float want = VecDot.RowScalar(type, w, a, n), got = Avx2(type, w, a, nb);
            if (IsCanonicalOrder(type))
                AssertClose(type, w, a, want, got);
            else
                AssertSameBits(want, got, type, nb);
        }
    }

    public static TheoryData<GgmlType, int> Vector128Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in new[] { GgmlType.IQ4_NL, GgmlType.IQ4_XS })
            foreach (int nb in GgmlTypes.BlockSize(t) == 32 ? new[] { 1, 3, 4, 7, 9, 64 } : new[] { 1, 2, 3, 8 })
                data.Add(t, nb);
        return data;
    }

    /// <summary>The portable Vector128 twins (IQ4_NL, IQ4_XS) repeat the AVX2 kernels' integers and float steps exactly.</summary>
    [Avx2Theory]
    [MemberData(nameof(Vector128Cases))]
    public void Vector128IsBitIdenticalToAvx2(GgmlType type, int nb)
    {
        foreach (var (w, a) in Rows(type, nb))
            AssertSameBits(Avx2(type, w, a, nb), Vector128(type, w, a, nb), type, nb);
    }

    /// <summary>Runs everywhere (in software where intrinsics are off): the Vector128 twin against the scalar.</summary>
    [Theory]
    [MemberData(nameof(Vector128Cases))]
    public void Vector128MatchesScalarToSummationRounding(GgmlType type, int nb)
    {
        foreach (var (w, a) in Rows(type, nb))
            AssertClose(type, w, a, VecDot.RowScalar(type, w, a, nb * GgmlTypes.BlockSize(type)), Vector128(type, w, a, nb));
    }

    private static float Vector128(GgmlType type, byte[] w, byte[] a, int nb)
    {
        fixed (byte* pw = w, pa = a)
            return type == GgmlType.IQ4_NL ? IQ4NL.DotVector128(pw, pa, nb) : IQ4XS.DotVector128(pw, pa, nb);
    }

    /// <summary>The types whose AVX2 dot sums in float lanes instead of the scalar's order.</summary>
    internal static bool IsCanonicalOrder(GgmlType type) => type is GgmlType.IQ4_NL or GgmlType.IQ4_XS;

    /// <summary>|got − want| within f32 summation rounding: (blocks + 8)·4·2^−24 · Σ|w_i·a_i| of the dequantized rows.</summary>
    private static void AssertClose(GgmlType type, byte[] w, byte[] a, float want, float got)
    {
        int n = w.Length / GgmlTypes.TypeSize(type) * GgmlTypes.BlockSize(type);
        var wd = new float[n];
        var ad = new float[n];
        Dequantize.Row(type, w, wd);
        Dequantize.Row(QuantTraits.VecDotType(type), a, ad);
        double magnitude = 0;
        for (int i = 0; i < n; i++)
            magnitude += Math.Abs((double)wd[i] * ad[i]);
        double tol = (n / 32 + 8) * 4 * Math.ScaleB(1.0, -24) * magnitude + 1e-30;
        Assert.True(Math.Abs((double)got - want) <= tol, $"{type} n={n}: got {got:R}, want {want:R} (tol {tol:E2})");
    }

    /// <summary>The public dot takes the AVX2 path where the CPU has it and the scalar one otherwise, with exactly its result.</summary>
    [Theory]
    [MemberData(nameof(BlockCases))]
    public void DotDispatchesToTheBestAvailablePath(GgmlType type, int nb)
    {
        int n = nb * GgmlTypes.BlockSize(type);
        foreach (var (w, a) in Rows(type, nb))
        {
            float want = Simd.Avx2Fma ? Avx2(type, w, a, nb)
                : Simd.UseVector128 && IsCanonicalOrder(type) ? Vector128(type, w, a, nb) : VecDot.RowScalar(type, w, a, n);
            AssertSameBits(want, VecDot.Row(type, w, a, n), type, nb);
        }
    }

    /// <summary>
    /// The dot equals Σ dequant(w)·dequant(a) up to f32 rounding: the dot and the dequantizer read every field the
    /// same way (index bits, signs, scales, shifts, weight order).
    /// </summary>
    [Theory]
    [MemberData(nameof(AllTypes))]
    public void DotAgreesWithTheDequantizedRows(GgmlType type)
    {
        const int nb = 4;
        int n = nb * GgmlTypes.BlockSize(type) * (GgmlTypes.BlockSize(type) == 32 ? 8 : 1);
        var act = QuantTraits.VecDotType(type);
        var rng = new Random(77 + (int)type);
        for (int rep = 0; rep < 8; rep++)
        {
            var w = Weights(type, n / GgmlTypes.BlockSize(type), rng, Fill.Random, mixedScales: false);
            var a = Activations(act, n, rng, symmetric: false, mixedScales: false);
            var wd = new float[n];
            var ad = new float[n];
            Dequantize.Row(type, w, wd);
            Dequantize.Row(act, a, ad);
            double exact = 0, magnitude = 0;
            for (int i = 0; i < n; i++)
            {
                exact += (double)wd[i] * ad[i];
                magnitude += Math.Abs((double)wd[i] * ad[i]);
            }
            float got = VecDot.RowScalar(type, w, a, n);
            Assert.True(Math.Abs(got - exact) <= 1e-5 * magnitude + 1e-30, $"{type}: dot {got:R}, dequantized {exact:R} (Σ|wa| {magnitude:E2})");
        }
    }

    [Fact]
    public void SignAndLevelTablesHaveTheirDefiningShape()
    {
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        Assert.Equal(128, ksigns.Length);
        for (int i = 0; i < 128; i++)   // low 7 bits are the index; bit 7 makes the number of minus signs even
        {
            Assert.Equal(i, ksigns[i] & 127);
            Assert.Equal(0, System.Numerics.BitOperations.PopCount(ksigns[i]) & 1);
        }
        for (int j = 0; j < 8; j++)
            Assert.Equal(1 << j, IQTables.KMask[j]);
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        Assert.Equal(16, kv.Length);
        for (int j = 1; j < 16; j++)
            Assert.True(kv[j] > kv[j - 1]);
    }

    [Fact]
    public void GridsHaveGgmlsSizesAndValueSets()
    {
        AssertGrid(IQ2Grids.Iq2XxsGrid, 256, [8, 25, 43]);
        AssertGrid(IQ2Grids.Iq2XsGrid, 512, [8, 25, 43]);
        AssertGrid(IQ2Grids.Iq2SGrid, 1024, [8, 25, 43]);
        AssertGrid(IQ1Grid.Iq1SGrid, 2048, [0xFF, 0x00, 0x01]);
        ReadOnlySpan<uint> g3 = IQTables.Iq3XxsGrid, g3s = IQTables.Iq3SGrid;
        Assert.Equal(256, g3.Length);
        Assert.Equal(512, g3s.Length);
        foreach (uint e in g3s)
            for (int j = 0; j < 4; j++)
                Assert.True(((e >> (8 * j)) & 1) == 1 && ((e >> (8 * j)) & 0xFF) <= 15, $"iq3s entry 0x{e:x8}");
    }

    private static void AssertGrid(ReadOnlySpan<ulong> grid, int length, byte[] values)
    {
        Assert.Equal(length, grid.Length);
        var seen = new HashSet<ulong>();
        foreach (ulong e in grid)
        {
            Assert.True(seen.Add(e), $"duplicate grid point 0x{e:x16}");
            for (int j = 0; j < 8; j++)
                Assert.Contains((byte)(e >> (8 * j)), values);
        }
    }

    /// <summary>Weight rows of every fill (ordinary and mixed scales) against activations over the full int8 range.</summary>
    private static IEnumerable<(byte[] W, byte[] A)> Rows(GgmlType type, int nb)
    {
        var rng = new Random(1000 * (int)type + nb);
        int n = nb * GgmlTypes.BlockSize(type);
        var act = QuantTraits.VecDotType(type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
                yield return (Weights(type, nb, rng, fill, mixed), Activations(act, n, rng, symmetric: false, mixed));
    }

    private static float Avx2(GgmlType type, byte[] w, byte[] a, int nb)
    {
        fixed (byte* pw = w, pa = a)
        {
            return type switch
            {
                GgmlType.IQ4_NL => IQ4NL.DotAvx2(pw, pa, nb),
                GgmlType.IQ4_XS => IQ4XS.DotAvx2(pw, pa, nb),
                GgmlType.TQ1_0 => TQ1_0.DotAvx2(pw, pa, nb),
                GgmlType.TQ2_0 => TQ2_0.DotAvx2(pw, pa, nb),
                GgmlType.IQ2_XXS => IQ2XXS.DotAvx2(pw, pa, nb),
                GgmlType.IQ2_XS => IQ2XS.DotAvx2(pw, pa, nb),
                GgmlType.IQ2_S => IQ2S.DotAvx2(pw, pa, nb),
                GgmlType.IQ3_XXS => IQ3XXS.DotAvx2(pw, pa, nb),
                GgmlType.IQ3_S => IQ3S.DotAvx2(pw, pa, nb),
                GgmlType.IQ1_S => IQ1S.DotAvx2(pw, pa, nb),
                GgmlType.IQ1_M => IQ1M.DotAvx2(pw, pa, nb),
                _ => throw new ArgumentOutOfRangeException(nameof(type)),
            };
        }
    }

    private static void AssertSameBits(float want, float got, GgmlType type, int nb)
    {
        bool same = BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got) || (float.IsNaN(want) && float.IsNaN(got));
        Assert.True(same, $"{type} ({nb} blocks): got {got:R}, want {want:R}");
    }
}
