using LfmSharp.Kernels;

namespace LfmSharp.Tests.Models;

/// <summary>
/// Batch prefill, token-by-token decode and chunked prefill must agree (the KV cache and the conv state carry
/// everything), and snapshots must restore a sequence exactly.
/// </summary>
public sealed class Lfm2StateTests
{
    public static TheoryData<string, KvCacheType, int> Models => new()
    {
        { "tiny-f32", KvCacheType.F32, 70 },
        { "tiny-f32", KvCacheType.F16, 70 },
        { "tiny-q4_k_m", KvCacheType.F32, 70 },
        { "small-q4_k_m", KvCacheType.F16, 30 },   // K-quant rows; fewer tokens keep it cheap
    };

    private static int[] Ids(int n, int vocab, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(i => i == 0 ? 1 : r.Next(vocab)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void BatchDecodeAndChunkedPrefillAgree(string model, KvCacheType kv, int tokens)
    {
        using var lm = Lfm2GoldenTests.Load(model, MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var ids = Ids(tokens, 472, 7);
        var batch = Lfm2GoldenTests.Run(lm, ids, kv);

        // One token at a time.
        var state = lm.CreateState(256, kv);
        var row = new float[vocab];
        var decode = new float[ids.Length * vocab];
        for (int i = 0; i < ids.Length; i++)
        {
            lm.Forward(ids.AsSpan(i, 1), state, row);
            row.CopyTo(decode, i * vocab);
        }
        Assert.Equal(ids.Length, state.Position);

        // Random chunks, all logits.
        var r = new Random(11);
        state = lm.CreateState(256, kv);
        var chunked = new float[ids.Length * vocab];
        for (int start = 0; start < ids.Length;)
        {
            int n = Math.Min(ids.Length - start, 1 + r.Next(17));
            lm.Forward(ids.AsSpan(start, n), state, chunked.AsSpan(start * vocab), LogitPositions.All);
            start += n;
        }

        // An internal batch size smaller than the input (the model splits it).
        var small = lm.Model.CreateState(256, kv, batchSize: 7);
        var split = new float[ids.Length * vocab];
        lm.Model.Forward(ids, small, split, LogitPositions.All);

        // Every matmul row and attention head is computed the same way whatever the batch, so this is exact
        // up to f32 summation order.
        Assert.True(Lfm2GoldenTests.MaxAbsDiff(batch, decode) <= 1e-5f, "decode vs batch");
        Assert.True(Lfm2GoldenTests.MaxAbsDiff(batch, chunked) <= 1e-5f, "chunked vs batch");
        Assert.True(Lfm2GoldenTests.MaxAbsDiff(batch, split) <= 1e-5f, "internal batches vs batch");
    }

    [Theory]
    [InlineData("tiny-q4_k_m", KvCacheType.F16)]
    [InlineData("tiny-f32", KvCacheType.F32)]
    public void DecodeAndPrefillDoNotAllocate(string model, KvCacheType kv)
    {
        using var lm = Lfm2GoldenTests.Load(model, MatMulPrecision.LlamaCpp);
        var state = lm.CreateState(128, kv);
        var logits = new float[8 * lm.Config.VocabSize];
        int[] token = [5];
        int[] batch = [1, 6, 332, 280, 26, 88, 121, 7];
        lm.Forward(batch, state, logits, LogitPositions.All);   // warm-up: JIT, per-thread job objects
        lm.Forward(token, state, logits);
        // The calling thread; workers run the same job objects.
        long allocated = SteadyAllocations.Measure(() =>
        {
            for (int i = 0; i < 20; i++)
                lm.Forward(token, state, logits);
            lm.Forward(batch, state, logits, LogitPositions.All);
        });
        Assert.True(allocated == 0, $"forward passes allocated {allocated} bytes");
    }

    [Fact]
    public void LastLogitsEqualTheLastRowOfAll()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-q8_0", MatMulPrecision.LlamaCpp);
        var ids = Ids(20, 472, 3);
        var all = Lfm2GoldenTests.Run(lm, ids);
        var last = new float[lm.Config.VocabSize];
        lm.Forward(ids, lm.CreateState(64, KvCacheType.F32), last);
        Assert.Equal(all.AsSpan((ids.Length - 1) * last.Length).ToArray(), last);
    }

    [Fact]
    public void SnapshotRestoreRewindsConvAndKvState()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-f32", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var prefix = Ids(12, 472, 5);
        var state = lm.CreateState(64, KvCacheType.F16);
        var logits = new float[vocab];
        lm.Forward(prefix, state, logits);
        var snap = state.Snapshot();

        var a = new float[vocab];
        lm.Forward([100, 200, 300], state, a);
        Assert.Equal(15, state.Position);

        state.Restore(snap);
        Assert.Equal(12, state.Position);
        var b = new float[vocab];
        lm.Forward([100, 200, 300], state, b);
        Assert.Equal(a, b);

        // A different continuation after restore equals a fresh run of the same full sequence.
        state.Restore(snap);
        lm.Forward([5, 6], state, b);
        var fresh = lm.CreateState(64, KvCacheType.F16);
        lm.Forward([.. prefix, 5, 6], fresh, a);
        Assert.Equal(a, b);

        state.Reset();
        Assert.Equal(0, state.Position);
        lm.Forward([.. prefix, 5, 6], state, b);
        Assert.Equal(a, b);
    }

    [Fact]
    public void Q8_0CacheStaysCloseToF32AndDecodesLikeItsPrefill()
    {
        using var lm = Lfm2GoldenTests.Load("small-q8_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var ids = Ids(40, 472, 9);
        var exact = Lfm2GoldenTests.Run(lm, ids, KvCacheType.F32);
        var q8 = Lfm2GoldenTests.Run(lm, ids, KvCacheType.Q8_0);

        // Close to the f32 cache: small logit error and the same top token almost everywhere.
        int sameTop = 0;
        float worst = 0, spread = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            var e = exact.AsSpan(i * vocab, vocab);
            var g = q8.AsSpan(i * vocab, vocab);
            sameTop += e.IndexOf(TensorMax(e)) == g.IndexOf(TensorMax(g)) ? 1 : 0;
            spread = Math.Max(spread, TensorMax(e) - TensorMin(e));
            for (int j = 0; j < vocab; j++)
                worst = Math.Max(worst, Math.Abs(e[j] - g[j]));
        }
        Assert.True(worst > 0, "a Q8_0 cache that changes nothing is not quantizing");
        Assert.True(worst < 0.02f * spread, $"max |Δlogit| {worst} vs logit spread {spread}");
        Assert.True(sameTop >= ids.Length - 2, $"top token agrees at {sameTop}/{ids.Length} positions");

        // Token-by-token decode writes the same cache rows as the batch: identical up to f32 summation order.
        var state = lm.CreateState(64, KvCacheType.Q8_0);
        var row = new float[vocab];
        for (int i = 0; i < ids.Length; i++)
        {
            lm.Forward(ids.AsSpan(i, 1), state, row);
            Assert.True(Lfm2GoldenTests.MaxAbsDiff(q8.AsSpan(i * vocab, vocab), row) <= 1e-5f, $"decode vs batch at {i}");
        }

        // Snapshots carry the quantized rows.
        var snap = state.Snapshot();
        var a = new float[vocab];
        lm.Forward([7, 8], state, a);
        state.Restore(snap);
        var b = new float[vocab];
        lm.Forward([7, 8], state, b);
        Assert.Equal(a, b);
    }

    /// <summary>
    /// The cache is head-major ([kvHeads, context, row]), so a snapshot packs each head's used rows: restored into a
    /// state of another context length it must continue exactly as the original does.
    /// </summary>
    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.Q8_0)]
    public void SnapshotsMoveBetweenStatesOfDifferentContextLengths(KvCacheType kv)
    {
        using var lm = Lfm2GoldenTests.Load("small-q8_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var prefix = Ids(20, 472, 11);
        var from = lm.CreateState(64, kv);
        var logits = new float[vocab];
        lm.Forward(prefix, from, logits);
        var snap = from.Snapshot();
        var want = new float[vocab];
        lm.Forward([9, 10, 11], from, want);
        foreach (int ctx in new[] { 24, 200 })
        {
            var to = lm.CreateState(ctx, kv);
            to.Restore(snap);
            var got = new float[vocab];
            lm.Forward([9, 10, 11], to, got);
            Assert.Equal(want, got);
        }
    }

    /// <summary>
    /// A snapshot counts the bytes it holds (the conv histories and the KV rows of its positions, not the context),
    /// and shares no buffer with its state: rewriting every row and the conv history does not reach it.
    /// </summary>
    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.Q8_0)]
    public void SnapshotCountsItsBytesAndOutlivesTheStateBeingRewritten(KvCacheType kv)
    {
        using var lm = Lfm2GoldenTests.Load("small-q8_0", MatMulPrecision.LlamaCpp);
        var c = lm.Config;
        var state = lm.CreateState(64, kv);
        var logits = new float[c.VocabSize];
        lm.Forward(Ids(20, 472, 3), state, logits);
        var snap = state.Snapshot();
        var want = new float[c.VocabSize];
        lm.Forward([9, 10, 11], state, want);

        long bytes = 0;
        for (int i = 0; i < c.LayerCount; i++)
            bytes += c.IsAttentionLayer(i) ? 20 * KvCacheTypes.BytesPerPosition(kv, c.KvHeadCount(i), c.HeadSize) : 4L * (c.ConvKernelSize - 1) * c.HiddenSize;
        Assert.Equal(bytes, snap.Bytes);

        state.Reset();
        lm.Forward(Ids(40, 472, 4), state, logits);   // every row the snapshot copied, and the conv history, rewritten
        state.Restore(snap);
        var got = new float[c.VocabSize];
        lm.Forward([9, 10, 11], state, got);
        Assert.Equal(want, got);
    }

    [Fact]
    public void Q8_0CacheNamesTheHeadSizeItCannotHold()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-f32", MatMulPrecision.LlamaCpp);   // head size 16
        var e = Assert.Throws<NotSupportedException>(() => lm.CreateState(64, KvCacheType.Q8_0));
        Assert.Contains("multiple of 32", e.Message);
        Assert.Contains("16", e.Message);
    }

    private static float TensorMax(ReadOnlySpan<float> x)
    {
        float m = float.NegativeInfinity;
        foreach (float v in x)
            m = Math.Max(m, v);
        return m;
    }

    private static float TensorMin(ReadOnlySpan<float> x)
    {
        float m = float.PositiveInfinity;
        foreach (float v in x)
            m = Math.Min(m, v);
        return m;
    }
}
