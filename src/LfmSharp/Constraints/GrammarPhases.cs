namespace LfmSharp.Constraints;

/// <summary>What one stepper did with a symbol; <see cref="GrammarEngine"/> turns it into a stack operation.</summary>
internal enum StepResult : byte
{
    /// <summary>The symbol cannot come next: this stack dies.</summary>
    Reject,
    /// <summary>The frame took the symbol and stays on top.</summary>
    Consumed,
    /// <summary>The frame took the symbol as its last one and pops.</summary>
    Done,
    /// <summary>The frame was already complete and the symbol does not extend it: pop, then re-feed the symbol.</summary>
    SoftEnd,
    /// <summary>The frame wants a child (the stepper's <c>child</c> output) pushed, which then gets the symbol.</summary>
    Push,
}

/// <summary>Where an object frame is (<see cref="Frame.Phase"/> of an <see cref="ObjectNode"/>).</summary>
internal enum ObjectPhase : byte
{
    Open, AfterOpen, InKey, AfterSeparator, InValue, AfterValue, BeforeClose, AfterComma,
}

/// <summary>Where an array frame is (<see cref="Frame.Phase"/> of an <see cref="ArrayNode"/>).</summary>
internal enum ArrayPhase : byte
{
    Open, AfterOpen, InItem, AfterItem, BeforeClose, AfterComma,
}

/// <summary>Where a string frame is (<see cref="Frame.Phase"/> of a <see cref="StringNode"/>).</summary>
internal enum StringPhase : byte
{
    Open, Body,
}

/// <summary>Where a number frame is (<see cref="Frame.Phase"/> of a <see cref="NumberNode"/>).</summary>
internal enum NumberPhase : byte
{
    Start, Minus, Zero, Int, Dot, Frac, Exp, ExpSign, ExpDigits,
}

/// <summary>
/// Inside a string body (a string value or a quoted free key; <see cref="Frame.Sub"/>): between characters, in an
/// escape, in a \uXXXX escape (a high surrogate must be followed by a \uDC00-\uDFFF low one), or inside a UTF-8
/// sequence (the E0/ED/F0/F4 leads restrict their first continuation byte: no overlongs, surrogates or > U+10FFFF).
/// </summary>
internal enum StringState : byte
{
    Normal, Escape,
    Hex0, Hex1D, Hex1X, Hex2, Hex3, HighHex2, HighHex3,
    LowBackslash, LowU, Low0, Low1, Low2, Low3,
    Cont1, Cont2, Cont3, AfterE0, AfterED, AfterF0, AfterF4,
}

/// <summary>A free object key around its string body (<see cref="Frame.Sub"/>; disjoint from <see cref="StringState"/>).</summary>
internal enum KeyState : byte
{
    ExpectQuote = 100, AfterQuote = 101, IdentStart = 102, IdentBody = 103,
}
