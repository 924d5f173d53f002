using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The load-time conversion of TQ1_0 rows to TQ2_0 (TypeTraits.LoadAs, <see cref="TQ1_0.ToTQ2_0"/>): a converted row
/// dequantizes to the TQ1_0 row's floats, and TQ2_0's scalar row dot and 8-row kernel give TQ1_0's scalar row dot's bits
/// (odd block counts, every byte value, ±0 / subnormal / large / Inf / NaN scales). The suite's AVX2-only and no-SIMD
/// legs run the conversion's scalar digits and TQ2_0's other kernels.
/// </summary>
public sealed unsafe class TernaryConversionTests
{
    private const int Rows = 9;   // 9 rows so the 8-row kernel's next-group prefetch reads memory of the array

    [Fact]
    public void ConvertedRowsKeepTheirValuesAndRowDotBits()
    {
        var rng = new Random(41);
        foreach (int nb in new[] { 1, 3, 5 })
            foreach (var fill in Fills)
                foreach (bool mixed in new[] { false, true })
                    Check(TernaryRows(nb, rng, fill, mixed, everyByte: false), nb, rng, mixed, $"nb={nb} {fill} mixed={mixed}");
        // Each byte value 0..255 in every qs / qh position class (48 qs bytes, 4 qh bytes a block).
        foreach (int nb in new[] { 5, 7 })
            Check(TernaryRows(nb, rng, Fill.Random, mixed: true, everyByte: true), nb, rng, mixed: true, $"nb={nb} every byte");
    }

    [Fact]
    public void ConvertRowsMatchesTheRowConversionWhereTheTableAsksForIt()
    {
        var k = TypeTraits.For(GgmlType.TQ1_0);
        if (k.LoadAs is not { } to)
            return;   // no SIMD: the rows stay TQ1_0
        Assert.Equal(GgmlType.TQ2_0, to);
        const int nb = 3;
        var w = TernaryRows(nb, new Random(43), Fill.Random, mixed: true, everyByte: false);
        var want = Convert(w, nb);
        var got = new byte[want.Length];
        WeightMatrix.ConvertRows(GgmlType.TQ1_0, 256 * nb, w, got);
        Assert.Equal(want, got);
        Assert.Throws<ArgumentException>(() => WeightMatrix.ConvertRows(GgmlType.TQ1_0, 256 * nb, w, got.AsSpan(1)));
    }

    private static void Check(byte[] w, int nb, Random rng, bool mixed, string what)
    {
        var c = Convert(w, nb);
        var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: false, mixed);
        var f1 = new float[256 * nb];
        var f2 = new float[256 * nb];
        var want = new float[Rows];
        for (int r = 0; r < Rows; r++)
        {
            var x1 = w.AsSpan(r * nb * 54, nb * 54);
            var x2 = c.AsSpan(r * nb * 66, nb * 66);
            TQ1_0.DequantizeRow(x1, f1);
            TQ2_0.DequantizeRow(x2, f2);
            Assert.True(MemoryMarshal.AsBytes(f1.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(f2.AsSpan())), $"{what} row {r}: values differ");
            want[r] = TQ1_0.DotScalar(x1, a, nb);
            AssertSameBits(want[r], TQ2_0.DotScalar(x2, a, nb), $"{what} row {r}: TQ2_0 scalar dot");
            AssertSameBits(want[r], TQ2_0.Dot(x2, a, 256 * nb), $"{what} row {r}: TQ2_0 row dot (SIMD where there is one)");
        }
        var kernel = TypeTraits.For(GgmlType.TQ2_0).Decode8;
        if (kernel == null)
            return;
        var y = new float[8];
        fixed (byte* pc = c, pa = a)
        fixed (float* py = y)
            kernel(new Group8 { Rows = pc, RowBytes = nb * 66, Nb = nb, Act = pa, Y = py });
        for (int r = 0; r < 8; r++)
            AssertSameBits(want[r], y[r], $"{what} row {r}: TQ2_0 8-row kernel");
    }

    /// <summary>
    /// <see cref="Rows"/> TQ1_0 rows; with <paramref name="mixed"/> one block's scale is +Inf and one's NaN. With
    /// <paramref name="everyByte"/> the quant bytes count up instead, so 5 or more blocks hold each byte value.
    /// </summary>
    private static byte[] TernaryRows(int nb, Random rng, Fill fill, bool mixed, bool everyByte)
    {
        var w = new byte[Rows * nb * 54];
        for (int r = 0; r < Rows; r++)
            Weights(GgmlType.TQ1_0, nb, rng, fill, mixed).CopyTo(w, r * nb * 54);
        if (everyByte)
        {
            int v = 0;
            for (int blk = 0; blk < Rows * nb; blk++)
                for (int i = 0; i < 52; i++)
                    w[blk * 54 + i] = (byte)(v++ * 7);   // 7 is odd, so 256 steps pass every value once
        }
        if (mixed)
        {
            SetScale(GgmlType.TQ1_0, w.AsSpan(2 * nb * 54 + (nb - 1) * 54, 54), 0x7C00);   // +Inf
            SetScale(GgmlType.TQ1_0, w.AsSpan(5 * nb * 54, 54), 0x7E01);                    // NaN
        }
        return w;
    }

    private static byte[] Convert(byte[] w, int nb)
    {
        var c = new byte[w.Length / 54 * 66];
        fixed (byte* pw = w, pc = c)
        {
            for (int r = 0; r < w.Length / (nb * 54); r++)
                TQ1_0.ToTQ2_0(pw + r * nb * 54, pc + r * nb * 66, nb);
        }
        return c;
    }

    private static void AssertSameBits(float want, float got, string what) =>
        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got) || (float.IsNaN(want) && float.IsNaN(got)),
            $"{what}: got {got:R}, want {want:R}");
}
