namespace LfmSharp.Kernels;

/// <summary>
/// In-place softmax over x[n]: x[i] = e^(x[i] − max) / Σ e^(x[j] − max).
/// </summary>
/// <remarks>
/// As ggml's <c>soft_max</c>: the exponentials are f32, their sum is accumulated in double, and the result is
/// scaled by (float)(1 / sum).
/// </remarks>
internal static class Softmax
{
    public static void Apply(Span<float> x)
    {
        if (x.IsEmpty)
            return;
        Scalar(x);
    }

    internal static void Scalar(Span<float> x)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < x.Length; i++)
            max = MathF.Max(max, x[i]);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float e = MathF.Exp(x[i] - max);
            x[i] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < x.Length; i++)
            x[i] *= inv;
    }
}
