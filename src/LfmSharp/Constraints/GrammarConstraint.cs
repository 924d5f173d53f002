using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;

namespace LfmSharp.Constraints;

/// <summary>
/// Token-level constrained decoding: before each sampling step <see cref="ApplyMask(Span{float})"/> sets the logit of every token
/// that cannot continue a valid document to −∞; after sampling, <see cref="Accept"/> advances. End-of-generation
/// tokens are allowed exactly when the text so far is a complete document; once nothing can follow (a closed object,
/// a finished tool call), they are the only tokens allowed.
/// <para>
/// Cost: one walk of the vocabulary's byte trie per step, evaluating each shared prefix once and skipping whole
/// subtrees at the first rejected byte; no allocation per token. Not thread-safe (one instance per generation).
/// </para>
/// <para>
/// Budget: pass the remaining token budget to <see cref="ApplyMask(Span{float}, int)"/> and the document is
/// complete by the time it runs out (only tokens after which the shortest completion still fits are allowed; every
/// byte is a token in byte-level vocabularies). <see cref="ForceCompletion"/> finishes as soon as possible instead.
/// </para>
/// </summary>
internal sealed class GrammarConstraint
{
    private readonly Grammar _g;
    private readonly TokenVocabulary _vocab;
    private readonly TokenTrie _trie;
    private readonly StackSet[] _levels;   // [max token length + 1] state after the first d bytes of the current trie branch
    private readonly ulong[] _allowed;     // [ceil(vocab / 64)] bit set of allowed ids for the current step
    private readonly int[] _specialIds;    // [grammar special tokens] token id bound to each
    private readonly bool[] _isBound;      // [vocab] ids matched as grammar special tokens, never as bytes
    private readonly bool[] _isEog;        // [vocab]
    private readonly int[] _eogIds;        // end-of-generation ids not bound as grammar special tokens
    private readonly int[] _path;          // [max token length + 1] trie node visited last at each depth
    private readonly int[] _levelOwner;    // [max token length + 1] trie node whose state _levels[d] holds
    private StackSet _state;
    private StackSet _scratch;
    private bool _finished;
    private bool _forcing;

    /// <exception cref="ArgumentException">The vocabulary lacks one of the grammar's special tokens.</exception>
    public GrammarConstraint(Grammar grammar, TokenVocabulary vocabulary)
    {
        ArgumentNullException.ThrowIfNull(grammar);
        ArgumentNullException.ThrowIfNull(vocabulary);
        _g = grammar;
        _vocab = vocabulary;
        _trie = vocabulary.Trie;
        _levels = new StackSet[_trie.MaxDepth + 1];
        for (int d = 0; d < _levels.Length; d++)
            _levels[d] = new StackSet(grammar.Capacity);
        _allowed = new ulong[(vocabulary.Count + 63) / 64];
        _path = new int[_trie.MaxDepth + 1];
        _levelOwner = new int[_trie.MaxDepth + 1];
        _isBound = new bool[vocabulary.Count];
        _isEog = new bool[vocabulary.Count];
        foreach (int id in vocabulary.EndOfGenerationIds)
            _isEog[id] = true;
        _specialIds = new int[grammar.SpecialTokens.Count];
        for (int k = 0; k < _specialIds.Length; k++)
        {
            int id = vocabulary.FindToken(grammar.SpecialTokens[k]);
            if (id < 0)
                throw new ArgumentException($"the vocabulary has no single token for '{grammar.SpecialTokens[k]}', which the grammar needs", nameof(vocabulary));
            _specialIds[k] = id;
            _isBound[id] = true;
            _isEog[id] = false;
        }
        _eogIds = [.. vocabulary.EndOfGenerationIds.Where(id => _isEog[id])];
        _state = new StackSet(grammar.Capacity);
        _scratch = new StackSet(grammar.Capacity);
        _state.Init(grammar.Root);
    }

    public Grammar Grammar => _g;

    public TokenVocabulary Vocabulary => _vocab;

    /// <summary>The text so far is a complete document (end-of-generation tokens are allowed).</summary>
    public bool IsComplete => _finished || GrammarEngine.CanEnd(_g, _state);

    /// <summary>An end-of-generation token has been accepted.</summary>
    public bool IsFinished => _finished;

    public bool IsForcingCompletion => _forcing;

    /// <summary>Fewest further bytes (= tokens, at worst) that complete the document; 0 when complete.</summary>
    public int MinBytesToComplete => _finished ? 0 : GrammarEngine.MinBytes(_g, _state);

    /// <summary>From now on allow only tokens that shorten the shortest way to a complete document.</summary>
    public void ForceCompletion() => _forcing = true;

    public void Reset()
    {
        _state.Init(_g.Root);
        _finished = false;
        _forcing = false;
    }

    /// <summary>
    /// Sets every disallowed logit to −∞. <paramref name="logits"/> may be longer than the vocabulary (padded
    /// output heads); the extra entries are masked too.
    /// </summary>
    /// <exception cref="InvalidOperationException">No token can continue (the vocabulary cannot spell the next byte, or
    /// the document is complete and there is no end-of-generation token): the caller should stop.</exception>
    public void ApplyMask(Span<float> logits) => ApplyMask(logits, int.MaxValue);

    /// <summary>
    /// Like <see cref="ApplyMask(Span{float})"/>, but also keeps the document finishable within
    /// <paramref name="remainingTokens"/> tokens (this one included; the end token is not counted): only tokens after
    /// which the shortest completion still fits are allowed. Pass the same shrinking budget every step; as long as the
    /// first call had <see cref="MinBytesToComplete"/> ≤ budget, the document is complete when the budget runs out.
    /// With too small a budget it falls back to tokens that shorten the way to completion.
    /// </summary>
    public void ApplyMask(Span<float> logits, int remainingTokens)
    {
        if (logits.Length < _vocab.Count)
            throw new ArgumentException($"expected at least {_vocab.Count} logits, got {logits.Length}", nameof(logits));
        ArgumentOutOfRangeException.ThrowIfLessThan(remainingTokens, 1);
        int limit = remainingTokens == int.MaxValue ? int.MaxValue : remainingTokens - 1;
        int d0 = -1;
        if (_forcing && !_finished)
        {
            d0 = GrammarEngine.MinBytes(_g, _state);
            limit = Math.Min(limit, d0 - 1);
        }
        int count = ComputeAllowed(limit);
        if (count == 0 && limit != int.MaxValue)
        {
            // The budget is already too small (or the distance estimate has no decreasing token): best effort.
            if (d0 < 0)
                d0 = GrammarEngine.MinBytes(_g, _state);
            if (d0 - 1 != limit)
                count = ComputeAllowed(d0 - 1);
            if (count == 0)
                count = ComputeAllowed(int.MaxValue);
        }
        if (count == 0)
            throw new InvalidOperationException(IsComplete
                ? "the document is complete and the vocabulary has no end-of-generation token: stop generating"
                : "no token of the vocabulary can continue the document here");
        var allowed = _allowed;
        int n = _vocab.Count;
        for (int w = 0; w < allowed.Length; w++)
        {
            ulong bits = allowed[w];
            if (bits == ulong.MaxValue)
                continue;
            int start = w * 64;
            int stop = Math.Min(start + 64, n);
            if (bits == 0)
            {
                logits[start..stop].Fill(float.NegativeInfinity);
                continue;
            }
            for (int id = start; id < stop; id++)
            {
                if ((bits & (1UL << (id - start))) == 0)
                    logits[id] = float.NegativeInfinity;
            }
        }
        logits[n..].Fill(float.NegativeInfinity);
    }

    /// <summary>True when <paramref name="tokenId"/> may come next (ignores <see cref="ForceCompletion"/>).</summary>
    public bool IsAllowed(int tokenId)
    {
        if ((uint)tokenId >= (uint)_vocab.Count)
            return false;
        if (_finished)
            return _isEog[tokenId];
        if (_isEog[tokenId])
            return GrammarEngine.CanEnd(_g, _state);
        return TryStep(tokenId, out _);
    }

    /// <summary>Advances by one sampled token.</summary>
    /// <exception cref="InvalidOperationException">The token is not allowed here (the state is unchanged).</exception>
    public void Accept(int tokenId)
    {
        if ((uint)tokenId >= (uint)_vocab.Count)
            throw new ArgumentOutOfRangeException(nameof(tokenId), $"token id {tokenId} is outside the vocabulary (size {_vocab.Count})");
        if (_finished)
            throw new InvalidOperationException("the document is finished: an end-of-generation token was already accepted");
        if (_isEog[tokenId])
        {
            if (!GrammarEngine.CanEnd(_g, _state))
                throw new InvalidOperationException($"end-of-generation token {tokenId} before the document is complete");
            _finished = true;
            return;
        }
        if (!TryStep(tokenId, out string? why))
            throw new InvalidOperationException($"token {tokenId} {Describe(tokenId)} is not allowed here: {why}");
        (_state, _scratch) = (_scratch, _state);
    }

    private bool TryStep(int tokenId, out string? why)
    {
        _scratch.CopyFrom(_state);
        if (_isBound[tokenId])
        {
            int k = Array.IndexOf(_specialIds, tokenId);
            why = "the grammar does not expect this special token here";
            return GrammarEngine.Step(_g, _scratch, 256 + k);
        }
        if (_vocab.IsSpecial(tokenId))
        {
            why = "special tokens cannot be part of the document";
            return false;
        }
        var bytes = _vocab.GetBytes(tokenId);
        if (bytes.Length == 0)
        {
            why = "the token has no bytes";
            return false;
        }
        for (int i = 0; i < bytes.Length; i++)
        {
            if (!GrammarEngine.Step(_g, _scratch, bytes[i]))
            {
                why = $"byte {i} (0x{bytes[i]:X2}) breaks the document";
                return false;
            }
        }
        why = null;
        return true;
    }

    private string Describe(int tokenId)
    {
        var text = Encoding.UTF8.GetString(_vocab.GetBytes(tokenId));
        var sb = new StringBuilder("'");
        foreach (char c in text)
            sb.Append(c < 0x20 ? $"\\x{(int)c:X2}" : c.ToString());
        return sb.Append('\'').ToString();
    }

    /// <summary>Marks the allowed ids; with a <paramref name="limit"/>, only those after which MinBytes ≤ limit.</summary>
    private int ComputeAllowed(int limit)
    {
        Array.Clear(_allowed);
        if (_finished)
        {
            AllowEog();
            return AllowedCount();
        }
        bool complete = GrammarEngine.CanEnd(_g, _state);
        bool check = limit != int.MaxValue;

        // Walk the vocabulary trie in preorder; _levels[d] holds the state after the branch's first d bytes.
        // Inside a string body, nodes whose path is plain content skip the state work entirely: the state after
        // them is the current one with the top frame's character count and UTF-8 sub-state advanced (precomputed
        // in the trie); it is only materialised when a child leaves plain content (a quote, an escape, …).
        var trie = _trie;
        var label = trie.Label;
        var depth = trie.Depth;
        var end = trie.SubtreeEnd;
        var first = trie.FirstToken;
        var plainString = trie.PlainString;
        var plainChars = trie.PlainChars;
        var plainSub = trie.PlainSub;
        bool plain = GrammarEngine.PlainStringTop(_g, _state, out bool countsChars, out int maxChars);
        Frame top = plain ? _state.Frames[_state.Depth[0] - 1] : default;
        long below = plain && check ? GrammarEngine.RemainingBelowTop(_g, _state) : 0;
        // Plain content moves the distance by at most +3 (an unfinished UTF-8 sequence), so with that much slack every
        // plain token within the length limit is allowed at once, and all-plain subtrees need no visit.
        bool bulk = plain && (!check || below + GrammarEngine.Remaining(_g, top, true) + 3 <= limit);
        if (bulk)
            AllowAllPlain(in top, countsChars, maxChars);
        var plainSubtree = trie.PlainSubtree;
        Array.Fill(_levelOwner, -1);
        int nodes = trie.NodeCount;
        int i = 1;
        while (i < nodes)
        {
            int d = depth[i];
            _path[d] = i;
            int t;
            if (plain && plainString[i])
            {
                if (countsChars && top.Count + plainChars[i] > maxChars)
                {
                    i = end[i]; // deeper bytes only add characters
                    continue;
                }
                if (bulk)
                {
                    i = plainSubtree[i] ? end[i] : i + 1; // its tokens are in already
                    continue;
                }
                t = first[i];
                if (t >= 0 && (!check || below + GrammarEngine.Remaining(_g, PlainFrame(top, countsChars, plainChars[i], plainSub[i]), true) <= limit))
                    Allow(t);
                i++;
                continue;
            }
            StackSet src = d > 1 ? ParentLevel(d, plain, in top, countsChars) : _state;
            StackSet dst = _levels[d];
            dst.CopyFrom(src);
            _levelOwner[d] = i;
            if (!GrammarEngine.Step(_g, dst, label[i]))
            {
                i = end[i]; // no token with this prefix can follow
                continue;
            }
            t = first[i];
            if (t >= 0 && (!check || GrammarEngine.MinBytes(_g, dst) <= limit))
                Allow(t);
            i++;
        }

        AllowSpecials(check, limit);
        if (complete)
            AllowEog();
        return AllowedCount();
    }

    /// <summary>
    /// Bulk path inside a string body: every token that is plain content (and fits the length limit) is allowed at once.
    /// </summary>
    private void AllowAllPlain(in Frame top, bool countsChars, int maxChars)
    {
        var trie = _trie;
        var plainTokens = trie.PlainTokens;
        if (!countsChars || (long)top.Count + trie.MaxPlainChars <= maxChars)
            plainTokens.AsSpan().CopyTo(_allowed);
        else
        {
            int room = maxChars - top.Count;
            var chars = trie.TokenPlainChars;
            for (int t = 0; t < chars.Length; t++)
            {
                if ((uint)chars[t] <= (uint)room)
                    _allowed[t >> 6] |= 1UL << (t & 63);
            }
        }
        foreach (int id in _specialIds)
            _allowed[id >> 6] &= ~(1UL << (id & 63)); // grammar special tokens are decided by AllowSpecials, never as text
    }

    /// <summary>
    /// The state after the parent of a depth-<paramref name="d"/> trie node; a plain-content parent's level is only
    /// materialised here, when a child leaves plain content.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private StackSet ParentLevel(int d, bool plain, in Frame top, bool countsChars)
    {
        int parent = _path[d - 1];
        StackSet src = _levels[d - 1];
        if (plain && _trie.PlainString[parent] && _levelOwner[d - 1] != parent)
        {
            src.CopyFrom(_state);
            src.Frames[src.Depth[0] - 1] = PlainFrame(top, countsChars, _trie.PlainChars[parent], _trie.PlainSub[parent]);
            _levelOwner[d - 1] = parent;
        }
        return src;
    }

    /// <summary>The grammar's special tokens (tool-call markers), each decided by stepping it as one symbol.</summary>
    private void AllowSpecials(bool check, int limit)
    {
        for (int k = 0; k < _specialIds.Length; k++)
        {
            _scratch.CopyFrom(_state);
            if (GrammarEngine.Step(_g, _scratch, 256 + k) && (!check || GrammarEngine.MinBytes(_g, _scratch) <= limit))
            {
                int id = _specialIds[k];
                _allowed[id >> 6] |= 1UL << (id & 63);
            }
        }
    }

    /// <summary>Allows every token of one trie node (they share their bytes).</summary>
    private void Allow(int t)
    {
        for (; t >= 0; t = _trie.NextToken[t])
        {
            if (!_isBound[t])
                _allowed[t >> 6] |= 1UL << (t & 63);
        }
    }

    private static Frame PlainFrame(Frame top, bool countsChars, int chars, byte sub)
    {
        if (countsChars)
            top.Count += chars;
        top.Sub = sub;
        return top;
    }

    private void AllowEog()
    {
        foreach (int id in _eogIds)
            _allowed[id >> 6] |= 1UL << (id & 63);
    }

    /// <summary>Number of tokens the last <see cref="ApplyMask(Span{float})"/> allowed.</summary>
    internal int AllowedCount()
    {
        int c = 0;
        foreach (ulong w in _allowed)
            c += BitOperations.PopCount(w);
        return c;
    }
}
