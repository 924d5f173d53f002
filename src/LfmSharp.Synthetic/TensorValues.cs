using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;

namespace LfmSharp.Synthetic;

/// <summary>
/// The value stream of one synthetic tensor, in ggml memory order (row after row). Each tensor has its own NumPy
/// compatible stream seeded with <c>[seed, crc32(name)]</c>, so values do not depend on which other tensors exist or
/// in which order they are written, and the same name gives the same values in every file type.
/// </summary>
internal sealed class TensorValues
{
    private Pcg64 _rng;
    private readonly SyntheticTensorKind _kind;
    private readonly float _scale;

    public TensorValues(SyntheticTensor tensor, ModelShape shape, ulong seed, float matrixGain, float embeddingGain)
    {
        uint crc = Crc32.Compute(Encoding.UTF8.GetBytes(tensor.Name));
        _rng = new Pcg64(new NumpySeedSequence(seed, crc));
        _kind = tensor.Kind;
        // The scale is computed in double and rounded to f32 once, and the product is taken in f32: that is what
        // numpy does for float32_array * (g / sqrt(fan_in)).
        _scale = tensor.Kind switch
        {
            SyntheticTensorKind.Embedding => (float)(embeddingGain / Math.Sqrt(shape.EmbeddingLength)),
            SyntheticTensorKind.Matrix or SyntheticTensorKind.Conv => (float)(matrixGain / Math.Sqrt(tensor.RowLength)),
            _ => 0.1f,
        };
    }

    /// <summary>Writes the next <c>dst.Length</c> values of the stream.</summary>
    public void Fill(Span<float> dst)
    {
        NumpyNormal.Fill(ref _rng, dst);
        if (_kind == SyntheticTensorKind.Norm)
            OnePlusScaled(dst, _scale);
        else
            Scale(dst, _scale);
    }

    private static void Scale(Span<float> x, float s)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vs = new Vector<float>(s);
            Span<Vector<float>> v = MemoryMarshal.Cast<float, Vector<float>>(x);
            for (int j = 0; j < v.Length; j++)
                v[j] *= vs;
            i = v.Length * Vector<float>.Count;
        }
        for (; i < x.Length; i++)
            x[i] *= s;
    }

    // 1 + s·z with the product rounded to f32 before the sum (no fused multiply-add), as numpy computes 1 + 0.1 * z.
    private static void OnePlusScaled(Span<float> x, float s)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float p = s * x[i];
            x[i] = 1.0f + p;
        }
    }
}
