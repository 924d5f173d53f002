using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels;

/// <summary>
/// Causal grouped-query attention of a batch of query tokens over a KV cache.
/// </summary>
/// <remarks>
/// Shapes: <c>q</c> [tokens, heads·headDim]; <c>cache</c> a <see cref="KvCache"/> of any format holding positions
/// 0..startPos + tokens (the new tokens' rows already appended), read back chunk by chunk as f32; <c>dst</c>
/// [tokens, heads·headDim]. Query token t sits at position startPos + t and sees positions 0..startPos + t. Query
/// head h reads KV head h / (heads / kvHeads).
/// Per (token, head): s_j = (q·k_j)·scale in f32, a softmax computed online over chunks of
/// <see cref="KeyChunk"/> positions (as flash attention does; equal to the two-pass softmax up to f32 rounding),
/// dst = Σ_j p_j · v_j accumulated in f32. Work items are (KV head, tile of <see cref="QueryTile"/> tokens), so
/// every K/V row is read (and, from an F16 or Q8_0 cache, converted) once per item for all its query heads and
/// tokens. With an F16 cache the query is rounded to F16 before the q·k dot (<see cref="KvCache.RoundsQueryToHalf"/>);
/// probabilities and the value sum stay f32. <see cref="HeadScalar"/> is the two-pass reference.
/// </remarks>
internal static unsafe class Attention
{
    /// <summary>dst = attention of <paramref name="tokens"/> queries at positions startPos.. over <paramref name="cache"/> (see the remarks).</summary>
    public static void Causal(KernelThreadPool pool, ReadOnlySpan<float> q, KvCache cache, int tokens, int startPos, int heads, float scale, Span<float> dst) =>
        Causal(null, pool, q, cache, tokens, startPos, heads, scale, dst);

    /// <summary>How a work item folds a chunk of cache rows into its queries (the scalar path is the reference).</summary>
    internal enum TilePath { Scalar, Vector128, Vector256 }

    /// <summary>The widest tiled path this machine runs for a head size (its vectors must tile the head exactly).</summary>
    internal static TilePath BestPath(int headDim) =>
        Vector256.IsHardwareAccelerated && headDim % 8 == 0 ? TilePath.Vector256
        : Vector128.IsHardwareAccelerated && headDim % 4 == 0 ? TilePath.Vector128
        : TilePath.Scalar;

    /// <summary>The same on a chosen path (a test hook: null = <see cref="BestPath"/>; one the machine lacks falls back to a narrower one).</summary>
    internal static void Causal(TilePath? path, KernelThreadPool pool, ReadOnlySpan<float> q, KvCache cache, int tokens, int startPos, int heads,
        float scale, Span<float> dst)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(cache);
        int kvHeads = cache.KvHeads, headDim = cache.HeadDim;
        if (tokens < 0 || startPos < 0 || heads <= 0 || heads % kvHeads != 0)
            throw new ArgumentException($"Attention: bad shape (tokens {tokens}, start {startPos}, heads {heads}, kv heads {kvHeads}).");
        if (q.Length != tokens * heads * headDim || dst.Length != q.Length)
            throw new ArgumentException($"Attention: q/dst length {q.Length}/{dst.Length} != tokens·heads·headDim = {tokens * heads * headDim}.");
        if (cache.Capacity < startPos + tokens)
            throw new ArgumentException($"Attention: the cache holds {cache.Capacity} positions; {startPos + tokens} needed.");
        var best = BestPath(headDim);
        fixed (float* pq = q, pd = dst)
        {
            Run(pool, pq, cache, tokens, startPos, heads, scale, pd, path is { } p ? (TilePath)Math.Min((int)p, (int)best) : best);
        }
    }

    // One job object per calling thread, reused: a forward pass must not allocate per token.
    [ThreadStatic] private static Job? t_job;

    /// <summary>Query tokens per work item: each K/V chunk converted to f32 serves this many tokens × the GQA group.</summary>
    internal const int QueryTile = 16;

    /// <summary>Cache positions converted and scored at a time (the online softmax rescales once per chunk).</summary>
    internal const int KeyChunk = 64;

    /// <summary>Runs the work items: (KV head, tile of query tokens) pairs.</summary>
    private static void Run(KernelThreadPool pool, float* q, KvCache cache, int tokens, int startPos, int heads, float scale, float* dst, TilePath path)
    {
        var job = t_job ??= new Job();
        job.Path = path;
        int kvHeads = cache.KvHeads, headDim = cache.HeadDim;
        job.EnsureScratch(pool.ThreadCount, headDim, heads / kvHeads);
        job.Q = q;
        job.Dst = dst;
        job.Cache = cache;
        (job.Tokens, job.StartPos, job.Heads, job.KvHeads, job.HeadDim, job.Scale) = (tokens, startPos, heads, kvHeads, headDim, scale);
        try
        {
            int tiles = (tokens + QueryTile - 1) / QueryTile;
            pool.For(kvHeads * tiles, 1, job);
        }
        finally
        {
            job.Q = job.Dst = null;
            job.Cache = null;
        }
    }

    /// <summary>One (token, head) of f32 attention: the reference for every path.</summary>
    internal static void HeadScalar(ReadOnlySpan<float> qHead, ReadOnlySpan<float> keys, ReadOnlySpan<float> values, int kvLen, int kvStride, int kvOffset,
        float scale, Span<float> scores, Span<float> dstHead)
    {
        int hd = qHead.Length;
        for (int j = 0; j < kvLen; j++)
            scores[j] = VectorMath.Dot(qHead, keys.Slice(j * kvStride + kvOffset, hd)) * scale;
        Softmax.Apply(scores[..kvLen]);
        dstHead.Clear();
        for (int j = 0; j < kvLen; j++)
            VectorMath.MultiplyAdd(values.Slice(j * kvStride + kvOffset, hd), scores[j], dstHead);
    }

    /// <summary>
    /// One work item: query tokens [t0, t1) × the <c>group</c> query heads of KV head <c>g</c>, over the cache in chunks
    /// of <see cref="KeyChunk"/> positions with an online softmax (running max m, running sum l, output o rescaled by
    /// e^(m_old − m_new) per chunk). With an F16 cache each chunk of K and V rows is widened to f32 once for all
    /// the item's queries, and the queries are rounded to f16 first (as llama.cpp converts q to the cache type).
    /// Scores are s_j = (q·k_j)·scale in f32; probabilities, their sum and the weighted values in f32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Item(Job job, int g, int t0, int t1, float* scratch)
    {
        int hd = job.HeadDim, heads = job.Heads, group = heads / job.KvHeads;
        int qDim = heads * hd, start = job.StartPos;
        int nq = (t1 - t0) * group;
        // Per-thread scratch: qf [nq, hd], o [nq, hd], m [nq], l [nq], kf [KeyChunk, hd], vf [KeyChunk, hd],
        // s [KeyChunk] (the scalar path's scores), p [nq, KeyChunk] (the tiled paths' scores, then probabilities).
        float* qf = scratch, o = qf + QueryTile * group * hd, m = o + QueryTile * group * hd, l = m + QueryTile * group;
        float* kf = l + QueryTile * group, vf = kf + KeyChunk * hd, sc = vf + KeyChunk * hd, pr = sc + KeyChunk;
        bool f16 = job.Cache!.RoundsQueryToHalf;
        for (int t = t0; t < t1; t++)
        {
            for (int j = 0; j < group; j++)
            {
                int iq = (t - t0) * group + j;
                float* src = job.Q + (long)t * qDim + (g * group + j) * hd;
                for (int i = 0; i < hd; i++)
                    qf[iq * hd + i] = f16 ? (float)(Half)src[i] : src[i];
                m[iq] = float.NegativeInfinity;
                l[iq] = 0f;
                new Span<float>(o + iq * hd, hd).Clear();
            }
        }

        var path = job.Path;
        int end = start + t1;   // positions the last token sees
        for (int p0 = 0; p0 < end; p0 += KeyChunk)
        {
            int p1 = Math.Min(end, p0 + KeyChunk);
            job.Cache.LoadChunk(g, p0, p1, kf, vf, out float* kc, out float* vc);
            if (path != TilePath.Scalar)
            {
                TileChunk(path, qf, nq, group, hd, kc, vc, p0, p1, start + t0, job.Scale, m, l, o, pr);
                continue;
            }
            for (int t = t0; t < t1; t++)
            {
                int n = Math.Min(p1, start + t + 1) - p0;   // causal: token t sees positions ≤ start + t
                if (n <= 0)
                    continue;
                for (int j = 0; j < group; j++)
                {
                    int iq = (t - t0) * group + j;
                    OnlineChunk(new ReadOnlySpan<float>(qf + iq * hd, hd), kc, vc, n, job.Scale,
                        ref m[iq], ref l[iq], new Span<float>(o + iq * hd, hd), new Span<float>(sc, n));
                }
            }
        }

        for (int t = t0; t < t1; t++)
        {
            for (int j = 0; j < group; j++)
            {
                int iq = (t - t0) * group + j;
                float inv = 1f / l[iq];
                float* d = job.Dst + (long)t * qDim + (g * group + j) * hd;
                for (int i = 0; i < hd; i++)
                    d[i] = o[iq * hd + i] * inv;
            }
        }
    }

    /// <summary>
    /// One chunk of cache rows for all nq queries of an item, as two small matrix products instead of nq·n dots and
    /// axpys: P = (Q·Kᵀ)·scale [nq, n], the online-softmax update of each query's row of P, then O += P·V. Query iq
    /// belongs to token firstPos + iq / group (an absolute position) and sees cache rows ≤ that position.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileChunk(TilePath path, float* q, int nq, int group, int hd, float* k, float* v, int p0, int p1,
        int firstPos, float scale, float* m, float* l, float* o, float* p)
    {
        int n = p1 - p0;
        if (path == TilePath.Vector256)
            Scores<Float256, Vector256<float>>(q, nq, hd, k, n, scale, p);
        else
            Scores<Float128, Vector128<float>>(q, nq, hd, k, n, scale, p);
        for (int iq = 0; iq < nq; iq++)
        {
            float* row = p + iq * KeyChunk;
            int seen = Math.Min(p1, firstPos + iq / group + 1) - p0;   // causal: positions ≤ the query's own
            if (seen <= 0)
            {
                new Span<float>(row, n).Clear();   // a query before this chunk: it adds nothing and keeps m, l, o
                continue;
            }
            float max = float.NegativeInfinity;
            for (int j = 0; j < seen; j++)
                max = MathF.Max(max, row[j]);
            float mNew = MathF.Max(m[iq], max);
            float corr = MathF.Exp(m[iq] - mNew);   // 0 on the first chunk (m = −∞)
            float sum = ExpShifted(new Span<float>(row, seen), mNew);
            if (seen < n)
                new Span<float>(row + seen, n - seen).Clear();
            l[iq] = l[iq] * corr + sum;
            if (corr != 1f)
            {
                float* oq = o + iq * hd;
                for (int i = 0; i < hd; i++)
                    oq[i] *= corr;
            }
            m[iq] = mNew;
        }
        if (path == TilePath.Vector256)
            Values<Float256, Vector256<float>>(p, nq, n, v, hd, o);
        else
            Values<Float128, Vector128<float>>(p, nq, n, v, hd, o);
    }

    /// <summary>
    /// p[iq, j] = (q_iq · k_j)·scale for nq queries [nq, hd] and n keys [n, hd]: two queries × four keys per
    /// pass over the head dimension (each loaded key vector serves both queries), the four sums per query folded with
    /// horizontal adds. One body for every width <typeparamref name="W"/> (hd a multiple of its lanes).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores<W, TVec>(float* q, int nq, int hd, float* k, int n, float scale, float* p)
        where W : struct, IFloatVector<TVec> where TVec : struct
    {
        var vscale = Vector128.Create(scale);
        int iq = 0, lanes = W.Lanes;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* qa = q + iq * hd, qb = qa + hd, pa = p + iq * KeyChunk, pb = pa + KeyChunk;
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* k0 = k + (long)j * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd;
                TVec a0 = default, a1 = default, a2 = default, a3 = default;
                TVec b0 = default, b1 = default, b2 = default, b3 = default;
                for (int i = 0; i < hd; i += lanes)
                {
                    var x = W.Load(qa + i);
                    var y = W.Load(qb + i);
                    Fma2<W, TVec>(x, y, W.Load(k0 + i), ref a0, ref b0);
                    Fma2<W, TVec>(x, y, W.Load(k1 + i), ref a1, ref b1);
                    Fma2<W, TVec>(x, y, W.Load(k2 + i), ref a2, ref b2);
                    Fma2<W, TVec>(x, y, W.Load(k3 + i), ref a3, ref b3);
                }
                (W.Sum4(a0, a1, a2, a3) * vscale).Store(pa + j);
                (W.Sum4(b0, b1, b2, b3) * vscale).Store(pb + j);
            }
            for (; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                TVec a = default, b = default;
                for (int i = 0; i < hd; i += lanes)
                {
                    var w = W.Load(kj + i);
                    a = W.MultiplyAdd(W.Load(qa + i), w, a);
                    b = W.MultiplyAdd(W.Load(qb + i), w, b);
                }
                pa[j] = W.Sum(a) * scale;
                pb[j] = W.Sum(b) * scale;
            }
        }
        for (; iq < nq; iq++)
        {
            float* qa = q + iq * hd, pa = p + iq * KeyChunk;
            for (int j = 0; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                TVec a = default;
                for (int i = 0; i < hd; i += lanes)
                    a = W.MultiplyAdd(W.Load(qa + i), W.Load(kj + i), a);
                pa[j] = W.Sum(a) * scale;
            }
        }
    }

    /// <summary>
    /// o[iq] += Σ_j p[iq, j]·v_j for nq queries and n value rows [n, hd]: two queries × four vectors of dimensions
    /// per pass over the rows (each loaded value vector serves both queries; the eight sums stay in registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Values<W, TVec>(float* p, int nq, int n, float* v, int hd, float* o)
        where W : struct, IFloatVector<TVec> where TVec : struct
    {
        int iq = 0, l1 = W.Lanes, l2 = 2 * l1, l3 = 3 * l1, l4 = 4 * l1;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* pa = p + iq * KeyChunk, pb = pa + KeyChunk, oa = o + iq * hd, ob = oa + hd;
            int d = 0;
            for (; d + l4 <= hd; d += l4)
            {
                var a0 = W.Load(oa + d); var a1 = W.Load(oa + d + l1);
                var a2 = W.Load(oa + d + l2); var a3 = W.Load(oa + d + l3);
                var b0 = W.Load(ob + d); var b1 = W.Load(ob + d + l1);
                var b2 = W.Load(ob + d + l2); var b3 = W.Load(ob + d + l3);
                for (int j = 0; j < n; j++)
                {
                    float* vr = v + (long)j * hd + d;
                    var x = W.Broadcast(pa[j]);
                    var y = W.Broadcast(pb[j]);
                    Fma2<W, TVec>(x, y, W.Load(vr), ref a0, ref b0);
                    Fma2<W, TVec>(x, y, W.Load(vr + l1), ref a1, ref b1);
                    Fma2<W, TVec>(x, y, W.Load(vr + l2), ref a2, ref b2);
                    Fma2<W, TVec>(x, y, W.Load(vr + l3), ref a3, ref b3);
                }
                W.Store(a0, oa + d); W.Store(a1, oa + d + l1); W.Store(a2, oa + d + l2); W.Store(a3, oa + d + l3);
                W.Store(b0, ob + d); W.Store(b1, ob + d + l1); W.Store(b2, ob + d + l2); W.Store(b3, ob + d + l3);
            }
            for (; d < hd; d += l1)
            {
                var a = W.Load(oa + d);
                var b = W.Load(ob + d);
                for (int j = 0; j < n; j++)
                {
                    var w = W.Load(v + (long)j * hd + d);
                    a = W.MultiplyAdd(W.Broadcast(pa[j]), w, a);
                    b = W.MultiplyAdd(W.Broadcast(pb[j]), w, b);
                }
                W.Store(a, oa + d);
                W.Store(b, ob + d);
            }
        }
        for (; iq < nq; iq++)
        {
            float* pa = p + iq * KeyChunk, oa = o + iq * hd;
            for (int d = 0; d < hd; d += l1)
            {
                var a = W.Load(oa + d);
                for (int j = 0; j < n; j++)
                    a = W.MultiplyAdd(W.Broadcast(pa[j]), W.Load(v + (long)j * hd + d), a);
                W.Store(a, oa + d);
            }
        }
    }

    /// <summary>
    /// a += x·w and b += y·w: one loaded vector serving two queries, the step both tiled products repeat four times per
    /// pass (inlined; the accumulators stay in registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma2<W, TVec>(TVec x, TVec y, TVec w, ref TVec a, ref TVec b) where W : struct, IFloatVector<TVec> where TVec : struct
    {
        a = W.MultiplyAdd(x, w, a);
        b = W.MultiplyAdd(y, w, b);
    }

    /// <summary>Folds n cache rows (keys/values [n, hd]) into one query's running softmax state.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OnlineChunk(ReadOnlySpan<float> q, float* keys, float* values, int n, float scale,
        ref float m, ref float l, Span<float> o, Span<float> s)
    {
        int hd = q.Length;
        float max = float.NegativeInfinity;
        for (int j = 0; j < n; j++)
        {
            s[j] = VectorMath.Dot(q, new ReadOnlySpan<float>(keys + (long)j * hd, hd)) * scale;
            max = MathF.Max(max, s[j]);
        }
        float mNew = MathF.Max(m, max);
        float corr = MathF.Exp(m - mNew);   // 0 on the first chunk (m = −∞)
        float sum = ExpShifted(s, mNew);
        l = l * corr + sum;
        if (corr != 1f)
        {
            for (int i = 0; i < hd; i++)
                o[i] *= corr;
        }
        for (int j = 0; j < n; j++)
            VectorMath.MultiplyAdd(new ReadOnlySpan<float>(values + (long)j * hd, hd), s[j], o);
        m = mNew;
    }

    /// <summary>s[j] = e^(s[j] − shift) in place; returns Σ s[j] (f32).</summary>
    internal static float ExpShifted(Span<float> s, float shift)
    {
        int j = 0;
        float sum = 0f;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float ps = ref MemoryMarshal.GetReference(s);
            var vshift = Vector256.Create(shift);
            var acc = Vector256<float>.Zero;
            for (; j + 8 <= s.Length; j += 8)
            {
                var e = Vector256.Exp(Vector256.LoadUnsafe(ref ps, (nuint)j) - vshift);
                e.StoreUnsafe(ref ps, (nuint)j);
                acc += e;
            }
            sum = Vector256.Sum(acc);
        }
        for (; j < s.Length; j++)
        {
            s[j] = MathF.Exp(s[j] - shift);
            sum += s[j];
        }
        return sum;
    }

    private sealed class Job : IParallelWork
    {
        public float* Q, Dst;
        public KvCache? Cache;
        public int Tokens, StartPos, Heads, KvHeads, HeadDim;
        public float Scale;
        public TilePath Path;
        private float[][] _scratch = [];
        private float*[] _scratchPtr = [];

        /// <summary>Per-thread scratch (pinned, grown only when a larger shape or pool shows up, so steady decoding allocates nothing).</summary>
        public void EnsureScratch(int threads, int hd, int group)
        {
            int need = 2 * QueryTile * group * hd + 2 * QueryTile * group + 2 * KeyChunk * hd + KeyChunk + QueryTile * group * KeyChunk;
            if (_scratch.Length >= threads && _scratch[0].Length >= need)
                return;
            _scratch = new float[threads][];
            _scratchPtr = new float*[threads];
            for (int i = 0; i < threads; i++)
            {
                _scratch[i] = GC.AllocateArray<float>(need, pinned: true);
                _scratchPtr[i] = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_scratch[i]));
            }
        }

        public void Execute(int start, int end, int thread)
        {
            int tiles = (Tokens + QueryTile - 1) / QueryTile;
            for (int item = start; item < end; item++)
            {
                int g = item / tiles, tile = item % tiles;
                int t0 = tile * QueryTile, t1 = Math.Min(Tokens, t0 + QueryTile);
                Item(this, g, t0, t1, _scratchPtr[thread]);
            }
        }
    }
}
