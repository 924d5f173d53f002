using System.Runtime.InteropServices;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Kernels.Tests.Quant;

namespace LfmSharp.Kernels.Tests;

public sealed unsafe class MatMulTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>A weight matrix of <paramref name="type"/> from random floats (quantized with the reference quantizer).</summary>
    private static (byte[] Bytes, float[] Values) Weights(GgmlType type, int rows, int cols, int seed)
    {
        var f = Random(rows * cols, seed);
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols);
        var bytes = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        for (int r = 0; r < rows; r++)
            Quantize.RowReference(type, f.AsSpan(r * cols, cols), bytes.AsSpan(r * rowBytes, rowBytes));
        var values = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            Dequantize.Row(type, bytes.AsSpan(r * rowBytes, rowBytes), values.AsSpan(r * cols, cols));
        return (bytes, values);
    }

    public static TheoryData<GgmlType, int, int, int> Cases()
    {
        var data = new TheoryData<GgmlType, int, int, int>();
        foreach (var t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0 })
        {
            data.Add(t, 37, 64, 1);
            data.Add(t, 70, 96, 5);
        }
        foreach (var t in new[] { GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            data.Add(t, 19, 256, 1);
            data.Add(t, 33, 512, 3);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ParallelBatchedEqualsReferenceInBothPrecisions(GgmlType type, int rows, int cols, int tokens)
    {
        var (bytes, values) = Weights(type, rows, cols, rows + cols);
        var x = Random(tokens * cols, 99);
        using var pool = new KernelThreadPool(3);
        fixed (byte* p = bytes)
        {
            var w = new WeightMatrix(type, rows, cols, p);
            foreach (var precision in new[] { MatMulPrecision.LlamaCpp, MatMulPrecision.Float })
            {
                var ws = new MatMulWorkspace(pool, 8, 512, precision);
                var y = new float[tokens * rows];
                var yRef = new float[tokens * rows];
                MatMul.Compute(w, x, y, ws);
                MatMul.Reference(w, x, yRef, precision);
                for (int i = 0; i < y.Length; i++)
                    Assert.Equal(yRef[i], y[i], 1e-4f);   // same per-row math; only f32 SIMD summation order differs
            }

            // Float precision is the exact product with the dequantized weights.
            var yf = new float[tokens * rows];
            MatMul.Compute(w, x, yf, new MatMulWorkspace(pool, 8, 512, MatMulPrecision.Float));
            for (int t = 0; t < tokens; t++)
                for (int r = 0; r < rows; r++)
                {
                    double s = 0;
                    for (int c = 0; c < cols; c++)
                        s += (double)values[r * cols + c] * x[t * cols + c];
                    Assert.Equal(s, yf[t * rows + r], 1e-4);
                }
        }
    }

    public static TheoryData<GgmlType, int, int, int> PackedCases()
    {
        var data = new TheoryData<GgmlType, int, int, int>();
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q8_0 })
        {
            data.Add(t, 8, 64, 4);
            data.Add(t, 21, 96, 9);
            data.Add(t, 40, 512, 6);
            data.Add(t, 24, 128, 21);   // Q4_0: beyond the multi-token matvec's range (8), the packed GEMM
        }
        // Q4_0 with VNNI runs 16-row pairs of groups: a pair, a lone group and 4 ragged rows; an odd token count.
        data.Add(GgmlType.Q4_0, 44, 128, 11);
        // With AVX-512BW those pairs run 16 rows × 4 tokens (Q8_0 too where there is no AVX-VNNI): ragged token tiles
        // of 1, 2 and 3, a lone group and ragged rows.
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q8_0 })
        {
            data.Add(t, 32, 256, 13);
            data.Add(t, 48, 64, 14);
            data.Add(t, 40, 96, 15);
        }
        data.Add(GgmlType.Q8_0, 44, 128, 11);
        foreach (var t in new[] { GgmlType.Q4_K, GgmlType.Q6_K })
        {
            data.Add(t, 8, 256, 4);
            data.Add(t, 27, 512, 7);
            data.Add(t, 16, 1024, 12);
        }
        return data;
    }

    /// <summary>
    /// On AVX2 the common types run 8-row kernels: packed 8-row × 4-token tiles for batches of ≥ 4 tokens (Q4_0: more
    /// than 8), 8 rows × 1 token (Q4_0: × up to 4 tokens) otherwise, single-row dots for a ragged last group. All
    /// compute each output in the same canonical order as the row dot (<see cref="VecDot.Row"/>), so every (row, token) must be bit-identical to the reference,
    /// whatever the batch size.
    /// </summary>
    [Avx2Theory]
    [MemberData(nameof(PackedCases))]
    public void GroupedKernelsEqualRowDotsBitForBit(GgmlType type, int rows, int cols, int tokens)
    {
        var (bytes, _) = Weights(type, rows, cols, rows * 7 + cols);
        var x = Random(tokens * cols, 5);
        for (int i = 0; i < x.Length; i += 37)
            x[i] *= 8;   // uneven block maxima
        using var pool = new KernelThreadPool(2);
        fixed (byte* p = bytes)
        {
            var w = new WeightMatrix(type, rows, cols, p);
            var ws = new MatMulWorkspace(pool, 32, 1024);
            var yRef = new float[tokens * rows];
            MatMul.Reference(w, x, yRef, MatMulPrecision.LlamaCpp);
            foreach (int n in new[] { tokens, 1, 2, 3 })
            {
                var y = new float[n * rows];
                MatMul.Compute(w, x.AsSpan(0, n * cols), y, ws);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(yRef[i]) == BitConverter.SingleToInt32Bits(y[i]), $"{type} batch {n} row {i % rows} token {i / rows}: {y[i]:R} vs {yRef[i]:R}");
            }
        }
    }

    /// <summary>
    /// The 8-row kernels convert block scales with a shortcut that is exact for finite f16 only; a group holding an Inf
    /// or NaN scale must be recomputed exactly (from the GGUF-order rows, also with an interleaved copy), giving what the
    /// row dots give (±Inf/NaN where they do).
    /// </summary>
    [Avx2Theory]
    [InlineData(GgmlType.Q4_0, 0)]
    [InlineData(GgmlType.Q8_0, 0)]
    [InlineData(GgmlType.Q4_K, 0)]
    [InlineData(GgmlType.Q4_K, 2)]     // dmin
    [InlineData(GgmlType.Q6_K, 208)]
    public void InfOrNanScalesGiveWhatTheRowDotsGive(GgmlType type, int scaleOffset)
    {
        const int rows = 16, cols = 512;
        var (bytes, _) = Weights(type, rows, cols, 77);
        int rowBytes = (int)GgmlTypes.RowBytes(type, cols), blockBytes = GgmlTypes.TypeSize(type);
        BitConverter.TryWriteBytes(bytes.AsSpan(3 * rowBytes + blockBytes + scaleOffset, 2), (ushort)0x7C00);   // +Inf, row 3 block 1
        BitConverter.TryWriteBytes(bytes.AsSpan(12 * rowBytes + scaleOffset, 2), (ushort)0xFE00);               // NaN, row 12 block 0
        var il = GC.AllocateArray<byte>(bytes.Length, pinned: true);
        WeightMatrix.InterleaveRows(type, cols, bytes, il);
        var x = Random(3 * cols, 8);
        using var pool = new KernelThreadPool(1);
        fixed (byte* p = bytes, q = il)
        {
            var plain = new WeightMatrix(type, rows, cols, p);
            var ws = new MatMulWorkspace(pool, 4, cols);
            foreach (var w in new[] { plain, plain.WithInterleaved(q) })
            {
                foreach (int n in new[] { 1, 2, 3 })
                {
                    var y = new float[n * rows];
                    var yRef = new float[n * rows];
                    MatMul.Compute(w, x.AsSpan(0, n * cols), y, ws);
                    MatMul.Reference(plain, x.AsSpan(0, n * cols), yRef, MatMulPrecision.LlamaCpp);
                    for (int i = 0; i < y.Length; i++)
                        Assert.True(yRef[i].Equals(y[i]), $"{type} {(w.Interleaved != null ? "interleaved" : "GGUF order")} row {i % rows} token {i / rows}: {y[i]} vs {yRef[i]}");
                    Assert.True(!float.IsFinite(y[3]) && float.IsNaN(y[12]), $"{type}: row 3 {y[3]}, row 12 {y[12]}");
                }
            }
        }
    }

    /// <summary>The fused gate/up/SwiGLU pass equals two matmuls and a SwiGLU (up to the SwiGLU's SIMD/scalar split).</summary>
    [Theory]
    [InlineData(GgmlType.Q4_0, 64, 96, 1)]
    [InlineData(GgmlType.Q4_0, 61, 64, 3)]      // a ragged last group
    [InlineData(GgmlType.Q8_0, 40, 128, 2)]
    [InlineData(GgmlType.Q4_K, 24, 256, 1)]
    [InlineData(GgmlType.Q6_K, 17, 512, 2)]
    [InlineData(GgmlType.Q5_0, 16, 64, 1)]      // no grouped kernel: the unfused fallback
    [InlineData(GgmlType.Q4_0, 32, 64, 6)]      // a batch: the unfused GEMM path
    public void SwiGluPassEqualsTwoMatMulsAndSwiGlu(GgmlType type, int rows, int cols, int tokens)
    {
        var (gb, _) = Weights(type, rows, cols, 1);
        var (ub, _) = Weights(type, rows, cols, 2);
        var x = Random(tokens * cols, 3);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 8, cols);
        fixed (byte* pg = gb, pu = ub)
        {
            var gate = new WeightMatrix(type, rows, cols, pg);
            var up = new WeightMatrix(type, rows, cols, pu);
            var y = new float[tokens * rows];
            var upScratch = new float[tokens * rows];
            MatMul.ComputeSwiGlu(gate, up, x, y, upScratch, ws);

            var g = new float[tokens * rows];
            var u = new float[tokens * rows];
            MatMul.Compute(gate, x, g, ws);
            MatMul.Compute(up, x, u, ws);
            var want = new float[g.Length];
            SwiGlu.Scalar(g, u, want);
            Assert.Equal(u, upScratch);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - y[i]) <= 1e-6f * (1 + Math.Abs(want[i])), $"element {i}: {y[i]} vs {want[i]}");
        }
    }

    [Fact]
    public void RejectsShapeMismatchAndOversizedBatch()
    {
        var bytes = GC.AllocateArray<byte>(4 * 32 * 4, pinned: true);
        using var pool = new KernelThreadPool(1);
        fixed (byte* p = bytes)
        {
            var w = new WeightMatrix(GgmlType.F32, 4, 32, p);
            var ws = new MatMulWorkspace(pool, 2, 32);
            Assert.Throws<ArgumentException>(() => MatMul.Compute(w, new float[33], new float[4], ws));
            Assert.Throws<ArgumentException>(() => MatMul.Compute(w, new float[32], new float[5], ws));
            Assert.Throws<ArgumentException>(() => MatMul.Compute(w, new float[96], new float[12], ws));
            byte* raw = p;
            bool threw = false;
            try { _ = new WeightMatrix(GgmlType.Q4_0, 1, 33, raw); }
            catch (ArgumentException) { threw = true; }
            Assert.True(threw, "a row length that is not whole Q4_0 blocks must be rejected");
        }
    }
}
