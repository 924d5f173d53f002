using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The integer dot products must equal the dot of what the two rows mean: Σ dequant(w)[i]·dequant(a)[i], evaluated
/// here in double from the dequantized values. Only the float rounding of the per-block scaling may differ, so the
/// tolerance is a few f32 ulps per block of Σ|w·a|. This is much tighter than the llama.cpp budget and catches any
/// wrong nibble, bit plane, scale index or min handling.
/// </summary>
public class VecDotTests
{
    public static TheoryData<GgmlType, int> Cases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (GgmlType t in new[] { GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1,
                     GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            int bs = Math.Max(GgmlTypes.BlockSize(t), 32);
            foreach (int blocks in new[] { 0, 1, 3, 16 })
                data.Add(t, blocks * (t is GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K ? 256 : bs));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DotEqualsDotOfDequantizedRows(GgmlType weightType, int n)
    {
        GgmlType actType = QuantTraits.VecDotType(weightType);
        var rng = new Random(n * 31 + (int)weightType);
        foreach (string kind in new[] { "normal", "offset", "wide" })
        {
            float[] w = Sample(rng, n, kind);
            float[] a = Sample(rng, n, "normal");

            var wq = new byte[GgmlTypes.RowBytes(weightType, n)];
            var aq = new byte[GgmlTypes.RowBytes(actType, n)];
            Quantize.RowReference(weightType, w, wq);
            Quantize.Row(actType, a, aq);

            var wd = new float[n];
            var ad = new float[n];
            Dequantize.Row(weightType, wq, wd);
            Dequantize.Row(actType, aq, ad);
            double exact = 0, magnitude = 0;
            for (int i = 0; i < n; i++)
            {
                exact += (double)wd[i] * ad[i];
                magnitude += Math.Abs((double)wd[i] * ad[i]);
            }

            float dot = VecDot.Row(weightType, wq, aq, n);
            int blocks = n / GgmlTypes.BlockSize(weightType);
            // Q4_1/Q5_1 also round m·s (s = f16(d·Σq)) and the per-block products to f32: allow ~16 ulps per block.
            double tolerance = (blocks + 16) * 16 * Math.ScaleB(1.0, -24) * magnitude + 1e-30;
            if (weightType is GgmlType.Q4_1 or GgmlType.Q5_1)
                tolerance += OffsetRounding(wq, aq, weightType, n);
            Assert.True(Math.Abs(dot - exact) <= tolerance,
                $"{weightType} n={n} {kind}: dot {dot:R}, dequantized dot {exact:R}, |diff| {Math.Abs(dot - exact):E3} > {tolerance:E3}");
        }
    }

    /// <summary>
    /// Q8_1 stores s = f16(d·Σq) rather than Σq, so Σ m·s differs from Σ m·d·Σq by the f16 rounding of s. That is part of
    /// ggml's algorithm, not an error of ours; bound it per block by |m|·|s|·2^-11.
    /// </summary>
    private static double OffsetRounding(byte[] wq, byte[] aq, GgmlType weightType, int n)
    {
        double bound = 0;
        int wBytes = GgmlTypes.TypeSize(weightType);
        for (int b = 0; b < n / 32; b++)
        {
            float m = (float)BitConverter.ToHalf(wq, b * wBytes + 2);
            float s = (float)BitConverter.ToHalf(aq, b * 36 + 2);
            bound += Math.Abs((double)m * s) * Math.ScaleB(1.0, -11);
        }
        return bound;
    }

    [Fact]
    public void KQuantDotUsesTheMinsThroughBsums()
    {
        // All-positive weights make Q4_K/Q5_K store a large dmin·m term: a dot that forgot the mins (or used the
        // wrong bsum group) would be off by far more than the rounding tolerance.
        var rng = new Random(5);
        const int n = 512;
        float[] w = new float[n], a = new float[n];
        for (int i = 0; i < n; i++) { w[i] = 1f + (float)rng.NextDouble(); a[i] = (float)(rng.NextDouble() * 2 - 1); }
        foreach (var t in new[] { GgmlType.Q4_K, GgmlType.Q5_K })
        {
            var wq = new byte[GgmlTypes.RowBytes(t, n)];
            var aq = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, n)];
            Quantize.RowReference(t, w, wq);
            Q8K.QuantizeRow(a, aq);
            var wd = new float[n];
            var ad = new float[n];
            Dequantize.Row(t, wq, wd);
            Q8K.DequantizeRow(aq, ad);
            double exact = 0;
            for (int i = 0; i < n; i++) exact += (double)wd[i] * ad[i];
            Assert.Equal(exact, VecDot.Row(t, wq, aq, n), 1e-3);
        }
    }

    private static float[] Sample(Random rng, int n, string kind)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            x[i] = kind switch
            {
                "offset" => (float)(0.3 + 0.1 * g),           // all one sign: exercises the K-quant mins
                "wide" => (float)(g * Math.Exp(2 * rng.NextDouble())), // a few large values per block
                _ => (float)g,
            };
        }
        return x;
    }
}
