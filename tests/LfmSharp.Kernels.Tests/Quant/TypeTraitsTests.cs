using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The per-type kernel table and what it promises for every entry: consistent geometry, an activation format that can
/// be produced, SIMD dots equal to their scalar twins, the 8-row kernels only where all of their parts exist; plus the
/// Q2_K / Q3_K formats (error budgets of llama.cpp's test-quantize-fns, SIMD twins) and mixed-type matmuls.
/// </summary>
public sealed unsafe class TypeTraitsTests(ITestOutputHelper output)
{
    public static TheoryData<GgmlType> TableTypes()
    {
        var data = new TheoryData<GgmlType>();
        foreach (var t in Enum.GetValues<GgmlType>())
            if (TypeTraits.TryFor(t) is not null)
                data.Add(t);
        return data;
    }

    [Theory]
    [MemberData(nameof(TableTypes))]
    public void EntryIsConsistent(GgmlType type)
    {
        var k = TypeTraits.For(type);
        Assert.Equal(type, k.Type);
        Assert.Equal(GgmlTypes.BlockSize(type), k.BlockSize);
        Assert.Equal(GgmlTypes.TypeSize(type), k.TypeSize);
        Assert.True(k.ToFloat != null && k.DotScalar != null);
        if (!k.IsWeight)
        {
            Assert.True(k.FromFloat != null, $"{type} is only an activation format, so it needs a quantizer");
            return;
        }
        var act = TypeTraits.For(k.VecDotType);
        Assert.True(act.FromFloat != null, $"{type}'s activation format {k.VecDotType} has no quantizer");
        Assert.Equal(0, k.BlockSize % act.BlockSize);
        // Pack and GEMM come together; an 8-row decode kernel needs the GEMM or a batch decoder (IQDecoded) for
        // batches; all only where AVX2 runs.
        Assert.Equal(k.Pack8 != null, k.Gemm != null);
        if (k.Decode8 != null)
            Assert.True(Simd.Avx2Fma && (k.HasGemm || k.Decoder != null), $"{type}: an 8-row kernel without a batch path");
        if (k.HasGemm)
        {
            Assert.True(Simd.Avx2Fma);
            // The workspace holds one packed group per thread at MaxPackedBytesPerColumn per column.
            Assert.InRange(k.PackedBlockBytes, 1, PackedGemm.MaxPackedBytesPerColumn * k.BlockSize);
            Assert.InRange(k.Packed16BlockBytes, 1, PackedGemm.MaxPackedBytesPerColumn * k.BlockSize);
        }
        if (k.Interleaves)
            Assert.True(k.Grouped && k.Pack8Interleaved != null);
        Assert.True(GgmlTypes.IsComputeSupported(type));
    }

    [Theory]
    [MemberData(nameof(TableTypes))]
    public void SimdDotMatchesScalarTwin(GgmlType type)
    {
        var k = TypeTraits.For(type);
        if (!k.IsWeight || k.FromFloatReference == null)
            return;
        const int n = 4096;
        var rng = new Random((int)type);
        for (int trial = 0; trial < 4; trial++)
        {
            float scale = trial switch { 0 => 1f, 1 => 0.02f, 2 => 100f, _ => 1e-4f };
            float[] w = new float[n], a = new float[n];
            for (int i = 0; i < n; i++)
            {
                w[i] = (float)(rng.NextDouble() * 2 - 1) * scale * (trial == 3 && i % 7 == 0 ? 50 : 1);
                a[i] = (float)(rng.NextDouble() * 2 - 1);
            }
            var wq = new byte[GgmlTypes.RowBytes(type, n)];
            var aq = new byte[GgmlTypes.RowBytes(k.VecDotType, n)];
            Quantize.RowReference(type, w, wq);
            Quantize.Row(k.VecDotType, a, aq);
            float scalar = VecDot.RowScalar(type, wq, aq, n);
            float dispatched = VecDot.Row(type, wq, aq, n);

            // Bound on the float rounding: Σ|w_i·a_i| of the dequantized values.
            var wd = new float[n];
            var ad = new float[n];
            Dequantize.Row(type, wq, wd);
            Dequantize.Row(k.VecDotType, aq, ad);
            double abs = 0, exact = 0;
            for (int i = 0; i < n; i++)
            {
                abs += Math.Abs((double)wd[i] * ad[i]);
                exact += (double)wd[i] * ad[i];
            }
            Assert.True(Math.Abs(dispatched - scalar) <= 1e-5 * abs + 1e-30, $"{type} trial {trial}: SIMD {dispatched:R} vs scalar {scalar:R} (Σ|wa| {abs:G4})");
            // The scalar dot is the dequantized dot up to float rounding (a wrong bit layout would be far off).
            Assert.True(Math.Abs(scalar - exact) <= 1e-4 * abs + 1e-30, $"{type} trial {trial}: dot {scalar:R} vs dequantized {exact:R}");
        }
    }

    [Fact]
    public void Q2KSimdDotIsBitIdenticalToScalar()
    {
        if (!Simd.Avx2Fma)
            return;
        const int n = 2048;
        var rng = new Random(3);
        for (int trial = 0; trial < 20; trial++)
        {
            var wq = new byte[GgmlTypes.RowBytes(GgmlType.Q2_K, n)];
            rng.NextBytes(wq);
            for (int b = 0; b < n / 256; b++)   // finite scales
            {
                BitConverter.TryWriteBytes(wq.AsSpan(b * 84 + 80), (Half)(rng.NextDouble() * 0.1));
                BitConverter.TryWriteBytes(wq.AsSpan(b * 84 + 82), (Half)(rng.NextDouble() * 0.1));
            }
            var a = new float[n];
            for (int i = 0; i < n; i++)
                a[i] = (float)(rng.NextDouble() * 2 - 1);
            var aq = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, n)];
            Quantize.Row(GgmlType.Q8_K, a, aq);
            float scalar = VecDot.RowScalar(GgmlType.Q2_K, wq, aq, n);
            fixed (byte* pw = wq, pa = aq)
                Assert.Equal(BitConverter.SingleToInt32Bits(scalar), BitConverter.SingleToInt32Bits(Q2K.DotAvx2(pw, pa, n / 256)));
        }
    }

    [Fact]
    public void Q3KAsQ6KHasTheSameValuesAndTheGemmTheSameBitsAsTheRowDot()
    {
        const int rows = 16, cols = 512;
        var rng = new Random(5);
        var f = new float[rows * cols];
        for (int i = 0; i < f.Length; i++)
            f[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 97 == 0 ? 8 : 1);
        var w = GC.AllocateArray<byte>((int)GgmlTypes.RowBytes(GgmlType.Q3_K, f.Length), pinned: true);
        Quantize.RowReference(GgmlType.Q3_K, f, w);
        fixed (byte* pw = w)
        {
            var q6 = new byte[210];
            float[] a = new float[256], b = new float[256];
            for (int blk = 0; blk < w.Length / 110; blk++)
            {
                fixed (byte* p6 = q6)
                    Q3K.ToQ6K(pw + blk * 110, p6);
                Dequantize.Row(GgmlType.Q3_K, w.AsSpan(blk * 110, 110), a);
                Dequantize.Row(GgmlType.Q6_K, q6, b);
                for (int i = 0; i < 256; i++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(a[i]), BitConverter.SingleToInt32Bits(b[i]));
            }
            if (!Simd.Avx2Fma)
                return;
            const int tokens = 7;
            var x = new float[tokens * cols];
            for (int i = 0; i < x.Length; i++)
                x[i] = (float)(rng.NextDouble() * 2 - 1);
            using var pool = new KernelThreadPool(2);
            var ws = new MatMulWorkspace(pool, tokens, cols);
            var m = new WeightMatrix(GgmlType.Q3_K, rows, cols, pw);
            var y = new float[tokens * rows];
            MatMul.Compute(m, x, y, ws);   // 7 tokens: the packed GEMM
            var act = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, cols)];
            for (int t = 0; t < tokens; t++)
            {
                Quantize.Row(GgmlType.Q8_K, x.AsSpan(t * cols, cols), act);
                for (int r = 0; r < rows; r++)
                    Assert.Equal(BitConverter.SingleToInt32Bits(VecDot.Row(GgmlType.Q3_K, m.Row(r), act, cols)), BitConverter.SingleToInt32Bits(y[t * rows + r]));
            }
        }
    }

    /// <summary>
    /// The packed GEMM of every type that has one gives the row dot's bits (the same exact integers, the same float
    /// steps), on this machine's integer core (VNNI or AVX2), with a ragged last tile and ragged last rows.
    /// </summary>
    [Theory]
    [MemberData(nameof(TableTypes))]
    public void PackedGemmGivesTheRowDotBits(GgmlType type)
    {
        var k = TypeTraits.For(type);
        if (!k.HasGemm || k.FromFloatReference == null)
            return;
        const int rows = 19, cols = 512, tokens = 6;
        var rng = new Random(17);
        var f = new float[rows * cols];
        for (int i = 0; i < f.Length; i++)
            f[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 89 == 0 ? 6 : 1) + (i / cols % 3 == 0 ? 0.3f : 0f);
        var w = GC.AllocateArray<byte>((int)GgmlTypes.RowBytes(type, f.Length), pinned: true);
        Quantize.RowReference(type, f, w);
        var x = new float[tokens * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, tokens, cols);
        fixed (byte* pw = w)
        {
            var m = new WeightMatrix(type, rows, cols, pw);
            var y = new float[tokens * rows];
            MatMul.Compute(m, x, y, ws);
            var act = new byte[GgmlTypes.RowBytes(k.VecDotType, cols)];
            for (int t = 0; t < tokens; t++)
            {
                Quantize.Row(k.VecDotType, x.AsSpan(t * cols, cols), act);
                for (int r = 0; r < rows; r++)
                {
                    float want = VecDot.Row(type, m.Row(r), act, cols);
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[t * rows + r]),
                        $"{type} token {t} row {r}: GEMM {y[t * rows + r]:R}, row dot {want:R}");
                }
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q2_K, 0.0075f, 0.04f)]
    [InlineData(GgmlType.Q3_K, 0.0040f, 0.04f)]
    public void LowBitQuantizationErrorWithinLlamaCppBudget(GgmlType type, float maxTotalError, float maxDotError)
    {
        // test-quantize-fns: MAX_QUANTIZATION_TOTAL_ERROR_2BITS / _3BITS, MAX_DOT_PRODUCT_ERROR_LOWBIT (0.04).
        const int n = 32 * 128;
        float[] data = QuantizeFnsBudgetTests.GenerateData(0f, n);
        float[] data2 = QuantizeFnsBudgetTests.GenerateData(1f, n);
        var q = new byte[GgmlTypes.RowBytes(type, n)];
        Quantize.RowReference(type, data, q);
        var back = new float[n];
        Dequantize.Row(type, q, back);
        double sum = 0, dot = 0;
        for (int i = 0; i < n; i++)
        {
            sum += (double)(data[i] - back[i]) * (data[i] - back[i]);
            dot += data[i] * data2[i];
        }
        float error = MathF.Sqrt((float)sum) / n;
        var act = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, n)];
        Quantize.Row(GgmlType.Q8_K, data2, act);
        float dotError = (float)Math.Abs(VecDot.Row(type, q, act, n) - dot) / n;
        output.WriteLine($"{type}: quantization error {error:F6}, dot error {dotError:F6}");
        Assert.True(error < maxTotalError, $"{type} quantization error {error}");
        Assert.True(dotError < maxDotError, $"{type} dot error {dotError}");
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, GgmlType.Q4_1, 1)]
    [InlineData(GgmlType.Q8_0, GgmlType.Q4_1, 2)]
    [InlineData(GgmlType.Q4_K, GgmlType.Q6_K, 1)]
    [InlineData(GgmlType.Q2_K, GgmlType.Q3_K, 5)]
    [InlineData(GgmlType.Q4_0, GgmlType.F16, 3)]
    public void SwiGluOfGateAndUpOfDifferentTypesIsTwoMatmuls(GgmlType gateType, GgmlType upType, int tokens)
    {
        const int rows = 24, cols = 256;
        var rng = new Random(11);
        float[] Values(int count) { var v = new float[count]; for (int i = 0; i < count; i++) v[i] = (float)(rng.NextDouble() * 2 - 1); return v; }
        byte[] Quant(GgmlType t, float[] v)
        {
            var b = GC.AllocateArray<byte>((int)GgmlTypes.RowBytes(t, v.Length), pinned: true);
            Quantize.RowReference(t, v, b);
            return b;
        }
        var gb = Quant(gateType, Values(rows * cols));
        var ub = Quant(upType, Values(rows * cols));
        var x = Values(tokens * cols);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 8, cols);
        fixed (byte* pg = gb, pu = ub)
        {
            var gate = new WeightMatrix(gateType, rows, cols, pg);
            var up = new WeightMatrix(upType, rows, cols, pu);
            var y = new float[tokens * rows];
            var upScratch = new float[tokens * rows];
            MatMul.ComputeSwiGlu(gate, up, x, y, upScratch, ws);

            var g = new float[tokens * rows];
            var u = new float[tokens * rows];
            MatMul.Reference(gate, x, g, MatMulPrecision.LlamaCpp);
            MatMul.Reference(up, x, u, MatMulPrecision.LlamaCpp);
            var want = new float[g.Length];
            SwiGlu.Scalar(g, u, want);
            for (int i = 0; i < want.Length; i++)
                Assert.True(Math.Abs(want[i] - y[i]) <= 1e-5f * (1 + Math.Abs(want[i])), $"element {i}: {y[i]} vs {want[i]}");
        }
    }

    [Fact]
    public void UnknownTypeNamesItself()
    {
        var e = Assert.Throws<NotSupportedException>(() => TypeTraits.For(GgmlType.MXFP4));
        Assert.Contains("MXFP4", e.Message);
        Assert.Throws<NotSupportedException>(() => QuantTraits.VecDotType(GgmlType.Q8_K));
    }
}
