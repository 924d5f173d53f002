namespace LfmSharp.Constraints;

// The compiled form of a grammar: a graph of nodes addressed by index. Every node matches a non-empty byte string
// (special tokens count as one symbol). Nodes are immutable once Grammar.Finish has run; the runtime
// (GrammarEngine) keeps its mutable progress in Frames, never in nodes.

internal enum NodeKind : byte
{
    /// <summary>A value whose kind is chosen by its first byte ({ [ " - digit, else a literal).</summary>
    Dispatch,
    Object,
    Array,
    String,
    Number,
    /// <summary>One of a fixed set of byte strings (true/false/null, enum and const values, fixed syntax).</summary>
    Literal,
    /// <summary>Exactly one special token (matched by id, never by its text).</summary>
    Special,
    Sequence,
    /// <summary>Alternatives that may share a prefix (anyOf / oneOf); the runtime forks.</summary>
    Union,
    /// <summary>Alternatives told apart by a prefix-free set of opening byte strings (tool names): no fork.</summary>
    Switch,
}

/// <summary>Which whitespace a gap between tokens of a structure accepts.</summary>
internal enum WsMode : byte
{
    None,
    /// <summary>At most one space.</summary>
    Space,
    /// <summary>One space, or one newline followed by at most MaxIndent spaces/tabs.</summary>
    Flexible,
}

internal abstract class GNode(NodeKind kind)
{
    public readonly NodeKind Kind = kind;

    /// <summary>Fewest bytes (symbols) that complete this node from scratch; <see cref="Infinite"/> when it cannot complete.</summary>
    public int MinLen = Infinite;

    /// <summary>Part of the self-recursive "any JSON value" family (its nesting is limited at run time).</summary>
    public bool IsAny;

    /// <summary>[4] bit set of the bytes the node can start with (an over-approximation is fine: it only filters forks).</summary>
    public ulong[] First = new ulong[4];

    public bool CanStartWith(int symbol) => symbol > 255 || (First[symbol >> 6] & (1UL << (symbol & 63))) != 0;

    public const int Infinite = int.MaxValue / 4;

    /// <summary>Approximate bytes the node holds (for caches that bound their memory).</summary>
    public virtual long EstimatedBytes => 96;
}

internal sealed class DispatchNode() : GNode(NodeKind.Dispatch)
{
    public int Object = -1, Array = -1, String = -1, Number = -1, Literal = -1;
}

internal sealed class Prop
{
    public required string Name;
    /// <summary>The full key bytes including quotes and the separator: <c>"name":</c> or <c>name=</c>.</summary>
    public required byte[] Key;
    public required int Value;
    public required bool Required;
}

internal sealed class ObjectNode() : GNode(NodeKind.Object)
{
    public byte[] Open = "{"u8.ToArray();
    public byte Close = (byte)'}';
    /// <summary>Keyword-argument syntax (<c>name=value</c>) instead of quoted JSON keys.</summary>
    public bool BareKeys;
    public byte KeySeparator = (byte)':';
    public WsMode WsAfterOpen, WsAfterSeparator, WsAfterComma, WsBeforeClose;
    /// <summary>Defined properties in emission order (required ones cannot be skipped).</summary>
    public Prop[] Props = [];
    /// <summary>Value node of additional (free) keys; -1 when they are not allowed.</summary>
    public int Additional = -1;
    /// <summary>Python string dialect for free keys.</summary>
    public bool Python;

    // Built by Grammar.Finish.
    public ByteTrie? KeyTrie;
    /// <summary>[n + 1] index of the first required property at or after a cursor, n when none.</summary>
    public int[] FirstRequired = [];
    /// <summary>[(n + 1) × words] bit mask of the properties that may come next at a cursor.</summary>
    public ulong[] WindowMasks = [];
    public int MaskWords;
    /// <summary>[n + 1] bytes that the required properties at or after a cursor need, each with a leading comma.</summary>
    public int[] RequiredSuffix = [];
    /// <summary>[n] key bytes + the value's MinLen.</summary>
    public int[] PropCost = [];
    /// <summary>Fewest bytes of a free key with its separator (<c>"":</c> or <c>a=</c>) plus the additional value.</summary>
    public int FreeCost;

    public bool FreeKeysAllowedAt(int cursor) => Additional >= 0 && FirstRequired[cursor] == Props.Length;
    public bool CanCloseAt(int cursor) => FirstRequired[cursor] == Props.Length;
    public bool FreeKeyEscapes => Props.Length == 0;

    public override long EstimatedBytes => 160 + Props.Length * 80L + WindowMasks.Length * 8L + (KeyTrie?.EstimatedBytes ?? 0);
}

internal sealed class ArrayNode() : GNode(NodeKind.Array)
{
    public byte Open = (byte)'[', Close = (byte)']';
    public int Item = -1;
    public int Min, Max = int.MaxValue;
    public WsMode WsAfterOpen, WsAfterComma, WsBeforeClose;
}

internal sealed class StringNode() : GNode(NodeKind.String)
{
    /// <summary>Length limits in code points (a surrogate-pair escape is one).</summary>
    public int Min, Max = int.MaxValue;
    /// <summary>Python dialect: no <c>\/</c> escape and no surrogate escapes (Python would keep the halves apart).</summary>
    public bool Python;
}

internal sealed class NumberNode() : GNode(NodeKind.Number)
{
    public bool Integer;
    /// <summary>Integer bounds (inclusive), only when <see cref="Bounded"/>.</summary>
    public bool Bounded;
    public long Min = long.MinValue, Max = long.MaxValue;
}

internal sealed class LiteralNode() : GNode(NodeKind.Literal)
{
    public required ByteTrie Trie;

    public override long EstimatedBytes => 96 + Trie.EstimatedBytes;
}

internal sealed class SpecialNode() : GNode(NodeKind.Special)
{
    /// <summary>Index into <see cref="Grammar.SpecialTokens"/>; the symbol is 256 + Index.</summary>
    public int Index;
}

internal sealed class SequenceNode() : GNode(NodeKind.Sequence)
{
    public int[] Children = [];
    /// <summary>[n + 1] sum of the children's MinLen from an index to the end.</summary>
    public int[] SuffixMin = [];
}

internal sealed class UnionNode() : GNode(NodeKind.Union)
{
    public int[] Alternatives = [];
}

/// <summary>
/// One of several objects, chosen by its opening bytes (each target's <see cref="ObjectNode.Open"/>, e.g.
/// <c>get_weather(</c>); the opening bytes are prefix-free, so the choice is made without forking and the frame
/// becomes the chosen object right after its opening bytes.
/// </summary>
internal sealed class SwitchNode() : GNode(NodeKind.Switch)
{
    public int[] Targets = [];
    /// <summary>Built by Grammar.Finish over the targets' opening bytes; terminal k leads to Targets[k].</summary>
    public ByteTrie? Trie;

    public override long EstimatedBytes => 96 + Targets.Length * 4L + (Trie?.EstimatedBytes ?? 0);
}

/// <summary>
/// A small byte trie for literal alternatives and object keys. Node 0 is the root. Children are kept as sibling
/// lists (grammar literals have few branches), terminals carry the index of the key they end.
/// </summary>
internal sealed class ByteTrie
{
    private readonly int[] _firstChild;  // [nodes]
    private readonly int[] _nextSibling; // [nodes]
    private readonly byte[] _label;      // [nodes] byte on the edge into the node
    private readonly int[] _terminal;    // [nodes] key index or -1
    private readonly int[] _depth;       // [nodes]
    private readonly int[] _minToEnd;    // [nodes] fewest bytes from the node to a terminal
    private readonly ulong[] _masks;     // [nodes × words] keys ending in the subtree

    private ByteTrie(int[] firstChild, int[] nextSibling, byte[] label, int[] terminal, int[] depth, int[] minToEnd, ulong[] masks, int words)
    {
        _firstChild = firstChild;
        _nextSibling = nextSibling;
        _label = label;
        _terminal = terminal;
        _depth = depth;
        _minToEnd = minToEnd;
        _masks = masks;
        Words = words;
    }

    public int Words { get; }
    public int NodeCount => _label.Length;

    /// <summary>Approximate bytes held (six ints and a byte per node, plus the masks).</summary>
    public long EstimatedBytes => 64 + _label.Length * 25L + _masks.Length * 8L;

    public int Child(int node, int symbol)
    {
        if ((uint)symbol > 255)
            return -1;
        for (int c = _firstChild[node]; c >= 0; c = _nextSibling[c])
        {
            if (_label[c] == symbol)
                return c;
        }
        return -1;
    }

    public bool HasChildren(int node) => _firstChild[node] >= 0;
    public int Terminal(int node) => _terminal[node];
    public int Depth(int node) => _depth[node];
    public int MinToEnd(int node) => _minToEnd[node];

    /// <summary>True when a key with index in [lo, hi] ends at or below <paramref name="node"/>.</summary>
    public bool SubtreeHasAny(int node, ReadOnlySpan<ulong> window)
    {
        var m = _masks.AsSpan(node * Words, Words);
        for (int w = 0; w < m.Length; w++)
        {
            if ((m[w] & window[w]) != 0)
                return true;
        }
        return false;
    }

    /// <summary>
    /// Builds the trie; duplicate keys keep the first index. Keys must be non-empty. <paramref name="subtreeMasks"/>
    /// adds the per-node key sets <see cref="SubtreeHasAny"/> needs (object keys only): they cost nodes × keys / 64
    /// words, which for a large enum would be gigabytes.
    /// </summary>
    public static ByteTrie Build(IReadOnlyList<byte[]> keys, bool subtreeMasks)
    {
        int words = subtreeMasks ? Math.Max(1, (keys.Count + 63) / 64) : 0;
        var firstChild = new List<int> { -1 };
        var nextSibling = new List<int> { -1 };
        var label = new List<byte> { 0 };
        var terminal = new List<int> { -1 };
        var depth = new List<int> { 0 };
        var lastChild = new List<int> { -1 };
        for (int k = 0; k < keys.Count; k++)
        {
            var key = keys[k];
            if (key.Length == 0)
                throw new ArgumentException("a literal or key must not be empty");
            int node = 0;
            foreach (byte b in key)
            {
                int c = -1;
                for (int x = firstChild[node]; x >= 0; x = nextSibling[x])
                {
                    if (label[x] == b)
                    {
                        c = x;
                        break;
                    }
                }
                if (c < 0)
                {
                    c = label.Count;
                    firstChild.Add(-1);
                    nextSibling.Add(-1);
                    label.Add(b);
                    terminal.Add(-1);
                    depth.Add(depth[node] + 1);
                    lastChild.Add(-1);
                    if (lastChild[node] < 0)
                        firstChild[node] = c;
                    else
                        nextSibling[lastChild[node]] = c;
                    lastChild[node] = c;
                }
                node = c;
            }
            if (terminal[node] < 0)
                terminal[node] = k;
        }
        int n = label.Count;
        var minToEnd = new int[n];
        var masks = new ulong[checked(n * words)];
        // Children always have larger indices than their parent, so one reverse sweep aggregates subtrees.
        for (int node = n - 1; node >= 0; node--)
        {
            int best = terminal[node] >= 0 ? 0 : GNode.Infinite;
            if (terminal[node] >= 0 && words > 0)
                masks[node * words + terminal[node] / 64] |= 1UL << (terminal[node] % 64);
            for (int c = firstChild[node]; c >= 0; c = nextSibling[c])
            {
                best = Math.Min(best, minToEnd[c] + 1);
                for (int w = 0; w < words; w++)
                    masks[node * words + w] |= masks[c * words + w];
            }
            minToEnd[node] = best;
        }
        return new ByteTrie([.. firstChild], [.. nextSibling], [.. label], [.. terminal], [.. depth], minToEnd, masks, words);
    }

    /// <summary>Is <paramref name="node"/> on the path of key <paramref name="key"/> (i.e. a prefix of it)?</summary>
    public bool IsPrefixOf(int node, byte[] key)
    {
        int d = _depth[node];
        if (d > key.Length)
            return false;
        int x = 0;
        for (int i = 0; i < d; i++)
        {
            x = Child(x, key[i]);
            if (x < 0)
                return false;
        }
        return x == node;
    }
}
