using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// Port of llama.cpp tests/test-quantize-fns.cpp: the same synthetic data (0.1 + a·cos(i + offset), 4096 values),
/// the same error measures and the same budgets. Every type must stay within them; llama.cpp's own implementation
/// does, so a port that does not is broken.
/// </summary>
public class QuantizeFnsBudgetTests(ITestOutputHelper output)
{
    // test-quantize-fns.cpp constants.
    private const float MaxQuantizationReferenceError = 0.0001f;
    private const float MaxQuantizationTotalError = 0.002f;
    private const float MaxDotProductError = 0.02f;
    private const int TestSize = 32 * 128;

    public static TheoryData<GgmlType> RoundTripTypes() => new()
    {
        GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0,
        GgmlType.Q8_1, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K,
    };

    public static TheoryData<GgmlType> WeightTypes() => new()
    {
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    };

    /// <summary>generate_data: dst[i] = 0.1 + amplitude·cosf(i + offset) (the 0.1 is a double in C).</summary>
    internal static float[] GenerateData(float offset, int n, float amplitude = 2.0f)
    {
        var dst = new float[n];
        for (int i = 0; i < n; i++)
            dst[i] = (float)(0.1 + amplitude * MathF.Cos(i + offset));
        return dst;
    }

    /// <summary>array_rmse as llama.cpp defines it: sqrt(Σ diff²) / n (not a true RMSE, but that is what the budgets mean).</summary>
    private static float ArrayRmse(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double diff = a[i] - b[i];
            sum += diff * diff;
        }
        return MathF.Sqrt((float)sum) / a.Length;
    }

    private static float DotProduct(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += a[i] * b[i];
        return (float)sum;
    }

    private static byte[] QuantizeActivation(GgmlType type, float[] x)
    {
        var q = new byte[GgmlTypes.RowBytes(type, x.Length)];
        Quantize.Row(type, x, q);
        return q;
    }

    [Theory]
    [MemberData(nameof(RoundTripTypes))]
    public void AbsoluteQuantizationErrorWithinBudget(GgmlType type)
    {
        float[] data = GenerateData(0.0f, TestSize);
        var q = new byte[GgmlTypes.RowBytes(type, TestSize)];
        Quantize.RowReference(type, data, q);
        var back = new float[TestSize];
        Dequantize.Row(type, q, back);
        float error = ArrayRmse(data, back);
        output.WriteLine($"{type} absolute quantization error: {error:F6} (budget {MaxQuantizationTotalError})");
        Assert.True(error < MaxQuantizationTotalError);
    }

    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q8_1)]
    [InlineData(GgmlType.Q8_K)]
    [InlineData(GgmlType.F16)]
    [InlineData(GgmlType.BF16)]
    public void ActivationQuantizerMatchesReferenceWithinBudget(GgmlType type)
    {
        // reference_quantization_error: from_float (the matmul's quantizer) vs from_float_ref, both dequantized.
        float[] data = GenerateData(0.0f, TestSize);
        var a = new float[TestSize];
        var b = new float[TestSize];
        var q = new byte[GgmlTypes.RowBytes(type, TestSize)];
        Quantize.Row(type, data, q);
        Dequantize.Row(type, q, a);
        Quantize.RowReference(type, data, q);
        Dequantize.Row(type, q, b);
        Assert.True(ArrayRmse(a, b) < MaxQuantizationReferenceError);
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void DotProductErrorWithinBudget(GgmlType type)
    {
        // dot_product_error: vec_dot(from_float(data1), vec_dot_type.from_float(data2)) vs the float dot of the
        // original data, divided by n.
        float[] data1 = GenerateData(0.0f, TestSize);
        float[] data2 = GenerateData(1.0f, TestSize);
        var w = new byte[GgmlTypes.RowBytes(type, TestSize)];
        Quantize.RowReference(type, data1, w);
        byte[] act = QuantizeActivation(QuantTraits.VecDotType(type), data2);

        float result = VecDot.Row(type, w, act, TestSize);
        float error = MathF.Abs(result - DotProduct(data1, data2)) / TestSize;
        output.WriteLine($"{type} dot product error: {error:F6} (budget {MaxDotProductError})");
        Assert.True(error < MaxDotProductError);
    }
}
