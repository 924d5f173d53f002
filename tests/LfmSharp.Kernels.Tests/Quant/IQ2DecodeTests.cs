using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>A fact that xunit reports as skipped where the CPU lacks GFNI or the JIT has it disabled.</summary>
public sealed class GfniFactAttribute : FactAttribute
{
    public GfniFactAttribute()
    {
        if (!Gfni.IsSupported)
            Skip = "GFNI not available here (or disabled via DOTNET_EnableHWIntrinsic)";
    }
}

/// <summary>A theory that xunit reports as skipped where <see cref="IQ2Simd512"/> cannot run (no AVX-512 VBMI or GFNI).</summary>
public sealed class Iq2Simd512TheoryAttribute : TheoryAttribute
{
    public Iq2Simd512TheoryAttribute()
    {
        if (!IQ2Simd512.IsSupported)
            Skip = "AVX-512 VBMI + GFNI not available here (or disabled via DOTNET_EnableAVX512)";
    }
}

/// <summary>
/// The IQ2_XXS / IQ2_XS / IQ2_S decode kernels (<see cref="IQ2Simd"/>, <see cref="IQ2Simd512"/>): the 8-row kernel gives
/// every row the bits of the scalar dot (all fills, extreme and subnormal scales, activations over Q8_K's range ±127:
/// the AVX-512 kernels negate them, so −128, which Q8K never writes, is outside its contract), a group
/// with an Inf/NaN scale is recomputed exactly, the table picks the kernel exactly where AVX2 runs, and decode
/// matmuls (plain and the fused gate/up pass) equal the per-row dots. The row dots themselves are checked against
/// the scalar in IQuantTests; the suite's AVX2-only and no-SIMD legs run these too.
/// </summary>
public sealed unsafe class IQ2DecodeTests
{
    private static readonly GgmlType[] Iq2 = [GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S];

    public static TheoryData<GgmlType, int> Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in Iq2)
            foreach (int nb in new[] { 1, 2, 3, 8 })
                data.Add(t, nb);
        return data;
    }

    public static TheoryData<GgmlType> Types() => [.. Iq2];

    [Avx2Theory]
    [MemberData(nameof(Cases))]
    public void The_8_row_kernel_gives_every_row_the_scalar_dots_bits(GgmlType type, int nb)
    {
        var k = TypeTraits.For(type);
        var rng = new Random(31 * nb + (int)type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var (rows, rowBytes) = EightRows(type, nb, rng, fill, mixed);
                var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: true, mixed);
                var y = Run(k, rows, rowBytes, nb, a);
                for (int r = 0; r < 8; r++)
                {
                    float want = k.DotScalar(rows.AsSpan(r * rowBytes, rowBytes), a, nb);
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[r]),
                        $"{type} nb={nb} {fill} mixed={mixed} row {r}: got {y[r]:R}, want {want:R}");
                }
            }
    }

    /// <summary>The AVX-512 kernels called directly (the table picks them only where they run; the AVX2-only leg tests the others).</summary>
    [Iq2Simd512Theory]
    [MemberData(nameof(Cases))]
    public void The_AVX512_kernels_give_every_row_the_scalar_dots_bits(GgmlType type, int nb)
    {
        var k = TypeTraits.For(type);
        var kernel = type switch
        {
            GgmlType.IQ2_XXS => (delegate*<in Group8, void>)&IQ2Simd512.Decode8<IQ2XXSPair>,
            GgmlType.IQ2_XS => &IQ2Simd512.Decode8<IQ2XSPair>,
            _ => &IQ2Simd512.Decode8<IQ2SPair>,
        };
        var rng = new Random(7 * nb + (int)type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var (rows, rowBytes) = EightRows(type, nb, rng, fill, mixed);
                var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: true, mixed);
                var y = Run(kernel, rows, rowBytes, nb, a);
                for (int r = 0; r < 8; r++)
                {
                    float want = k.DotScalar(rows.AsSpan(r * rowBytes, rowBytes), a, nb);
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[r]),
                        $"{type} nb={nb} {fill} mixed={mixed} row {r}: got {y[r]:R}, want {want:R}");
                }
            }
    }

    public static TheoryData<int> BlockCounts() => [1, 2, 3, 8];

    /// <summary>
    /// The AVX2 IQ2_XXS kernel called directly (the table picks it where the AVX-512 one cannot run): its fast path
    /// (activations within ±127) and its exact fallback for blocks with −128 both give every row the scalar dot's bits.
    /// </summary>
    [Avx2Theory]
    [MemberData(nameof(BlockCounts))]
    public void The_AVX2_IQ2_XXS_kernel_gives_every_row_the_scalar_dots_bits(int nb)
    {
        var k = TypeTraits.For(GgmlType.IQ2_XXS);
        var rng = new Random(13 * nb);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
                foreach (bool symmetric in new[] { true, false })
                {
                    var (rows, rowBytes) = EightRows(GgmlType.IQ2_XXS, nb, rng, fill, mixed);
                    var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric, mixed);
                    if (!symmetric)
                        ForceMinus128(a, nb - 1, rng.Next(256));   // at least one block takes the fallback
                    var y = Run(&MatVec8IQ2XXSAvx2.Group, rows, rowBytes, nb, a);
                    for (int r = 0; r < 8; r++)
                    {
                        float want = k.DotScalar(rows.AsSpan(r * rowBytes, rowBytes), a, nb);
                        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[r]),
                            $"nb={nb} {fill} mixed={mixed} symmetric={symmetric} row {r}: got {y[r]:R}, want {want:R}");
                    }
                }
    }

    [Avx2Theory]
    [MemberData(nameof(Types))]
    public void A_group_with_an_Inf_or_NaN_scale_is_recomputed_exactly(GgmlType type)
    {
        const int nb = 2;
        var k = TypeTraits.For(type);
        var rng = new Random(9 + (int)type);
        var (rows, rowBytes) = EightRows(type, nb, rng, Fill.Random, mixed: false);
        int size = GgmlTypes.TypeSize(type);
        BinaryPrimitives.WriteUInt16LittleEndian(rows.AsSpan(2 * rowBytes + size), 0x7C00);   // +Inf in row 2, block 1
        BinaryPrimitives.WriteUInt16LittleEndian(rows.AsSpan(5 * rowBytes), 0x7E00);          // NaN in row 5, block 0
        var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: true, mixedScales: false);
        var y = Run(k, rows, rowBytes, nb, a);
        for (int r = 0; r < 8; r++)
        {
            float want = k.DotScalar(rows.AsSpan(r * rowBytes, rowBytes), a, nb);
            Assert.True(float.IsNaN(want) ? float.IsNaN(y[r]) : BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[r]),
                $"{type} row {r}: got {y[r]:R}, want {want:R}");
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void The_table_has_the_8_row_kernel_exactly_where_AVX2_runs(GgmlType type)
    {
        var k = TypeTraits.For(type);
        Assert.Equal(Simd.Avx2Fma, k.Decode8 != null);
        Assert.Equal(Simd.Avx2Fma, k.DotSimd != null);
        Assert.NotNull(k.Decoder);   // batches of 4+ keep the decoded path
    }

    [Fact]
    public void The_sign_table_is_ksigns_as_plus_minus_one_bytes()
    {
        ReadOnlySpan<ulong> ones = IQ2Simd.SignOnes;
        Assert.Equal(128, ones.Length);
        for (int i = 0; i < 128; i++)
            for (int j = 0; j < 8; j++)
                Assert.Equal((IQTables.KSigns[i] >> j & 1) != 0 ? 0xFF : 0x01, (int)(ones[i] >> (8 * j)) & 0xFF);
    }

    [Fact]
    public void The_AVX512_code_tables_hold_every_grid_point()
    {
        Check(IQ2XXSPair.CodeArray, IQ2Grids.Iq2XxsGrid);
        Check(IQ2XSPair.CodeArray, IQ2Grids.Iq2XsGrid);
        Check(IQ2SPair.CodeArray, IQ2Grids.Iq2SGrid);

        static void Check(byte[] codes, ReadOnlySpan<ulong> grid)
        {
            ReadOnlySpan<byte> values = [8, 25, 43];
            Assert.Equal(2 * grid.Length, codes.Length);
            for (int i = 0; i < grid.Length; i++)
            {
                int code = codes[i] | codes[grid.Length + i] << 8;
                for (int j = 0; j < 8; j++)
                    Assert.Equal((int)(grid[i] >> (8 * j)) & 0xFF, values[code >> (2 * j) & 3]);
            }
        }
    }

    /// <summary>IQ2_XXS's matrix reads a 7-bit index in bits 0..6 (bit 7 junk), IQ2_XS's a word's high byte (index in bits 1..7, bit 0 junk).</summary>
    [GfniFact]
    public void The_GFNI_matrices_complete_every_sign_index_to_its_ksigns_byte()
    {
        for (int i = 0; i < 256; i++)
        {
            var xxs = Gfni.GaloisFieldAffineTransform(Vector128.Create((byte)i), Vector128.Create(IQ2XXSPair.KSignsMatrix).AsByte(), 0);
            Assert.Equal(IQTables.KSigns[i & 127], xxs.GetElement(0));
            var xs = Gfni.GaloisFieldAffineTransform(Vector128.Create((byte)i), Vector128.Create(IQ2XSPair.KSignsMatrix).AsByte(), 0);
            Assert.Equal(IQTables.KSigns[i >> 1], xs.GetElement(0));
        }
    }

    /// <summary>20 rows: two groups of 8 and a ragged 4, through Compute and the fused gate/up pass, batches 1–5.</summary>
    [Theory]
    [MemberData(nameof(Types))]
    public void Decode_matmuls_and_the_fused_gate_up_pass_equal_the_row_dots(GgmlType type)
    {
        const int rows = 20, cols = 768;
        var rng = new Random(3 + (int)type);
        int nb = cols / 256, rowBytes = nb * GgmlTypes.TypeSize(type);
        var gateBytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        var upBytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        for (int r = 0; r < rows; r++)
        {
            Weights(type, nb, rng, Fill.Random, mixedScales: r % 5 == 0).CopyTo(gateBytes.AsSpan(r * rowBytes));
            Weights(type, nb, rng, Fill.Random, mixedScales: r % 7 == 0).CopyTo(upBytes.AsSpan(r * rowBytes));
        }
        var x = new float[5 * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 61 == 0 ? 40f : 1f);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 5, cols);
        fixed (byte* pg = gateBytes, pu = upBytes)
        {
            var gate = new WeightMatrix(type, rows, cols, pg);
            var up = new WeightMatrix(type, rows, cols, pu);
            for (int tokens = 1; tokens <= 5; tokens++)
            {
                var xt = x.AsSpan(0, tokens * cols);
                var wantGate = new float[tokens * rows];
                var wantUp = new float[tokens * rows];
                MatMul.Reference(gate, xt, wantGate, MatMulPrecision.LlamaCpp);
                MatMul.Reference(up, xt, wantUp, MatMulPrecision.LlamaCpp);
                var got = new float[tokens * rows];
                MatMul.Compute(gate, xt, got, ws);
                Assert.True(Same(wantGate, got), $"{type}: batch {tokens} differs from the row dots");

                var g = new float[tokens * rows];
                var u = new float[tokens * rows];
                MatMul.ComputeSwiGlu(gate, up, xt, g, u, ws);
                Assert.True(Same(wantUp, u), $"{type}: fused up, batch {tokens}, differs from the row dots");
                var want = new float[g.Length];
                SwiGlu.Scalar(wantGate, wantUp, want);
                for (int i = 0; i < want.Length; i++)
                    Assert.True(Math.Abs(want[i] - g[i]) <= 1e-6f * (1 + Math.Abs(want[i])), $"{type} batch {tokens} element {i}: {g[i]} vs {want[i]}");
            }
        }
    }

    /// <summary>Sets quant j of Q8_K block b to −128, keeping its bsum consistent.</summary>
    private static void ForceMinus128(byte[] a, int b, int j)
    {
        var bsum = a.AsSpan(292 * b + 260 + 2 * (j / 16), 2);
        BinaryPrimitives.WriteInt16LittleEndian(bsum, (short)(BinaryPrimitives.ReadInt16LittleEndian(bsum) - 128 - (sbyte)a[292 * b + 4 + j]));
        a[292 * b + 4 + j] = 0x80;
    }

    private static bool Same(float[] a, float[] b) => MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    private static (byte[] Rows, int RowBytes) EightRows(GgmlType type, int nb, Random rng, Fill fill, bool mixed)
    {
        int rowBytes = nb * GgmlTypes.TypeSize(type);
        var rows = new byte[8 * rowBytes];
        for (int r = 0; r < 8; r++)
            Weights(type, nb, rng, fill, mixed).CopyTo(rows.AsSpan(r * rowBytes));
        return (rows, rowBytes);
    }

    private static float[] Run(TypeTraits k, byte[] rows, int rowBytes, int nb, byte[] a) => Run(k.Decode8, rows, rowBytes, nb, a);

    private static float[] Run(delegate*<in Group8, void> decode8, byte[] rows, int rowBytes, int nb, byte[] a)
    {
        var y = new float[8];
        fixed (byte* pw = rows, pa = a)
        fixed (float* py = y)
        {
            var g = new Group8 { Rows = pw, RowBytes = rowBytes, Nb = nb, Act = pa, Y = py };
            decode8(g);
        }
        return y;
    }
}
