using System.Text;

namespace LfmSharp.Constraints;

/// <summary>
/// The byte string of every token id, plus which ids end generation and which are special (control tokens such as
/// <c>&lt;|im_start|&gt;</c>: never produced as text inside a document, only as a grammar's special token). Build one
/// per model and share it: the byte trie the constraints walk is built once, on first use, and cached here.
/// </summary>
internal sealed class TokenVocabulary
{
    private readonly byte[][] _bytes;   // [vocab] token bytes (specials: their text as UTF-8)
    private readonly bool[] _special;   // [vocab]
    private readonly int[] _eog;
    private readonly Lazy<TokenTrie> _trie;

    /// <param name="tokenBytes">Bytes of each token id; null or empty marks an id that can never be produced inside a document.</param>
    /// <param name="endOfGenerationIds">Ids allowed (only) once the document is complete.</param>
    /// <param name="specialTokenIds">Ids excluded from byte matching (control tokens); grammars may still ask for them by text.</param>
    public TokenVocabulary(IReadOnlyList<byte[]?> tokenBytes, IEnumerable<int> endOfGenerationIds, IEnumerable<int>? specialTokenIds = null)
    {
        ArgumentNullException.ThrowIfNull(tokenBytes);
        ArgumentNullException.ThrowIfNull(endOfGenerationIds);
        if (tokenBytes.Count == 0)
            throw new ArgumentException("the vocabulary is empty", nameof(tokenBytes));
        int n = tokenBytes.Count;
        _bytes = new byte[n][];
        _special = new bool[n];
        for (int i = 0; i < n; i++)
            _bytes[i] = tokenBytes[i] ?? [];
        foreach (int id in specialTokenIds ?? [])
        {
            if ((uint)id >= (uint)n)
                throw new ArgumentOutOfRangeException(nameof(specialTokenIds), $"special token id {id} is outside the vocabulary (size {n})");
            _special[id] = true;
        }
        _eog = [.. endOfGenerationIds.Distinct()];
        foreach (int id in _eog)
        {
            if ((uint)id >= (uint)n)
                throw new ArgumentOutOfRangeException(nameof(endOfGenerationIds), $"end-of-generation id {id} is outside the vocabulary (size {n})");
            _special[id] = true; // an end token is never document text
        }
        _trie = new Lazy<TokenTrie>(() => TokenTrie.Build(_bytes, _special), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public int Count => _bytes.Length;

    public IReadOnlyList<int> EndOfGenerationIds => _eog;

    public ReadOnlySpan<byte> GetBytes(int id) => _bytes[id];

    public bool IsSpecial(int id) => _special[id];

    internal TokenTrie Trie => _trie.Value;

    /// <summary>The id whose bytes equal <paramref name="text"/> (special tokens first), or −1.</summary>
    public int FindToken(string text)
    {
        byte[] target = Encoding.UTF8.GetBytes(text);
        int found = -1;
        for (int i = 0; i < _bytes.Length; i++)
        {
            if (_bytes[i].AsSpan().SequenceEqual(target))
            {
                if (_special[i])
                    return i;
                if (found < 0)
                    found = i;
            }
        }
        return found;
    }

    /// <summary>
    /// From a GGUF GPT-2-style vocabulary (<c>tokenizer.ggml.tokens</c> and <c>tokenizer.ggml.token_type</c>):
    /// normal tokens are mapped back through the byte-to-unicode table, byte tokens <c>&lt;0xXX&gt;</c> become
    /// their byte, and control / user-defined / unused / unknown tokens (types 3, 4, 5, 2) are special with their
    /// text taken literally.
    /// </summary>
    public static TokenVocabulary FromGgufTokens(IReadOnlyList<string> tokens, IReadOnlyList<int>? tokenTypes, IEnumerable<int> endOfGenerationIds)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokenTypes is not null && tokenTypes.Count != tokens.Count)
            throw new ArgumentException($"token_type has {tokenTypes.Count} entries for {tokens.Count} tokens", nameof(tokenTypes));
        var bytes = new byte[tokens.Count][];
        var special = new List<int>();
        for (int i = 0; i < tokens.Count; i++)
        {
            int type = tokenTypes?[i] ?? 1;
            string t = tokens[i];
            switch (type)
            {
                case 6 when t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t.EndsWith('>'):
                    bytes[i] = [Convert.ToByte(t.Substring(3, 2), 16)];
                    break;
                case 2 or 3 or 4 or 5:
                    bytes[i] = Encoding.UTF8.GetBytes(t);
                    special.Add(i);
                    break;
                default:
                    bytes[i] = DecodeByteLevel(t);
                    break;
            }
        }
        return new TokenVocabulary(bytes, endOfGenerationIds, special);
    }

    /// <summary>
    /// From the tokenizer's vocabulary (the usual way in): each token's piece bytes, its end-of-generation set, and
    /// control / user-defined / unknown / unused tokens as special.
    /// </summary>
    public static TokenVocabulary FromTokenizer(LfmSharp.Tokenizers.Vocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        const LfmSharp.Tokenizers.TokenAttributes notText = LfmSharp.Tokenizers.TokenAttributes.Control
            | LfmSharp.Tokenizers.TokenAttributes.UserDefined | LfmSharp.Tokenizers.TokenAttributes.Unknown
            | LfmSharp.Tokenizers.TokenAttributes.Unused;
        var bytes = new byte[vocabulary.Count][];
        var special = new List<int>();
        for (int id = 0; id < bytes.Length; id++)
        {
            bytes[id] = vocabulary.GetTokenBytes(id, special: true).ToArray();
            if ((vocabulary.GetAttributes(id) & notText) != 0)
                special.Add(id);
        }
        return new TokenVocabulary(bytes, vocabulary.EndOfGenerationIds, special);
    }

    private static readonly int[] s_unicodeToByte = BuildUnicodeToByte();

    /// <summary>GPT-2 byte-level decoding: each char of the token stands for one byte (e.g. 'Ġ' = space, 'Ċ' = newline).</summary>
    public static byte[] DecodeByteLevel(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        var result = new byte[token.Length];
        int n = 0;
        foreach (char c in token)
        {
            int b = c < s_unicodeToByte.Length ? s_unicodeToByte[c] : -1;
            if (b < 0)
                return Encoding.UTF8.GetBytes(token); // not byte-level text; keep it literal
            result[n++] = (byte)b;
        }
        return result;
    }

    private static int[] BuildUnicodeToByte()
    {
        // Printable Latin-1 bytes stand for themselves; the other 68 bytes map to U+0100.. in byte order.
        var map = new int[0x144];
        Array.Fill(map, -1);
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[printable ? b : 256 + next++] = b;
        }
        return map;
    }
}

/// <summary>
/// The non-special tokens in a byte trie laid out in preorder, so a walk can skip a whole subtree (every token
/// sharing a rejected prefix) by jumping to <see cref="SubtreeEnd"/>.
/// </summary>
internal sealed class TokenTrie
{
    public readonly byte[] Label;      // [nodes] byte on the edge into the node (node 0 = root)
    public readonly int[] Depth;       // [nodes]
    public readonly int[] SubtreeEnd;  // [nodes] index just past the node's last descendant
    public readonly int[] FirstToken;  // [nodes] a token ending here, or -1
    public readonly int[] NextToken;   // [vocab] the next token with the same bytes, or -1
    public readonly int MaxDepth;

    // String-content fast path, relative to a string body between characters (StringState.Normal):
    public readonly bool[] PlainString;  // [nodes] the path is string content: valid UTF-8 so far, no quote, backslash or control byte
    public readonly int[] PlainChars;    // [nodes] code points the path starts (when PlainString)
    public readonly byte[] PlainSub;     // [nodes] string sub-state after the path (SNormal or inside a UTF-8 sequence)
    public readonly bool[] PlainSubtree; // [nodes] the node and everything below it is PlainString
    public readonly ulong[] PlainTokens; // [ceil(vocab / 64)] tokens whose node is PlainString
    public readonly int[] TokenPlainChars; // [vocab] PlainChars of the token's node, or -1 when not PlainString
    public readonly int MaxPlainChars;   // largest PlainChars of any node

    private TokenTrie(byte[] label, int[] depth, int[] subtreeEnd, int[] firstToken, int[] nextToken, int maxDepth)
    {
        Label = label;
        Depth = depth;
        SubtreeEnd = subtreeEnd;
        FirstToken = firstToken;
        NextToken = nextToken;
        MaxDepth = maxDepth;
        int n = label.Length;
        PlainString = new bool[n];
        PlainChars = new int[n];
        PlainSub = new byte[n];
        var parentAt = new int[maxDepth + 1]; // parentAt[d] = last node seen at depth d (preorder)
        PlainString[0] = true;
        for (int i = 1; i < n; i++)
        {
            int d = depth[i];
            parentAt[d] = i;
            int parent = parentAt[d - 1];
            if (!PlainString[parent])
                continue;
            byte sub = PlainSub[parent];
            if (StringStepper.StepBody(ref sub, label[i], escapes: false, python: false, out bool charStart) != 0)
                continue;
            PlainString[i] = true;
            PlainSub[i] = sub;
            PlainChars[i] = PlainChars[parent] + (charStart ? 1 : 0);
            MaxPlainChars = Math.Max(MaxPlainChars, PlainChars[i]);
        }
        // Children follow their parent in preorder, so a reverse sweep sees every child before its parent.
        PlainSubtree = new bool[n];
        for (int i = n - 1; i >= 0; i--)
        {
            bool all = PlainString[i];
            for (int c = i + 1; all && c < subtreeEnd[i]; c = subtreeEnd[c])
                all = PlainSubtree[c];
            PlainSubtree[i] = all;
        }
        PlainTokens = new ulong[(nextToken.Length + 63) / 64];
        TokenPlainChars = new int[nextToken.Length];
        Array.Fill(TokenPlainChars, -1);
        for (int i = 1; i < n; i++)
        {
            if (!PlainString[i])
                continue;
            for (int t = firstToken[i]; t >= 0; t = nextToken[t])
            {
                PlainTokens[t >> 6] |= 1UL << (t & 63);
                TokenPlainChars[t] = PlainChars[i];
            }
        }
    }

    public int NodeCount => Label.Length;

    public static TokenTrie Build(byte[][] bytes, bool[] special)
    {
        var ids = new List<int>();
        for (int i = 0; i < bytes.Length; i++)
        {
            if (!special[i] && bytes[i].Length > 0)
                ids.Add(i);
        }
        // Sorted byte strings give the preorder directly: each token only adds nodes below its common prefix with the previous one.
        ids.Sort((a, b) =>
        {
            int c = bytes[a].AsSpan().SequenceCompareTo(bytes[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var label = new List<byte> { 0 };
        var depth = new List<int> { 0 };
        var end = new List<int> { 0 };
        var first = new List<int> { -1 };
        var nextToken = new int[bytes.Length];
        Array.Fill(nextToken, -1);
        var path = new List<int> { 0 }; // path[d] = node at depth d on the current branch
        byte[] prev = [];
        int maxDepth = 0;
        foreach (int id in ids)
        {
            byte[] t = bytes[id];
            int lcp = 0;
            while (lcp < prev.Length && lcp < t.Length && prev[lcp] == t[lcp])
                lcp++;
            for (int d = path.Count - 1; d > lcp; d--)
                end[path[d]] = label.Count;
            path.RemoveRange(lcp + 1, path.Count - lcp - 1);
            for (int d = lcp + 1; d <= t.Length; d++)
            {
                path.Add(label.Count);
                label.Add(t[d - 1]);
                depth.Add(d);
                end.Add(0);
                first.Add(-1);
            }
            int node = path[t.Length];
            nextToken[id] = first[node];
            first[node] = id;
            prev = t;
            maxDepth = Math.Max(maxDepth, t.Length);
        }
        for (int d = path.Count - 1; d >= 0; d--)
            end[path[d]] = label.Count;
        return new TokenTrie([.. label], [.. depth], [.. end], [.. first], nextToken, maxDepth);
    }
}
