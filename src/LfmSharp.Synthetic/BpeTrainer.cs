using System.Text;

namespace LfmSharp.Tokenizers;

/// <summary>
/// Deterministic greedy byte-level BPE training, the procedure that produced the fixture vocabularies
/// (tests/TestData/fixtures/HOW-MADE.md section 1.4):
/// <list type="number">
/// <item>pre-tokenize the corpus with the LLAMA3 / <c>lfm2</c> splitter, turn each pre-token into UTF-8 and then into
/// byte-level chars, and count how often each such word occurs;</item>
/// <item>at each step count every adjacent symbol pair, weighted by word frequency, and merge the most frequent pair;
/// ties go to the lexicographically smallest <c>(left, right)</c>, comparing strings by code point;</item>
/// <item>replace the pair in every word, left to right, without overlap;</item>
/// <item>stop after the requested number of merges or when no pair is left.</item>
/// </list>
/// Being greedy and deterministic, training N merges always yields a prefix of training N + k.
/// </summary>
internal static class BpeTrainer
{
    /// <summary>Trains up to <paramref name="maxMerges"/> merges on <paramref name="corpus"/>; returns them as <c>"left right"</c> in byte-level form, rank order.</summary>
    public static string[] Train(string corpus, int maxMerges)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentOutOfRangeException.ThrowIfNegative(maxMerges);

        // word (byte-level form) -> frequency, kept in first-seen order so the work below is reproducible
        var frequency = new Dictionary<string, int>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (string word in PreTokenize(corpus))
        {
            if (frequency.TryGetValue(word, out int f))
            {
                frequency[word] = f + 1;
            }
            else
            {
                frequency[word] = 1;
                order.Add(word);
            }
        }

        var words = new List<(List<string> Symbols, int Frequency)>(order.Count);
        foreach (string w in order)
        {
            var symbols = new List<string>(w.Length);
            foreach (char c in w)
                symbols.Add(c.ToString());
            words.Add((symbols, frequency[w]));
        }

        var merges = new List<string>(Math.Min(maxMerges, 4096));
        var counts = new Dictionary<(string, string), long>();
        while (merges.Count < maxMerges)
        {
            counts.Clear();
            foreach (var (symbols, freq) in words)
            {
                for (int i = 0; i + 1 < symbols.Count; i++)
                {
                    var pair = (symbols[i], symbols[i + 1]);
                    counts[pair] = counts.GetValueOrDefault(pair) + freq;
                }
            }
            if (counts.Count == 0)
                break;

            (string Left, string Right) best = default;
            long bestCount = -1;
            foreach (var (pair, count) in counts)
            {
                if (count > bestCount || (count == bestCount && ComparePairs(pair, best) < 0))
                {
                    best = pair;
                    bestCount = count;
                }
            }

            string merged = best.Left + best.Right;
            foreach (var (symbols, _) in words)
            {
                int write = 0;
                for (int read = 0; read < symbols.Count; read++)
                {
                    if (read + 1 < symbols.Count && symbols[read] == best.Left && symbols[read + 1] == best.Right)
                    {
                        symbols[write++] = merged;
                        read++;
                    }
                    else
                    {
                        symbols[write++] = symbols[read];
                    }
                }
                symbols.RemoveRange(write, symbols.Count - write);
            }
            merges.Add(best.Left + " " + best.Right);
        }
        return [.. merges];
    }

    /// <summary>
    /// Builds an LFM2-style vocabulary: <paramref name="specials"/> first (ids 0..), then the 256 byte tokens in byte
    /// order, then one token per merge result in merge order (a result already present is skipped), then
    /// <c>[PAD&lt;id&gt;]</c> tokens of type <see cref="TokenType.Unused"/> up to <paramref name="vocabSize"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabSize"/> is smaller than the tokens it must hold.</exception>
    public static Vocabulary BuildVocabulary(
        IReadOnlyList<(string Text, TokenType Type)> specials,
        IReadOnlyList<string> merges,
        int vocabSize,
        int? bosId,
        int? eosId,
        int? padId,
        bool addBos = true,
        bool addEos = false,
        string preTokenizer = "lfm2")
    {
        ArgumentNullException.ThrowIfNull(specials);
        ArgumentNullException.ThrowIfNull(merges);
        var tokens = new List<string>(vocabSize);
        var types = new List<TokenType>(vocabSize);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string text, TokenType type)
        {
            tokens.Add(text);
            types.Add(type);
            seen.Add(text);
        }

        foreach (var (text, type) in specials)
            Add(text, type);
        for (int b = 0; b < 256; b++)
            Add(ByteLevel.ByteToChar((byte)b).ToString(), TokenType.Normal);
        foreach (string m in merges)
        {
            int space = m.IndexOf(' ', 1);
            if (space < 0)
                throw new ArgumentException($"merge '{m}' is not two parts separated by a space", nameof(merges));
            string result = string.Concat(m.AsSpan(0, space), m.AsSpan(space + 1));
            if (!seen.Contains(result))
                Add(result, TokenType.Normal);
        }
        if (tokens.Count > vocabSize)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize,
                $"the vocabulary needs {tokens.Count} tokens ({specials.Count} special + 256 bytes + merges) but only {vocabSize} were asked for");
        }
        for (int id = tokens.Count; id < vocabSize; id++)
            Add($"[PAD{id}]", TokenType.Unused);

        return new Vocabulary(tokens, types, merges, bosId, eosId, padId, addBos, addEos, preTokenizer);
    }

    /// <summary>The training words of <paramref name="text"/>: LLAMA3 pre-tokens in byte-level form.</summary>
    internal static IEnumerable<string> PreTokenize(string text)
    {
        int[] cps = new int[text.Length];
        byte[] classes = new byte[text.Length];
        int n = Llama3PreTokenizer.Decode(text, cps, classes);
        var ends = new List<int>();
        Llama3PreTokenizer.Split(cps.AsSpan(0, n), classes.AsSpan(0, n), ends);
        var utf8 = new byte[16];
        int start = 0;
        foreach (int end in ends)
        {
            var bytes = new List<byte>();
            for (int i = start; i < end; i++)
            {
                int w = new Rune(cps[i]).EncodeToUtf8(utf8);
                for (int k = 0; k < w; k++)
                    bytes.Add(utf8[k]);
            }
            start = end;
            yield return ByteLevel.Encode(bytes.ToArray());
        }
    }

    // Python tuple order on (str, str): left first, then right; strings by code point (shorter prefix first).
    private static int ComparePairs((string Left, string Right) a, (string Left, string Right) b)
    {
        int c = CompareCodePoints(a.Left, b.Left);
        return c != 0 ? c : CompareCodePoints(a.Right, b.Right);
    }

    private static int CompareCodePoints(string a, string b)
    {
        // Ordinal UTF-16 order differs from code point order only between surrogates and U+E000..U+FFFF.
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            Rune.DecodeFromUtf16(a.AsSpan(i), out Rune ra, out int la);
            Rune.DecodeFromUtf16(b.AsSpan(j), out Rune rb, out int lb);
            if (ra.Value != rb.Value)
                return ra.Value.CompareTo(rb.Value);
            i += la;
            j += lb;
        }
        return (a.Length - i).CompareTo(b.Length - j);
    }
}
