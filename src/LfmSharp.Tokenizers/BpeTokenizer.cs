using System.Buffers;
using System.Text;

namespace LfmSharp.Tokenizers;

/// <summary>
/// Byte-level BPE tokenizer with llama.cpp's behaviour for GGUF vocabularies of model <c>gpt2</c> whose
/// pre-tokenizer is <c>lfm2</c> (or another name in the llama3 family):
/// <list type="number">
/// <item>special-token texts are split out first (<see cref="SpecialTokenMatcher"/>);</item>
/// <item>each remaining gap is pre-tokenized (<see cref="Llama3PreTokenizer"/>), and each pre-token is turned into
/// UTF-8 and then into byte-level chars;</item>
/// <item>with <c>ignore_merges</c>, a pre-token that is itself a token becomes that token;</item>
/// <item>otherwise BPE: repeatedly merge the adjacent pair with the lowest rank (leftmost on ties).</item>
/// </list>
/// Immutable and thread-safe; each call uses only its own (pooled) buffers.
/// </summary>
public sealed class BpeTokenizer
{
    // Words with at most this many bytes use the array scan; longer ones a heap (a CJK sentence is one long word).
    internal const int DefaultHeapThreshold = 48;

    private readonly Vocabulary _vocab;
    private readonly Lazy<BpeMerges> _merges;   // built on first use: ~63k string lookups, the bulk of load time
    private readonly SpecialTokenMatcher _specials;
    private readonly bool _ignoreMerges;
    private readonly int _vocabCount;

    /// <summary>Builds the tokenizer tables (merge pairs, special-token trie) for <paramref name="vocabulary"/>.</summary>
    /// <exception cref="NotSupportedException">The vocabulary's pre-tokenizer is not in the llama3 family (which includes <c>lfm2</c>).</exception>
    /// <exception cref="InvalidDataException">A merge is malformed.</exception>
    public BpeTokenizer(Vocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (!Llama3PreTokenizer.Names.Contains(vocabulary.PreTokenizer))
        {
            throw new NotSupportedException(
                $"pre-tokenizer '{vocabulary.PreTokenizer}' ({Vocabulary.KeyPre}) is not supported; supported: {string.Join(", ", Llama3PreTokenizer.Names.Order(StringComparer.Ordinal))}");
        }
        _vocab = vocabulary;
        _vocabCount = vocabulary.Count;
        _ignoreMerges = Llama3PreTokenizer.IgnoresMerges(vocabulary.PreTokenizer);
        BpeMerges.Validate(vocabulary.Merges);
        _merges = new Lazy<BpeMerges>(() => new BpeMerges(vocabulary), LazyThreadSafetyMode.ExecutionAndPublication);
        _specials = new SpecialTokenMatcher(vocabulary);
    }

    /// <summary>The vocabulary this tokenizer encodes with.</summary>
    public Vocabulary Vocabulary => _vocab;

    /// <summary>Forces the heap path above this many bytes per word (tests compare both paths).</summary>
    internal int HeapThreshold { get; set; } = DefaultHeapThreshold;

    /// <summary>
    /// Tokenizes <paramref name="text"/> like <c>llama_tokenize(text, add_special, parse_special)</c>.
    /// </summary>
    /// <param name="text">Input text.</param>
    /// <param name="addBos">Prepend <see cref="Vocabulary.BosId"/> (llama.cpp's <c>add_special</c> when the model's <see cref="Vocabulary.AddBos"/> is set). A BOS already present in the text is kept, so this can give two; see <see cref="EncodePrompt"/>.</param>
    /// <param name="parseSpecial">Match control-token texts such as <c>&lt;|im_start|&gt;</c>. User-defined tokens such as <c>&lt;think&gt;</c> are matched either way.</param>
    public int[] Encode(ReadOnlySpan<char> text, bool addBos = false, bool parseSpecial = true)
    {
        var output = new List<int>(text.Length / 3 + 2);
        Encode(text, output, addBos, parseSpecial);
        return [.. output];
    }

    /// <summary>Tokenizes <paramref name="text"/> and appends the ids to <paramref name="output"/>.</summary>
    public void Encode(ReadOnlySpan<char> text, List<int> output, bool addBos = false, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(output);
        var sink = new ListSink(output);
        EncodeCore(text, addBos, parseSpecial, ref sink);
    }

    /// <summary>Tokenizes into <paramref name="destination"/>; false (with <paramref name="written"/> = the needed count) when it is too short.</summary>
    public bool TryEncode(ReadOnlySpan<char> text, Span<int> destination, out int written, bool addBos = false, bool parseSpecial = true)
    {
        var list = new List<int>(Math.Min(destination.Length, text.Length + 1));
        Encode(text, list, addBos, parseSpecial);
        written = list.Count;
        if (list.Count > destination.Length)
            return false;
        list.CopyTo(destination);
        return true;
    }

    /// <summary>Number of tokens <see cref="Encode(ReadOnlySpan{char}, bool, bool)"/> would return.</summary>
    public int CountTokens(ReadOnlySpan<char> text, bool addBos = false, bool parseSpecial = true)
    {
        var sink = new CountSink();
        EncodeCore(text, addBos, parseSpecial, ref sink);
        return sink.Count;
    }

    /// <summary>
    /// Tokenizes a rendered chat prompt with special parsing and exactly one BOS when the model wants one, as llama.cpp's
    /// chat path does: a leading BOS text (<c>&lt;|startoftext|&gt;</c>, which chat templates emit) is dropped and the
    /// BOS id is prepended instead.
    /// </summary>
    public int[] EncodePrompt(ReadOnlySpan<char> prompt)
    {
        if (_vocab.AddBos && _vocab.BosId is int bos)
        {
            string bosText = _vocab[bos];
            if (prompt.StartsWith(bosText, StringComparison.Ordinal))
                prompt = prompt[bosText.Length..];
            return Encode(prompt, addBos: true, parseSpecial: true);
        }
        return Encode(prompt, addBos: false, parseSpecial: true);
    }

    /// <summary>The bytes of one token, like <c>llama_token_to_piece(id, special: true)</c>; may be part of a UTF-8 sequence.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public ReadOnlySpan<byte> TokenBytes(int id) => _vocab.GetTokenBytes(id, special: true);

    /// <summary>
    /// Joins the pieces of <paramref name="ids"/>, like <c>llama_detokenize</c>.
    /// </summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="removeSpecial">Drop a leading BOS (when the model adds one) and a trailing EOS (when it adds one).</param>
    /// <param name="unparseSpecial">Render control tokens as their text; otherwise they decode to nothing.</param>
    /// <param name="cleanSpaces">Apply llama.cpp's BPE clean-up (" ." -&gt; ".", " 's" -&gt; "'s", ...). llama.cpp's <c>llama_detokenize</c> does this for LFM2; streaming output does not.</param>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public byte[] DecodeToBytes(ReadOnlySpan<int> ids, bool removeSpecial = false, bool unparseSpecial = true, bool cleanSpaces = false)
    {
        if (removeSpecial)
        {
            if (_vocab.AddBos && ids.Length > 0 && ids[0] == _vocab.BosId)
                ids = ids[1..];
            if (_vocab.AddEos && ids.Length > 0 && ids[^1] == _vocab.EosId)
                ids = ids[..^1];
        }
        int total = 0;
        foreach (int id in ids)
            total += _vocab.GetTokenBytes(id, unparseSpecial).Length;
        var bytes = new byte[total];
        int at = 0;
        foreach (int id in ids)
        {
            var piece = _vocab.GetTokenBytes(id, unparseSpecial);
            piece.CopyTo(bytes.AsSpan(at));
            at += piece.Length;
        }
        if (cleanSpaces)
            bytes = bytes.AsSpan(0, CleanSpaces(bytes)).ToArray();
        return bytes;
    }

    /// <summary><see cref="DecodeToBytes"/> as a string (invalid UTF-8 becomes U+FFFD).</summary>
    public string Decode(ReadOnlySpan<int> ids, bool removeSpecial = false, bool unparseSpecial = true, bool cleanSpaces = false) =>
        Encoding.UTF8.GetString(DecodeToBytes(ids, removeSpecial, unparseSpecial, cleanSpaces));

    // ---------------------------------------------------------------- encoding

    private interface ITokenSink
    {
        void Add(int id);
    }

    private struct ListSink(List<int> list) : ITokenSink
    {
        public readonly void Add(int id) => list.Add(id);
    }

    private struct CountSink : ITokenSink
    {
        public int Count;

        public void Add(int id) => Count++;
    }

    private void EncodeCore<TSink>(ReadOnlySpan<char> text, bool addBos, bool parseSpecial, ref TSink sink)
        where TSink : struct, ITokenSink
    {
        if (addBos)
        {
            if (_vocab.BosId is not int bos)
                throw new InvalidOperationException("addBos was requested but the vocabulary has no BOS token");
            sink.Add(bos);
        }
        if (text.IsEmpty)
            return;

        var segments = new List<TextSegment>();
        _specials.Split(text, parseSpecial, segments);

        int[] cps = ArrayPool<int>.Shared.Rent(text.Length);
        byte[] classes = ArrayPool<byte>.Shared.Rent(text.Length);
        var scratch = new Scratch();
        BpeMerges merges = _merges.Value;
        var ends = new List<int>();
        try
        {
            foreach (var seg in segments)
            {
                if (seg.TokenId >= 0)
                {
                    sink.Add(seg.TokenId);
                    continue;
                }
                var fragment = text.Slice(seg.Start, seg.Length);
                int n = Llama3PreTokenizer.Decode(fragment, cps, classes);
                ends.Clear();
                Llama3PreTokenizer.Split(cps.AsSpan(0, n), classes.AsSpan(0, n), ends);
                int start = 0;
                foreach (int end in ends)
                {
                    EncodeWord(merges, cps.AsSpan(start, end - start), scratch, ref sink);
                    start = end;
                }
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(cps);
            ArrayPool<byte>.Shared.Return(classes);
            scratch.Return();
        }
    }

    // Per-call scratch buffers, grown on demand and returned to the pool at the end of the call.
    private sealed class Scratch
    {
        public byte[]? Bytes;   // UTF-8 of the word
        public char[]? Chars;   // byte-level form of the word
        public int[]? Ints;     // BPE work arrays

        public Span<byte> BytesOf(int n) => Grow(ref Bytes, n);

        public Span<char> CharsOf(int n) => Grow(ref Chars, n);

        public Span<int> IntsOf(int n) => Grow(ref Ints, n);

        public void Return()
        {
            if (Bytes is not null) ArrayPool<byte>.Shared.Return(Bytes);
            if (Chars is not null) ArrayPool<char>.Shared.Return(Chars);
            if (Ints is not null) ArrayPool<int>.Shared.Return(Ints);
        }

        private static Span<T> Grow<T>(ref T[]? array, int n)
        {
            if (array is null || array.Length < n)
            {
                if (array is not null)
                    ArrayPool<T>.Shared.Return(array);
                array = ArrayPool<T>.Shared.Rent(Math.Max(n, 256));
            }
            return array.AsSpan(0, n);
        }
    }

    private void EncodeWord<TSink>(BpeMerges merges, ReadOnlySpan<int> cps, Scratch scratch, ref TSink sink)
        where TSink : struct, ITokenSink
    {
        // code points -> UTF-8 (an unpaired surrogate was already replaced by U+FFFD)
        Span<byte> bytes = scratch.BytesOf(cps.Length * 4);
        int nb = 0;
        foreach (int cp in cps)
        {
            if (cp < 0x80)
                bytes[nb++] = (byte)cp;
            else
                nb += new Rune(cp).EncodeToUtf8(bytes[nb..]);
        }
        bytes = bytes[..nb];

        if (_ignoreMerges)
        {
            Span<char> chars = scratch.CharsOf(nb);
            ByteLevel.Encode(bytes, chars);
            if (_vocab.TryGetId(chars, out int whole))
            {
                sink.Add(whole);
                return;
            }
        }

        if (nb == 1)
        {
            Emit(merges, merges.ByteSymbols[bytes[0]], ref sink);
            return;
        }

        if (nb <= HeapThreshold)
            MergeByScan(merges, bytes, scratch, ref sink);
        else
            MergeByHeap(merges, bytes, ref sink);
    }

    // O(n^2) in cheap comparisons but O(n) merge lookups: the rank of every adjacent pair is cached and only the two
    // pairs next to a merge are looked up again.
    private void MergeByScan<TSink>(BpeMerges merges, ReadOnlySpan<byte> bytes, Scratch scratch, ref TSink sink)
        where TSink : struct, ITokenSink
    {
        int n = bytes.Length;
        Span<int> work = scratch.IntsOf(3 * n);
        Span<int> sym = work[..n];                 // [count] current symbols
        Span<int> rank = work.Slice(n, n);         // [count - 1] rank of pair (i, i+1), int.MaxValue = no merge
        Span<int> result = work.Slice(2 * n, n);   // [count - 1] symbol that pair (i, i+1) merges into
        for (int i = 0; i < n; i++)
            sym[i] = merges.ByteSymbols[bytes[i]];
        for (int i = 0; i < n - 1; i++)
            LookupPair(merges, sym[i], sym[i + 1], out rank[i], out result[i]);

        int count = n;
        while (count > 1)
        {
            int best = -1;
            int bestRank = int.MaxValue;
            for (int i = 0; i < count - 1; i++)
            {
                if (rank[i] < bestRank)
                {
                    bestRank = rank[i];
                    best = i;
                }
            }
            if (best < 0)
                break;

            sym[best] = result[best];
            // drop symbol best+1 and pair (best+1, best+2); pairs after it move down by one
            sym.Slice(best + 2, count - best - 2).CopyTo(sym[(best + 1)..]);
            int pairs = count - 1;
            if (best + 2 < pairs)
            {
                rank.Slice(best + 2, pairs - best - 2).CopyTo(rank[(best + 1)..]);
                result.Slice(best + 2, pairs - best - 2).CopyTo(result[(best + 1)..]);
            }
            count--;
            if (best > 0)
                LookupPair(merges, sym[best - 1], sym[best], out rank[best - 1], out result[best - 1]);
            if (best < count - 1)
                LookupPair(merges, sym[best], sym[best + 1], out rank[best], out result[best]);
        }

        for (int i = 0; i < count; i++)
            Emit(merges, sym[i], ref sink);
    }

    // llama.cpp's algorithm: a priority queue of (rank, left position) with lazy invalidation, over a linked list of symbols.
    private void MergeByHeap<TSink>(BpeMerges merges, ReadOnlySpan<byte> bytes, ref TSink sink)
        where TSink : struct, ITokenSink
    {
        int n = bytes.Length;
        int[] sym = new int[n];    // [n] symbol at each original position (valid while alive)
        int[] prev = new int[n];   // [n] linked list over live positions
        int[] next = new int[n];
        bool[] dead = new bool[n];
        for (int i = 0; i < n; i++)
        {
            sym[i] = merges.ByteSymbols[bytes[i]];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }

        var queue = new PriorityQueue<(int Left, int Right, int LeftSym, int RightSym, int Result), (int Rank, int Left)>(n);
        void Push(int left, int right)
        {
            if (left < 0 || right < 0)
                return;
            if (merges.TryGet(sym[left], sym[right], out var m))
                queue.Enqueue((left, right, sym[left], sym[right], m.Result), (m.Rank, left));
        }

        for (int i = 0; i + 1 < n; i++)
            Push(i, i + 1);

        while (queue.TryDequeue(out var e, out _))
        {
            // stale when either side has changed since the pair was queued (symbols only grow, so ids never repeat)
            if (dead[e.Left] || dead[e.Right] || next[e.Left] != e.Right || sym[e.Left] != e.LeftSym || sym[e.Right] != e.RightSym)
                continue;
            sym[e.Left] = e.Result;
            dead[e.Right] = true;
            int after = next[e.Right];
            next[e.Left] = after;
            if (after >= 0)
                prev[after] = e.Left;
            Push(prev[e.Left], e.Left);
            Push(e.Left, after);
        }

        for (int i = 0; i >= 0; i = next[i])
            Emit(merges, sym[i], ref sink);
    }

    private static void LookupPair(BpeMerges merges, int left, int right, out int rank, out int result)
    {
        if (merges.TryGet(left, right, out var m))
        {
            rank = m.Rank;
            result = m.Result;
        }
        else
        {
            rank = int.MaxValue;
            result = -1;
        }
    }

    private void Emit<TSink>(BpeMerges merges, int symbol, ref TSink sink)
        where TSink : struct, ITokenSink
    {
        if (symbol < _vocabCount)
        {
            sink.Add(symbol);
            return;
        }
        // Not a vocabulary token: llama.cpp looks up each UTF-8 byte of the symbol's (byte-level) text as a one-byte
        // token; only ASCII bytes can match, the rest are dropped.
        foreach (char c in merges.ExtraText(symbol))
        {
            if (c < 0x80 && merges.AsciiTokens[c] >= 0)
                sink.Add(merges.AsciiTokens[c]);
        }
    }

    // ---------------------------------------------------------------- decoding

    // llama.cpp's clean_spaces passes over the detokenized bytes; returns the new length.
    private static int CleanSpaces(Span<byte> text)
    {
        int total = text.Length;
        if (total == 0)
            return 0;

        // 1: " ?", " !", " .", " ," -> drop the space
        int n = 1;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',')
                n--;
            text[n++] = x;
        }
        total = n;

        // 2: " ' " -> "'"
        n = 1;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (x == '\'' && i + 1 < total && text[i - 1] == ' ' && text[i + 1] == ' ')
            {
                n--;
                text[++i] = 0; // llama.cpp zeroes the next space and still copies the apostrophe
            }
            text[n++] = x;
        }
        total = n;

        // 3: " 's", " 'm", " 're", " 've" -> drop the space
        n = 1;
        for (int i = 1; i < total; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < total)
            {
                byte x1 = text[i + 1];
                if (x1 is (byte)'s' or (byte)'m')
                    n--;
                else if (i + 2 < total && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                    n--;
            }
            text[n++] = x;
        }
        return n;
    }
}
