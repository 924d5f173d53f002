using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Kernels.Tests.Quant;

namespace LfmSharp.Kernels.Tests;

/// <summary>The load-time interleaved layout of Q4_0/Q8_0 matrices and the kernels that stream it.</summary>
public sealed unsafe class InterleavedWeightTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var v = new float[n];
        for (int i = 0; i < n; i++)
            v[i] = (float)(r.NextDouble() * 2 - 1) * (i % 37 == 0 ? 8 : 1);   // uneven block maxima
        return v;
    }

    private static byte[] Weights(GgmlType type, int rows, int cols, int seed) => Quantized(type, rows, cols, Random(rows * cols, seed));

    /// <summary>Rows of <paramref name="f"/> quantized with the reference quantizer into a pinned buffer.</summary>
    private static byte[] Quantized(GgmlType type, int rows, int cols, float[] f)
    {
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols);
        var bytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        for (int r = 0; r < rows; r++)
            Quantize.RowReference(type, f.AsSpan(r * cols, cols), bytes.AsSpan(r * rowBytes, rowBytes));
        return bytes;
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, 16, 96)]
    [InlineData(GgmlType.Q8_0, 24, 64)]
    [InlineData(GgmlType.Q4_K, 16, 512)]
    [InlineData(GgmlType.Q6_K, 8, 256)]
    [InlineData(GgmlType.Q2_K, 16, 512)]
    [InlineData(GgmlType.Q3_K, 8, 768)]
    [InlineData(GgmlType.Q5_K, 16, 512)]   // at least 2 blocks: a 1-block group is its GGUF rows
    public void EveryRowComesBackFromTheInterleavedGroups(GgmlType type, int rows, int cols)
    {
        var bytes = Weights(type, rows, cols, 3);
        var il = new byte[bytes.Length];
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        Assert.NotEqual(bytes, il);   // it is a different order...
        if (type is GgmlType.Q4_0 or GgmlType.Q8_0 or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q5_K)
            Assert.Equal(bytes.Order(), il.Order());   // ...of the same bytes (the K-quants' values move within bytes: KStream)
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
    /// Any 12 GGUF scale bytes (all 96 bits carry a value) come back from the regrouped scale field of the interleaved
    /// Q4_K copy, at every row position, whatever the field held before (row 0 clears the shared top-bit bytes).
    /// </summary>
    [Fact]
    public void Q4KScaleFieldKeepsEveryBitOfTheGgufScales()
    {
        var rng = new Random(11);
        var blk = new byte[1152];
        var src = new byte[8 * 12];
        var back = new byte[12];
        fixed (byte* b = blk, s = src, o = back)
        {
            for (int trial = 0; trial < 200; trial++)
            {
                rng.NextBytes(src);
                rng.NextBytes(blk);
                for (int r = 0; r < 8; r++)
                {
                    Q4K.UnpackScaleMin(s + 12 * r, out ulong sc, out ulong mn);
                    Interleaved8.PackQ4KScales(b, r, sc, mn);
                }
                for (int r = 0; r < 8; r++)
                {
                    Interleaved8.Q4KScales(b, r, out ulong sc, out ulong mn);
                    Q4K.PackScaleMin(sc, mn, o);
                    Assert.True(src.AsSpan(12 * r, 12).SequenceEqual(back), $"trial {trial}, row {r}");
                }
            }
        }
    }

    /// <summary>
    /// With an interleaved copy the matmul must read the copy (the GGUF-order bytes are wiped before it runs) and give
    /// the row dots' bits for every batch size: one token (8-row matvec), 2–8 (Q4_0's multi-token matvec; 2–3 tokens
    /// one at a time for the others) and more (the packed GEMM, packed from the copy).
    /// </summary>
    [Avx2Theory]
    [InlineData(GgmlType.Q4_0, 32, 128)]
    [InlineData(GgmlType.Q4_0, 8, 64)]
    [InlineData(GgmlType.Q4_0, 16, 96)]    // odd block counts: the zmm kernel's one-block tail
    [InlineData(GgmlType.Q4_0, 8, 32)]
    [InlineData(GgmlType.Q4_0, 24, 160)]
    [InlineData(GgmlType.Q8_0, 24, 96)]
    [InlineData(GgmlType.Q8_0, 40, 512)]
    [InlineData(GgmlType.Q4_K, 16, 256)]
    [InlineData(GgmlType.Q4_K, 24, 768)]
    [InlineData(GgmlType.Q6_K, 16, 512)]
    [InlineData(GgmlType.Q6_K, 8, 256)]
    [InlineData(GgmlType.Q2_K, 16, 512)]
    [InlineData(GgmlType.Q2_K, 8, 256)]
    [InlineData(GgmlType.Q3_K, 16, 512)]
    [InlineData(GgmlType.Q3_K, 24, 768)]
    [InlineData(GgmlType.Q5_K, 16, 512)]
    [InlineData(GgmlType.Q5_K, 8, 256)]
    public void MatMulReadsTheCopyAndGivesTheRowDotsBits(GgmlType type, int rows, int cols)
    {
        var bytes = Weights(type, rows, cols, rows + cols);
        var x = Random(21 * cols, 5);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 32, cols);
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        fixed (byte* p = bytes, q = il)
        {
            var plain = new WeightMatrix(type, rows, cols, p);
            var yRef = new float[21 * rows];
            MatMul.Reference(plain, x, yRef, MatMulPrecision.LlamaCpp);

            Assert.True(WeightMatrix.CanInterleave(type, rows));
            WeightMatrix.InterleaveRows(type, cols, bytes, il);
            var w = plain.WithInterleaved(q);
            var rowsBefore = new float[rows * cols];
            for (int r = 0; r < rows; r++)
                Embedding.Lookup(plain, r, rowsBefore.AsSpan(r * cols, cols));
            Array.Clear(bytes);   // only the copy holds the weights now

            // A tied embedding table is looked up in the copy too.
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                Embedding.Lookup(w, r, row);
                Assert.Equal(rowsBefore.AsSpan(r * cols, cols).ToArray(), row);
            }
            foreach (int n in new[] { 1, 2, 3, 4, 5, 8, 9, 21 })
            {
                var y = new float[n * rows];
                MatMul.Compute(w, x.AsSpan(0, n * cols), y, ws);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(yRef[i]) == BitConverter.SingleToInt32Bits(y[i]), $"{type} batch {n} row {i % rows} token {i / rows}: {y[i]:R} vs {yRef[i]:R}");
            }

            // The fused gate/up/SwiGLU pass takes the same kernels.
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

    /// <summary>
    /// Tiny weights give f16 subnormal block scales (Q6_K's d usually is one in real models): the 8-row kernels convert
    /// them without f32 subnormals, which must still be exact — the row dots' bits, with and without the copy.
    /// </summary>
    [Avx2Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    [InlineData(GgmlType.Q2_K)]
    [InlineData(GgmlType.Q3_K)]
    [InlineData(GgmlType.Q5_K)]
    public void SubnormalScalesAreExact(GgmlType type)
    {
        const int rows = 16, cols = 512;
        var f = Random(rows * cols, 21);
        for (int i = 0; i < f.Length; i++)
            f[i] *= i % 3 == 0 ? 1e-6f : 3e-5f;   // block maxima around 1e-5..1e-4: many scales below f16's 6.1e-5
        var bytes = Quantized(type, rows, cols, f);
        int subnormal = 0, blockBytes = GgmlTypes.TypeSize(type);
        int scaleAt = type switch { GgmlType.Q6_K => 208, GgmlType.Q3_K => 108, GgmlType.Q2_K => 80, _ => 0 };
        for (int o = scaleAt; o < bytes.Length; o += blockBytes)
        {
            ushort h = BitConverter.ToUInt16(bytes, o);
            subnormal += (h & 0x7C00) == 0 && (h & 0x3FF) != 0 ? 1 : 0;
        }
        Assert.True(subnormal > 0, $"{type}: no subnormal scale in the test data");
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        var x = Random(2 * cols, 4);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 4, cols);
        fixed (byte* p = bytes, q = il)
        {
            var plain = new WeightMatrix(type, rows, cols, p);
            foreach (var w in new[] { plain, plain.WithInterleaved(q) })
            {
                foreach (int n in new[] { 1, 2 })
                {
                    var y = new float[n * rows];
                    var yRef = new float[n * rows];
                    MatMul.Compute(w, x.AsSpan(0, n * cols), y, ws);
                    MatMul.Reference(plain, x.AsSpan(0, n * cols), yRef, MatMulPrecision.LlamaCpp);
                    for (int i = 0; i < y.Length; i++)
                        Assert.True(BitConverter.SingleToInt32Bits(yRef[i]) == BitConverter.SingleToInt32Bits(y[i]), $"{type} batch {n} row {i % rows}: {y[i]:R} vs {yRef[i]:R}");
                }
            }
        }
    }

    [Fact]
    public void OnlyWholeGroupsOfTheLayoutTypesAreInterleaved()
    {
        Assert.False(WeightMatrix.CanInterleave(GgmlType.Q4_0, 12));
        Assert.False(WeightMatrix.CanInterleave(GgmlType.Q5_0, 16));
        Assert.False(WeightMatrix.CanInterleave(GgmlType.F16, 16));
        Assert.Equal(Simd.Avx2Fma, WeightMatrix.CanInterleave(GgmlType.Q8_0, 16));

        int rowBytes = (int)GgmlTypes.RowBytes(GgmlType.Q4_0, 64);
        var ex = Assert.Throws<ArgumentException>(() => WeightMatrix.InterleaveRows(GgmlType.Q4_0, 64, new byte[5 * rowBytes], new byte[5 * rowBytes]));
        Assert.Contains("groups of 8 rows", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => WeightMatrix.InterleaveRows(GgmlType.Q5_0, 256, new byte[8 * 176], new byte[8 * 176]));
        Assert.Contains("Q5_0 has no interleaved layout", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => WeightMatrix.InterleaveRows(GgmlType.Q4_0, 64, new byte[8 * rowBytes], new byte[8 * rowBytes - 1]));
        Assert.Contains("Destination", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => WeightMatrix.InterleaveRows(GgmlType.Q8_0, 48, new byte[8 * 34], new byte[8 * 34]));
        Assert.Contains("block size", ex.Message);

        var bytes = GC.AllocateArray<byte>(12 * rowBytes, pinned: true);
        fixed (byte* p = bytes)
        {
            nint data = (nint)p;   // pinned array: the address stays valid in the lambdas
            var ragged = new WeightMatrix(GgmlType.Q4_0, 12, 64, p);
            Assert.Throws<InvalidOperationException>(() => ragged.WithInterleaved((byte*)data));
            Assert.Throws<ArgumentNullException>(() => new WeightMatrix(GgmlType.Q4_0, 8, 64, (byte*)data).WithInterleaved(null));
        }
    }
}
