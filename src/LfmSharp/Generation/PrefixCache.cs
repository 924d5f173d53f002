using LfmSharp.Models;
using LfmSharp.Tokenizers;

namespace LfmSharp.Generation;

/// <summary>
/// Model states after prompt prefixes, for reuse by later prompts that start with the same tokens. LFM2's conv state
/// cannot be rewound, so a prompt can only resume from a prefix whose state was copied when it was reached
/// (a checkpoint); this cache holds those copies, finds the longest one a new prompt starts with, and forgets the
/// least recently used ones past <see cref="MaxBytes"/>.
/// <para>
/// Shared by every slot of a server (or private to one <see cref="ChatSession"/>), so it is thread-safe. Snapshots are
/// immutable once stored and restoring copies them into the live state, so no stored entry ever shares a buffer
/// with a state that runs.
/// </para>
/// <para>
/// Index: each entry is keyed by (length, hash of its tokens). A lookup hashes the prompt's prefixes once
/// (O(prompt)) and probes only the distinct entry lengths, longest first, so it costs O(prompt + distinct lengths),
/// not a comparison against every entry; a hit is confirmed by comparing the tokens, so a hash collision cannot
/// restore a wrong state.
/// </para>
/// </summary>
internal sealed class PrefixCache
{
    /// <summary>The default checkpoint interval inside a long message (tokens).</summary>
    public const int DefaultInterval = 256;

    private readonly object _lock = new();
    private readonly Dictionary<(int Length, ulong Hash), LinkedListNode<Entry>> _index = new();
    private readonly LinkedList<Entry> _lru = new();                 // most recently used first
    private readonly SortedDictionary<int, int> _lengths = new();   // entry length → number of entries of that length
    private long _bytes, _lookups, _hits, _cachedTokens, _evictions, _stores;
    private long _fixedBytes, _bytesPerToken;   // the size of the last copy made, so Store can skip one too large to keep

    /// <param name="maxBytes">Memory bound of the stored snapshots and their token keys; 0 disables the cache.</param>
    /// <param name="interval">Checkpoint every this many tokens inside a long message.</param>
    public PrefixCache(long maxBytes, int interval = DefaultInterval)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, 1);
        MaxBytes = maxBytes;
        Interval = interval;
    }

    /// <summary>Memory bound in bytes; 0: nothing is stored or found.</summary>
    public long MaxBytes { get; }

    /// <summary>Tokens between checkpoints inside a long message.</summary>
    public int Interval { get; }

    public bool Enabled => MaxBytes > 0;

    /// <summary>Bytes held now (snapshots plus token keys); never above <see cref="MaxBytes"/>.</summary>
    public long Bytes { get { lock (_lock) return _bytes; } }

    public int Count { get { lock (_lock) return _index.Count; } }

    /// <summary>Prompts looked up (one per generation).</summary>
    public long Lookups => Interlocked.Read(ref _lookups);

    /// <summary>Lookups that restored a prefix.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Prompt tokens restored instead of prefilled, over all lookups.</summary>
    public long CachedTokens => Interlocked.Read(ref _cachedTokens);

    /// <summary>Entries dropped to stay under <see cref="MaxBytes"/>.</summary>
    public long Evictions => Interlocked.Read(ref _evictions);

    /// <summary>Snapshots stored.</summary>
    public long Stores => Interlocked.Read(ref _stores);

    /// <summary>
    /// Puts into <paramref name="state"/> the longest cached prefix of <paramref name="prompt"/> that leaves at least
    /// one token to prefill (the logits of the last token are needed), or resets it when there is none. Returns the
    /// number of prompt tokens restored.
    /// </summary>
    public int Restore(Lfm2State state, ReadOnlySpan<int> prompt)
    {
        ArgumentNullException.ThrowIfNull(state);
        var snapshot = Find(prompt, prompt.Length - 1, state);
        if (snapshot is null)
        {
            state.Reset();
            return 0;
        }
        state.Restore(snapshot);   // outside the lock: the snapshot is immutable, eviction only drops the reference
        return snapshot.Position;
    }

    /// <summary>The snapshot of the longest cached prefix of <paramref name="prompt"/> of at most
    /// <paramref name="maxLength"/> tokens that <paramref name="state"/> can restore, or null. Counts as one lookup.</summary>
    internal Lfm2StateSnapshot? Find(ReadOnlySpan<int> prompt, int maxLength, Lfm2State state)
    {
        Interlocked.Increment(ref _lookups);
        if (!Enabled || maxLength <= 0)
            return null;
        var hashes = PrefixHashes(prompt, maxLength);
        lock (_lock)
        {
            // Longest first: the lengths are few (checkpoint positions), far fewer than the prompt's tokens.
            foreach (int length in _lengths.Keys.Reverse())
            {
                if (length > maxLength)
                    continue;
                if (_index.TryGetValue((length, hashes[length]), out var node)
                    && prompt[..length].SequenceEqual(node.Value.Tokens)
                    && Fits(node.Value.Snapshot, state))
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    Interlocked.Increment(ref _hits);
                    Interlocked.Add(ref _cachedTokens, length);
                    return node.Value.Snapshot;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Stores <paramref name="state"/>, which holds the first <c>state.Position</c> tokens of <paramref name="prompt"/>,
    /// unless that prefix is cached already (then it only becomes the most recently used). False when nothing new was
    /// stored (disabled, present, or larger than half the bound: it would push out nearly everything else).
    /// </summary>
    public bool Store(Lfm2State state, ReadOnlySpan<int> prompt) => Store(state, prompt, state?.Position ?? 0);

    /// <summary>
    /// The same for the state after its first <paramref name="length"/> tokens: <c>state.Position</c>, or a position
    /// the last pass ran through with a capture there (<see cref="Lfm2State.CaptureAt"/>).
    /// </summary>
    public bool Store(Lfm2State state, ReadOnlySpan<int> prompt, int length)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (!Enabled || length <= 0 || length > prompt.Length)
            return false;
        var key = (length, Hash(prompt[..length]));
        lock (_lock)
        {
            if (_index.TryGetValue(key, out var existing) && prompt[..length].SequenceEqual(existing.Value.Tokens))
            {
                _lru.Remove(existing);
                _lru.AddFirst(existing);
                return false;
            }
            // A copy that would take more than half the cache is not worth making: it would push out nearly
            // everything else. Its size is known before copying: fixed conv states plus KV rows linear in the length.
            if (_fixedBytes + _bytesPerToken * length > MaxBytes / 2)
                return false;
        }
        // The copy is made outside the lock (it is the costly part) and checked again before it goes in.
        var snapshot = state.Snapshot(length);
        var entry = new Entry(prompt[..length].ToArray(), snapshot, snapshot.Bytes + (long)length * sizeof(int));
        lock (_lock)
        {
            long fixedBytes = 0;
            foreach (var c in snapshot.ConvStates)
                fixedBytes += (long)c.Length * sizeof(float);
            (_fixedBytes, _bytesPerToken) = (fixedBytes, (entry.Bytes - fixedBytes) / length);
            if (entry.Bytes > MaxBytes / 2)
                return false;
            if (_index.TryGetValue(key, out var raced))
                Remove(raced);   // same key: the same prefix (or a hash collision, where the newer one wins)
            var node = _lru.AddFirst(entry);
            _index[key] = node;
            _lengths[length] = _lengths.GetValueOrDefault(length) + 1;
            _bytes += entry.Bytes;
            Interlocked.Increment(ref _stores);
            while (_bytes > MaxBytes && _lru.Last is { } last)
            {
                Remove(last);
                Interlocked.Increment(ref _evictions);
            }
        }
        return true;
    }

    /// <summary>
    /// Stores the state at the end of a generation, keyed by <paramref name="prompt"/> and the generated tokens it holds
    /// (<c>state.Position − prompt.Length</c> of <paramref name="generated"/>: all but the last one chosen), so the next
    /// turn of a conversation, whose prompt re-renders the answer, resumes after it when the answer re-tokenizes the
    /// same (and after the longest earlier checkpoint when it does not, e.g. past thinking dropped by the template).
    /// With <paramref name="tokenizer"/>, an answer whose text does not tokenize back into the same tokens is not
    /// stored: no re-rendered prompt can match it past the first differing token, so the copy would only take memory
    /// and time (a model that emits tokens without text, or splits words unlike the tokenizer, does this).
    /// </summary>
    public bool StoreGeneration(Lfm2State state, int[] prompt, List<int> generated, BpeTokenizer? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(generated);
        int fed = state.Position - prompt.Length;
        if (!Enabled || fed < 0 || fed > generated.Count)
            return false;
        var answer = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(generated)[..fed];
        if (tokenizer is not null && !answer.SequenceEqual(tokenizer.Encode(tokenizer.Decode(answer), addBos: false, parseSpecial: true)))
            return false;
        var key = new int[state.Position];
        prompt.CopyTo(key, 0);
        answer.CopyTo(key.AsSpan(prompt.Length));
        return Store(state, key);
    }

    /// <summary>Drops every entry (the counters stay).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _index.Clear();
            _lru.Clear();
            _lengths.Clear();
            _bytes = 0;
        }
    }

    private void Remove(LinkedListNode<Entry> node)
    {
        var e = node.Value;
        _lru.Remove(node);
        _index.Remove((e.Tokens.Length, Hash(e.Tokens)));
        if (--_lengths[e.Tokens.Length] == 0)
            _lengths.Remove(e.Tokens.Length);
        _bytes -= e.Bytes;
    }

    private static bool Fits(Lfm2StateSnapshot s, Lfm2State state) =>
        s.Config == state.Config && s.KvCacheType == state.KvCacheType && s.Position < state.ContextLength;

    /// <summary>hashes[i] = hash of prompt[..i], for i in 0..maxLength.</summary>
    private static ulong[] PrefixHashes(ReadOnlySpan<int> prompt, int maxLength)
    {
        var hashes = new ulong[maxLength + 1];
        ulong h = Seed;
        hashes[0] = h;
        for (int i = 0; i < maxLength; i++)
            hashes[i + 1] = h = Step(h, prompt[i]);
        return hashes;
    }

    private static ulong Hash(ReadOnlySpan<int> tokens)
    {
        ulong h = Seed;
        foreach (int t in tokens)
            h = Step(h, t);
        return h;
    }

    private const ulong Seed = 0x9E3779B97F4A7C15;

    // A chained 64-bit mix (splitmix64's finalizer over the running hash and the token): prefix hashes come out of
    // one pass over the prompt.
    private static ulong Step(ulong h, int token)
    {
        ulong x = h ^ ((uint)token * 0xBF58476D1CE4E5B9UL);
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private sealed record Entry(int[] Tokens, Lfm2StateSnapshot Snapshot, long Bytes);
}

/// <summary>Checkpoints a raw prompt (no messages) into a <see cref="PrefixCache"/>: every
/// <see cref="PrefixCache.Interval"/> tokens and the last-but-one token, and at the end the prompt with the completion
/// fed so far (a client that continues the text resumes after it).</summary>
internal sealed class PrefixCacheController(PrefixCache cache, int[] prompt, BpeTokenizer? tokenizer = null) : GenerationController
{
    private readonly List<int> _generated = [];

    /// <summary>Restores the longest cached prefix of <paramref name="prompt"/> into <paramref name="state"/>, and returns
    /// the tokens left to prefill, the options with their checkpoints, and the controller that stores them. With
    /// <paramref name="tokenizer"/>, a completion that does not tokenize back into its tokens is not stored (see
    /// <see cref="PrefixCache.StoreGeneration"/>).</summary>
    public static (ArraySegment<int> Remaining, GenerationOptions Options, PrefixCacheController Controller) Prepare(
        PrefixCache cache, Lfm2State state, int[] prompt, GenerationOptions options, BpeTokenizer? tokenizer = null)
    {
        int reuse = cache.Restore(state, prompt);
        var checkpoints = cache.Enabled ? Chat.PromptCheckpoints.Positions([], prompt.Length, cache.Interval, reuse) : null;
        return (new ArraySegment<int>(prompt, reuse, prompt.Length - reuse), options with { Checkpoints = checkpoints }, new PrefixCacheController(cache, prompt, tokenizer));
    }

    public override void OnCheckpoint(Lfm2State state, int position) => cache.Store(state, prompt, position);

    public override void OnToken(int tokenId, bool forced)
    {
        if (cache.Enabled)
            _generated.Add(tokenId);
    }

    public override void OnGenerationEnd(Lfm2State state) => cache.StoreGeneration(state, prompt, _generated, tokenizer);
}
