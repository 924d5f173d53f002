using LfmSharp.Kernels;

namespace LfmSharp.Kernels.Tests;

/// <summary>Float kernels against double-precision definitions and their scalar twins.</summary>
public sealed class FloatKernelTests
{
    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static TheoryData<int> Lengths => [0, 1, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 255, 256, 300];

    [Theory]
    [MemberData(nameof(Lengths))]
    public void DotPathsMatchScalarAndDouble(int n)
    {
        var a = Random(n + 3, n)[3..];   // misaligned start
        var b = Random(n, n + 1000);
        double exact = 0;
        for (int i = 0; i < n; i++)
            exact += (double)a[i] * b[i];
        float tol = 1e-5f * (1 + n);
        Assert.InRange(VectorMath.DotScalar(a, b), exact - tol, exact + tol);
        Assert.InRange(VectorMath.Dot(a, b), exact - tol, exact + tol);
        if (n >= 32)
            Assert.InRange(VectorMath.DotVector<Float256, System.Runtime.Intrinsics.Vector256<float>>(a, b), exact - tol, exact + tol);
        if (n >= 64)
            Assert.InRange(VectorMath.DotVector<Float512, System.Runtime.Intrinsics.Vector512<float>>(a, b), exact - tol, exact + tol);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void ElementwiseOpsMatchDefinition(int n)
    {
        var a = Random(n, 1);
        var b = Random(n, 2);
        var d = new float[n];
        VectorMath.Add(a, b, d);
        for (int i = 0; i < n; i++) Assert.Equal(a[i] + b[i], d[i]);
        VectorMath.Multiply(a, b, d);
        for (int i = 0; i < n; i++) Assert.Equal(a[i] * b[i], d[i]);
        var acc = (float[])b.Clone();
        VectorMath.MultiplyAdd(a, 0.5f, acc);
        for (int i = 0; i < n; i++) Assert.Equal(b[i] + 0.5f * a[i], acc[i], 1e-6f);
    }

    [Fact]
    public void ArgMaxTakesLowestIndexOnTies() => Assert.Equal(1, VectorMath.ArgMax([0f, 3f, 1f, 3f]));

    [Theory]
    [MemberData(nameof(Lengths))]
    public void RmsNormMatchesDoubleDefinitionAndScalar(int n)
    {
        if (n == 0) return;
        var x = Random(n, 3, 4f);
        var w = Random(n, 4);
        var dst = new float[n];
        var scalar = new float[n];
        RmsNorm.Apply(x, w, 1e-5f, dst);
        RmsNorm.Scalar(x, w, 1e-5f, scalar);
        double ms = x.Sum(v => (double)v * v) / n;
        double s = 1 / Math.Sqrt(ms + 1e-5);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(x[i] * s * w[i], dst[i], 1e-5);
            Assert.Equal(scalar[i], dst[i], 1e-6f);
        }
        Assert.Equal(RmsNorm.SumOfSquaresScalar(x), n >= 8 ? RmsNorm.SumOfSquaresVector256(x) : RmsNorm.SumOfSquaresScalar(x), 1e-9 * n);
    }

    [Fact]
    public void RmsNormInPlaceAndRowsWork()
    {
        var x = Random(64, 5);
        var w = Random(16, 6);
        var expected = new float[64];
        for (int r = 0; r < 4; r++)
            RmsNorm.Scalar(x.AsSpan(r * 16, 16), w, 1e-5f, expected.AsSpan(r * 16, 16));
        RmsNorm.ApplyRows(x, w, 1e-5f, x);
        for (int i = 0; i < 64; i++) Assert.Equal(expected[i], x[i], 1e-6f);
        Assert.Throws<ArgumentException>(() => RmsNorm.ApplyRows(new float[63], w, 1e-5f, new float[63]));
    }

    [Theory]
    [InlineData(16, 0)]
    [InlineData(16, 5)]
    [InlineData(64, 1)]
    [InlineData(64, 3000)]
    public void RopeNeoxRotatesHalfPairsLikeTheFormula(int hd, int pos)
    {
        const float theta = 1e6f;
        var x = Random(3 * hd, hd + pos);
        var y = (float[])x.Clone();
        Rope.Neox(y, hd, pos, theta);
        for (int h = 0; h < 3; h++)
        {
            for (int j = 0; j < hd / 2; j++)
            {
                double ang = pos * Math.Pow(theta, -2.0 * j / hd);
                double x0 = x[h * hd + j], x1 = x[h * hd + j + hd / 2];
                // f32 angle from repeated multiplication drifts slightly from pow at large positions.
                double tol = 1e-5 + 2e-7 * pos;
                Assert.Equal(x0 * Math.Cos(ang) - x1 * Math.Sin(ang), y[h * hd + j], tol);
                Assert.Equal(x0 * Math.Sin(ang) + x1 * Math.Cos(ang), y[h * hd + j + hd / 2], tol);
            }
        }
        if (pos == 0)
            Assert.Equal(x, y);
    }

    [Fact]
    public void SoftmaxMatchesDoubleAndIgnoresMinusInfinity()
    {
        var x = Random(37, 7, 10f);
        x[5] = float.NegativeInfinity;
        var y = (float[])x.Clone();
        Softmax.Apply(y);
        double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
        for (int i = 0; i < x.Length; i++)
            Assert.Equal(Math.Exp(x[i] - max) / sum, y[i], 1e-6);
        Assert.Equal(0f, y[5]);
    }

    [Theory]
    [MemberData(nameof(Lengths))]
    public void SwiGluVectorMatchesScalarAndDefinition(int n)
    {
        var g = Random(n, 8, 6f);
        var u = Random(n, 9);
        var a = new float[n];
        var b = new float[n];
        SwiGlu.Scalar(g, u, a);
        SwiGlu.Vector256Path(g, u, b);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(g[i] / (1 + Math.Exp(-g[i])) * u[i], a[i], 1e-6);
            Assert.Equal(a[i], b[i], 1e-6f);
        }
    }

    [Theory]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(3, 7)]
    [InlineData(4, 1)]
    [InlineData(1, 5)]
    public void ShortConvMatchesDefinitionAndIsChunkInvariant(int k, int dim)
    {
        const int T = 9;
        var input = Random(T * dim, k * 10 + dim);
        var w = Random(dim * k, 11);
        // Definition: zero history, y[t, c] = Σ_j in[t + j − (k−1), c] · w[c, j].
        var expected = new double[T * dim];
        for (int t = 0; t < T; t++)
            for (int c = 0; c < dim; c++)
                for (int j = 0; j < k; j++)
                {
                    int src = t + j - (k - 1);
                    if (src >= 0) expected[t * dim + c] += (double)input[src * dim + c] * w[c * k + j];
                }

        var whole = new float[T * dim];
        ShortConv.Apply(input, new float[(k - 1) * dim], w, dim, k, whole);
        for (int i = 0; i < whole.Length; i++) Assert.Equal(expected[i], whole[i], 1e-5);

        // Chunks of 1, 2, 1, 5 tokens with the state carried: same outputs (same f32 sum order => identical).
        var state = new float[(k - 1) * dim];
        var chunked = new float[T * dim];
        int start = 0;
        foreach (int n in new[] { 1, 2, 1, 5 })
        {
            ShortConv.Apply(input.AsSpan(start * dim, n * dim), state, w, dim, k, chunked.AsSpan(start * dim, n * dim));
            start += n;
        }
        Assert.Equal(whole, chunked);
        // The final state is the last k−1 input rows.
        Assert.Equal(input.AsSpan((T - (k - 1)) * dim).ToArray(), state);
    }

    [Fact]
    public void ShortConvRejectsBadShapes()
    {
        Assert.Throws<ArgumentException>(() => ShortConv.Apply(new float[6], new float[3], new float[6], 2, 3, new float[6]));
        Assert.Throws<ArgumentException>(() => ShortConv.Apply(new float[5], new float[4], new float[6], 2, 3, new float[5]));
    }
}
