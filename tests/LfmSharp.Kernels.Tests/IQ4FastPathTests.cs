using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Kernels.Tests.Quant;

namespace LfmSharp.Kernels.Tests;

/// <summary>
/// IQ4_NL / IQ4_XS's 8-row decode, interleaved copy and packed prefill GEMM (<see cref="MatVec8IQ4"/>,
/// <see cref="IQ4Packed"/>): rows come back from the copy, and every matmul path gives the row dots' bits.
/// </summary>
/// <remarks>
/// The weights are random blocks (any nibble, any 6-bit sub-scale, f16 scales of a chosen range), so the tests need no
/// quantizer: every bit pattern of the quant fields is a valid block.
/// </remarks>
public sealed unsafe class IQ4FastPathTests
{
    /// <summary>Random IQ4_NL / IQ4_XS rows; block scales are f16 in [2^-10, 2^-6), or f16 subnormals when <paramref name="subnormal"/>.</summary>
    private static byte[] Weights(GgmlType type, int rows, int cols, int seed, bool subnormal = false)
    {
        var rng = new Random(seed);
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols), blockBytes = GgmlTypes.TypeSize(type);
        var bytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        rng.NextBytes(bytes);
        for (int o = 0; o < bytes.Length; o += blockBytes)
        {
            ushort d = subnormal && rng.Next(3) > 0
                ? (ushort)rng.Next(1, 0x400)
                : BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() + 0.01) / 64 * (rng.Next(2) == 0 ? 1 : -1)));
            BitConverter.TryWriteBytes(bytes.AsSpan(o, 2), d);
        }
        return bytes;
    }

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(r.NextDouble() * 2 - 1) * (i % 37 == 0 ? 8 : 1);
        return v;
    }

    [Theory]
    [InlineData(GgmlType.IQ4_NL, 16, 96)]
    [InlineData(GgmlType.IQ4_XS, 16, 512)]
    public void EveryRowComesBackFromTheInterleavedGroups(GgmlType type, int rows, int cols)
    {
        var bytes = Weights(type, rows, cols, 3);
        var il = new byte[bytes.Length];
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        Assert.NotEqual(bytes, il);
        Assert.Equal(bytes.Order(), il.Order());   // a different order of the same bytes
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols), nb = cols / GgmlTypes.BlockSize(type);
        var row = new byte[rowBytes];
        fixed (byte* p = il, o = row)
        {
            for (int r = 0; r < rows; r++)
            {
                Interleaved8.UnpackRow(type, p + (long)(r / 8) * 8 * rowBytes, nb, r % 8, o);
                Assert.True(bytes.AsSpan(r * rowBytes, rowBytes).SequenceEqual(row), $"row {r}");
            }
        }
    }

    /// <summary>
    /// Without and with the interleaved copy (the GGUF bytes wiped before the copy is used), every batch size — one
    /// token (8-row decode), 2–3 (decode per token), 4+ (the packed GEMM, with a ragged tail) — and the fused
    /// gate/up pass give the row dots' bits; also with f16 subnormal scales.
    /// </summary>
    [Avx2Theory]
    [InlineData(GgmlType.IQ4_NL, 24, 96, false)]
    [InlineData(GgmlType.IQ4_NL, 40, 512, false)]
    [InlineData(GgmlType.IQ4_NL, 16, 256, true)]
    [InlineData(GgmlType.IQ4_XS, 16, 512, false)]
    [InlineData(GgmlType.IQ4_XS, 8, 256, false)]
    [InlineData(GgmlType.IQ4_XS, 24, 768, true)]
    public void MatMulGivesTheRowDotsBitsWithAndWithoutTheCopy(GgmlType type, int rows, int cols, bool subnormal)
    {
        var bytes = Weights(type, rows, cols, rows + cols, subnormal);
        var x = Random(21 * cols, 5);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 32, cols);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        fixed (byte* p = bytes, q = il)
        {
            var plain = new WeightMatrix(type, rows, cols, p);
            var yRef = new float[21 * rows];
            MatMul.Reference(plain, x, yRef, MatMulPrecision.LlamaCpp);
            AssertBatches(plain, x, yRef, ws, "GGUF rows");

            Assert.True(WeightMatrix.CanInterleave(type, rows));
            WeightMatrix.InterleaveRows(type, cols, bytes, il);
            var w = plain.WithInterleaved(q);
            Array.Clear(bytes);   // only the copy holds the weights now
            AssertBatches(w, x, yRef, ws, "copy");

            var g = new float[2 * rows];
            var u = new float[2 * rows];
            MatMul.ComputeSwiGlu(w, w, x.AsSpan(0, 2 * cols), g, u, ws);
            Assert.Equal(yRef.AsSpan(0, 2 * rows).ToArray(), u);
            var want = new float[g.Length];
            SwiGlu.Scalar(yRef.AsSpan(0, 2 * rows), yRef.AsSpan(0, 2 * rows), want);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - g[i]) <= 1e-6f * (1 + Math.Abs(want[i])), $"element {i}: {g[i]} vs {want[i]}");
        }
    }

    private static void AssertBatches(in WeightMatrix w, float[] x, float[] yRef, MatMulWorkspace ws, string what)
    {
        foreach (int n in new[] { 1, 2, 3, 4, 5, 8, 9, 21 })
        {
            var y = new float[n * w.Rows];
            MatMul.Compute(w, x.AsSpan(0, n * w.Columns), y, ws);
            for (int i = 0; i < y.Length; i++)
                Assert.True(BitConverter.SingleToInt32Bits(yRef[i]) == BitConverter.SingleToInt32Bits(y[i]),
                    $"{w.Type} {what} batch {n} row {i % w.Rows} token {i / w.Rows}: {y[i]:R} vs {yRef[i]:R}");
        }
    }

    /// <summary>
    /// The kernels the table does not pick on this machine (AVX2-only maddubs vs AVX-VNNI) against the row dot, called
    /// directly: decode over GGUF rows and over the copy, and the packed GEMM on 4 tokens.
    /// </summary>
    [Avx2Theory]
    [InlineData(GgmlType.IQ4_NL, false)]
    [InlineData(GgmlType.IQ4_NL, true)]
    [InlineData(GgmlType.IQ4_XS, false)]
    [InlineData(GgmlType.IQ4_XS, true)]
    public void BothByteDotsGiveTheRowDotsBits(GgmlType type, bool useVnni)
    {
        if (useVnni && !AvxVnni.IsSupported)
            return;
        const int rows = 8, cols = 512;
        var k = TypeTraits.For(type);
        int nb = cols / k.BlockSize, rowBytes = nb * k.TypeSize;
        var bytes = Weights(type, rows, cols, 77);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        var actType = k.VecDotType;
        int actBytes = (int)GgmlTypes.RowBytes(actType, cols);
        var act = GC.AllocateArray<byte>(4 * actBytes, pinned: true);
        var x = Random(4 * cols, 9);
        for (int t = 0; t < 4; t++)
            Quantize.Row(actType, x.AsSpan(t * cols, cols), act.AsSpan(t * actBytes, actBytes));
        var scales = new float[4 * nb];
        for (int t = 0; t < 4 && type == GgmlType.IQ4_NL; t++)
            for (int b = 0; b < nb; b++)
                scales[t * nb + b] = (float)BitConverter.ToHalf(act, t * actBytes + 34 * b);
        // The VNNI decode's activation side: 128·Σa per block (ActivationSide.Q8_0ScalesAndSums128).
        var sums = new int[4 * nb];
        for (int t = 0; t < 4 && type == GgmlType.IQ4_NL; t++)
            for (int b = 0; b < nb; b++)
                for (int i = 0; i < 32; i++)
                    sums[t * nb + b] += 128 * (sbyte)act[t * actBytes + 34 * b + 2 + i];
        var packed = GC.AllocateArray<byte>(nb * k.PackedBlockBytes, pinned: true);
        var y = new float[4 * 8];
        fixed (byte* w = bytes, g = il, a = act, pk = packed)
        fixed (float* s = scales, py = y)
        fixed (int* sm = sums)
        {
            var want = new float[4 * 8];
            for (int t = 0; t < 4; t++)
                for (int r = 0; r < 8; r++)
                    want[8 * t + r] = k.DotSimd(w + r * rowBytes, a + t * actBytes, nb);
            for (int t = 0; t < 4; t++)
            {
                var grp = new Group8 { Rows = w, RowBytes = rowBytes, Interleaved = g, Nb = nb, Act = a + t * actBytes, Scales = s + t * nb, Sums = sm + t * nb, Y = py + 8 * t };
                Decode(type, useVnni, interleaved: false, grp);
                AssertBits(want, y, 8 * t, $"{type} decode token {t}");
                Array.Clear(y);
                Decode(type, useVnni, interleaved: true, grp);
                AssertBits(want, y, 8 * t, $"{type} decode (copy) token {t}");
            }
            // IQ4_NL's signed-level packing, whatever the table picks here (the pairs packing has its own tests);
            // IQ4_XS's biased packing with VNNI, its signed one with maddubs.
            if (type == GgmlType.IQ4_NL) IQ4Packed.PackIQ4NL(w, rowBytes, nb, pk);
            else if (useVnni) IQ4Packed.PackIQ4XSBiased(w, rowBytes, nb, pk);
            else IQ4Packed.PackIQ4XS(w, rowBytes, nb, pk);
            var tile = new PackedGemm.TokenTile
            {
                A0 = a, A1 = a + actBytes, A2 = a + 2 * actBytes, A3 = a + 3 * actBytes,
                D0 = s, D1 = s + nb, D2 = s + 2 * nb, D3 = s + 3 * nb,
                Y0 = py, Y1 = py + 8, Y2 = py + 16, Y3 = py + 24,
            };
            Array.Clear(y);
            if (type == GgmlType.IQ4_NL)
            {
                if (useVnni) PackedGemm.KernelQ8_0Dot4<VnniDot>(pk, nb, tile); else PackedGemm.KernelQ8_0Dot4<Avx2Dot>(pk, nb, tile);
            }
            else if (useVnni)
                IQ4Packed.KernelIQ4XSBiased(pk, nb, tile);
            else
                IQ4Packed.KernelIQ4XSDot4<Avx2Dot>(pk, nb, tile);
            for (int t = 0; t < 4; t++)
                AssertBits(want, y, 8 * t, $"{type} GEMM token {t}");
        }
    }

    private static void Decode(GgmlType type, bool vnni, bool interleaved, in Group8 g)
    {
        if (type == GgmlType.IQ4_XS)
        {
            if (interleaved) MatVec8IQ4XSAvx2.GroupBlocks(g); else MatVec8IQ4XSAvx2.Group(g);
        }
        else if (vnni)
        {
            if (interleaved) MatVec8IQ4.NLx8<VnniDot>(g); else MatVec8IQ4.NL<VnniDot>(g);
        }
        else if (interleaved)
            MatVec8IQ4.NLx8<Avx2Dot>(g);
        else
            MatVec8IQ4.NLRing(g);
    }

    private static void AssertBits(float[] want, float[] got, int at, string what)
    {
        for (int r = 0; r < 8; r++)
            Assert.True(BitConverter.SingleToInt32Bits(want[at + r]) == BitConverter.SingleToInt32Bits(got[at + r]), $"{what} row {r}: {got[at + r]:R} vs {want[at + r]:R}");
    }

    /// <summary>The packed IQ4_NL group read from the copy is byte for byte the one packed from the GGUF rows (so is IQ4_XS's).</summary>
    [Avx2Theory]
    [InlineData(GgmlType.IQ4_NL)]
    [InlineData(GgmlType.IQ4_XS)]
    public void PackingFromTheCopyGivesTheSameBytes(GgmlType type)
    {
        const int cols = 768;
        var k = TypeTraits.For(type);
        int nb = cols / k.BlockSize, rowBytes = nb * k.TypeSize;
        var bytes = Weights(type, 8, cols, 12);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        var a = new byte[nb * k.PackedBlockBytes];
        var b = new byte[a.Length];
        fixed (byte* w = bytes, g = il, pa = a, pb = b)
        {
            k.Pack8(w, rowBytes, nb, pa);
            k.Pack8Interleaved(g, nb, pb);
        }
        Assert.Equal(a, b);
    }
}
