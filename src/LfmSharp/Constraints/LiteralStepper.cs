namespace LfmSharp.Constraints;

/// <summary>Literal frames (true, false, null, enum and const values): Pos walks the literal trie.</summary>
internal static class LiteralStepper
{
    public static StepResult Step(ref Frame f, LiteralNode l, int sym)
    {
        var trie = l.Trie;
        int c = trie.Child(f.Pos, sym);
        if (c >= 0)
        {
            f.Pos = c;
            return trie.Terminal(c) >= 0 && !trie.HasChildren(c) ? StepResult.Done : StepResult.Consumed;
        }
        return f.Pos != 0 && trie.Terminal(f.Pos) >= 0 ? StepResult.SoftEnd : StepResult.Reject;
    }

    /// <summary>True when the bytes so far spell a whole literal (a longer one may still follow).</summary>
    public static bool CanEnd(in Frame f, LiteralNode l) => f.Pos != 0 && l.Trie.Terminal(f.Pos) >= 0;

    public static long Remaining(in Frame f, LiteralNode l) => f.Pos == 0 ? l.MinLen : l.Trie.MinToEnd(f.Pos);
}
