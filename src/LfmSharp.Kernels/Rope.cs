namespace LfmSharp.Kernels;

/// <summary>
/// Rotary position embedding, NEOX ("split-half") layout: within each head of size d, pair (j, j + d/2)
/// is rotated by θ_j = pos · base^(−2j/d). Shapes: x is [heads, headDim] for ONE token, rotated in place.
/// </summary>
/// <remarks>
/// θ is built like ggml's rope cache: theta_scale = powf(base, −2/d) in f32 and θ_{j+1} = θ_j · theta_scale
/// starting from θ_0 = pos, which can differ from pow(base, −2j/d) by an ulp. Only full rotation (n_rot = head
/// size) and no YaRN/frequency scaling: LFM2 uses neither.
/// </remarks>
internal static class Rope
{
    private const int MaxHeadDim = 1024;

    public static void Neox(Span<float> x, int headDim, int position, float freqBase)
    {
        if (headDim <= 0 || headDim % 2 != 0 || headDim > MaxHeadDim)
            throw new ArgumentException($"RoPE: head size {headDim} must be even and in 2..{MaxHeadDim}.", nameof(headDim));
        if (x.Length % headDim != 0)
            throw new ArgumentException($"RoPE: {x.Length} values are not whole heads of {headDim}.", nameof(x));
        ArgumentOutOfRangeException.ThrowIfNegative(position);

        int half = headDim / 2;
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        Angles(position, headDim, freqBase, cos, sin);
        for (int h = 0; h < x.Length; h += headDim)
            RotateScalar(x.Slice(h, headDim), cos, sin);
    }

    /// <summary>cos θ_j and sin θ_j for j = 0..headDim/2−1, computed exactly as ggml's rope cache.</summary>
    internal static void Angles(int position, int headDim, float freqBase, Span<float> cos, Span<float> sin)
    {
        float thetaScale = MathF.Pow(freqBase, -2.0f / headDim);
        float theta = position;
        for (int j = 0; j < cos.Length; j++)
        {
            cos[j] = MathF.Cos(theta);
            sin[j] = MathF.Sin(theta);
            theta *= thetaScale;
        }
    }

    internal static void RotateScalar(Span<float> head, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        for (int j = 0; j < half; j++)
        {
            float x0 = head[j], x1 = head[j + half];
            head[j] = x0 * cos[j] - x1 * sin[j];
            head[j + half] = x0 * sin[j] + x1 * cos[j];
        }
    }
}
