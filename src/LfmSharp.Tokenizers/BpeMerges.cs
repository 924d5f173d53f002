namespace LfmSharp.Tokenizers;

/// <summary>
/// The merge table keyed by integer symbol pairs instead of strings. A "symbol" is any string BPE can hold: ids
/// below <see cref="Vocabulary.Count"/> are vocabulary tokens, higher ids are strings that some merge mentions or
/// produces but the vocabulary lacks (llama.cpp merges by string, so those must still take part, and are spelled out
/// at the end). Built once per tokenizer.
/// </summary>
internal sealed class BpeMerges
{
    private readonly Dictionary<long, Merge> _pairs;   // (left << 32 | right) -> rank and result
    private readonly List<string> _extraText = [];     // [symbol - vocabCount] text of symbols outside the vocabulary
    private readonly Dictionary<string, int> _extraIds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _extraBySpan;
    private readonly Vocabulary _vocab;

    public readonly record struct Merge(int Rank, int Result);

    public BpeMerges(Vocabulary vocab)
    {
        _vocab = vocab;
        _extraBySpan = _extraIds.GetAlternateLookup<ReadOnlySpan<char>>();
        var merges = vocab.Merges;
        _pairs = new Dictionary<long, Merge>(merges.Count, PairComparer.Instance);

        char[] concat = new char[256];
        for (int rank = 0; rank < merges.Count; rank++)
        {
            string m = merges[rank];
            // llama.cpp splits at the first space after the first character
            int space = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
            if (space < 0)
                throw new InvalidDataException($"{Vocabulary.KeyMerges}[{rank}] = '{m}' is not two parts separated by a space");
            ReadOnlySpan<char> left = m.AsSpan(0, space);
            ReadOnlySpan<char> right = m.AsSpan(space + 1);
            if (right.IsEmpty)
                throw new InvalidDataException($"{Vocabulary.KeyMerges}[{rank}] = '{m}' has an empty right part");

            int l = Intern(left);
            int r = Intern(right);
            if (concat.Length < left.Length + right.Length)
                concat = new char[(left.Length + right.Length) * 2];
            left.CopyTo(concat);
            right.CopyTo(concat.AsSpan(left.Length));
            int result = Intern(concat.AsSpan(0, left.Length + right.Length));

            // a repeated pair keeps its first (lowest) rank, like llama.cpp's map emplace
            _pairs.TryAdd(Key(l, r), new Merge(rank, result));
        }

        ByteSymbols = new int[256];
        Span<char> one = stackalloc char[1];
        for (int b = 0; b < 256; b++)
        {
            one[0] = ByteLevel.ByteToChar((byte)b);
            ByteSymbols[b] = Intern(one);
        }

        AsciiTokens = new int[128];
        for (int c = 0; c < 128; c++)
        {
            one[0] = (char)c;
            AsciiTokens[c] = vocab.TryGetId(one, out int id) ? id : -1;
        }
    }

    /// <summary>Checks the shape of every merge (two non-empty parts around a space) without building the table.</summary>
    /// <exception cref="InvalidDataException">A merge is malformed; the message names its index.</exception>
    public static void Validate(IReadOnlyList<string> merges)
    {
        for (int rank = 0; rank < merges.Count; rank++)
        {
            string m = merges[rank];
            int space = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
            if (space < 0 || space == m.Length - 1)
                throw new InvalidDataException($"{Vocabulary.KeyMerges}[{rank}] = '{m}' is not two parts separated by a space");
        }
    }

    /// <summary>[256] the symbol each byte starts as (its byte-level char).</summary>
    public int[] ByteSymbols { get; }

    /// <summary>[128] token id of each one-char ASCII string, or -1; used to spell out symbols outside the vocabulary.</summary>
    public int[] AsciiTokens { get; }

    public int Count => _pairs.Count;

    public bool TryGet(int left, int right, out Merge merge) => _pairs.TryGetValue(Key(left, right), out merge);

    /// <summary>Text of a symbol that is not a vocabulary token.</summary>
    public string ExtraText(int symbol) => _extraText[symbol - _vocab.Count];

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    // long's own hash is (low ^ high), which for two ids below 65,536 collides massively (every pair with the same
    // XOR lands in one bucket); a multiplicative mix spreads them.
    private sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)((ulong)(key * unchecked((long)0x9E3779B97F4A7C15)) >> 32);
    }

    private int Intern(ReadOnlySpan<char> text)
    {
        if (_vocab.TryGetId(text, out int id))
            return id;
        if (_extraBySpan.TryGetValue(text, out id))
            return id;
        id = _vocab.Count + _extraText.Count;
        string s = text.ToString();
        _extraText.Add(s);
        _extraIds.Add(s, id);
        return id;
    }
}
