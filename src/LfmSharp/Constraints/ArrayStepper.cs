namespace LfmSharp.Constraints;

/// <summary>Array frames: Count is the number of items done.</summary>
internal static class ArrayStepper
{
    public static StepResult Step(Grammar g, ref Frame f, ArrayNode a, int sym, ref int child)
    {
        switch (f.ArrayPhase)
        {
            case ArrayPhase.Open:
                if (sym != a.Open)
                    return StepResult.Reject;
                f.ArrayPhase = ArrayPhase.AfterOpen;
                return StepResult.Consumed;
            case ArrayPhase.AfterOpen:
                if (Whitespace.Is(sym))
                    return Whitespace.Step(g, ref f, a.WsAfterOpen, sym);
                if (sym == a.Close)
                    return a.Min == 0 ? StepResult.Done : StepResult.Reject;
                if (a.Max == 0)
                    return StepResult.Reject;
                child = a.Item;
                f.ArrayPhase = ArrayPhase.InItem;
                return StepResult.Push;
            case ArrayPhase.AfterItem:
                return StepAfterItem(g, ref f, a, sym);
            case ArrayPhase.BeforeClose:
                if (sym == a.Close)
                    return StepResult.Done;
                return Whitespace.Is(sym) ? Whitespace.Step(g, ref f, a.WsBeforeClose, sym) : StepResult.Reject;
            case ArrayPhase.AfterComma:
                if (Whitespace.Is(sym))
                    return Whitespace.Step(g, ref f, a.WsAfterComma, sym);
                child = a.Item;
                f.ArrayPhase = ArrayPhase.InItem;
                return StepResult.Push;
            default:
                return StepResult.Reject;
        }
    }

    private static StepResult StepAfterItem(Grammar g, ref Frame f, ArrayNode a, int sym)
    {
        if (sym == ',')
        {
            if (f.Count >= a.Max)
                return StepResult.Reject;
            f.ArrayPhase = ArrayPhase.AfterComma;
            f.Ws = 0;
            return StepResult.Consumed;
        }
        if (sym == a.Close)
            return f.Count >= a.Min ? StepResult.Done : StepResult.Reject;
        if (Whitespace.Is(sym) && f.Count >= a.Min)
        {
            f.ArrayPhase = ArrayPhase.BeforeClose;
            f.Ws = 0;
            return Whitespace.Step(g, ref f, a.WsBeforeClose, sym);
        }
        return StepResult.Reject;
    }

    /// <summary>Tells the array frame that the item on top of it is complete.</summary>
    public static void ItemDone(ref Frame f)
    {
        f.Count++;
        f.ArrayPhase = ArrayPhase.AfterItem;
        f.Ws = 0;
    }

    /// <summary>Fewest bytes that close the array with its minimum item count.</summary>
    public static long Remaining(Grammar g, in Frame f, ArrayNode a)
    {
        long l = g.Nodes[a.Item].MinLen;
        return f.ArrayPhase switch
        {
            ArrayPhase.Open => 1 + ItemsCost(a.Min, l) + 1,
            ArrayPhase.AfterOpen => ItemsCost(a.Min, l) + 1,
            ArrayPhase.InItem => Math.Max(0, a.Min - (f.Count + 1)) * (l + 1) + 1,
            ArrayPhase.AfterItem => Math.Max(0, a.Min - f.Count) * (l + 1) + 1,
            ArrayPhase.AfterComma => l + Math.Max(0, a.Min - f.Count - 1) * (l + 1) + 1,
            _ => 1,
        };
    }

    private static long ItemsCost(int count, long itemLen) => count == 0 ? 0 : count * itemLen + (count - 1);
}
