using System.Runtime.CompilerServices;

namespace LfmSharp.Constraints;

/// <summary>String frames, and the string-body scanner that quoted free object keys share.</summary>
internal static class StringStepper
{
    public static StepResult Step(ref Frame f, StringNode s, int sym)
    {
        if (f.StringPhase == StringPhase.Open)
        {
            if (sym != '"')
                return StepResult.Reject;
            f.StringPhase = StringPhase.Body;
            return StepResult.Consumed;
        }
        int r = StepBody(ref f.Sub, sym, true, s.Python, out bool charStart);
        if (r < 0)
            return StepResult.Reject;
        if (r > 0)
            return f.Count >= s.Min ? StepResult.Done : StepResult.Reject;
        if (charStart)
        {
            if (f.Count >= s.Max)
                return StepResult.Reject;
            f.Count++;
        }
        return StepResult.Consumed;
    }

    /// <summary>Fewest bytes that finish a string frame, closing quote included.</summary>
    public static long Remaining(in Frame f, StringNode s) =>
        f.StringPhase == StringPhase.Open ? 2 + s.Min : SubRemaining(f.StringState) + Math.Max(0, s.Min - f.Count) + 1;

    /// <summary>
    /// One byte of string content: -1 invalid, 0 consumed, 1 the closing quote. Checks UTF-8 (no overlongs, no
    /// surrogates, nothing above U+10FFFF), escapes, and that a \u high surrogate is followed by a \u low one.
    /// <paramref name="sub"/> holds a <see cref="StringState"/>. <paramref name="charStart"/> is set when the byte
    /// starts a new code point (for length limits).
    /// </summary>
    public static int StepBody(ref byte sub, int sym, bool escapes, bool python, out bool charStart)
    {
        charStart = false;
        if ((uint)sym > 255)
            return -1;
        ref StringState st = ref Unsafe.As<byte, StringState>(ref sub);
        int b = sym;
        switch (st)
        {
            case StringState.Normal:
                return StepNormal(ref st, b, escapes, out charStart);
            case StringState.Cont1:
                return Cont(ref st, b, 0x80, 0xBF, StringState.Normal);
            case StringState.Cont2:
                return Cont(ref st, b, 0x80, 0xBF, StringState.Cont1);
            case StringState.Cont3:
                return Cont(ref st, b, 0x80, 0xBF, StringState.Cont2);
            case StringState.AfterE0:
                return Cont(ref st, b, 0xA0, 0xBF, StringState.Cont1);
            case StringState.AfterED:
                return Cont(ref st, b, 0x80, 0x9F, StringState.Cont1);
            case StringState.AfterF0:
                return Cont(ref st, b, 0x90, 0xBF, StringState.Cont2);
            case StringState.AfterF4:
                return Cont(ref st, b, 0x80, 0x8F, StringState.Cont2);
            case StringState.Escape:
                return StepEscape(ref st, b, python);
            default:
                return StepUnicodeEscape(ref st, b, python);
        }
    }

    private static int StepNormal(ref StringState st, int b, bool escapes, out bool charStart)
    {
        charStart = false;
        if (b == '"')
            return 1;
        if (b == '\\')
        {
            if (!escapes)
                return -1;
            st = StringState.Escape;
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
            st = StringState.Cont1;
        else if (b == 0xE0)
            st = StringState.AfterE0;
        else if (b == 0xED)
            st = StringState.AfterED;
        else if (b < 0xF0)
            st = StringState.Cont2;
        else if (b == 0xF0)
            st = StringState.AfterF0;
        else if (b < 0xF4)
            st = StringState.Cont3;
        else if (b == 0xF4)
            st = StringState.AfterF4;
        else
            return -1;
        return 0;
    }

    private static int StepEscape(ref StringState st, int b, bool python)
    {
        switch (b)
        {
            case '"' or '\\' or 'b' or 'f' or 'n' or 'r' or 't':
                st = StringState.Normal;
                return 0;
            case '/':
                // Python reads "\/" as two characters, so only JSON gets it.
                if (python)
                    return -1;
                st = StringState.Normal;
                return 0;
            case 'u':
                st = StringState.Hex0;
                return 0;
            default:
                return -1;
        }
    }

    /// <summary>The four hex digits of \uXXXX, and the \uDC00-\uDFFF that must follow a high surrogate.</summary>
    private static int StepUnicodeEscape(ref StringState st, int b, bool python)
    {
        switch (st)
        {
            case StringState.Hex0:
                if (!IsHex(b))
                    return -1;
                st = b is 'D' or 'd' ? StringState.Hex1D : StringState.Hex1X;
                return 0;
            case StringState.Hex1D:
                if (b is >= '0' and <= '7')
                    st = StringState.Hex2;
                else if (!python && b is '8' or '9' or 'a' or 'b' or 'A' or 'B')
                    st = StringState.HighHex2; // high surrogate: a low one must follow
                else
                    return -1;  // lone low surrogate, or any surrogate escape in Python
                return 0;
            case StringState.Hex1X:
                return HexTo(ref st, b, StringState.Hex2);
            case StringState.Hex2:
                return HexTo(ref st, b, StringState.Hex3);
            case StringState.Hex3:
                return HexTo(ref st, b, StringState.Normal);
            case StringState.HighHex2:
                return HexTo(ref st, b, StringState.HighHex3);
            case StringState.HighHex3:
                return HexTo(ref st, b, StringState.LowBackslash);
            case StringState.LowBackslash:
                return Exact(ref st, b == '\\', StringState.LowU);
            case StringState.LowU:
                return Exact(ref st, b == 'u', StringState.Low0);
            case StringState.Low0:
                return Exact(ref st, b is 'D' or 'd', StringState.Low1);
            case StringState.Low1:
                return Exact(ref st, b is >= 'c' and <= 'f' or >= 'C' and <= 'F', StringState.Low2);
            case StringState.Low2:
                return HexTo(ref st, b, StringState.Low3);
            case StringState.Low3:
                return HexTo(ref st, b, StringState.Normal);
            default:
                return -1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Exact(ref StringState st, bool ok, StringState next)
    {
        if (!ok)
            return -1;
        st = next;
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Cont(ref StringState st, int b, int lo, int hi, StringState next)
    {
        if (b < lo || b > hi)
            return -1;
        st = next;
        return 0;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsHex(int b) => b is >= '0' and <= '9' or >= 'a' and <= 'f' or >= 'A' and <= 'F';

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int HexTo(ref StringState st, int b, StringState next)
    {
        if (!IsHex(b))
            return -1;
        st = next;
        return 0;
    }

    /// <summary>Bytes still needed to finish the escape or UTF-8 sequence a string sub-state is in.</summary>
    public static int SubRemaining(StringState sub) => sub switch
    {
        StringState.Escape => 1,
        StringState.Hex0 => 4,
        StringState.Hex1D or StringState.Hex1X => 3,
        StringState.Hex2 => 2,
        StringState.Hex3 => 1,
        StringState.HighHex2 => 2 + 6,
        StringState.HighHex3 => 1 + 6,
        StringState.LowBackslash => 6,
        StringState.LowU => 5,
        StringState.Low0 => 4,
        StringState.Low1 => 3,
        StringState.Low2 => 2,
        StringState.Low3 => 1,
        StringState.Cont1 => 1,
        StringState.Cont2 => 2,
        StringState.Cont3 => 3,
        StringState.AfterE0 or StringState.AfterED => 2,
        StringState.AfterF0 or StringState.AfterF4 => 3,
        _ => 0,
    };
}
