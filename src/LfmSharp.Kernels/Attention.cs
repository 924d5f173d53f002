using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels;

/// <summary>
/// Causal grouped-query attention of a batch of query tokens over a KV cache.
/// </summary>
/// <remarks>
/// Shapes: <c>q</c> [tokens, heads·headDim]; <c>keys</c>, <c>values</c> [kvHeads, capacity, headDim], head-major
/// (capacity = length / (kvHeads·headDim) ≥ startPos + tokens; row p of head g = position p, already written for the
/// new tokens): each work item then streams its head's rows from one contiguous run, which the hardware prefetcher
/// follows — rows of all heads interleaved put a head's rows a whole cache row apart and made long-context decode
/// wait on memory; <c>dst</c> [tokens, heads·headDim];
/// <c>scores</c> scratch [pool.ThreadCount, ≥ startPos + tokens] (validated for callers' sake; the kernel keeps its
/// own per-thread scratch). Query token t sits at position startPos + t and sees positions 0..startPos + t. Query
/// head h reads KV head h / (heads / kvHeads).
/// Per (token, head): s_j = (q·k_j)·scale in f32, a softmax computed online over chunks of
/// <see cref="KeyChunk"/> positions (as flash attention does; equal to the two-pass softmax up to f32 rounding),
/// dst = Σ_j p_j · v_j accumulated in f32. Work items are (KV head, tile of <see cref="QueryTile"/> tokens), so
/// every K/V row is read (and, from an F16 cache, widened) once per item for all its query heads and tokens.
/// With an F16 cache the query is rounded to F16 before the q·k dot (llama.cpp converts q to the cache's
/// vec-dot type); probabilities and the value sum stay f32. <see cref="HeadScalar"/> is the two-pass reference.
/// </remarks>
internal static unsafe class Attention
{
    public static void Causal(KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        int capacity = Validate(pool, q.Length, keys.Length, values.Length, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, pk = keys, pv = values, pd = dst)
        {
            Run(pool, pq, pk, null, null, pv, null, null, capacity, tokens, startPos, heads, kvHeads, headDim, scale, pd);
        }
    }

    public static void Causal(KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        int capacity = Validate(pool, q.Length, keys.Length, values.Length, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, pd = dst)
        fixed (Half* pk = keys, pv = values)
        {
            Run(pool, pq, null, pk, null, null, pv, null, capacity, tokens, startPos, heads, kvHeads, headDim, scale, pd);
        }
    }

    /// <summary>
    /// The same over a Q8_0 cache: <paramref name="keys"/> and <paramref name="values"/> hold [kvHeads, capacity] rows
    /// of headDim elements as ggml Q8_0 blocks (34 bytes per 32 elements), so headDim must be a multiple of 32. Each chunk of
    /// K/V rows is dequantized to f32 once per work item; the query stays f32 (close to, not bit-identical with,
    /// llama.cpp, which quantizes q to Q8_0 for the dot).
    /// </summary>
    public static void CausalQ8_0(KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        if (headDim % 32 != 0)
            throw new ArgumentException($"Attention: a Q8_0 cache needs a head size that is a multiple of 32 (got {headDim}).", nameof(headDim));
        if (keys.Length % 34 != 0 || values.Length % 34 != 0)
            throw new ArgumentException($"Attention: Q8_0 keys/values ({keys.Length}/{values.Length} bytes) are not whole 34-byte blocks.");
        int capacity = Validate(pool, q.Length, keys.Length / 34 * 32, values.Length / 34 * 32, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, pd = dst)
        fixed (byte* pk = keys, pv = values)
        {
            Run(pool, pq, null, null, pk, null, null, pv, capacity, tokens, startPos, heads, kvHeads, headDim, scale, pd);
        }
    }

    /// <summary>How a work item folds a chunk of cache rows into its queries (the scalar path is the reference).</summary>
    internal enum TilePath { Scalar, Vector128, Vector256 }

    /// <summary>The widest tiled path this machine runs for a head size (its vectors must tile the head exactly).</summary>
    internal static TilePath BestPath(int headDim) =>
        Vector256.IsHardwareAccelerated && headDim % 8 == 0 ? TilePath.Vector256
        : Vector128.IsHardwareAccelerated && headDim % 4 == 0 ? TilePath.Vector128
        : TilePath.Scalar;

    /// <summary>Test hook: the f32-cache entry on a chosen path (falls back to a narrower one the machine lacks).</summary>
    internal static void Causal(TilePath path, KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        int capacity = Validate(pool, q.Length, keys.Length, values.Length, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, pk = keys, pv = values, pd = dst)
        {
            Run(pool, pq, pk, null, null, pv, null, null, capacity, tokens, startPos, heads, kvHeads, headDim, scale, pd,
                (TilePath)Math.Min((int)path, (int)BestPath(headDim)));
        }
    }

    // One job object per calling thread, reused: a forward pass must not allocate per token.
    [ThreadStatic] private static Job? t_job;

    /// <summary>Query tokens per work item: each K/V chunk converted to f32 serves this many tokens × the GQA group.</summary>
    internal const int QueryTile = 16;

    /// <summary>Cache positions converted and scored at a time (the online softmax rescales once per chunk).</summary>
    internal const int KeyChunk = 64;

    /// <summary>Runs the work items over whichever cache is given (exactly one of the f32 / f16 / Q8_0 pointer pairs).</summary>
    private static void Run(KernelThreadPool pool, float* q, float* k32, Half* k16, byte* k8, float* v32, Half* v16, byte* v8, int capacity, int tokens, int startPos,
        int heads, int kvHeads, int headDim, float scale, float* dst, TilePath? path = null)
    {
        var job = t_job ??= new Job();
        job.Path = path ?? BestPath(headDim);
        int group = heads / kvHeads;
        job.EnsureScratch(pool.ThreadCount, headDim, group);
        job.Q = q;
        job.K32 = k32;
        job.K16 = k16;
        job.K8 = k8;
        job.V32 = v32;
        job.V16 = v16;
        job.V8 = v8;
        job.Dst = dst;
        (job.Capacity, job.Tokens, job.StartPos, job.Heads, job.KvHeads, job.HeadDim, job.Scale) = (capacity, tokens, startPos, heads, kvHeads, headDim, scale);
        try
        {
            int tiles = (tokens + QueryTile - 1) / QueryTile;
            pool.For(kvHeads * tiles, 1, job);
        }
        finally
        {
            job.Q = job.Dst = job.K32 = job.V32 = null;
            job.K16 = job.V16 = null;
            job.K8 = job.V8 = null;
        }
    }

    private static int Validate(KernelThreadPool pool, int qLen, int kLen, int vLen, int tokens, int startPos, int heads, int kvHeads, int headDim, int scoresLen, int dstLen)
    {
        ArgumentNullException.ThrowIfNull(pool);
        if (tokens < 0 || startPos < 0 || heads <= 0 || kvHeads <= 0 || headDim is <= 0 or > 1024 || heads % kvHeads != 0)
            throw new ArgumentException($"Attention: bad shape (tokens {tokens}, start {startPos}, heads {heads}, kv heads {kvHeads}, head size {headDim}).");
        int kvDim = kvHeads * headDim;
        int needRows = startPos + tokens;
        if (qLen != tokens * heads * headDim || dstLen != qLen)
            throw new ArgumentException($"Attention: q/dst length {qLen}/{dstLen} != tokens·heads·headDim = {tokens * heads * headDim}.");
        if (kLen % kvDim != 0 || vLen != kLen || kLen / kvDim < needRows)
            throw new ArgumentException($"Attention: keys/values ({kLen}/{vLen} values) must hold [kvHeads {kvHeads}, ≥ {needRows} positions, head size {headDim}].");
        if (scoresLen < pool.ThreadCount * needRows)
            throw new ArgumentException($"Attention: scores scratch {scoresLen} < threads·positions = {pool.ThreadCount * needRows}.");
        return kLen / kvDim;
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
        bool f16 = job.K16 != null;
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
            LoadChunk(job, g, p0, p1, kf, vf, out float* kc, out float* vc);
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
    /// Cache rows [p0, p1) of KV head g as f32: straight from an f32 cache, else widened or dequantized into kf / vf
    /// [KeyChunk, hd]. The head's rows are consecutive (head-major cache), so the result is [n, hd] either way.
    /// </summary>
    private static void LoadChunk(Job job, int g, int p0, int p1, float* kf, float* vf, out float* k, out float* v)
    {
        int hd = job.HeadDim, n = p1 - p0;
        long row0 = (long)g * job.Capacity + p0;   // the chunk's first row in [kvHeads, capacity] order
        if (job.K8 != null)
        {
            int rowBytes = hd / 32 * 34;
            // The chunk is one contiguous run of n·hd/32 blocks.
            Quant.Q8_0.DequantizeRow(new ReadOnlySpan<byte>(job.K8 + row0 * rowBytes, n * rowBytes), new Span<float>(kf, n * hd));
            Quant.Q8_0.DequantizeRow(new ReadOnlySpan<byte>(job.V8 + row0 * rowBytes, n * rowBytes), new Span<float>(vf, n * hd));
        }
        else if (job.K16 != null)
        {
            // The chunk is one contiguous run of n·hd values.
            HalfConversion.ToSingle(new ReadOnlySpan<Half>(job.K16 + row0 * hd, n * hd), new Span<float>(kf, n * hd));
            HalfConversion.ToSingle(new ReadOnlySpan<Half>(job.V16 + row0 * hd, n * hd), new Span<float>(vf, n * hd));
        }
        else
        {
            k = job.K32 + row0 * hd;
            v = job.V32 + row0 * hd;
            return;
        }
        k = kf;
        v = vf;
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
            ScoresV256(q, nq, hd, k, n, scale, p);
        else
            ScoresV128(q, nq, hd, k, n, scale, p);
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
            ValuesV256(p, nq, n, v, hd, o);
        else
            ValuesV128(p, nq, n, v, hd, o);
    }

    /// <summary>
    /// p[iq, j] = (q_iq · k_j)·scale for nq queries [nq, hd] and n keys [n, hd]: two queries × four keys per
    /// pass over the head dimension (each loaded key vector serves both queries), the four sums per query folded with
    /// horizontal adds.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresV256(float* q, int nq, int hd, float* k, int n, float scale, float* p)
    {
        var vscale = Vector128.Create(scale);
        int iq = 0;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* qa = q + iq * hd, qb = qa + hd, pa = p + iq * KeyChunk, pb = pa + KeyChunk;
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* k0 = k + (long)j * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd;
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
                for (int i = 0; i < hd; i += 8)
                {
                    var x = Vector256.Load(qa + i);
                    var y = Vector256.Load(qb + i);
                    var w = Vector256.Load(k0 + i);
                    a0 = Vector256.MultiplyAddEstimate(x, w, a0);
                    b0 = Vector256.MultiplyAddEstimate(y, w, b0);
                    w = Vector256.Load(k1 + i);
                    a1 = Vector256.MultiplyAddEstimate(x, w, a1);
                    b1 = Vector256.MultiplyAddEstimate(y, w, b1);
                    w = Vector256.Load(k2 + i);
                    a2 = Vector256.MultiplyAddEstimate(x, w, a2);
                    b2 = Vector256.MultiplyAddEstimate(y, w, b2);
                    w = Vector256.Load(k3 + i);
                    a3 = Vector256.MultiplyAddEstimate(x, w, a3);
                    b3 = Vector256.MultiplyAddEstimate(y, w, b3);
                }
                (Sum4(a0, a1, a2, a3) * vscale).Store(pa + j);
                (Sum4(b0, b1, b2, b3) * vscale).Store(pb + j);
            }
            for (; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                Vector256<float> a = default, b = default;
                for (int i = 0; i < hd; i += 8)
                {
                    var w = Vector256.Load(kj + i);
                    a = Vector256.MultiplyAddEstimate(Vector256.Load(qa + i), w, a);
                    b = Vector256.MultiplyAddEstimate(Vector256.Load(qb + i), w, b);
                }
                pa[j] = Vector256.Sum(a) * scale;
                pb[j] = Vector256.Sum(b) * scale;
            }
        }
        for (; iq < nq; iq++)
        {
            float* qa = q + iq * hd, pa = p + iq * KeyChunk;
            for (int j = 0; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                Vector256<float> a = default;
                for (int i = 0; i < hd; i += 8)
                    a = Vector256.MultiplyAddEstimate(Vector256.Load(qa + i), Vector256.Load(kj + i), a);
                pa[j] = Vector256.Sum(a) * scale;
            }
        }
    }

    /// <summary>[Σa0, Σa1, Σa2, Σa3]: three horizontal adds and one add where AVX has them.</summary>
    private static Vector128<float> Sum4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        if (Avx.IsSupported)
        {
            // Per 128-bit lane hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3]: twice gives each vector's lane sum, in order.
            var h = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
            return h.GetLower() + h.GetUpper();
        }
        return Vector128.Create(Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3));
    }

    /// <summary>The same with 4-wide vectors (ARM64 AdvSimd, SSE): hd a multiple of 4.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresV128(float* q, int nq, int hd, float* k, int n, float scale, float* p)
    {
        var vscale = Vector128.Create(scale);
        int iq = 0;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* qa = q + iq * hd, qb = qa + hd, pa = p + iq * KeyChunk, pb = pa + KeyChunk;
            int j = 0;
            for (; j + 4 <= n; j += 4)
            {
                float* k0 = k + (long)j * hd, k1 = k0 + hd, k2 = k1 + hd, k3 = k2 + hd;
                Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector128<float> b0 = default, b1 = default, b2 = default, b3 = default;
                for (int i = 0; i < hd; i += 4)
                {
                    var x = Vector128.Load(qa + i);
                    var y = Vector128.Load(qb + i);
                    var w = Vector128.Load(k0 + i);
                    a0 = Vector128.MultiplyAddEstimate(x, w, a0);
                    b0 = Vector128.MultiplyAddEstimate(y, w, b0);
                    w = Vector128.Load(k1 + i);
                    a1 = Vector128.MultiplyAddEstimate(x, w, a1);
                    b1 = Vector128.MultiplyAddEstimate(y, w, b1);
                    w = Vector128.Load(k2 + i);
                    a2 = Vector128.MultiplyAddEstimate(x, w, a2);
                    b2 = Vector128.MultiplyAddEstimate(y, w, b2);
                    w = Vector128.Load(k3 + i);
                    a3 = Vector128.MultiplyAddEstimate(x, w, a3);
                    b3 = Vector128.MultiplyAddEstimate(y, w, b3);
                }
                (Sum4(a0, a1, a2, a3) * vscale).Store(pa + j);
                (Sum4(b0, b1, b2, b3) * vscale).Store(pb + j);
            }
            for (; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                Vector128<float> a = default, b = default;
                for (int i = 0; i < hd; i += 4)
                {
                    var w = Vector128.Load(kj + i);
                    a = Vector128.MultiplyAddEstimate(Vector128.Load(qa + i), w, a);
                    b = Vector128.MultiplyAddEstimate(Vector128.Load(qb + i), w, b);
                }
                pa[j] = Vector128.Sum(a) * scale;
                pb[j] = Vector128.Sum(b) * scale;
            }
        }
        for (; iq < nq; iq++)
        {
            float* qa = q + iq * hd, pa = p + iq * KeyChunk;
            for (int j = 0; j < n; j++)
            {
                float* kj = k + (long)j * hd;
                Vector128<float> a = default;
                for (int i = 0; i < hd; i += 4)
                    a = Vector128.MultiplyAddEstimate(Vector128.Load(qa + i), Vector128.Load(kj + i), a);
                pa[j] = Vector128.Sum(a) * scale;
            }
        }
    }

    /// <summary>[Σa0, Σa1, Σa2, Σa3] of 4-wide vectors: pairwise adds where the ISA has them.</summary>
    private static Vector128<float> Sum4(Vector128<float> a0, Vector128<float> a1, Vector128<float> a2, Vector128<float> a3)
    {
        if (AdvSimd.Arm64.IsSupported)
            return AdvSimd.Arm64.AddPairwise(AdvSimd.Arm64.AddPairwise(a0, a1), AdvSimd.Arm64.AddPairwise(a2, a3));
        if (Sse3.IsSupported)
            return Sse3.HorizontalAdd(Sse3.HorizontalAdd(a0, a1), Sse3.HorizontalAdd(a2, a3));
        return Vector128.Create(Vector128.Sum(a0), Vector128.Sum(a1), Vector128.Sum(a2), Vector128.Sum(a3));
    }

    /// <summary>
    /// o[iq] += Σ_j p[iq, j]·v_j for nq queries and n value rows [n, hd]: two queries × 32 dimensions per pass
    /// over the rows (each loaded value vector serves both queries; the eight sums stay in registers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ValuesV256(float* p, int nq, int n, float* v, int hd, float* o)
    {
        int iq = 0;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* pa = p + iq * KeyChunk, pb = pa + KeyChunk, oa = o + iq * hd, ob = oa + hd;
            int d = 0;
            for (; d + 32 <= hd; d += 32)
            {
                var a0 = Vector256.Load(oa + d); var a1 = Vector256.Load(oa + d + 8);
                var a2 = Vector256.Load(oa + d + 16); var a3 = Vector256.Load(oa + d + 24);
                var b0 = Vector256.Load(ob + d); var b1 = Vector256.Load(ob + d + 8);
                var b2 = Vector256.Load(ob + d + 16); var b3 = Vector256.Load(ob + d + 24);
                for (int j = 0; j < n; j++)
                {
                    float* vr = v + (long)j * hd + d;
                    var x = Vector256.Create(pa[j]);
                    var y = Vector256.Create(pb[j]);
                    var w = Vector256.Load(vr);
                    a0 = Vector256.MultiplyAddEstimate(x, w, a0);
                    b0 = Vector256.MultiplyAddEstimate(y, w, b0);
                    w = Vector256.Load(vr + 8);
                    a1 = Vector256.MultiplyAddEstimate(x, w, a1);
                    b1 = Vector256.MultiplyAddEstimate(y, w, b1);
                    w = Vector256.Load(vr + 16);
                    a2 = Vector256.MultiplyAddEstimate(x, w, a2);
                    b2 = Vector256.MultiplyAddEstimate(y, w, b2);
                    w = Vector256.Load(vr + 24);
                    a3 = Vector256.MultiplyAddEstimate(x, w, a3);
                    b3 = Vector256.MultiplyAddEstimate(y, w, b3);
                }
                a0.Store(oa + d); a1.Store(oa + d + 8); a2.Store(oa + d + 16); a3.Store(oa + d + 24);
                b0.Store(ob + d); b1.Store(ob + d + 8); b2.Store(ob + d + 16); b3.Store(ob + d + 24);
            }
            for (; d < hd; d += 8)
            {
                var a = Vector256.Load(oa + d);
                var b = Vector256.Load(ob + d);
                for (int j = 0; j < n; j++)
                {
                    var w = Vector256.Load(v + (long)j * hd + d);
                    a = Vector256.MultiplyAddEstimate(Vector256.Create(pa[j]), w, a);
                    b = Vector256.MultiplyAddEstimate(Vector256.Create(pb[j]), w, b);
                }
                a.Store(oa + d);
                b.Store(ob + d);
            }
        }
        for (; iq < nq; iq++)
        {
            float* pa = p + iq * KeyChunk, oa = o + iq * hd;
            for (int d = 0; d < hd; d += 8)
            {
                var a = Vector256.Load(oa + d);
                for (int j = 0; j < n; j++)
                    a = Vector256.MultiplyAddEstimate(Vector256.Create(pa[j]), Vector256.Load(v + (long)j * hd + d), a);
                a.Store(oa + d);
            }
        }
    }

    /// <summary>The same with 4-wide vectors: two queries × 16 dimensions per pass.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ValuesV128(float* p, int nq, int n, float* v, int hd, float* o)
    {
        int iq = 0;
        for (; iq + 2 <= nq; iq += 2)
        {
            float* pa = p + iq * KeyChunk, pb = pa + KeyChunk, oa = o + iq * hd, ob = oa + hd;
            int d = 0;
            for (; d + 16 <= hd; d += 16)
            {
                var a0 = Vector128.Load(oa + d); var a1 = Vector128.Load(oa + d + 4);
                var a2 = Vector128.Load(oa + d + 8); var a3 = Vector128.Load(oa + d + 12);
                var b0 = Vector128.Load(ob + d); var b1 = Vector128.Load(ob + d + 4);
                var b2 = Vector128.Load(ob + d + 8); var b3 = Vector128.Load(ob + d + 12);
                for (int j = 0; j < n; j++)
                {
                    float* vr = v + (long)j * hd + d;
                    var x = Vector128.Create(pa[j]);
                    var y = Vector128.Create(pb[j]);
                    var w = Vector128.Load(vr);
                    a0 = Vector128.MultiplyAddEstimate(x, w, a0);
                    b0 = Vector128.MultiplyAddEstimate(y, w, b0);
                    w = Vector128.Load(vr + 4);
                    a1 = Vector128.MultiplyAddEstimate(x, w, a1);
                    b1 = Vector128.MultiplyAddEstimate(y, w, b1);
                    w = Vector128.Load(vr + 8);
                    a2 = Vector128.MultiplyAddEstimate(x, w, a2);
                    b2 = Vector128.MultiplyAddEstimate(y, w, b2);
                    w = Vector128.Load(vr + 12);
                    a3 = Vector128.MultiplyAddEstimate(x, w, a3);
                    b3 = Vector128.MultiplyAddEstimate(y, w, b3);
                }
                a0.Store(oa + d); a1.Store(oa + d + 4); a2.Store(oa + d + 8); a3.Store(oa + d + 12);
                b0.Store(ob + d); b1.Store(ob + d + 4); b2.Store(ob + d + 8); b3.Store(ob + d + 12);
            }
            for (; d < hd; d += 4)
            {
                var a = Vector128.Load(oa + d);
                var b = Vector128.Load(ob + d);
                for (int j = 0; j < n; j++)
                {
                    var w = Vector128.Load(v + (long)j * hd + d);
                    a = Vector128.MultiplyAddEstimate(Vector128.Create(pa[j]), w, a);
                    b = Vector128.MultiplyAddEstimate(Vector128.Create(pb[j]), w, b);
                }
                a.Store(oa + d);
                b.Store(ob + d);
            }
        }
        for (; iq < nq; iq++)
        {
            float* pa = p + iq * KeyChunk, oa = o + iq * hd;
            for (int d = 0; d < hd; d += 4)
            {
                var a = Vector128.Load(oa + d);
                for (int j = 0; j < n; j++)
                    a = Vector128.MultiplyAddEstimate(Vector128.Create(pa[j]), Vector128.Load(v + (long)j * hd + d), a);
                a.Store(oa + d);
            }
        }
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
        public float* Q, K32, V32, Dst;
        public Half* K16, V16;
        public byte* K8, V8;            // Q8_0 cache (CausalQ8_0), else null
        public int Capacity, Tokens, StartPos, Heads, KvHeads, HeadDim;   // Capacity: rows per head in the cache
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
