using System.Text;

namespace LfmSharp.Constraints;

/// <summary>
/// Byte-level progress through a <see cref="Grammar"/>: feed bytes, ask whether the text so far is a complete
/// document. Advancing is all-or-nothing (a rejected span leaves the matcher as it was). Not thread-safe.
/// </summary>
internal sealed class GrammarMatcher
{
    private StackSet _state;
    private StackSet _scratch;

    public GrammarMatcher(Grammar grammar)
    {
        ArgumentNullException.ThrowIfNull(grammar);
        Grammar = grammar;
        _state = new StackSet(grammar.Capacity);
        _scratch = new StackSet(grammar.Capacity);
        _state.Init(grammar.Root);
    }

    public Grammar Grammar { get; }

    /// <summary>The bytes so far form a complete document.</summary>
    public bool IsComplete => GrammarEngine.CanEnd(Grammar, _state);

    /// <summary>Fewest further bytes (a special token counts as one) that make the document complete.</summary>
    public int MinBytesToComplete => GrammarEngine.MinBytes(Grammar, _state);

    public void Reset() => _state.Init(Grammar.Root);

    public bool TryAdvance(byte value) => TryAdvance([value]);

    /// <summary>Consumes all of <paramref name="bytes"/> or nothing; true when they keep the text a valid prefix.</summary>
    public bool TryAdvance(ReadOnlySpan<byte> bytes)
    {
        _scratch.CopyFrom(_state);
        foreach (byte b in bytes)
        {
            if (!GrammarEngine.Step(Grammar, _scratch, b))
                return false;
        }
        (_state, _scratch) = (_scratch, _state);
        return true;
    }

    /// <summary>Consumes the UTF-8 bytes of <paramref name="text"/> (all or nothing).</summary>
    public bool TryAdvance(string text) => TryAdvance(Encoding.UTF8.GetBytes(text));

    /// <summary>Consumes one of the grammar's special tokens (by its text, e.g. "&lt;|tool_call_start|&gt;").</summary>
    public bool TryAdvanceSpecial(string specialToken)
    {
        int index = Grammar.SpecialTokens is IList<string> list ? list.IndexOf(specialToken) : -1;
        if (index < 0)
            return false;
        _scratch.CopyFrom(_state);
        if (!GrammarEngine.Step(Grammar, _scratch, 256 + index))
            return false;
        (_state, _scratch) = (_scratch, _state);
        return true;
    }

    /// <summary>An independent copy at the same position.</summary>
    public GrammarMatcher Clone()
    {
        var m = new GrammarMatcher(Grammar);
        m._state.CopyFrom(_state);
        return m;
    }
}
