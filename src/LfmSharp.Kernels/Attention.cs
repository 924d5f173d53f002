namespace LfmSharp.Kernels;

/// <summary>
/// Causal grouped-query attention of a batch of query tokens over a KV cache.
/// </summary>
/// <remarks>
/// Shapes: <c>q</c> [tokens, heads·headDim]; <c>keys</c>, <c>values</c> [≥ startPos + tokens, kvHeads·headDim]
/// (row p = position p, already written for the new tokens); <c>dst</c> [tokens, heads·headDim];
/// <c>scores</c> scratch [pool.ThreadCount, ≥ startPos + tokens]. Query token t sits at position startPos + t and
/// sees positions 0..startPos + t. Query head h reads KV head h / (heads / kvHeads).
/// Per (token, head), as llama.cpp without flash attention: s_j = (q·k_j)·scale in f32, softmax with an f32
/// max and a double sum, then dst = Σ_j p_j · v_j accumulated in f32.
/// With an F16 cache the query is rounded to F16 before the q·k dot (llama.cpp converts q to the cache's
/// vec-dot type); probabilities and the value sum stay f32.
/// </remarks>
public static unsafe class Attention
{
    public static void Causal(KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<float> keys, ReadOnlySpan<float> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        int kvRows = Validate(pool, q.Length, keys.Length, values.Length, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, pk = keys, pv = values, ps = scores, pd = dst)
        {
            _ = kvRows;
            Run(pool, pq, pk, null, pv, null, tokens, startPos, heads, kvHeads, headDim, scale, ps, scores.Length / pool.ThreadCount, pd);
        }
    }

    public static void Causal(KernelThreadPool pool, ReadOnlySpan<float> q, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values,
        int tokens, int startPos, int heads, int kvHeads, int headDim, float scale, Span<float> scores, Span<float> dst)
    {
        Validate(pool, q.Length, keys.Length, values.Length, tokens, startPos, heads, kvHeads, headDim, scores.Length, dst.Length);
        fixed (float* pq = q, ps = scores, pd = dst)
        fixed (Half* pk = keys, pv = values)
        {
            Run(pool, pq, null, pk, null, pv, tokens, startPos, heads, kvHeads, headDim, scale, ps, scores.Length / pool.ThreadCount, pd);
        }
    }

    // One job object per calling thread, reused: a forward pass must not allocate per token.
    [ThreadStatic] private static Job? t_job;

    private static void Run(KernelThreadPool pool, float* q, float* k32, Half* k16, float* v32, Half* v16, int tokens, int startPos, int heads, int kvHeads,
        int headDim, float scale, float* scores, int scoresStride, float* dst)
    {
        var job = t_job ??= new Job();
        job.Q = q;
        job.K32 = k32;
        job.K16 = k16;
        job.V32 = v32;
        job.V16 = v16;
        job.Scores = scores;
        job.Dst = dst;
        (job.Tokens, job.StartPos, job.Heads, job.KvHeads, job.HeadDim, job.Scale, job.ScoresStride) = (tokens, startPos, heads, kvHeads, headDim, scale, scoresStride);
        try
        {
            pool.For(tokens * heads, 1, job);
        }
        finally
        {
            job.Q = job.Dst = job.Scores = job.K32 = job.V32 = null;
            job.K16 = job.V16 = null;
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
            throw new ArgumentException($"Attention: keys/values ({kLen}/{vLen} values) must hold ≥ {needRows} rows of {kvDim}.");
        if (scoresLen < pool.ThreadCount * needRows)
            throw new ArgumentException($"Attention: scores scratch {scoresLen} < threads·positions = {pool.ThreadCount * needRows}.");
        return needRows;
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

    private static void HeadF16(ReadOnlySpan<float> qHead, ReadOnlySpan<Half> keys, ReadOnlySpan<Half> values, int kvLen, int kvStride, int kvOffset,
        float scale, Span<float> scores, Span<float> dstHead)
    {
        int hd = qHead.Length;
        Span<float> q16 = stackalloc float[hd];
        Span<float> row = stackalloc float[hd];
        for (int i = 0; i < hd; i++)
            q16[i] = (float)(Half)qHead[i];
        for (int j = 0; j < kvLen; j++)
        {
            HalfConversion.ToSingle(keys.Slice(j * kvStride + kvOffset, hd), row);
            scores[j] = VectorMath.Dot(q16, row) * scale;
        }
        Softmax.Apply(scores[..kvLen]);
        dstHead.Clear();
        for (int j = 0; j < kvLen; j++)
        {
            HalfConversion.ToSingle(values.Slice(j * kvStride + kvOffset, hd), row);
            VectorMath.MultiplyAdd(row, scores[j], dstHead);
        }
    }

    private sealed class Job : IParallelWork
    {
        public float* Q, K32, V32, Scores, Dst;
        public Half* K16, V16;
        public int Tokens, StartPos, Heads, KvHeads, HeadDim, ScoresStride;
        public float Scale;

        public void Execute(int start, int end, int thread)
        {
            int headDim = HeadDim, heads = Heads;
            int qDim = heads * headDim, kvDim = KvHeads * headDim, group = heads / KvHeads;
            int rows = StartPos + Tokens;
            var s = new Span<float>(Scores + (long)thread * ScoresStride, ScoresStride);
            for (int item = start; item < end; item++)
            {
                int t = item / heads, h = item % heads;
                int kvLen = StartPos + t + 1;
                var qHead = new ReadOnlySpan<float>(Q + (long)t * qDim + h * headDim, headDim);
                var dHead = new Span<float>(Dst + (long)t * qDim + h * headDim, headDim);
                int offset = h / group * headDim;
                if (K32 != null)
                    HeadScalar(qHead, new ReadOnlySpan<float>(K32, rows * kvDim), new ReadOnlySpan<float>(V32, rows * kvDim), kvLen, kvDim, offset, Scale, s, dHead);
                else
                    HeadF16(qHead, new ReadOnlySpan<Half>(K16, rows * kvDim), new ReadOnlySpan<Half>(V16, rows * kvDim), kvLen, kvDim, offset, Scale, s, dHead);
            }
        }
    }
}
