using System.Text;

namespace LfmSharp.Constraints;

/// <summary>Collects nodes, then computes the tables the runtime needs (<see cref="Finish"/>).</summary>
internal sealed class GrammarBuilder
{
    public readonly List<GNode> Nodes = [];
    public readonly List<string> Specials = [];
    public readonly List<string> Ignored = [];
    public readonly JsonGrammarOptions Options;
    private readonly int[] _anyValue = [-1, -1];

    public GrammarBuilder(JsonGrammarOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Budget = new GrammarBudget(options.Limits);
    }

    /// <summary>What this compile may still spend (time, literal bytes).</summary>
    public GrammarBudget Budget { get; }

    public int Add(GNode node)
    {
        // A large recursive schema unrolled too far must not run away.
        int max = Options.Limits.MaxStates;
        if (Nodes.Count >= max)
            throw new GrammarLimitException("grammar states", $"the grammar needs more than {max} states (a recursive schema unrolled too far, or a very large schema?) (limit: grammar states)");
        Budget.Tick();
        Nodes.Add(node);
        return Nodes.Count - 1;
    }

    public WsMode WsOpenClose => Options.Whitespace == JsonWhitespace.Flexible ? WsMode.Flexible : WsMode.None;
    public WsMode WsComma => Options.Whitespace switch { JsonWhitespace.Flexible => WsMode.Flexible, JsonWhitespace.SingleSpace => WsMode.Space, _ => WsMode.None };
    public WsMode WsColon => Options.Whitespace == JsonWhitespace.Compact ? WsMode.None : WsMode.Space;

    public ObjectNode NewJsonObject(bool python) => new()
    {
        Python = python,
        WsAfterOpen = WsOpenClose,
        WsAfterSeparator = WsColon,
        WsAfterComma = WsComma,
        WsBeforeClose = WsOpenClose,
    };

    public ArrayNode NewJsonArray() => new()
    {
        WsAfterOpen = WsOpenClose,
        WsAfterComma = WsComma,
        WsBeforeClose = WsOpenClose,
    };

    /// <summary>The self-recursive "any JSON value" (one per dialect); its containers nest at most MaxNestingDepth deep.</summary>
    public int AnyValue(bool python)
    {
        int k = python ? 1 : 0;
        if (_anyValue[k] >= 0)
            return _anyValue[k];
        var dispatch = new DispatchNode { IsAny = true };
        int id = Add(dispatch);
        _anyValue[k] = id;
        var obj = NewJsonObject(python);
        obj.IsAny = true;
        obj.Additional = id;
        dispatch.Object = Add(obj);
        var arr = NewJsonArray();
        arr.IsAny = true;
        arr.Item = id;
        dispatch.Array = Add(arr);
        dispatch.String = Add(new StringNode { Python = python });
        dispatch.Number = Add(new NumberNode());
        dispatch.Literal = Literal([Keyword("true", python), Keyword("false", python), Keyword("null", python)]);
        return id;
    }

    /// <summary>true/false/null spelled for the dialect (Python: True/False/None).</summary>
    public static byte[] Keyword(string json, bool python) => Encoding.UTF8.GetBytes(!python ? json : json switch
    {
        "true" => "True",
        "false" => "False",
        _ => "None",
    });

    public int Literal(IReadOnlyList<byte[]> alternatives)
    {
        if (alternatives.Count == 0)
            return Never();
        long bytes = 0;
        foreach (var a in alternatives)
            bytes += a.Length;
        Budget.AddLiteralBytes(bytes);
        return Add(new LiteralNode { Trie = ByteTrie.Build(alternatives, subtreeMasks: false) });
    }

    public int Special(string text)
    {
        int index = Specials.IndexOf(text);
        if (index < 0)
        {
            index = Specials.Count;
            Specials.Add(text);
        }
        return Add(new SpecialNode { Index = index });
    }

    /// <summary>A node no document satisfies (removed again by <see cref="Finish"/>).</summary>
    public int Never() => Add(new UnionNode());

    public Grammar Finish(int root)
    {
        var nodes = Nodes.ToArray();
        ComputeMinLengths(nodes, Budget);
        if (nodes[root].MinLen >= GNode.Infinite)
            throw new ArgumentException("no document can satisfy this schema (contradictory constraints, or it needs deeper recursion than MaxRecursionDepth)");
        Prune(nodes);
        foreach (var node in nodes)
        {
            if (node.MinLen >= GNode.Infinite)
                continue;
            switch (node)
            {
                case ObjectNode o:
                    BuildObjectTables(nodes, o);
                    break;
                case SequenceNode s:
                    s.SuffixMin = new int[s.Children.Length + 1];
                    for (int i = s.Children.Length - 1; i >= 0; i--)
                        s.SuffixMin[i] = Sat(s.SuffixMin[i + 1] + (long)nodes[s.Children[i]].MinLen);
                    break;
                case SwitchNode w:
                    w.Trie = ByteTrie.Build([.. w.Targets.Select(t => ((ObjectNode)nodes[t]).Open)], subtreeMasks: false);
                    for (int k = 0; k < w.Targets.Length; k++)
                    {
                        int end = EndOf(w.Trie, ((ObjectNode)nodes[w.Targets[k]]).Open);
                        if (w.Trie.Terminal(end) != k || w.Trie.HasChildren(end))
                            throw new InvalidOperationException("switch openings must be distinct and prefix-free");
                    }
                    break;
            }
        }
        Budget.CheckTime();
        ComputeFirstSets(nodes, Budget);
        int need = DepthNeed(nodes, root, new int[nodes.Length], Options.MaxNestingDepth);
        return new Grammar(nodes, root, need + 2, Options.MaxIndent, Options.MaxNestingDepth, [.. Specials], [.. Ignored]);
    }

    private static int Sat(long v) => (int)Math.Min(v, GNode.Infinite);

    private static int EndOf(ByteTrie trie, byte[] key)
    {
        int x = 0;
        foreach (byte b in key)
            x = trie.Child(x, b);
        return x;
    }

    /// <summary>First-byte sets, a fixpoint because sequences and unions defer to their children.</summary>
    private static void ComputeFirstSets(GNode[] nodes, GrammarBudget budget)
    {
        static void Add(ulong[] set, int b) => set[b >> 6] |= 1UL << (b & 63);
        foreach (var node in nodes)
        {
            switch (node)
            {
                case ObjectNode o:
                    Add(o.First, o.Open[0]);
                    break;
                case ArrayNode a:
                    Add(a.First, a.Open);
                    break;
                case StringNode:
                    Add(node.First, '"');
                    break;
                case NumberNode:
                    Add(node.First, '-');
                    for (int d = '0'; d <= '9'; d++)
                        Add(node.First, d);
                    break;
                case LiteralNode l:
                    for (int b = 0; b < 256; b++)
                    {
                        if (l.Trie.Child(0, b) >= 0)
                            Add(node.First, b);
                    }
                    break;
                case SwitchNode w when w.Trie is not null:
                    for (int b = 0; b < 256; b++)
                    {
                        if (w.Trie.Child(0, b) >= 0)
                            Add(node.First, b);
                    }
                    break;
            }
        }
        bool changed = true;
        while (changed)
        {
            changed = false;
            budget.CheckTime();
            foreach (var node in nodes)
            {
                IEnumerable<int> from = node switch
                {
                    DispatchNode d => new[] { d.Object, d.Array, d.String, d.Number, d.Literal },
                    SequenceNode s when s.Children.Length > 0 => [s.Children[0]],
                    UnionNode u => u.Alternatives,
                    _ => [],
                };
                foreach (int c in from)
                {
                    if (c < 0)
                        continue;
                    for (int w = 0; w < 4; w++)
                    {
                        ulong merged = node.First[w] | nodes[c].First[w];
                        if (merged != node.First[w])
                        {
                            node.First[w] = merged;
                            changed = true;
                        }
                    }
                }
            }
        }
    }

    /// <summary>Least fixpoint of the shortest-completion lengths (the any-value family is recursive).</summary>
    private static void ComputeMinLengths(GNode[] nodes, GrammarBudget budget)
    {
        bool changed = true;
        while (changed)
        {
            changed = false;
            budget.CheckTime();
            foreach (var node in nodes)
            {
                int m = MinLen(nodes, node);
                if (m < node.MinLen)
                {
                    node.MinLen = m;
                    changed = true;
                }
            }
        }
    }

    private static int Len(GNode[] nodes, int id) => id < 0 ? GNode.Infinite : nodes[id].MinLen;

    private static int MinLen(GNode[] nodes, GNode node)
    {
        switch (node)
        {
            case DispatchNode d:
                return Math.Min(Math.Min(Len(nodes, d.Object), Len(nodes, d.Array)),
                    Math.Min(Math.Min(Len(nodes, d.String), Len(nodes, d.Number)), Len(nodes, d.Literal)));
            case ObjectNode o:
            {
                long sum = o.Open.Length + 1;
                int required = 0;
                foreach (var p in o.Props)
                {
                    if (!p.Required)
                        continue;
                    sum += p.Key.Length + (long)Len(nodes, p.Value);
                    required++;
                }
                if (required > 1)
                    sum += required - 1;
                return Sat(sum);
            }
            case ArrayNode a:
                if (a.Min > a.Max)
                    return GNode.Infinite;
                return a.Min == 0 ? 2 : Sat(2 + a.Min * (long)Len(nodes, a.Item) + (a.Min - 1));
            case StringNode s:
                return s.Min > s.Max ? GNode.Infinite : Sat(2L + s.Min);
            case NumberNode n:
                if (!n.Bounded)
                    return 1;
                if (n.Min > n.Max)
                    return GNode.Infinite;
                if (n.Min <= 0 && n.Max >= 0)
                    return 1;
                return n.Min > 0 ? NumberStepper.Digits(n.Min) : 1 + NumberStepper.Digits(n.Max);
            case LiteralNode l:
                return l.Trie.MinToEnd(0);
            case SpecialNode:
                return 1;
            case SequenceNode s:
            {
                long sum = 0;
                foreach (int c in s.Children)
                    sum += Len(nodes, c);
                return Sat(sum);
            }
            case UnionNode u:
            {
                int m = GNode.Infinite;
                foreach (int c in u.Alternatives)
                    m = Math.Min(m, Len(nodes, c));
                return m;
            }
            case SwitchNode w:
            {
                int m = GNode.Infinite;
                foreach (int c in w.Targets)
                    m = Math.Min(m, Len(nodes, c));
                return m;
            }
            default:
                throw new InvalidOperationException("unknown node " + node.GetType().Name);
        }
    }

    /// <summary>Removes every choice that cannot complete, so the runtime never enters a dead end.</summary>
    private static void Prune(GNode[] nodes)
    {
        bool Dead(int id) => id < 0 || nodes[id].MinLen >= GNode.Infinite;
        foreach (var node in nodes)
        {
            switch (node)
            {
                case DispatchNode d:
                    if (Dead(d.Object)) d.Object = -1;
                    if (Dead(d.Array)) d.Array = -1;
                    if (Dead(d.String)) d.String = -1;
                    if (Dead(d.Number)) d.Number = -1;
                    if (Dead(d.Literal)) d.Literal = -1;
                    break;
                case ObjectNode o:
                    o.Props = [.. o.Props.Where(p => p.Required || !Dead(p.Value))];
                    if (Dead(o.Additional))
                        o.Additional = -1;
                    break;
                case ArrayNode a:
                    if (Dead(a.Item))
                        a.Max = 0;
                    break;
                case UnionNode u:
                    u.Alternatives = [.. u.Alternatives.Where(c => !Dead(c))];
                    break;
                case SwitchNode w:
                    w.Targets = [.. w.Targets.Where(c => !Dead(c))];
                    break;
            }
        }
    }

    private static void BuildObjectTables(GNode[] nodes, ObjectNode o)
    {
        int n = o.Props.Length;
        o.FirstRequired = new int[n + 1];
        o.FirstRequired[n] = n;
        for (int c = n - 1; c >= 0; c--)
            o.FirstRequired[c] = o.Props[c].Required ? c : o.FirstRequired[c + 1];
        o.PropCost = new int[n];
        o.RequiredSuffix = new int[n + 1];
        for (int p = n - 1; p >= 0; p--)
        {
            o.PropCost[p] = Sat(o.Props[p].Key.Length + (long)nodes[o.Props[p].Value].MinLen);
            o.RequiredSuffix[p] = Sat(o.RequiredSuffix[p + 1] + (o.Props[p].Required ? 1L + o.PropCost[p] : 0));
        }
        int words = Math.Max(1, (n + 63) / 64);
        o.MaskWords = words;
        o.WindowMasks = new ulong[(n + 1) * words];
        for (int c = 0; c < n; c++)
        {
            int hi = Math.Min(o.FirstRequired[c], n - 1);
            for (int p = c; p <= hi; p++)
                o.WindowMasks[c * words + p / 64] |= 1UL << (p % 64);
        }
        o.KeyTrie = n > 0 ? ByteTrie.Build([.. o.Props.Select(p => p.Key)], subtreeMasks: true) : null;
        o.FreeCost = o.Additional >= 0 ? Sat((o.BareKeys ? 2L : 3L) + nodes[o.Additional].MinLen) : GNode.Infinite;
    }

    /// <summary>
    /// Frames a stack may need below <paramref name="id"/>. Schema nodes form a DAG ($ref recursion is unrolled);
    /// only the any-value family is cyclic, and its nesting is capped at run time.
    /// </summary>
    private static int DepthNeed(GNode[] nodes, int id, int[] memo, int maxNesting)
    {
        if (id < 0 || nodes[id].MinLen >= GNode.Infinite)
            return 0;
        if (memo[id] > 0)
            return memo[id];
        if (memo[id] < 0)
            throw new InvalidOperationException("the grammar has a cycle outside the any-value family");
        var node = nodes[id];
        if (node.IsAny)
            return memo[id] = maxNesting + 2;
        memo[id] = -1;
        int need = node switch
        {
            DispatchNode d => Math.Max(Math.Max(DepthNeed(nodes, d.Object, memo, maxNesting), DepthNeed(nodes, d.Array, memo, maxNesting)), 1),
            ObjectNode o => 1 + Math.Max(DepthNeed(nodes, o.Additional, memo, maxNesting), o.Props.Length == 0 ? 0 : o.Props.Max(p => DepthNeed(nodes, p.Value, memo, maxNesting))),
            ArrayNode a => 1 + (a.Max > 0 ? DepthNeed(nodes, a.Item, memo, maxNesting) : 0),
            SequenceNode s => 1 + s.Children.Max(c => DepthNeed(nodes, c, memo, maxNesting)),
            UnionNode u => u.Alternatives.Length == 0 ? 1 : u.Alternatives.Max(c => DepthNeed(nodes, c, memo, maxNesting)),
            SwitchNode w => w.Targets.Length == 0 ? 1 : w.Targets.Max(c => DepthNeed(nodes, c, memo, maxNesting)),
            _ => 1,
        };
        return memo[id] = need;
    }
}
