using System.Runtime.CompilerServices;

namespace LfmSharp.Constraints;

/// <summary>
/// The byte-level pushdown automaton. <see cref="Step"/> advances every stack of a <see cref="StackSet"/> by one
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
    // Object phases.
    internal const byte OOpen = 0, OAfterOpen = 1, OInKey = 2, OAfterSep = 3, OInValue = 4, OAfterValue = 5, OBeforeClose = 6, OAfterComma = 7;
    // Array phases.
    internal const byte AOpen = 0, AAfterOpen = 1, AInItem = 2, AAfterItem = 3, ABeforeClose = 4, AAfterComma = 5;
    // String phases.
    internal const byte SOpen = 0, SBody = 1;
    // Number phases.
    internal const byte NStart = 0, NMinus = 1, NZero = 2, NInt = 3, NDot = 4, NFrac = 5, NExp = 6, NExpSign = 7, NExpDigits = 8;

    // String body sub-states (also used by free object keys).
    internal const byte SNormal = 0, SEsc = 1, SH0 = 2, SH1D = 3, SH1X = 4, SH2 = 5, SH3 = 6, SHH2 = 7, SHH3 = 8,
        SLS0 = 9, SLS1 = 10, SL0 = 11, SL1 = 12, SL2 = 13, SL3 = 14,
        SU1 = 15, SU2 = 16, SU3 = 17, SUE0 = 18, SUED = 19, SUF0 = 20, SUF4 = 21;
    // Free-key sub-states around the string body.
    internal const byte KExpectQuote = 100, KAfterQuote = 101, KIdentStart = 102, KIdentBody = 103;

    /// <summary>Digit caps keep random sampling from writing endless numbers (18 integer digits still fit a long).</summary>
    internal const int MaxIntDigits = 18, MaxFracDigits = 15, MaxExpDigits = 3;

    private enum R : byte { Reject, Consumed, Done, SoftEnd, Push }

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
        var nodes = g.Nodes;
        while (true)
        {
            int depth = s.Depth[i];
            if (depth == 0)
                return false; // the document is already complete
            int top = i * s.Capacity + depth - 1;
            ref Frame f = ref s.Frames[top];
            GNode node = nodes[f.Node];
            int child = -1;
            R r;
            switch (node.Kind)
            {
                case NodeKind.Dispatch:
                {
                    int target = Resolve(g, Unsafe.As<DispatchNode>(node), s, i, sym);
                    if (target < 0)
                        return false;
                    f = new Frame { Node = target };
                    continue;
                }
                case NodeKind.Union:
                {
                    // Fork only to the alternatives that can start with this symbol.
                    var alts = Unsafe.As<UnionNode>(node).Alternatives;
                    int chosen = -1;
                    foreach (int alt in alts)
                    {
                        if (!nodes[alt].CanStartWith(sym))
                            continue;
                        if (chosen < 0)
                            chosen = alt;
                        else if (s.Count < Grammar.MaxStacks)
                        {
                            int k = s.AddCopyOf(i); // may reallocate Frames: f is not used after this
                            s.Frames[k * s.Capacity + depth - 1] = new Frame { Node = alt };
                        }
                    }
                    if (chosen < 0)
                        return false;
                    s.Frames[top] = new Frame { Node = chosen };
                    continue;
                }
                case NodeKind.Switch:
                {
                    var sw = Unsafe.As<SwitchNode>(node);
                    int c = sw.Trie!.Child(f.Pos, sym);
                    if (c < 0)
                        return false;
                    int k = sw.Trie.Terminal(c);
                    if (k >= 0)
                        f = new Frame { Node = sw.Targets[k], Phase = OAfterOpen }; // the opening bytes are consumed
                    else
                        f.Pos = c;
                    return true;
                }
                case NodeKind.Sequence:
                    f.Phase = 1;
                    child = Unsafe.As<SequenceNode>(node).Children[f.Count];
                    r = R.Push;
                    break;
                case NodeKind.Object:
                    r = StepObject(g, ref f, Unsafe.As<ObjectNode>(node), sym, ref child);
                    break;
                case NodeKind.Array:
                    r = StepArray(g, ref f, Unsafe.As<ArrayNode>(node), sym, ref child);
                    break;
                case NodeKind.String:
                    r = StepString(ref f, Unsafe.As<StringNode>(node), sym);
                    break;
                case NodeKind.Number:
                    r = StepNumber(ref f, Unsafe.As<NumberNode>(node), sym);
                    break;
                case NodeKind.Literal:
                    r = StepLiteral(ref f, Unsafe.As<LiteralNode>(node), sym);
                    break;
                case NodeKind.Special:
                    r = sym == 256 + Unsafe.As<SpecialNode>(node).Index ? R.Done : R.Reject;
                    break;
                default:
                    throw new InvalidOperationException("unknown node kind " + node.Kind);
            }
            switch (r)
            {
                case R.Reject:
                    return false;
                case R.Consumed:
                    return true;
                case R.Done:
                    Complete(g, s, i);
                    return true;
                case R.SoftEnd:
                    Complete(g, s, i);
                    continue;
                case R.Push:
                    if (depth == s.Capacity)
                        return false;
                    s.Frames[top + 1] = new Frame { Node = child };
                    s.Depth[i] = depth + 1;
                    continue;
            }
        }
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
                    p.Phase = OAfterValue;
                    p.Ws = 0;
                    return;
                case NodeKind.Array:
                    p.Count++;
                    p.Phase = AAfterItem;
                    p.Ws = 0;
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsWs(int sym) => sym is ' ' or '\n' or '\t';

    private static R StepWs(Grammar g, ref Frame f, WsMode mode, int sym)
    {
        switch (mode)
        {
            case WsMode.Space:
                if (sym == ' ' && f.Ws == 0)
                {
                    f.Ws = 1;
                    return R.Consumed;
                }
                return R.Reject;
            case WsMode.Flexible:
                if (f.Ws == 0)
                {
                    if (sym == ' ')
                        f.Ws = 1;
                    else if (sym == '\n')
                        f.Ws = 2;
                    else
                        return R.Reject;
                    return R.Consumed;
                }
                if (f.Ws >= 2 && sym is ' ' or '\t' && f.Ws - 2 < g.MaxIndent)
                {
                    f.Ws++;
                    return R.Consumed;
                }
                return R.Reject;
            default:
                return R.Reject;
        }
    }

    private static R StepObject(Grammar g, ref Frame f, ObjectNode o, int sym, ref int child)
    {
        int n = o.Props.Length;
        switch (f.Phase)
        {
            case OOpen:
                if (sym != o.Open[f.Pos])
                    return R.Reject;
                if (++f.Pos == o.Open.Length)
                {
                    f.Phase = OAfterOpen;
                    f.Pos = 0;
                }
                return R.Consumed;
            case OAfterOpen:
                if (IsWs(sym))
                    return StepWs(g, ref f, o.WsAfterOpen, sym);
                if (sym == o.Close)
                    return o.CanCloseAt(f.Count) ? R.Done : R.Reject;
                BeginKey(ref f, o);
                return StepKey(ref f, o, sym);
            case OAfterComma:
                if (IsWs(sym))
                    return StepWs(g, ref f, o.WsAfterComma, sym);
                BeginKey(ref f, o);
                return StepKey(ref f, o, sym);
            case OInKey:
                return StepKey(ref f, o, sym);
            case OAfterSep:
                if (IsWs(sym))
                    return StepWs(g, ref f, o.WsAfterSeparator, sym);
                child = f.Pos >= 0 ? o.Props[f.Pos].Value : o.Additional;
                f.Phase = OInValue;
                return R.Push;
            case OAfterValue:
                if (sym == ',')
                {
                    if (f.Count < n || o.FreeKeysAllowedAt(f.Count))
                    {
                        f.Phase = OAfterComma;
                        f.Ws = 0;
                        return R.Consumed;
                    }
                    return R.Reject;
                }
                if (sym == o.Close)
                    return o.CanCloseAt(f.Count) ? R.Done : R.Reject;
                // Whitespace here may only lead to the close, so it is allowed only when closing is.
                if (IsWs(sym) && o.CanCloseAt(f.Count))
                {
                    f.Phase = OBeforeClose;
                    f.Ws = 0;
                    return StepWs(g, ref f, o.WsBeforeClose, sym);
                }
                return R.Reject;
            case OBeforeClose:
                if (sym == o.Close)
                    return R.Done;
                return IsWs(sym) ? StepWs(g, ref f, o.WsBeforeClose, sym) : R.Reject;
            default:
                return R.Reject; // OInValue: the child is on top, never this frame
        }
    }

    private static void BeginKey(ref Frame f, ObjectNode o)
    {
        f.Phase = OInKey;
        f.Pos = o.KeyTrie is null ? -1 : 0;
        f.Flags = o.FreeKeysAllowedAt(f.Count) ? (byte)1 : (byte)0;
        f.Sub = o.BareKeys ? KIdentStart : KExpectQuote;
        f.Ws = 0;
    }

    /// <summary>
    /// A key is matched on two tracks at once: the trie of defined keys (bytes include quotes and separator) and, when
    /// free keys are allowed, a free-key scanner. A free key may never spell a defined key (that would duplicate or
    /// mis-validate it), and a defined key is accepted only inside the cursor's window (schema order, no required
    /// property skipped).
    /// </summary>
    private static R StepKey(ref Frame f, ObjectNode o, int sym)
    {
        var trie = o.KeyTrie;
        int np = f.Pos >= 0 && trie is not null ? trie.Child(f.Pos, sym) : -1;
        bool free = (f.Flags & 1) != 0;
        bool freeDone = false;
        if (free)
        {
            if (o.BareKeys)
            {
                if (f.Sub == KIdentStart)
                {
                    if (sym is '_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z')
                        f.Sub = KIdentBody;
                    else
                        free = false;
                }
                else if (sym is '_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9')
                {
                    // stays KIdentBody
                }
                else if (sym == o.KeySeparator)
                    freeDone = true;
                else
                    free = false;
            }
            else if (f.Sub == KExpectQuote)
            {
                if (sym == '"')
                    f.Sub = SNormal;
                else
                    free = false;
            }
            else if (f.Sub == KAfterQuote)
            {
                if (sym == o.KeySeparator)
                    freeDone = true;
                else
                    free = false;
            }
            else
            {
                int r = StepStringBody(ref f.Sub, sym, o.FreeKeyEscapes, o.Python, out _);
                if (r < 0)
                    free = false;
                else if (r > 0)
                    f.Sub = KAfterQuote;
            }
        }
        if (np >= 0 && trie!.Terminal(np) is int p and >= 0)
        {
            // The full defined key (and separator) is here; a free key with the same bytes is never allowed.
            if (!InWindow(o, f.Count, p))
                return R.Reject;
            f.Pos = p;
            f.Count = p + 1;
            f.Phase = OAfterSep;
            f.Flags = 0;
            f.Sub = 0;
            f.Ws = 0;
            return R.Consumed;
        }
        if (freeDone)
        {
            f.Pos = -1;
            f.Count = o.Props.Length;
            f.Phase = OAfterSep;
            f.Flags = 0;
            f.Sub = 0;
            f.Ws = 0;
            return R.Consumed;
        }
        // A closed free key whose separator would complete a defined key is a dead end.
        if (free && !o.BareKeys && f.Sub == KAfterQuote && np >= 0 && trie!.Child(np, o.KeySeparator) is int c and >= 0 && trie.Terminal(c) >= 0)
            free = false;
        bool trieViable = np >= 0 && trie!.SubtreeHasAny(np, Window(o, f.Count));
        if (!trieViable && !free)
            return R.Reject;
        f.Pos = np;
        f.Flags = free ? (byte)1 : (byte)0;
        return R.Consumed;
    }

    private static ReadOnlySpan<ulong> Window(ObjectNode o, int cursor) => o.WindowMasks.AsSpan(cursor * o.MaskWords, o.MaskWords);

    private static bool InWindow(ObjectNode o, int cursor, int p) => (Window(o, cursor)[p / 64] & (1UL << (p % 64))) != 0;

    private static R StepArray(Grammar g, ref Frame f, ArrayNode a, int sym, ref int child)
    {
        switch (f.Phase)
        {
            case AOpen:
                if (sym != a.Open)
                    return R.Reject;
                f.Phase = AAfterOpen;
                return R.Consumed;
            case AAfterOpen:
                if (IsWs(sym))
                    return StepWs(g, ref f, a.WsAfterOpen, sym);
                if (sym == a.Close)
                    return a.Min == 0 ? R.Done : R.Reject;
                if (a.Max == 0)
                    return R.Reject;
                child = a.Item;
                f.Phase = AInItem;
                return R.Push;
            case AAfterItem:
                if (sym == ',')
                {
                    if (f.Count >= a.Max)
                        return R.Reject;
                    f.Phase = AAfterComma;
                    f.Ws = 0;
                    return R.Consumed;
                }
                if (sym == a.Close)
                    return f.Count >= a.Min ? R.Done : R.Reject;
                if (IsWs(sym) && f.Count >= a.Min)
                {
                    f.Phase = ABeforeClose;
                    f.Ws = 0;
                    return StepWs(g, ref f, a.WsBeforeClose, sym);
                }
                return R.Reject;
            case ABeforeClose:
                if (sym == a.Close)
                    return R.Done;
                return IsWs(sym) ? StepWs(g, ref f, a.WsBeforeClose, sym) : R.Reject;
            case AAfterComma:
                if (IsWs(sym))
                    return StepWs(g, ref f, a.WsAfterComma, sym);
                child = a.Item;
                f.Phase = AInItem;
                return R.Push;
            default:
                return R.Reject;
        }
    }

    private static R StepString(ref Frame f, StringNode s, int sym)
    {
        if (f.Phase == SOpen)
        {
            if (sym != '"')
                return R.Reject;
            f.Phase = SBody;
            return R.Consumed;
        }
        int r = StepStringBody(ref f.Sub, sym, true, s.Python, out bool charStart);
        if (r < 0)
            return R.Reject;
        if (r > 0)
            return f.Count >= s.Min ? R.Done : R.Reject;
        if (charStart)
        {
            if (f.Count >= s.Max)
                return R.Reject;
            f.Count++;
        }
        return R.Consumed;
    }

    /// <summary>
    /// One byte of string content: -1 invalid, 0 consumed, 1 the closing quote. Checks UTF-8 (no overlongs, no
    /// surrogates, nothing above U+10FFFF), escapes, and that a \u high surrogate is followed by a \u low one.
    /// <paramref name="charStart"/> is set when the byte starts a new code point (for length limits).
    /// </summary>
    internal static int StepStringBody(ref byte sub, int sym, bool escapes, bool python, out bool charStart)
    {
        charStart = false;
        if ((uint)sym > 255)
            return -1;
        int b = sym;
        switch (sub)
        {
            case SNormal:
                if (b == '"')
                    return 1;
                if (b == '\\')
                {
                    if (!escapes)
                        return -1;
                    sub = SEsc;
                    charStart = true;
                    return 0;
                }
                if (b < 0x20)
                    return -1;
                charStart = true;
                if (b < 0x80)
                    return 0;
                if (b < 0xC2)
                    return -1;
                if (b < 0xE0)
                    sub = SU1;
                else if (b == 0xE0)
                    sub = SUE0;
                else if (b == 0xED)
                    sub = SUED;
                else if (b < 0xF0)
                    sub = SU2;
                else if (b == 0xF0)
                    sub = SUF0;
                else if (b < 0xF4)
                    sub = SU3;
                else if (b == 0xF4)
                    sub = SUF4;
                else
                    return -1;
                return 0;
            case SU1:
                return Cont(ref sub, b, 0x80, 0xBF, SNormal);
            case SU2:
                return Cont(ref sub, b, 0x80, 0xBF, SU1);
            case SU3:
                return Cont(ref sub, b, 0x80, 0xBF, SU2);
            case SUE0:
                return Cont(ref sub, b, 0xA0, 0xBF, SU1);
            case SUED:
                return Cont(ref sub, b, 0x80, 0x9F, SU1);
            case SUF0:
                return Cont(ref sub, b, 0x90, 0xBF, SU2);
            case SUF4:
                return Cont(ref sub, b, 0x80, 0x8F, SU2);
            case SEsc:
                switch (b)
                {
                    case '"' or '\\' or 'b' or 'f' or 'n' or 'r' or 't':
                        sub = SNormal;
                        return 0;
                    case '/':
                        // Python reads "\/" as two characters, so only JSON gets it.
                        if (python)
                            return -1;
                        sub = SNormal;
                        return 0;
                    case 'u':
                        sub = SH0;
                        return 0;
                    default:
                        return -1;
                }
            case SH0:
                if (!IsHex(b))
                    return -1;
                sub = b is 'D' or 'd' ? SH1D : SH1X;
                return 0;
            case SH1D:
                if (b is >= '0' and <= '7')
                    sub = SH2;
                else if (!python && b is '8' or '9' or 'a' or 'b' or 'A' or 'B')
                    sub = SHH2; // high surrogate: a low one must follow
                else
                    return -1;  // lone low surrogate, or any surrogate escape in Python
                return 0;
            case SH1X:
                return HexTo(ref sub, b, SH2);
            case SH2:
                return HexTo(ref sub, b, SH3);
            case SH3:
                return HexTo(ref sub, b, SNormal);
            case SHH2:
                return HexTo(ref sub, b, SHH3);
            case SHH3:
                return HexTo(ref sub, b, SLS0);
            case SLS0:
                if (b != '\\')
                    return -1;
                sub = SLS1;
                return 0;
            case SLS1:
                if (b != 'u')
                    return -1;
                sub = SL0;
                return 0;
            case SL0:
                if (b is not ('D' or 'd'))
                    return -1;
                sub = SL1;
                return 0;
            case SL1:
                if (b is not (>= 'c' and <= 'f' or >= 'C' and <= 'F'))
                    return -1;
                sub = SL2;
                return 0;
            case SL2:
                return HexTo(ref sub, b, SL3);
            case SL3:
                return HexTo(ref sub, b, SNormal);
            default:
                return -1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Cont(ref byte sub, int b, int lo, int hi, byte next)
    {
        if (b < lo || b > hi)
            return -1;
        sub = next;
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsHex(int b) => b is >= '0' and <= '9' or >= 'a' and <= 'f' or >= 'A' and <= 'F';

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int HexTo(ref byte sub, int b, byte next)
    {
        if (!IsHex(b))
            return -1;
        sub = next;
        return 0;
    }

    /// <summary>Bytes still needed to finish the escape or UTF-8 sequence a string sub-state is in.</summary>
    internal static int SubRemaining(byte sub) => sub switch
    {
        SEsc => 1,
        SH0 => 4,
        SH1D or SH1X => 3,
        SH2 => 2,
        SH3 => 1,
        SHH2 => 2 + 6,
        SHH3 => 1 + 6,
        SLS0 => 6,
        SLS1 => 5,
        SL0 => 4,
        SL1 => 3,
        SL2 => 2,
        SL3 => 1,
        SU1 => 1,
        SU2 => 2,
        SU3 => 3,
        SUE0 or SUED => 2,
        SUF0 or SUF4 => 3,
        _ => 0,
    };

    private static R StepNumber(ref Frame f, NumberNode n, int sym)
    {
        bool digit = sym is >= '0' and <= '9';
        int d = sym - '0';
        switch (f.Phase)
        {
            case NStart:
                if (sym == '-')
                {
                    if (n.Bounded && n.Min >= 0)
                        return R.Reject;
                    f.Phase = NMinus;
                    f.Flags = 1;
                    return R.Consumed;
                }
                return digit ? FirstDigit(ref f, n, d) : R.Reject;
            case NMinus:
                return digit ? FirstDigit(ref f, n, d) : R.Reject;
            case NZero:
                if (!n.Integer && sym == '.')
                {
                    f.Phase = NDot;
                    return R.Consumed;
                }
                if (!n.Integer && sym is 'e' or 'E')
                {
                    f.Phase = NExp;
                    return R.Consumed;
                }
                return NumberCanEnd(in f, n) ? R.SoftEnd : R.Reject;
            case NInt:
                if (digit && f.Sub < MaxIntDigits)
                {
                    if (!n.Bounded)
                    {
                        f.Sub++;
                        return R.Consumed;
                    }
                    long v = BoundedValue(in f) * 10 + d;
                    if (Feasible(n, f.Flags != 0, v, f.Sub + 1))
                    {
                        SetBoundedValue(ref f, v);
                        f.Sub++;
                        return R.Consumed;
                    }
                }
                if (!n.Integer && sym == '.')
                {
                    f.Phase = NDot;
                    return R.Consumed;
                }
                if (!n.Integer && sym is 'e' or 'E')
                {
                    f.Phase = NExp;
                    f.Sub = 0;
                    return R.Consumed;
                }
                return NumberCanEnd(in f, n) ? R.SoftEnd : R.Reject;
            case NDot:
                if (!digit)
                    return R.Reject;
                f.Phase = NFrac;
                f.Sub = 1;
                return R.Consumed;
            case NFrac:
                if (digit && f.Sub < MaxFracDigits)
                {
                    f.Sub++;
                    return R.Consumed;
                }
                if (sym is 'e' or 'E')
                {
                    f.Phase = NExp;
                    f.Sub = 0;
                    return R.Consumed;
                }
                return R.SoftEnd;
            case NExp:
                if (sym is '+' or '-')
                {
                    f.Phase = NExpSign;
                    return R.Consumed;
                }
                goto case NExpSign;
            case NExpSign:
                if (!digit)
                    return R.Reject;
                f.Phase = NExpDigits;
                f.Sub = 1;
                return R.Consumed;
            case NExpDigits:
                if (digit && f.Sub < MaxExpDigits)
                {
                    f.Sub++;
                    return R.Consumed;
                }
                return R.SoftEnd;
            default:
                return R.Reject;
        }
    }

    private static R FirstDigit(ref Frame f, NumberNode n, int d)
    {
        if (n.Bounded && !Feasible(n, f.Flags != 0, d, 1))
            return R.Reject;
        f.Phase = d == 0 ? NZero : NInt;
        f.Sub = 1;
        SetBoundedValue(ref f, d);
        return R.Consumed;
    }

    private static long BoundedValue(in Frame f) => ((long)f.Count << 32) | (uint)f.Pos;

    private static void SetBoundedValue(ref Frame f, long v)
    {
        f.Count = (int)(v >> 32);
        f.Pos = (int)v;
    }

    internal static bool NumberCanEnd(in Frame f, NumberNode n)
    {
        switch (f.Phase)
        {
            case NZero:
            case NInt:
                if (!n.Bounded)
                    return true;
                long v = BoundedValue(in f);
                long x = f.Flags != 0 ? -v : v;
                return x >= n.Min && x <= n.Max;
            case NFrac:
            case NExpDigits:
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// Can the digits so far (magnitude <paramref name="v"/>, <paramref name="digits"/> of them) still end inside the
    /// integer bounds? The completions with j more digits cover [v·10^j, v·10^j + 10^j − 1] (negated when negative).
    /// </summary>
    private static bool Feasible(NumberNode n, bool negative, long v, int digits) => ExtraDigitsNeeded(n, negative, v, digits) >= 0;

    /// <summary>Fewest extra digits after which the number can end inside the bounds; −1 when impossible.</summary>
    internal static int ExtraDigitsNeeded(NumberNode n, bool negative, long v, int digits)
    {
        if (v == 0)
            return digits == 1 && 0 >= n.Min && 0 <= n.Max ? 0 : -1; // a leading 0 cannot grow
        Int128 lo = v, span = 1;
        for (int j = 0; digits + j <= MaxIntDigits; j++)
        {
            Int128 a = lo, b = lo + span - 1;
            Int128 x0 = negative ? -b : a, x1 = negative ? -a : b;
            if (x1 >= n.Min && x0 <= n.Max)
                return j;
            lo *= 10;
            span *= 10;
        }
        return -1;
    }

    private static R StepLiteral(ref Frame f, LiteralNode l, int sym)
    {
        var trie = l.Trie;
        int c = trie.Child(f.Pos, sym);
        if (c >= 0)
        {
            f.Pos = c;
            return trie.Terminal(c) >= 0 && !trie.HasChildren(c) ? R.Done : R.Consumed;
        }
        return f.Pos != 0 && trie.Terminal(f.Pos) >= 0 ? R.SoftEnd : R.Reject;
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
            NodeKind.Number => NumberCanEnd(in top, Unsafe.As<NumberNode>(node)),
            NodeKind.Literal => top.Pos != 0 && Unsafe.As<LiteralNode>(node).Trie.Terminal(top.Pos) >= 0,
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
        if (node is StringNode str && f.Phase == SBody && f.Sub == SNormal)
        {
            countsChars = true;
            maxChars = str.Max;
            return true;
        }
        // A free key counts once it has left the defined-key trie (escapes are then off, and plain content has none).
        return node is ObjectNode o && f.Phase == OInKey && (o.KeyTrie is null || f.Pos < 0) && (f.Flags & 1) != 0 && f.Sub == SNormal;
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
                return ObjectRemaining(g, in f, Unsafe.As<ObjectNode>(node));
            case NodeKind.Array:
            {
                var a = Unsafe.As<ArrayNode>(node);
                long l = g.Nodes[a.Item].MinLen;
                return f.Phase switch
                {
                    AOpen => 1 + ItemsCost(a.Min, l) + 1,
                    AAfterOpen => ItemsCost(a.Min, l) + 1,
                    AInItem => Math.Max(0, a.Min - (f.Count + 1)) * (l + 1) + 1,
                    AAfterItem => Math.Max(0, a.Min - f.Count) * (l + 1) + 1,
                    AAfterComma => l + Math.Max(0, a.Min - f.Count - 1) * (l + 1) + 1,
                    _ => 1,
                };
            }
            case NodeKind.String:
            {
                var s = Unsafe.As<StringNode>(node);
                return f.Phase == SOpen ? 2 + s.Min : SubRemaining(f.Sub) + Math.Max(0, s.Min - f.Count) + 1;
            }
            case NodeKind.Number:
                return NumberRemaining(in f, Unsafe.As<NumberNode>(node));
            case NodeKind.Literal:
                return f.Pos == 0 ? node.MinLen : Unsafe.As<LiteralNode>(node).Trie.MinToEnd(f.Pos);
            case NodeKind.Special:
                return 1;
            default:
                return GNode.Infinite;
        }
    }

    private static long ItemsCost(int count, long itemLen) => count == 0 ? 0 : count * itemLen + (count - 1);

    private static long NumberRemaining(in Frame f, NumberNode n)
    {
        switch (f.Phase)
        {
            case NStart:
                return n.MinLen;
            case NMinus:
                if (!n.Bounded)
                    return 1;
                return n.Max >= 0 ? 1 : Digits(n.Max);
            case NZero:
            case NInt:
                if (!n.Bounded)
                    return 0;
                int extra = ExtraDigitsNeeded(n, f.Flags != 0, BoundedValue(in f), f.Sub);
                return extra < 0 ? GNode.Infinite : extra;
            case NFrac:
            case NExpDigits:
                return 0;
            default:
                return 1;
        }
    }

    internal static int Digits(long v)
    {
        ulong m = v < 0 ? (ulong)(-(v + 1)) + 1 : (ulong)v;
        int d = 1;
        while (m >= 10)
        {
            m /= 10;
            d++;
        }
        return d;
    }

    private static long ObjectRemaining(Grammar g, in Frame f, ObjectNode o)
    {
        int c = f.Count;
        switch (f.Phase)
        {
            case OOpen:
                return o.Open.Length - f.Pos + FirstMember(g, o, c) + 1;
            case OAfterOpen:
                return FirstMember(g, o, c) + 1;
            case OInKey:
                return KeyRemaining(g, in f, o) + 1;
            case OAfterSep:
                return g.Nodes[f.Pos >= 0 ? o.Props[f.Pos].Value : o.Additional].MinLen + (long)o.RequiredSuffix[c] + 1;
            case OAfterComma:
                return NextMember(g, o, c) + 1;
            case OBeforeClose:
                return 1;
            default: // OInValue, OAfterValue
                return o.RequiredSuffix[c] + 1L;
        }
    }

    private static long FirstMember(Grammar g, ObjectNode o, int c) => o.CanCloseAt(c) ? 0 : NextMember(g, o, c);

    /// <summary>Cheapest next member (key, value and every required member after it) with no leading comma.</summary>
    private static long NextMember(Grammar g, ObjectNode o, int c)
    {
        long best = o.FreeKeysAllowedAt(c) ? o.FreeCost : GNode.Infinite;
        var window = Window(o, c);
        for (int p = c; p < o.Props.Length; p++)
        {
            if ((window[p / 64] & (1UL << (p % 64))) != 0)
                best = Math.Min(best, (long)o.PropCost[p] + o.RequiredSuffix[p + 1]);
        }
        return best;
    }

    private static long KeyRemaining(Grammar g, in Frame f, ObjectNode o)
    {
        long best = GNode.Infinite;
        int c = f.Count;
        if (f.Pos >= 0 && o.KeyTrie is { } trie)
        {
            var window = Window(o, c);
            int depth = trie.Depth(f.Pos);
            for (int p = c; p < o.Props.Length; p++)
            {
                if ((window[p / 64] & (1UL << (p % 64))) != 0 && trie.IsPrefixOf(f.Pos, o.Props[p].Key))
                    best = Math.Min(best, o.Props[p].Key.Length - depth + (long)g.Nodes[o.Props[p].Value].MinLen + o.RequiredSuffix[p + 1]);
            }
        }
        if ((f.Flags & 1) != 0)
        {
            long key = f.Sub switch
            {
                KExpectQuote => 3,
                KAfterQuote => 1,
                KIdentStart => 2,
                KIdentBody => 1,
                _ => SubRemaining(f.Sub) + 2,
            };
            best = Math.Min(best, key + g.Nodes[o.Additional].MinLen);
        }
        return best;
    }
}
