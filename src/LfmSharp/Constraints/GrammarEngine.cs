using System.Runtime.CompilerServices;

namespace LfmSharp.Constraints;

/// <summary>
/// The byte-level pushdown automaton: the stack machinery, with one stepper per node kind (ObjectStepper,
/// ArrayStepper, StringStepper, NumberStepper, LiteralStepper) and one enum per phase (GrammarPhases.cs).
/// <see cref="Step"/> advances every stack of a <see cref="StackSet"/> by one
/// symbol (a byte 0-255, or 256 + k for the grammar's k-th special token) and drops the stacks that cannot take it.
/// A step that returns false leaves the set unusable; callers step a copy.
/// <para>
/// Completion: a frame that consumes its last byte pops at once and tells its parent; numbers and literals that could
/// still grow ("12" may become "123") stay on the stack and pop only when a byte arrives that does not extend them,
/// which is then re-fed to the parent.
/// </para>
/// </summary>
internal static class GrammarEngine
{
    /// <summary>Advances every stack by <paramref name="symbol"/>; false when none survives.</summary>
    public static bool Step(Grammar g, StackSet s, int symbol)
    {
        if (s.Count == 1)
        {
            bool ok = StepOne(g, s, 0, symbol);
            if (s.Count == 1)
            {
                if (!ok)
                    s.Count = 0;
                return ok;
            }
            return StepRest(g, s, symbol, ok);
        }
        return StepRest(g, s, symbol, null);
    }

    private static bool StepRest(Grammar g, StackSet s, int symbol, bool? firstResult)
    {
        Span<bool> alive = stackalloc bool[Grammar.MaxStacks];
        int i = 0;
        if (firstResult is bool first)
        {
            alive[0] = first;
            i = 1;
        }
        for (; i < s.Count; i++)
            alive[i] = StepOne(g, s, i, symbol);
        int live = 0;
        for (int k = 0; k < s.Count; k++)
        {
            if (!alive[k])
                continue;
            if (k != live)
                s.MoveStack(k, live);
            bool dup = false;
            for (int j = 0; j < live && !dup; j++)
                dup = s.SameStack(j, live);
            if (!dup)
                live++;
        }
        s.Count = live;
        return live > 0;
    }

    private static bool StepOne(Grammar g, StackSet s, int i, int sym)
    {
        while (true)
        {
            int depth = s.Depth[i];
            if (depth == 0)
                return false; // the document is already complete
            int top = i * s.Capacity + depth - 1;
            ref Frame f = ref s.Frames[top];
            GNode node = g.Nodes[f.Node];
            int child = -1;
            StepResult r;
            switch (node.Kind)
            {
                case NodeKind.Dispatch:
                case NodeKind.Union:
                    // A choice replaces itself with the alternative(s) that can start with the symbol, which then take it.
                    if (!Choose(g, s, i, top, node, sym))
                        return false;
                    continue;
                case NodeKind.Switch:
                    return StepSwitch(ref f, Unsafe.As<SwitchNode>(node), sym);
                default:
                    r = StepFrame(g, ref f, node, sym, ref child);
                    break;
            }
            switch (r)
            {
                case StepResult.Reject:
                    return false;
                case StepResult.Consumed:
                    return true;
                case StepResult.Done:
                    Complete(g, s, i);
                    return true;
                case StepResult.SoftEnd:
                    Complete(g, s, i);
                    continue;
                case StepResult.Push:
                    if (depth == s.Capacity)
                        return false;
                    s.Frames[top + 1] = new Frame { Node = child };
                    s.Depth[i] = depth + 1;
                    continue;
            }
        }
    }

    /// <summary>The stepper of the frame's node kind (every kind but the choices and the switch).</summary>
    private static StepResult StepFrame(Grammar g, ref Frame f, GNode node, int sym, ref int child)
    {
        switch (node.Kind)
        {
            case NodeKind.Sequence:
                f.Phase = 1;
                child = Unsafe.As<SequenceNode>(node).Children[f.Count];
                return StepResult.Push;
            case NodeKind.Object:
                return ObjectStepper.Step(g, ref f, Unsafe.As<ObjectNode>(node), sym, ref child);
            case NodeKind.Array:
                return ArrayStepper.Step(g, ref f, Unsafe.As<ArrayNode>(node), sym, ref child);
            case NodeKind.String:
                return StringStepper.Step(ref f, Unsafe.As<StringNode>(node), sym);
            case NodeKind.Number:
                return NumberStepper.Step(ref f, Unsafe.As<NumberNode>(node), sym);
            case NodeKind.Literal:
                return LiteralStepper.Step(ref f, Unsafe.As<LiteralNode>(node), sym);
            case NodeKind.Special:
                return sym == 256 + Unsafe.As<SpecialNode>(node).Index ? StepResult.Done : StepResult.Reject;
            default:
                throw new InvalidOperationException("unknown node kind " + node.Kind);
        }
    }

    /// <summary>
    /// Replaces a dispatch or union frame (stack <paramref name="i"/>, frame index <paramref name="top"/>) by the
    /// alternative that can start with <paramref name="sym"/>; a union forks a stack copy for each further one.
    /// </summary>
    private static bool Choose(Grammar g, StackSet s, int i, int top, GNode node, int sym)
    {
        if (node.Kind == NodeKind.Dispatch)
        {
            int target = Resolve(g, Unsafe.As<DispatchNode>(node), s, i, sym);
            if (target < 0)
                return false;
            s.Frames[top] = new Frame { Node = target };
            return true;
        }
        // Fork only to the alternatives that can start with this symbol.
        int depth = s.Depth[i];
        int chosen = -1;
        foreach (int alt in Unsafe.As<UnionNode>(node).Alternatives)
        {
            if (!g.Nodes[alt].CanStartWith(sym))
                continue;
            if (chosen < 0)
                chosen = alt;
            else if (s.Count < Grammar.MaxStacks)
            {
                int k = s.AddCopyOf(i); // may reallocate Frames: index them afresh
                s.Frames[k * s.Capacity + depth - 1] = new Frame { Node = alt };
            }
        }
        if (chosen < 0)
            return false;
        s.Frames[top] = new Frame { Node = chosen };
        return true;
    }

    /// <summary>A switch walks its trie of opening byte strings, then becomes the object whose opening matched.</summary>
    private static bool StepSwitch(ref Frame f, SwitchNode sw, int sym)
    {
        int c = sw.Trie!.Child(f.Pos, sym);
        if (c < 0)
            return false;
        int k = sw.Trie.Terminal(c);
        if (k >= 0)
            f = new Frame { Node = sw.Targets[k], ObjectPhase = ObjectPhase.AfterOpen }; // the opening bytes are consumed
        else
            f.Pos = c;
        return true;
    }

    /// <summary>Pops the finished top frame and lets the parents know; a sequence that ends with it pops too.</summary>
    private static void Complete(Grammar g, StackSet s, int i)
    {
        int d = --s.Depth[i];
        int baseIndex = i * s.Capacity;
        while (d > 0)
        {
            ref Frame p = ref s.Frames[baseIndex + d - 1];
            GNode node = g.Nodes[p.Node];
            switch (node.Kind)
            {
                case NodeKind.Object:
                    ObjectStepper.ValueDone(ref p);
                    return;
                case NodeKind.Array:
                    ArrayStepper.ItemDone(ref p);
                    return;
                case NodeKind.Sequence:
                    p.Count++;
                    p.Phase = 0;
                    if (p.Count < Unsafe.As<SequenceNode>(node).Children.Length)
                        return;
                    d = --s.Depth[i];
                    break;
                default:
                    throw new InvalidOperationException("a " + node.Kind + " node cannot have children");
            }
        }
    }

    private static int Resolve(Grammar g, DispatchNode d, StackSet s, int i, int sym)
    {
        switch (sym)
        {
            case '{':
                return d.Object >= 0 && (!d.IsAny || AnyNesting(g, s, i) < g.MaxNesting) ? d.Object : -1;
            case '[':
                return d.Array >= 0 && (!d.IsAny || AnyNesting(g, s, i) < g.MaxNesting) ? d.Array : -1;
            case '"':
                return d.String;
            case '-':
            case >= '0' and <= '9':
                return d.Number;
            case > 255:
                return -1;
            default:
                return d.Literal;
        }
    }

    private static int AnyNesting(Grammar g, StackSet s, int i)
    {
        int n = 0;
        var frames = s.Frames.AsSpan(i * s.Capacity, s.Depth[i]);
        foreach (ref readonly Frame f in frames)
        {
            var node = g.Nodes[f.Node];
            if (node.IsAny && node.Kind is NodeKind.Object or NodeKind.Array)
                n++;
        }
        return n;
    }

    /// <summary>True when the text so far is a complete document (some stack can end without more input).</summary>
    public static bool CanEnd(Grammar g, StackSet s)
    {
        for (int i = 0; i < s.Count; i++)
        {
            if (CanEndStack(g, s, i))
                return true;
        }
        return false;
    }

    private static bool CanEndStack(Grammar g, StackSet s, int i)
    {
        int d = s.Depth[i];
        if (d == 0)
            return true;
        var frames = s.Frames.AsSpan(i * s.Capacity, d);
        ref readonly Frame top = ref frames[d - 1];
        GNode node = g.Nodes[top.Node];
        bool soft = node.Kind switch
        {
            NodeKind.Number => NumberStepper.CanEnd(in top, Unsafe.As<NumberNode>(node)),
            NodeKind.Literal => LiteralStepper.CanEnd(in top, Unsafe.As<LiteralNode>(node)),
            _ => false,
        };
        if (!soft)
            return false;
        for (int k = d - 2; k >= 0; k--)
        {
            if (g.Nodes[frames[k].Node] is not SequenceNode seq || frames[k].Count != seq.Children.Length - 1)
                return false;
        }
        return true;
    }

    /// <summary>Fewest bytes (symbols) that complete the document from this state (0 when complete).</summary>
    public static int MinBytes(Grammar g, StackSet s)
    {
        long best = GNode.Infinite;
        for (int i = 0; i < s.Count; i++)
        {
            if (CanEndStack(g, s, i))
                return 0;
            int d = s.Depth[i];
            var frames = s.Frames.AsSpan(i * s.Capacity, d);
            long sum = 0;
            for (int k = 0; k < d; k++)
                sum += Remaining(g, in frames[k], k == d - 1);
            best = Math.Min(best, sum);
        }
        return (int)Math.Min(best, GNode.Infinite);
    }

    /// <summary>
    /// True when the single stack sits between characters of a string body (a string value, or a free key that no
    /// defined key shares a prefix with): then any plain content bytes only advance the top frame's character count
    /// and UTF-8 sub-state, which the vocabulary trie has precomputed.
    /// </summary>
    internal static bool PlainStringTop(Grammar g, StackSet s, out bool countsChars, out int maxChars)
    {
        countsChars = false;
        maxChars = int.MaxValue;
        if (s.Count != 1 || s.Depth[0] == 0)
            return false;
        ref Frame f = ref s.Frames[s.Depth[0] - 1];
        GNode node = g.Nodes[f.Node];
        if (node is StringNode str && f.StringPhase == StringPhase.Body && f.StringState == StringState.Normal)
        {
            countsChars = true;
            maxChars = str.Max;
            return true;
        }
        // A free key counts once it has left the defined-key trie (escapes are then off, and plain content has none).
        return node is ObjectNode o && ObjectStepper.InPlainFreeKey(in f, o);
    }

    /// <summary>Distance contributed by the frames below the top of the single stack.</summary>
    internal static long RemainingBelowTop(Grammar g, StackSet s)
    {
        long sum = 0;
        for (int k = 0; k < s.Depth[0] - 1; k++)
            sum += Remaining(g, in s.Frames[k], false);
        return sum;
    }

    internal static long Remaining(Grammar g, in Frame f, bool isTop)
    {
        GNode node = g.Nodes[f.Node];
        switch (node.Kind)
        {
            case NodeKind.Dispatch:
            case NodeKind.Union:
                return node.MinLen;
            case NodeKind.Switch:
            {
                var sw = Unsafe.As<SwitchNode>(node);
                if (f.Pos == 0)
                    return node.MinLen;
                long best = GNode.Infinite;
                int depth = sw.Trie!.Depth(f.Pos);
                foreach (int t in sw.Targets)
                {
                    if (sw.Trie.IsPrefixOf(f.Pos, ((ObjectNode)g.Nodes[t]).Open))
                        best = Math.Min(best, g.Nodes[t].MinLen - depth);
                }
                return best;
            }
            case NodeKind.Sequence:
            {
                var seq = Unsafe.As<SequenceNode>(node);
                return isTop ? seq.SuffixMin[f.Count] : seq.SuffixMin[f.Count + 1];
            }
            case NodeKind.Object:
                return ObjectStepper.Remaining(g, in f, Unsafe.As<ObjectNode>(node));
            case NodeKind.Array:
                return ArrayStepper.Remaining(g, in f, Unsafe.As<ArrayNode>(node));
            case NodeKind.String:
                return StringStepper.Remaining(in f, Unsafe.As<StringNode>(node));
            case NodeKind.Number:
                return NumberStepper.Remaining(in f, Unsafe.As<NumberNode>(node));
            case NodeKind.Literal:
                return LiteralStepper.Remaining(in f, Unsafe.As<LiteralNode>(node));
            case NodeKind.Special:
                return 1;
            default:
                return GNode.Infinite;
        }
    }
}
