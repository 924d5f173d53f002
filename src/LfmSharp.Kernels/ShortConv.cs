namespace LfmSharp.Kernels;

/// <summary>
/// Causal depthwise 1-D convolution with a carried state (LFM2's short conv, ggml <c>ssm_conv</c>).
/// </summary>
/// <remarks>
/// Shapes: <c>input</c> [tokens, dim] (rows = tokens), <c>state</c> [k−1, dim] (the k−1 input rows before the
/// first token, oldest first; zeros for a new sequence), <c>weight</c> [dim, k] (the taps of one channel are
/// contiguous, oldest first), <c>dst</c> [tokens, dim]. Over the window w = concat(state, input):
/// dst[t, c] = Σ_{j=0..k−1} w[t + j, c] · weight[c, j], summed in f32 in the order j = 0, 1, …, k−1 as ggml does.
/// Afterwards <c>state</c> holds the last k−1 rows of w (so it works for any chunking of the sequence).
/// <c>dst</c> must not alias <c>input</c> or <c>state</c>.
/// </remarks>
internal static class ShortConv
{
    public static void Apply(ReadOnlySpan<float> input, Span<float> state, ReadOnlySpan<float> weight, int dim, int kernelSize, Span<float> dst)
    {
        if (dim <= 0 || kernelSize < 1)
            throw new ArgumentException($"ShortConv: dim {dim} and kernel size {kernelSize} must be positive.");
        if (input.Length % dim != 0)
            throw new ArgumentException($"ShortConv: input length {input.Length} is not whole rows of {dim}.", nameof(input));
        if (state.Length != (kernelSize - 1) * dim)
            throw new ArgumentException($"ShortConv: state length {state.Length} != (k−1)·dim = {(kernelSize - 1) * dim}.", nameof(state));
        if (weight.Length != kernelSize * dim)
            throw new ArgumentException($"ShortConv: weight length {weight.Length} != k·dim = {kernelSize * dim}.", nameof(weight));
        if (dst.Length != input.Length)
            throw new ArgumentException($"ShortConv: dst length {dst.Length} != input length {input.Length}.", nameof(dst));
        Scalar(input, state, weight, dim, kernelSize, dst);
    }

    internal static void Scalar(ReadOnlySpan<float> input, Span<float> state, ReadOnlySpan<float> weight, int dim, int kernelSize, Span<float> dst)
    {
        int tokens = input.Length / dim;
        int history = kernelSize - 1;
        for (int t = 0; t < tokens; t++)
        {
            var outRow = dst.Slice(t * dim, dim);
            for (int c = 0; c < dim; c++)
            {
                var taps = weight.Slice(c * kernelSize, kernelSize);
                float sum = 0f;
                for (int j = 0; j < kernelSize; j++)
                {
                    int w = t + j - history; // row in input; negative = from state
                    float v = w < 0 ? state[(history + w) * dim + c] : input[w * dim + c];
                    sum += v * taps[j];
                }
                outRow[c] = sum;
            }
        }

        // New state = last `history` rows of concat(state, input).
        if (history == 0)
            return;
        if (tokens >= history)
        {
            input.Slice((tokens - history) * dim, history * dim).CopyTo(state);
        }
        else
        {
            // Keep the newest (history − tokens) old rows, then append all input rows.
            int keep = history - tokens;
            state.Slice(tokens * dim, keep * dim).CopyTo(state);
            input.CopyTo(state.Slice(keep * dim));
        }
    }
}
