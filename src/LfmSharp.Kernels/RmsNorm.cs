using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels;

/// <summary>
/// RMSNorm with a weight: effectively computes dst[i] = (x[i] · s) · w[i] with s = 1 / sqrt(mean(x²) + eps).
/// Shapes: x, weight, dst are [n]; dst may alias x.
/// </summary>
/// <remarks>
/// Matches ggml-cpu <c>rms_norm</c> followed by <c>mul</c>: each x·x is rounded to f32 and accumulated in
/// double, mean = (float)(sum / n), s = 1f / sqrtf(mean + eps), then x·s and (x·s)·w are two f32 roundings.
/// </remarks>
internal static class RmsNorm
{
    public static void Apply(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> dst)
    {
        if (x.Length != weight.Length || x.Length != dst.Length)
            throw new ArgumentException($"RmsNorm: lengths differ (x {x.Length}, weight {weight.Length}, dst {dst.Length}).");
        if (x.IsEmpty)
            return;
        double sum = Vector256.IsHardwareAccelerated && x.Length >= 8 ? SumOfSquaresVector256(x) : SumOfSquaresScalar(x);
        float scale = InverseRms(sum, x.Length, eps);
        Scale(x, scale, weight, dst);
    }

    /// <summary>Applies the norm to each of the <c>x.Length / n</c> rows of length <c>n = weight.Length</c> (per-head q/k norm, batches).</summary>
    public static void ApplyRows(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> dst)
    {
        int n = weight.Length;
        if (n == 0 || x.Length % n != 0 || x.Length != dst.Length)
            throw new ArgumentException($"RmsNorm rows: {x.Length} values are not whole rows of {n} (dst {dst.Length}).");
        for (int r = 0; r < x.Length; r += n)
            Apply(x.Slice(r, n), weight, eps, dst.Slice(r, n));
    }

    internal static void Scalar(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> dst)
    {
        float scale = InverseRms(SumOfSquaresScalar(x), x.Length, eps);
        for (int i = 0; i < x.Length; i++)
            dst[i] = x[i] * scale * weight[i];
    }

    private static float InverseRms(double sumOfSquares, int n, float eps)
    {
        float mean = (float)(sumOfSquares / n);
        return 1f / MathF.Sqrt(mean + eps);
    }

    internal static double SumOfSquaresScalar(ReadOnlySpan<float> x)
    {
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
            sum += x[i] * x[i]; // the product is f32, the sum is double (as ggml)
        return sum;
    }

    internal static double SumOfSquaresVector256(ReadOnlySpan<float> x)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        Vector256<double> acc0 = default, acc1 = default;
        int i = 0;
        for (; i + 8 <= x.Length; i += 8)
        {
            var v = Vector256.LoadUnsafe(ref px, (nuint)i);
            var sq = v * v;
            acc0 += Vector256.WidenLower(sq);
            acc1 += Vector256.WidenUpper(sq);
        }
        double sum = Vector256.Sum(acc0 + acc1);
        for (; i < x.Length; i++)
            sum += x[i] * x[i];
        return sum;
    }

    private static void Scale(ReadOnlySpan<float> x, float scale, ReadOnlySpan<float> weight, Span<float> dst)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float px = ref MemoryMarshal.GetReference(x);
            ref float pw = ref MemoryMarshal.GetReference(weight);
            ref float pd = ref MemoryMarshal.GetReference(dst);
            var vs = Vector256.Create(scale);
            for (; i + 8 <= x.Length; i += 8)
                (Vector256.LoadUnsafe(ref px, (nuint)i) * vs * Vector256.LoadUnsafe(ref pw, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < x.Length; i++)
            dst[i] = x[i] * scale * weight[i];
    }
}
