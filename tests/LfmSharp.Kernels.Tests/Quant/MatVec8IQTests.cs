using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The 8-row decode kernel of IQ3_XXS, IQ3_S, IQ1_S and IQ1_M (<see cref="MatVec8IQ"/>) and the bit tricks of their
/// block sums (<see cref="IQBlockSums"/>): every output has the bits of the row dot, which has the bits of DotScalar
/// (ggml's generic dot; the row dots themselves are checked against it in IQuantTests).
/// </summary>
public sealed unsafe class MatVec8IQTests
{
    private static readonly GgmlType[] s_types = [GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M];

    public static TheoryData<GgmlType> Types() => [.. s_types];

    public static TheoryData<GgmlType, int> Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in s_types)
            foreach (int nb in new[] { 1, 2, 3, 8 })
                data.Add(t, nb);
        return data;
    }

    /// <summary>The parity fold gives ksigns_iq2xs for every 7-bit index in every one of the 8 positions.</summary>
    [Fact]
    public void SignBytesAreKSigns()
    {
        var rng = new Random(3);
        for (int rep = 0; rep < 2000; rep++)
        {
            var idx = new int[8];
            ulong aux2 = (ulong)rng.NextInt64() & 0xF000_0000_F000_0000;   // the scale nibbles must not leak in
            for (int k = 0; k < 8; k++)
            {
                idx[k] = rep < 128 ? (rep + 17 * k) & 127 : rng.Next(128);
                aux2 |= (ulong)idx[k] << (k < 4 ? 7 * k : 32 + 7 * (k - 4));
            }
            ulong s = IQBlockSums.SignBytes(aux2);
            for (int k = 0; k < 8; k++)
                Assert.Equal(IQTables.KSigns[idx[k]], (byte)(s >> (8 * k)));
        }
    }

    /// <summary>The portable bit deposit (used where BMI2 is missing) is pdep.</summary>
    [Fact]
    public void PortableDepositIsPdep()
    {
        var rng = new Random(4);
        ulong[] masks = [0x00FF00FF00FF00FF, 0x0700070007000700, 0x0F000F000F000F00, 0xF0F0F0F0F0F0F0F0, 0x7F7F7F7F7F7F7F7F, 0x0100010001000100, 0, ~0ul];
        foreach (ulong mask in masks)
            for (int rep = 0; rep < 200; rep++)
            {
                ulong src = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
                ulong want = 0;
                int j = 0;
                for (int bit = 0; bit < 64; bit++)
                    if ((mask >> bit & 1) != 0)
                        want |= ((src >> j++) & 1) << bit;
                Assert.Equal(want, IQBlockSums.DepositPortable(src, mask));
                if (Bmi2.X64.IsSupported)
                    Assert.Equal(want, IQBlockSums.Deposit(src, mask));
            }
    }

    /// <summary>8 rows (every fill, ordinary and mixed scales) through the kernel: each output has its row dot's bits and DotScalar's.</summary>
    [Avx2Theory]
    [MemberData(nameof(Cases))]
    public void DecodeEqualsTheRowDots(GgmlType type, int nb)
    {
        var rng = new Random(100 * (int)type + nb);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var w = Rows8(type, nb, rng, fill, mixed);
                // −128 quants (which Q8_K never writes) are outside the AVX-512 IQ3 kernel's contract; the AVX2 one is exact there.
                bool iq3 = type is GgmlType.IQ3_XXS or GgmlType.IQ3_S;
                var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: iq3 && IQ3Simd512.IsSupported, mixed);
                CheckGroup(type, w, a, nb);
            }
    }

    public static TheoryData<GgmlType, int> Iq3Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in new[] { GgmlType.IQ3_XXS, GgmlType.IQ3_S })
            foreach (int nb in new[] { 1, 2, 3, 8 })
                data.Add(t, nb);
        return data;
    }

    /// <summary>Both IQ3 kernels called directly (the table picks one): the AVX2 one over the full int8 range, the AVX-512 one within ±127.</summary>
    [Iq2Simd512Theory]
    [MemberData(nameof(Iq3Cases))]
    public void BothIQ3KernelsEqualTheRowDots(GgmlType type, int nb)
    {
        bool xxs = type == GgmlType.IQ3_XXS;
        delegate*<in Group8, void> avx2 = xxs ? &MatVec8IQ.Group<IQ3XXS8> : &MatVec8IQ.Group<IQ3S8>;
        delegate*<in Group8, void> avx512 = xxs ? &IQ3Simd512.Decode8<IQ3XXSRow> : &IQ3Simd512.Decode8<IQ3SRow>;
        var rng = new Random(5 + nb + (int)type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var w = Rows8(type, nb, rng, fill, mixed);
                CheckGroup(type, w, Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: false, mixed), nb, avx2);
                CheckGroup(type, w, Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: true, mixed), nb, avx512);
            }
    }

    /// <summary>The AVX-512 kernel's code planes give back every byte of every iq3xxs_grid and iq3s_grid point.</summary>
    [Fact]
    public void TheIQ3CodePlanesHoldEveryGridPoint()
    {
        Check(IQ3XXSRow.CodeArray, IQTables.Iq3XxsGrid, [4, 12, 20, 28, 36, 44, 52, 62]);
        Check(IQ3SRow.CodeArray, IQTables.Iq3SGrid, [1, 3, 5, 7, 9, 11, 13, 15]);

        static void Check(byte[] codes, ReadOnlySpan<uint> grid, ReadOnlySpan<byte> levels)
        {
            Assert.Equal(2 * grid.Length, codes.Length);
            for (int i = 0; i < grid.Length; i++)
            {
                int code = codes[i] | codes[grid.Length + i] << 8;
                Assert.True(code < 1 << 12, $"point {i}: code {code:X} has bits above 12");
                for (int j = 0; j < 4; j++)
                    Assert.Equal((int)(grid[i] >> (8 * j)) & 0xFF, levels[code >> (3 * j) & 7]);
            }
        }
    }

    /// <summary>A row with an Inf or NaN scale sends its group to the exact row dots (the vector f16 widening is finite-only).</summary>
    [Avx2Theory]
    [MemberData(nameof(Types))]
    public void InfAndNaNScalesGiveTheRowDots(GgmlType type)
    {
        var rng = new Random(9 + (int)type);
        int size = GgmlTypes.TypeSize(type);
        foreach (ushort special in new ushort[] { 0x7C00, 0xFC00, 0x7E00 })
        {
            var w = Rows8(type, 3, rng, Fill.Random, mixed: false);
            SetScale(type, w.AsSpan((5 * 3 + 1) * size, size), special);
            var a = Activations(GgmlType.Q8_K, 768, rng, symmetric: false, mixedScales: false);
            CheckGroup(type, w, a, 3);
        }
    }

    /// <summary>
    /// MatMul for 1–3 tokens (8-row groups plus a ragged end, and the fused gate/up pass) gives the row dots' bits;
    /// 4 tokens take the batch decoder (IQDecoded) instead, with the same bits.
    /// </summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void MatMulAndSwiGluEqualTheRowDots(GgmlType type)
    {
        const int rows = 20, cols = 768;
        var rng = new Random(77 + (int)type);
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols);
        var gate = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        var up = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        for (int r = 0; r < rows; r++)
        {
            Weights(type, cols / 256, rng, Fill.Random, mixedScales: r % 5 == 0).CopyTo(gate.AsSpan(r * rowBytes));
            Weights(type, cols / 256, rng, Fill.Random, mixedScales: false).CopyTo(up.AsSpan(r * rowBytes));
        }
        var x = new float[4 * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 4, cols);
        fixed (byte* pg = gate, pu = up)
        {
            var wg = new WeightMatrix(type, rows, cols, pg);
            var wu = new WeightMatrix(type, rows, cols, pu);
            for (int tokens = 1; tokens <= 4; tokens++)
            {
                var xt = x.AsSpan(0, tokens * cols);
                var want = new float[tokens * rows];
                var wantUp = new float[tokens * rows];
                var got = new float[tokens * rows];
                MatMul.Reference(wg, xt, want, MatMulPrecision.LlamaCpp);
                MatMul.Compute(wg, xt, got, ws);
                AssertSameBits(want, got, $"{type}: {tokens} tokens");
                // The fused pass leaves up·x in its scratch (exact bits) and the SwiGLU, whose SIMD/scalar split
                // follows the 8-row groups, in y (checked to f32 rounding).
                MatMul.Reference(wu, xt, wantUp, MatMulPrecision.LlamaCpp);
                var gotUp = new float[tokens * rows];
                MatMul.ComputeSwiGlu(wg, wu, xt, got, gotUp, ws);
                AssertSameBits(wantUp, gotUp, $"{type}: up of the fused pass, {tokens} tokens");
                SwiGlu.Apply(want, wantUp, want);
                for (int i = 0; i < want.Length; i++)
                    Assert.True(Math.Abs(want[i] - got[i]) <= 1e-6f * Math.Abs(want[i]) + 1e-30f, $"{type}: SwiGLU output {i}, {tokens} tokens: {got[i]:R} vs {want[i]:R}");
            }
        }
    }

    private static byte[] Rows8(GgmlType type, int nb, Random rng, Fill fill, bool mixed)
    {
        int rowBytes = nb * GgmlTypes.TypeSize(type);
        var w = new byte[8 * rowBytes + 8 * rowBytes];   // a second group's worth after it: the kernel prefetches there
        for (int r = 0; r < 8; r++)
            Weights(type, nb, rng, fill, mixed).CopyTo(w.AsSpan(r * rowBytes));
        return w;
    }

    private static void CheckGroup(GgmlType type, byte[] w, byte[] a, int nb) => CheckGroup(type, w, a, nb, TypeTraits.For(type).Decode8);

    private static void CheckGroup(GgmlType type, byte[] w, byte[] a, int nb, delegate*<in Group8, void> decode8)
    {
        int rowBytes = nb * GgmlTypes.TypeSize(type);
        var y = new float[8];
        fixed (byte* pw = w, pa = a)
        fixed (float* py = y)
        {
            var g = new Group8 { Rows = pw, RowBytes = rowBytes, Nb = nb, Act = pa, Y = py };
            decode8(g);
            var row = TypeTraits.For(type).DotSimd;
            for (int r = 0; r < 8; r++)
            {
                var wr = w.AsSpan(r * rowBytes, rowBytes);
                float dot = row(pw + r * rowBytes, pa, nb), scalar = VecDot.RowScalar(type, wr, a, 256 * nb);
                Assert.True(SameBits(dot, y[r]), $"{type} nb={nb} row {r}: kernel {y[r]:R}, row dot {dot:R}");
                Assert.True(SameBits(scalar, y[r]), $"{type} nb={nb} row {r}: kernel {y[r]:R}, scalar {scalar:R}");
            }
        }
    }

    private static bool SameBits(float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));

    private static void AssertSameBits(float[] want, float[] got, string what)
    {
        for (int i = 0; i < want.Length; i++)
            Assert.True(SameBits(want[i], got[i]), $"{what}: output {i} is {got[i]:R}, want {want[i]:R}");
    }
}
