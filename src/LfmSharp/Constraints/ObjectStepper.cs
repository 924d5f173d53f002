namespace LfmSharp.Constraints;

/// <summary>
/// Object frames. Count is the property cursor (properties come in schema order; a cursor window says which may come
/// next), Pos the key-trie node while in a key and the chosen property after it (-1: a free key), bit 0 of Flags
/// whether a free key is still possible, and Sub the free key's <see cref="KeyState"/> or <see cref="StringState"/>.
/// </summary>
internal static class ObjectStepper
{
    public static StepResult Step(Grammar g, ref Frame f, ObjectNode o, int sym, ref int child)
    {
        switch (f.ObjectPhase)
        {
            case ObjectPhase.Open:
                if (sym != o.Open[f.Pos])
                    return StepResult.Reject;
                if (++f.Pos == o.Open.Length)
                {
                    f.ObjectPhase = ObjectPhase.AfterOpen;
                    f.Pos = 0;
                }
                return StepResult.Consumed;
            case ObjectPhase.AfterOpen:
                if (Whitespace.Is(sym))
                    return Whitespace.Step(g, ref f, o.WsAfterOpen, sym);
                if (sym == o.Close)
                    return o.CanCloseAt(f.Count) ? StepResult.Done : StepResult.Reject;
                BeginKey(ref f, o);
                return StepKey(ref f, o, sym);
            case ObjectPhase.AfterComma:
                if (Whitespace.Is(sym))
                    return Whitespace.Step(g, ref f, o.WsAfterComma, sym);
                BeginKey(ref f, o);
                return StepKey(ref f, o, sym);
            case ObjectPhase.InKey:
                return StepKey(ref f, o, sym);
            case ObjectPhase.AfterSeparator:
                if (Whitespace.Is(sym))
                    return Whitespace.Step(g, ref f, o.WsAfterSeparator, sym);
                child = f.Pos >= 0 ? o.Props[f.Pos].Value : o.Additional;
                f.ObjectPhase = ObjectPhase.InValue;
                return StepResult.Push;
            case ObjectPhase.AfterValue:
                return StepAfterValue(g, ref f, o, sym);
            case ObjectPhase.BeforeClose:
                if (sym == o.Close)
                    return StepResult.Done;
                return Whitespace.Is(sym) ? Whitespace.Step(g, ref f, o.WsBeforeClose, sym) : StepResult.Reject;
            default:
                return StepResult.Reject; // InValue: the child is on top, never this frame
        }
    }

    private static StepResult StepAfterValue(Grammar g, ref Frame f, ObjectNode o, int sym)
    {
        if (sym == ',')
        {
            if (f.Count < o.Props.Length || o.FreeKeysAllowedAt(f.Count))
            {
                f.ObjectPhase = ObjectPhase.AfterComma;
                f.Ws = 0;
                return StepResult.Consumed;
            }
            return StepResult.Reject;
        }
        if (sym == o.Close)
            return o.CanCloseAt(f.Count) ? StepResult.Done : StepResult.Reject;
        // Whitespace here may only lead to the close, so it is allowed only when closing is.
        if (Whitespace.Is(sym) && o.CanCloseAt(f.Count))
        {
            f.ObjectPhase = ObjectPhase.BeforeClose;
            f.Ws = 0;
            return Whitespace.Step(g, ref f, o.WsBeforeClose, sym);
        }
        return StepResult.Reject;
    }

    /// <summary>Tells the object frame that the value on top of it is complete.</summary>
    public static void ValueDone(ref Frame f)
    {
        f.ObjectPhase = ObjectPhase.AfterValue;
        f.Ws = 0;
    }

    private static void BeginKey(ref Frame f, ObjectNode o)
    {
        f.ObjectPhase = ObjectPhase.InKey;
        f.Pos = o.KeyTrie is null ? -1 : 0;
        f.Flags = o.FreeKeysAllowedAt(f.Count) ? (byte)1 : (byte)0;
        f.KeyState = o.BareKeys ? KeyState.IdentStart : KeyState.ExpectQuote;
        f.Ws = 0;
    }

    /// <summary>
    /// A key is matched on two tracks at once: the trie of defined keys (bytes include quotes and separator) and, when
    /// free keys are allowed, a free-key scanner. A free key may never spell a defined key (that would duplicate or
    /// mis-validate it), and a defined key is accepted only inside the cursor's window (schema order, no required
    /// property skipped).
    /// </summary>
    private static StepResult StepKey(ref Frame f, ObjectNode o, int sym)
    {
        var trie = o.KeyTrie;
        int np = f.Pos >= 0 && trie is not null ? trie.Child(f.Pos, sym) : -1;
        bool free = (f.Flags & 1) != 0;
        bool freeDone = false;
        if (free)
            free = StepFreeKey(ref f, o, sym, out freeDone);
        if (np >= 0 && trie!.Terminal(np) is int p and >= 0)
        {
            // The full defined key (and separator) is here; a free key with the same bytes is never allowed.
            if (!InWindow(o, f.Count, p))
                return StepResult.Reject;
            EnterValue(ref f, p, p + 1);
            return StepResult.Consumed;
        }
        if (freeDone)
        {
            EnterValue(ref f, -1, o.Props.Length);
            return StepResult.Consumed;
        }
        // A closed free key whose separator would complete a defined key is a dead end.
        if (free && !o.BareKeys && f.KeyState == KeyState.AfterQuote && np >= 0 && trie!.Child(np, o.KeySeparator) is int c and >= 0 && trie.Terminal(c) >= 0)
            free = false;
        bool trieViable = np >= 0 && trie!.SubtreeHasAny(np, Window(o, f.Count));
        if (!trieViable && !free)
            return StepResult.Reject;
        f.Pos = np;
        f.Flags = free ? (byte)1 : (byte)0;
        return StepResult.Consumed;
    }

    /// <summary>The free-key track: false when the symbol ends it; <paramref name="done"/> at its separator.</summary>
    private static bool StepFreeKey(ref Frame f, ObjectNode o, int sym, out bool done)
    {
        done = false;
        if (o.BareKeys)
        {
            if (f.KeyState == KeyState.IdentStart)
            {
                if (sym is not ('_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z'))
                    return false;
                f.KeyState = KeyState.IdentBody;
                return true;
            }
            if (sym is '_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9')
                return true; // stays IdentBody
            done = sym == o.KeySeparator;
            return done;
        }
        switch (f.KeyState)
        {
            case KeyState.ExpectQuote:
                if (sym != '"')
                    return false;
                f.StringState = StringState.Normal;
                return true;
            case KeyState.AfterQuote:
                done = sym == o.KeySeparator;
                return done;
            default:
                int r = StringStepper.StepBody(ref f.Sub, sym, o.FreeKeyEscapes, o.Python, out _);
                if (r < 0)
                    return false;
                if (r > 0)
                    f.KeyState = KeyState.AfterQuote;
                return true;
        }
    }

    /// <summary>The key and separator are in: property <paramref name="prop"/> (-1: free) moves the cursor to <paramref name="cursor"/>.</summary>
    private static void EnterValue(ref Frame f, int prop, int cursor)
    {
        f.Pos = prop;
        f.Count = cursor;
        f.ObjectPhase = ObjectPhase.AfterSeparator;
        f.Flags = 0;
        f.Sub = 0;
        f.Ws = 0;
    }

    private static ReadOnlySpan<ulong> Window(ObjectNode o, int cursor) => o.WindowMasks.AsSpan(cursor * o.MaskWords, o.MaskWords);

    private static bool InWindow(ObjectNode o, int cursor, int p) => (Window(o, cursor)[p / 64] & (1UL << (p % 64))) != 0;

    /// <summary>True when the frame is inside a free key that has left the defined-key trie, between characters.</summary>
    public static bool InPlainFreeKey(in Frame f, ObjectNode o) =>
        f.ObjectPhase == ObjectPhase.InKey && (o.KeyTrie is null || f.Pos < 0) && (f.Flags & 1) != 0 && f.StringState == StringState.Normal;

    /// <summary>Fewest bytes that close the object with every required member.</summary>
    public static long Remaining(Grammar g, in Frame f, ObjectNode o)
    {
        int c = f.Count;
        switch (f.ObjectPhase)
        {
            case ObjectPhase.Open:
                return o.Open.Length - f.Pos + FirstMember(g, o, c) + 1;
            case ObjectPhase.AfterOpen:
                return FirstMember(g, o, c) + 1;
            case ObjectPhase.InKey:
                return KeyRemaining(g, in f, o) + 1;
            case ObjectPhase.AfterSeparator:
                return g.Nodes[f.Pos >= 0 ? o.Props[f.Pos].Value : o.Additional].MinLen + (long)o.RequiredSuffix[c] + 1;
            case ObjectPhase.AfterComma:
                return NextMember(o, c) + 1;
            case ObjectPhase.BeforeClose:
                return 1;
            default: // InValue, AfterValue
                return o.RequiredSuffix[c] + 1L;
        }
    }

    private static long FirstMember(Grammar g, ObjectNode o, int c) => o.CanCloseAt(c) ? 0 : NextMember(o, c);

    /// <summary>Cheapest next member (key, value and every required member after it) with no leading comma.</summary>
    private static long NextMember(ObjectNode o, int c)
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
            long key = f.KeyState switch
            {
                KeyState.ExpectQuote => 3,
                KeyState.AfterQuote => 1,
                KeyState.IdentStart => 2,
                KeyState.IdentBody => 1,
                _ => StringStepper.SubRemaining(f.StringState) + 2,
            };
            best = Math.Min(best, key + g.Nodes[o.Additional].MinLen);
        }
        return best;
    }
}
