using System.Runtime.Intrinsics;
using LfmSharp.Kernels;

namespace LfmSharp.Kernels.Tests;

/// <summary>
/// The KV cache types: rows appended are read back as the format stores them, snapshots hold exactly the used rows
/// and share nothing with the cache, and a restored cache continues exactly as the uninterrupted one.
/// </summary>
public sealed unsafe class KvCacheTests
{
    public static TheoryData<string> Formats => ["f32", "f16", "q8_0"];

    private static KvCache New(string format, int kvHeads, int hd, int capacity) => format switch
    {
        "f32" => new F32KvCache(kvHeads, hd, capacity),
        "f16" => new F16KvCache(kvHeads, hd, capacity),
        _ => new Q8_0KvCache(kvHeads, hd, capacity),
    };

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (int i = 0; i < n; i++)
            a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>Rows [0, positions) of every head as f32, [kvHeads, positions, hd], keys then values.</summary>
    private static (float[] K, float[] V) Read(KvCache c, int positions)
    {
        int hd = c.HeadDim;
        var k = new float[c.KvHeads * positions * hd];
        var v = new float[k.Length];
        var kf = new float[Attention.KeyChunk * hd];
        var vf = new float[Attention.KeyChunk * hd];
        fixed (float* pkf = kf, pvf = vf)
        {
            for (int g = 0; g < c.KvHeads; g++)
            {
                for (int p0 = 0; p0 < positions; p0 += Attention.KeyChunk)
                {
                    int p1 = Math.Min(positions, p0 + Attention.KeyChunk);
                    c.LoadChunk(g, p0, p1, pkf, pvf, out float* pk, out float* pv);
                    new ReadOnlySpan<float>(pk, (p1 - p0) * hd).CopyTo(k.AsSpan((g * positions + p0) * hd));
                    new ReadOnlySpan<float>(pv, (p1 - p0) * hd).CopyTo(v.AsSpan((g * positions + p0) * hd));
                }
            }
        }
        return (k, v);
    }

    /// <summary>What the format keeps of x: f32 exactly, f16 rounded, Q8_0 quantized per 32 values.</summary>
    private static float[] Stored(string format, float[] x)
    {
        var y = new float[x.Length];
        if (format == "f32")
            x.CopyTo(y, 0);
        else if (format == "f16")
            for (int i = 0; i < x.Length; i++) y[i] = (float)(Half)x[i];
        else
        {
            var q = new byte[x.Length / 32 * 34];
            LfmSharp.Kernels.Quant.Q8_0.QuantizeRow(x, q);
            LfmSharp.Kernels.Quant.Q8_0.DequantizeRow(q, y);
        }
        return y;
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void AppendedRowsReadBackHeadMajorInTheFormatsPrecision(string format)
    {
        const int heads = 2, hd = 64, n = 70;   // more than one chunk
        var c = New(format, heads, hd, 80);
        var k = Random(n * heads * hd, 1);
        var v = Random(n * heads * hd, 2);
        c.Append(0, k.AsSpan(0, 30 * heads * hd), v.AsSpan(0, 30 * heads * hd));   // two appends: 0..29, 30..69
        c.Append(30, k.AsSpan(30 * heads * hd), v.AsSpan(30 * heads * hd));
        var (gk, gv) = Read(c, n);
        var (sk, sv) = (Stored(format, k), Stored(format, v));
        for (int p = 0; p < n; p++)
            for (int g = 0; g < heads; g++)
                for (int i = 0; i < hd; i++)
                {
                    Assert.Equal(sk[(p * heads + g) * hd + i], gk[(g * n + p) * hd + i]);
                    Assert.Equal(sv[(p * heads + g) * hd + i], gv[(g * n + p) * hd + i]);
                }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void SnapshotHoldsTheUsedRowsOnlyAndSharesNothing(string format)
    {
        const int heads = 2, hd = 32;
        var c = New(format, heads, hd, 40);
        c.Append(0, Random(20 * heads * hd, 3), Random(20 * heads * hd, 4));
        var before = Read(c, 12);
        var snap = c.Snapshot(12);
        Assert.Equal(12, snap.Positions);
        Assert.Equal(12 * c.BytesPerPosition, snap.Bytes);

        c.Append(0, Random(20 * heads * hd, 5), Random(20 * heads * hd, 6));   // overwrite the rows the snapshot copied
        Assert.NotEqual(before.K, Read(c, 12).K);
        c.Restore(snap);
        Assert.Equal(before.K, Read(c, 12).K);
        Assert.Equal(before.V, Read(c, 12).V);

        foreach (int capacity in new[] { 12, 64 })   // into caches of other capacities: each head's rows land at its own run
        {
            var other = New(format, heads, hd, capacity);
            other.Restore(snap);
            Assert.Equal(before.K, Read(other, 12).K);
            Assert.Equal(before.V, Read(other, 12).V);
        }
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void RestoreThenContinueEqualsTheUninterruptedRun(string format)
    {
        const int heads = 8, kvHeads = 2, hd = 64, prefix = 37, more = 29;
        using var pool = new KernelThreadPool(2);
        var k = Random((prefix + more) * kvHeads * hd, 7);
        var v = Random((prefix + more) * kvHeads * hd, 8);
        var q = Random(more * heads * hd, 9);
        var tail = new Range(prefix * kvHeads * hd, (prefix + more) * kvHeads * hd);
        float scale = 1f / MathF.Sqrt(hd);

        var straight = New(format, kvHeads, hd, 128);
        straight.Append(0, k.AsSpan(0, prefix * kvHeads * hd), v.AsSpan(0, prefix * kvHeads * hd));
        var snap = straight.Snapshot(prefix);
        straight.Append(prefix, k.AsSpan(tail), v.AsSpan(tail));
        var want = new float[q.Length];
        Attention.Causal(pool, q, straight, more, prefix, heads, scale, want);

        var resumed = New(format, kvHeads, hd, 100);
        resumed.Append(0, Random(60 * kvHeads * hd, 10), Random(60 * kvHeads * hd, 11));   // stale rows, past the prefix too
        resumed.Restore(snap);
        resumed.Append(prefix, k.AsSpan(tail), v.AsSpan(tail));
        var got = new float[q.Length];
        Attention.Causal(pool, q, resumed, more, prefix, heads, scale, got);
        Assert.Equal(want, got);
    }

    [Fact]
    public void RestoreRefusesASnapshotOfAnotherFormatShapeOrLargerCapacity()
    {
        var snap = New("f16", 2, 32, 16).Snapshot(10);
        Assert.Throws<ArgumentException>(() => New("f32", 2, 32, 16).Restore(snap));
        Assert.Throws<ArgumentException>(() => New("q8_0", 2, 32, 16).Restore(snap));
        Assert.Throws<ArgumentException>(() => New("f16", 1, 32, 16).Restore(snap));
        Assert.Throws<ArgumentException>(() => New("f16", 2, 64, 16).Restore(snap));
        Assert.Throws<ArgumentException>(() => New("f16", 2, 32, 9).Restore(snap));
        New("f16", 2, 32, 10).Restore(snap);   // exactly large enough
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void AppendRefusesRowsPastTheCapacityOrPartialRows(string format)
    {
        var c = New(format, 2, 32, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Append(3, new float[2 * 2 * 32], new float[2 * 2 * 32]));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Append(-1, new float[2 * 32], new float[2 * 32]));
        Assert.Throws<ArgumentException>(() => c.Append(0, new float[32], new float[32]));
        Assert.ThrowsAny<ArgumentException>(() => c.Snapshot(5));
        c.Append(2, new float[2 * 2 * 32], new float[2 * 2 * 32]);   // the last two positions fit
    }

    [Fact]
    public void BytesPerPositionFollowsTheFormat()
    {
        Assert.Equal(2 * 8 * 64 * 4, new F32KvCache(8, 64, 1).BytesPerPosition);
        Assert.Equal(2 * 8 * 64 * 2, new F16KvCache(8, 64, 1).BytesPerPosition);
        Assert.Equal(2 * 8 * 2 * 34, new Q8_0KvCache(8, 64, 1).BytesPerPosition);
        Assert.True(new F16KvCache(8, 64, 1).RoundsQueryToHalf);
        Assert.False(new F32KvCache(8, 64, 1).RoundsQueryToHalf);
        Assert.False(new Q8_0KvCache(8, 64, 1).RoundsQueryToHalf);
    }

    /// <summary>Each width's Sum4 gives the four lane sums in order (the attention scores depend on the order).</summary>
    [Fact]
    public void EveryWidthSumsFourVectorsInOrder()
    {
        var x = new float[4 * 16];
        for (int i = 0; i < x.Length; i++)
            x[i] = (i % 7) - 3 + i * 0.25f;
        fixed (float* p = x)
        {
            Check(Float128.Sum4(Vector128.Load(p), Vector128.Load(p + 16), Vector128.Load(p + 32), Vector128.Load(p + 48)), 4);
            Check(Float256.Sum4(Vector256.Load(p), Vector256.Load(p + 16), Vector256.Load(p + 32), Vector256.Load(p + 48)), 8);
            Check(Float512.Sum4(Vector512.Load(p), Vector512.Load(p + 16), Vector512.Load(p + 32), Vector512.Load(p + 48)), 16);
        }

        void Check(Vector128<float> got, int lanes)
        {
            for (int j = 0; j < 4; j++)
            {
                float want = 0;
                for (int i = 0; i < lanes; i++)
                    want += x[16 * j + i];
                Assert.Equal(want, got[j], 1e-4f);
            }
        }
    }
}
