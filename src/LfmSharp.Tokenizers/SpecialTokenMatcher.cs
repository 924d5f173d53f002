using System.Buffers;
using System.Text;

namespace LfmSharp.Tokenizers;

/// <summary>One piece of input text: either plain text to BPE-encode (<see cref="TokenId"/> = -1) or one special token.</summary>
internal readonly record struct TextSegment(int Start, int Length, int TokenId);

/// <summary>
/// Splits special-token texts out of the input before BPE, with the result of llama.cpp's
/// <c>tokenizer_st_partition</c>: candidates are the tokens whose attributes include control, user-defined or unknown;
/// without special parsing only user-defined ones count. llama.cpp takes the candidates one at a time, longest text
/// (in UTF-8 bytes) first, and splits every occurrence that lies wholly inside text not yet claimed, left to right.
/// Here one trie pass finds every occurrence; when none overlap (the usual case) they are all taken, otherwise they
/// are resolved in that same priority order.
/// </summary>
internal sealed class SpecialTokenMatcher
{
    private readonly Vocabulary _vocab;
    private readonly Dictionary<long, int> _edges = new();       // (node << 16 | char) -> child node
    private readonly List<int> _terminal = [-1];                  // [nodes] token id ending at the node, or -1
    private readonly Dictionary<int, int> _priority = new();      // token id -> rank in llama.cpp's processing order
    private readonly SearchValues<char>? _firstChars;

    public SpecialTokenMatcher(Vocabulary vocab)
    {
        _vocab = vocab;
        var candidates = new List<int>();
        for (int id = 0; id < vocab.Count; id++)
        {
            if ((vocab.AttributesUnchecked(id) & (TokenAttributes.Control | TokenAttributes.UserDefined | TokenAttributes.Unknown)) != 0)
                candidates.Add(id);
        }

        // llama.cpp sorts by UTF-8 length, longest first (std::sort, so equal lengths have no defined order; ids ascending here).
        var lengths = new Dictionary<int, int>(candidates.Count);
        foreach (int id in candidates)
            lengths[id] = Encoding.UTF8.GetByteCount(vocab[id]);
        candidates.Sort((a, b) => lengths[a] != lengths[b] ? lengths[b].CompareTo(lengths[a]) : a.CompareTo(b));
        for (int i = 0; i < candidates.Count; i++)
            _priority[candidates[i]] = i;

        var first = new HashSet<char>();
        foreach (int id in candidates)
        {
            string text = vocab[id];
            int node = 0;
            foreach (char c in text)
            {
                long key = ((long)node << 16) | c;
                if (!_edges.TryGetValue(key, out int child))
                {
                    child = _terminal.Count;
                    _terminal.Add(-1);
                    _edges.Add(key, child);
                }
                node = child;
            }
            _terminal[node] = id;
            first.Add(text[0]);
        }
        if (first.Count > 0)
            _firstChars = SearchValues.Create([.. first]);
        CandidateCount = candidates.Count;
    }

    public int CandidateCount { get; }

    /// <summary>Appends the segments of <paramref name="text"/> in order (text gaps and special tokens).</summary>
    public void Split(ReadOnlySpan<char> text, bool parseSpecial, List<TextSegment> output)
    {
        if (text.IsEmpty)
            return;
        if (_firstChars is null)
        {
            output.Add(new TextSegment(0, text.Length, -1));
            return;
        }

        List<TextSegment>? matches = null;
        bool overlap = false;
        int maxEnd = 0;
        int pos = 0;
        while (pos < text.Length)
        {
            int hit = text[pos..].IndexOfAny(_firstChars);
            if (hit < 0)
                break;
            int start = pos + hit;
            int node = 0;
            for (int j = start; j < text.Length; j++)
            {
                if (!_edges.TryGetValue(((long)node << 16) | text[j], out node))
                    break;
                int id = _terminal[node];
                if (id >= 0 && (parseSpecial || (_vocab.AttributesUnchecked(id) & (TokenAttributes.Control | TokenAttributes.Unknown)) == 0))
                {
                    matches ??= [];
                    if (start < maxEnd)
                        overlap = true;
                    matches.Add(new TextSegment(start, j - start + 1, id));
                    maxEnd = Math.Max(maxEnd, j + 1);
                }
            }
            pos = start + 1;
        }

        if (matches is null)
        {
            output.Add(new TextSegment(0, text.Length, -1));
            return;
        }

        if (overlap)
            matches = Resolve(matches, text.Length);

        int cursor = 0;
        foreach (var m in matches)
        {
            if (m.Start > cursor)
                output.Add(new TextSegment(cursor, m.Start - cursor, -1));
            output.Add(m);
            cursor = m.Start + m.Length;
        }
        if (cursor < text.Length)
            output.Add(new TextSegment(cursor, text.Length - cursor, -1));
    }

    // llama.cpp's order: for each candidate by priority, accept its occurrences left to right when they fall wholly in
    // unclaimed text (which also excludes overlapping occurrences of the same token).
    private List<TextSegment> Resolve(List<TextSegment> matches, int textLength)
    {
        matches.Sort((a, b) =>
        {
            int pa = _priority[a.TokenId], pb = _priority[b.TokenId];
            return pa != pb ? pa.CompareTo(pb) : a.Start.CompareTo(b.Start);
        });
        var claimed = new bool[textLength];
        var accepted = new List<TextSegment>(matches.Count);
        foreach (var m in matches)
        {
            if (claimed.AsSpan(m.Start, m.Length).Contains(true))
                continue;
            claimed.AsSpan(m.Start, m.Length).Fill(true);
            accepted.Add(m);
        }
        accepted.Sort((a, b) => a.Start.CompareTo(b.Start));
        return accepted;
    }
}
