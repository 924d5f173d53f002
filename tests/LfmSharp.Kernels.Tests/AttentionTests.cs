using LfmSharp.Kernels;

namespace LfmSharp.Kernels.Tests;

public sealed class AttentionTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>A cache of the given format holding rows k, v ([rows, kvHeads, hd], position-major, as the reference reads them).</summary>
    internal static KvCache Filled(KvCache cache, float[] k, float[] v)
    {
        cache.Append(0, k, v);
        return cache;
    }

    /// <summary>Causal GQA attention in double, straight from the definition (k, v position-major).</summary>
    private static double[] Reference(float[] q, float[] k, float[] v, int T, int start, int heads, int kvHeads, int hd)
    {
        var dst = new double[T * heads * hd];
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++)
            {
                int g = h / (heads / kvHeads), len = start + t + 1;
                var s = new double[len];
                for (int j = 0; j < len; j++)
                {
                    for (int i = 0; i < hd; i++)
                        s[j] += (double)q[(t * heads + h) * hd + i] * k[(j * kvHeads + g) * hd + i];
                    s[j] /= Math.Sqrt(hd);
                }
                double max = s.Max(), sum = s.Sum(x => Math.Exp(x - max));
                for (int j = 0; j < len; j++)
                    for (int i = 0; i < hd; i++)
                        dst[(t * heads + h) * hd + i] += Math.Exp(s[j] - max) / sum * v[(j * kvHeads + g) * hd + i];
            }
        return dst;
    }

    [Theory]
    [InlineData(1, 0, 4, 2, 16, 1)]
    [InlineData(5, 0, 4, 2, 16, 2)]
    [InlineData(3, 7, 4, 1, 64, 2)]
    [InlineData(1, 20, 6, 3, 8, 3)]
    [InlineData(40, 100, 8, 2, 64, 2)]   // several query tiles and key chunks: the online softmax rescales
    [InlineData(17, 63, 4, 4, 16, 3)]    // a tile of 1 and a chunk boundary right at the first token
    [InlineData(1, 300, 4, 1, 32, 2)]    // decode over a long cache
    public void F32MatchesDoubleReference(int T, int start, int heads, int kvHeads, int hd, int threads)
    {
        using var pool = new KernelThreadPool(threads);
        int rows = start + T;
        var q = Random(T * heads * hd, 1);
        var k = Random((rows + 3) * kvHeads * hd, 2);   // the cache may hold more rows than used
        var v = Random((rows + 3) * kvHeads * hd, 3);
        var dst = new float[q.Length];
        Attention.Causal(pool, q, Filled(new F32KvCache(kvHeads, hd, rows + 3), k, v), T, start, heads, 1f / MathF.Sqrt(hd), dst);
        var want = Reference(q, k, v, T, start, heads, kvHeads, hd);
        for (int i = 0; i < dst.Length; i++)
            Assert.Equal(want[i], dst[i], 1e-5);
    }

    /// <summary>
    /// Each way of folding a chunk of cache rows into the queries — the scalar reference (a dot and an axpy per
    /// query and row) and the tiled Vector128 / Vector256 products — against the double reference, over shapes with
    /// ragged key chunks, an odd query count (group 3), head sizes that take the narrow loops, and a causal diagonal
    /// inside a chunk. A path the machine lacks runs the next narrower one.
    /// </summary>
    [Theory]
    [InlineData("Scalar")]
    [InlineData("Vector128")]
    [InlineData("Vector256")]
    public void EveryTilePathMatchesTheDoubleReference(string pathName)
    {
        var path = Enum.Parse<Attention.TilePath>(pathName);
        using var pool = new KernelThreadPool(2);
        foreach (var (T, start, heads, kvHeads, hd) in new[] { (1, 0, 4, 2, 16), (21, 50, 6, 2, 40), (3, 130, 32, 8, 64), (37, 0, 8, 8, 8), (17, 200, 4, 1, 96), (2, 5, 3, 1, 4) })
        {
            int rows = start + T;
            var q = Random(T * heads * hd, 11);
            var k = Random(rows * kvHeads * hd, 12);
            var v = Random(rows * kvHeads * hd, 13);
            var dst = new float[q.Length];
            Attention.Causal(path, pool, q, Filled(new F32KvCache(kvHeads, hd, rows), k, v), T, start, heads, 1f / MathF.Sqrt(hd), dst);
            var want = Reference(q, k, v, T, start, heads, kvHeads, hd);
            for (int i = 0; i < dst.Length; i++)
                Assert.True(Math.Abs(want[i] - dst[i]) <= 1e-5, $"{path} T {T} start {start} hd {hd}: element {i} {dst[i]} vs {want[i]}");
        }
    }

    /// <summary>
    /// A Q8_0 cache must attend exactly like an f32 cache holding the dequantized rows (the kernel dequantizes each
    /// chunk, then runs the f32 math), and stay close to the unquantized values.
    /// </summary>
    [Theory]
    [InlineData(1, 0, 4, 2, 32, 1)]
    [InlineData(1, 130, 32, 8, 64, 2)]   // LFM2.5-1.2B's attention shape, decoding over three key chunks
    [InlineData(40, 100, 8, 2, 64, 2)]
    [InlineData(7, 3, 4, 4, 96, 2)]      // heads spanning three blocks each
    public void Q8_0CacheEqualsF32CacheOfItsDequantizedRows(int T, int start, int heads, int kvHeads, int hd, int threads)
    {
        using var pool = new KernelThreadPool(threads);
        int rows = start + T, kvDim = kvHeads * hd;
        var q = Random(T * heads * hd, 4);
        var k = Random(rows * kvDim, 5);
        var v = Random(rows * kvDim, 6);
        // Rows of hd (a multiple of 32) values are whole blocks, so quantizing the rows as one run gives the cache's blocks.
        var kd = new float[k.Length];
        var vd = new float[v.Length];
        var k8 = new byte[k.Length / 32 * 34];
        var v8 = new byte[v.Length / 32 * 34];
        LfmSharp.Kernels.Quant.Q8_0.QuantizeRow(k, k8);
        LfmSharp.Kernels.Quant.Q8_0.QuantizeRow(v, v8);
        LfmSharp.Kernels.Quant.Q8_0.DequantizeRow(k8, kd);
        LfmSharp.Kernels.Quant.Q8_0.DequantizeRow(v8, vd);
        var got = new float[q.Length];
        var viaF32 = new float[q.Length];
        var exact = new float[q.Length];
        float scale = 1f / MathF.Sqrt(hd);
        Attention.Causal(pool, q, Filled(new Q8_0KvCache(kvHeads, hd, rows), k, v), T, start, heads, scale, got);
        Attention.Causal(pool, q, Filled(new F32KvCache(kvHeads, hd, rows), kd, vd), T, start, heads, scale, viaF32);
        Attention.Causal(pool, q, Filled(new F32KvCache(kvHeads, hd, rows), k, v), T, start, heads, scale, exact);
        Assert.Equal(viaF32, got);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(got[i] - exact[i]) < 0.02f, $"element {i}: Q8_0 {got[i]} vs f32 {exact[i]}");
    }

    [Fact]
    public void Q8_0CacheRefusesHeadSizesThatSplitBlocks()
    {
        var e = Assert.Throws<ArgumentException>(() => new Q8_0KvCache(1, 16, 4));
        Assert.Contains("multiple of 32", e.Message);
        e = Assert.Throws<ArgumentException>(() => new Q8_0KvCache(1, 48, 4));
        Assert.Contains("multiple of 32", e.Message);
    }

    [Theory]
    [InlineData(4, 6, 4, 2, 16)]
    [InlineData(20, 90, 8, 2, 64)]
    public void F16CacheIsCloseToF32(int T, int start, int heads, int kvHeads, int hd)
    {
        using var pool = new KernelThreadPool(2);
        int rows = start + T;
        var q = Random(T * heads * hd, 4);
        var k = Random(rows * kvHeads * hd, 5);
        var v = Random(rows * kvHeads * hd, 6);
        var d32 = new float[q.Length];
        var d16 = new float[q.Length];
        float scale = 1f / MathF.Sqrt(hd);
        Attention.Causal(pool, q, Filled(new F32KvCache(kvHeads, hd, rows), k, v), T, start, heads, scale, d32);
        Attention.Causal(pool, q, Filled(new F16KvCache(kvHeads, hd, rows), k, v), T, start, heads, scale, d16);
        for (int i = 0; i < d32.Length; i++)
            Assert.Equal(d32[i], d16[i], 2e-3f);
    }

    [Fact]
    public void RejectsTooSmallCacheOrMismatchedQuery()
    {
        using var pool = new KernelThreadPool(2);
        // 2 tokens from position 1 need 3 positions; the cache holds 2.
        var e = Assert.Throws<ArgumentException>(() => Attention.Causal(pool, new float[32], new F32KvCache(1, 16, 2), 2, 1, 1, 1f, new float[32]));
        Assert.Contains("holds 2 positions; 3 needed", e.Message);
        e = Assert.Throws<ArgumentException>(() => Attention.Causal(pool, new float[16], new F32KvCache(1, 16, 2), 2, 0, 1, 1f, new float[16]));
        Assert.Contains("q/dst length", e.Message);
        Assert.Throws<ArgumentException>(() => Attention.Causal(pool, new float[48], new F32KvCache(2, 16, 2), 1, 0, 3, 1f, new float[48]));   // 3 heads over 2 KV heads
    }
}
