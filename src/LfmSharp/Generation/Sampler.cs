namespace LfmSharp.Generation;

/// <summary>
/// Chooses the next token from a row of logits. The stages, in this order, each a static method with its own test:
/// <list type="number">
/// <item><see cref="ApplyLogitBias"/></item>
/// <item><see cref="ApplyPenalties"/>: repetition (HF/llama.cpp rule), frequency and presence (OpenAI rule) over the window</item>
/// <item>temperature ≤ 0 → <see cref="ArgMax"/> (ties to the lowest id) and stop</item>
/// <item><see cref="TopK"/> → temperature → <see cref="Softmax"/> → <see cref="TopP"/> → <see cref="MinP"/></item>
/// <item>a draw from the renormalized distribution with the seeded <see cref="Rng"/></item>
/// </list>
/// All buffers are allocated once per sampler (vocabulary-sized), so sampling allocates nothing per token.
/// </summary>
internal sealed class Sampler
{
    private readonly int _vocabSize;
    private readonly int[] _ids;       // [vocab] candidate ids
    private readonly float[] _values;  // [vocab] candidate logits, then probabilities
    private readonly float[] _sortKeys; // [vocab] scratch for sorting by descending value
    private readonly float[] _probs;   // [vocab] the probabilities by id, kept while top-p selects destructively
    private readonly int[] _counts;    // [vocab] occurrences of each id inside the penalty window
    private Rng _rng;

    public Sampler(SamplingOptions options, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        options.Validate();
        Options = options;
        _vocabSize = vocabSize;
        _ids = new int[vocabSize];
        _values = new float[vocabSize];
        _sortKeys = new float[vocabSize];
        _probs = new float[vocabSize];
        _counts = new int[vocabSize];
        _rng = new Rng(options.Seed ?? (ulong)Random.Shared.NextInt64());
    }

    public SamplingOptions Options { get; }

    /// <summary>
    /// Picks a token. <paramref name="logits"/> is modified in place (bias and penalties applied);
    /// <paramref name="history"/> is every token so far (prompt and generated), newest last.
    /// </summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history)
    {
        if (logits.Length != _vocabSize)
            throw new ArgumentException($"expected {_vocabSize} logits, got {logits.Length}", nameof(logits));
        var o = Options;
        if (o.LogitBias is { Count: > 0 })
            ApplyLogitBias(logits, o.LogitBias);
        if (o.PenaltyLastN != 0 && (o.RepetitionPenalty != 1f || o.FrequencyPenalty != 0f || o.PresencePenalty != 0f))
        {
            var window = o.PenaltyLastN < 0 || o.PenaltyLastN >= history.Length ? history : history[^o.PenaltyLastN..];
            ApplyPenalties(logits, window, o.RepetitionPenalty, o.FrequencyPenalty, o.PresencePenalty, _counts);
        }
        if (o.Temperature <= 0f)
            return ArgMax(logits);

        int n = _vocabSize;
        for (int i = 0; i < n; i++)
        {
            _ids[i] = i;
            _values[i] = logits[i];
        }
        bool sorted = false;
        if (o.TopK > 0 && o.TopK < n)
        {
            n = TopK(_ids, _values, n, o.TopK, _sortKeys);
            sorted = true;
        }
        float invT = 1f / o.Temperature;
        for (int i = 0; i < n; i++)
            _values[i] *= invT;
        Softmax(_values.AsSpan(0, n));
        if (o.TopP < 1f)
        {
            n = sorted ? TopP(_ids, _values, n, o.TopP, true, _sortKeys) : TopPBySelection(_ids, _values, n, o.TopP, _sortKeys, _probs);
            sorted = true;
        }
        if (o.MinP > 0f)
            n = MinP(_ids, _values, n, o.MinP);
        return Draw(_ids.AsSpan(0, n), _values.AsSpan(0, n), ref _rng);
    }

    /// <summary>logits[id] += bias for every entry (ids outside the vocabulary are ignored).</summary>
    public static void ApplyLogitBias(Span<float> logits, IReadOnlyDictionary<int, float> bias)
    {
        foreach (var (id, b) in bias)
        {
            if ((uint)id < (uint)logits.Length)
                logits[id] += b;
        }
    }

    /// <summary>
    /// For every distinct token in <paramref name="window"/>: repetition penalty (divide a positive logit, multiply a
    /// negative one), then subtract <c>count × frequency + presence</c>. <paramref name="counts"/> is vocabulary-sized
    /// scratch that is all zero on entry and on exit.
    /// </summary>
    public static void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> window, float repetition, float frequency, float presence, int[] counts)
    {
        foreach (int id in window)
        {
            if ((uint)id < (uint)logits.Length)
                counts[id]++;
        }
        foreach (int id in window)
        {
            if ((uint)id >= (uint)logits.Length || counts[id] == 0)
                continue;
            float l = logits[id];
            if (repetition != 1f)
                l = l > 0 ? l / repetition : l * repetition;
            l -= counts[id] * frequency + presence;
            logits[id] = l;
            counts[id] = 0; // also marks the id as done
        }
    }

    /// <summary>Index of the largest value; ties go to the lowest index; NaN never wins.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = -1;
        float bestValue = 0f;
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (!float.IsNaN(v) && (best < 0 || v > bestValue))
            {
                best = i;
                bestValue = v;
            }
        }
        return Math.Max(best, 0);
    }

    /// <summary>Keeps the <paramref name="k"/> largest candidates, sorted by descending value; returns the new count.</summary>
    public static int TopK(int[] ids, float[] values, int n, int k, float[] scratch)
    {
        if (k >= n)
        {
            SortDescending(ids, values, n, scratch);
            return n;
        }
        // Partial selection: find the k-th largest with a bounded min-heap over the first k slots.
        for (int i = k / 2 - 1; i >= 0; i--)
            SiftDown(ids, values, i, k);
        for (int i = k; i < n; i++)
        {
            if (values[i] > values[0] || (values[i] == values[0] && ids[i] < ids[0]))
            {
                ids[0] = ids[i];
                values[0] = values[i];
                SiftDown(ids, values, 0, k);
            }
        }
        SortDescending(ids, values, k, scratch);
        return k;
    }

    /// <summary>In place, numerically stable softmax.</summary>
    public static void Softmax(Span<float> values)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values)
            max = MathF.Max(max, v);
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            float e = float.IsNegativeInfinity(values[i]) ? 0f : MathF.Exp(values[i] - max);
            values[i] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < values.Length; i++)
            values[i] *= inv;
    }

    /// <summary>
    /// Keeps the smallest prefix (by descending probability) whose mass reaches <paramref name="p"/>; at least one.
    /// Unsorted input is first cut to candidates above <c>(1-p)/(n-1)</c> (they cannot all be needed otherwise) and sorted.
    /// </summary>
    public static int TopP(int[] ids, float[] probs, int n, float p, bool sorted, float[] scratch)
    {
        if (!sorted)
        {
            float cutoff = n > 1 ? (1f - p) / (n - 1) : 0f;
            int m = 0;
            for (int i = 0; i < n; i++)
            {
                if (probs[i] >= cutoff)
                {
                    ids[m] = ids[i];
                    probs[m] = probs[i];
                    m++;
                }
            }
            n = m;
            SortDescending(ids, probs, n, scratch);
        }
        double cum = 0;
        for (int i = 0; i < n; i++)
        {
            cum += probs[i];
            if (cum >= p)
                return i + 1;
        }
        return Math.Max(1, n);
    }

    /// <summary>
    /// <see cref="TopP"/> on unsorted candidates whose ids are <c>0..n-1</c> in order, without sorting the vocabulary:
    /// the k most probable are selected (a heap, as <see cref="TopK"/>) for k = 64, 256, … until their mass reaches
    /// <paramref name="p"/>. The top k in (descending value, ascending id) order are exactly the first k of the full
    /// sort, so the kept prefix, its order and hence the draw are identical to <see cref="TopP"/>'s; it only falls back
    /// to that sort when more than a quarter of the survivors of its cutoff would be needed. <paramref name="copy"/> is
    /// vocabulary-sized scratch (the selection overwrites the arrays it works on).
    /// </summary>
    public static int TopPBySelection(int[] ids, float[] probs, int n, float p, float[] scratch, float[] copy)
    {
        // The survivors of TopP's cutoff: the prefix TopP keeps never reaches past them.
        float cutoff = n > 1 ? (1f - p) / (n - 1) : 0f;
        int survivors = 0;
        for (int i = 0; i < n; i++)
        {
            if (probs[i] >= cutoff)
                survivors++;
        }
        Array.Copy(probs, copy, n);
        for (int k = 64; k <= survivors / 4; k *= 4)
        {
            TopK(ids, probs, n, k, scratch);
            double cum = 0;
            for (int i = 0; i < k; i++)
            {
                cum += probs[i];
                if (cum >= p)
                    return i + 1;
            }
            // Not enough mass in the top k: start again from the untouched probabilities with a larger k.
            Array.Copy(copy, probs, n);
            for (int i = 0; i < n; i++)
                ids[i] = i;
        }
        return TopP(ids, probs, n, p, sorted: false, scratch);
    }

    /// <summary>Drops candidates with probability below <paramref name="minP"/> × the largest; keeps order; at least one.</summary>
    public static int MinP(int[] ids, float[] probs, int n, float minP)
    {
        float max = 0f;
        for (int i = 0; i < n; i++)
            max = MathF.Max(max, probs[i]);
        float threshold = minP * max;
        int m = 0;
        for (int i = 0; i < n; i++)
        {
            if (probs[i] >= threshold)
            {
                ids[m] = ids[i];
                probs[m] = probs[i];
                m++;
            }
        }
        return Math.Max(1, m);
    }

    /// <summary>Draws an id with probability proportional to its (unnormalized) weight.</summary>
    public static int Draw(ReadOnlySpan<int> ids, ReadOnlySpan<float> weights, ref Rng rng)
    {
        double total = 0;
        foreach (float w in weights)
            total += w;
        double r = rng.NextDouble() * total;
        double acc = 0;
        for (int i = 0; i < ids.Length; i++)
        {
            acc += weights[i];
            if (r < acc)
                return ids[i];
        }
        return ids[^1];
    }

    private static void SortDescending(int[] ids, float[] values, int n, float[] scratch)
    {
        // Sort by (-value, id) so equal values keep a deterministic, id-ascending order.
        for (int i = 0; i < n; i++)
            scratch[i] = -values[i];
        Array.Sort(scratch, ids, 0, n);
        for (int i = 0; i < n; i++)
            values[i] = -scratch[i];
        int start = 0;
        for (int i = 1; i <= n; i++)
        {
            if (i == n || values[i] != values[start])
            {
                if (i - start > 1)
                    Array.Sort(ids, start, i - start);
                start = i;
            }
        }
    }

    // Min-heap on (value, then larger id counts as smaller so the lowest id survives ties).
    private static void SiftDown(int[] ids, float[] values, int i, int n)
    {
        while (true)
        {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < n && Less(values[l], ids[l], values[m], ids[m])) m = l;
            if (r < n && Less(values[r], ids[r], values[m], ids[m])) m = r;
            if (m == i) return;
            (ids[i], ids[m]) = (ids[m], ids[i]);
            (values[i], values[m]) = (values[m], values[i]);
            i = m;
        }
    }

    private static bool Less(float va, int ia, float vb, int ib) => va < vb || (va == vb && ia > ib);
}
