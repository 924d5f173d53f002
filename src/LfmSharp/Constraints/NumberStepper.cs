namespace LfmSharp.Constraints;

/// <summary>
/// Number frames. A bounded integer keeps its magnitude so far in Count (high half) and Pos (low half), and its sign
/// in bit 0 of Flags; Sub counts the digits of the current part (integer, fraction or exponent).
/// </summary>
internal static class NumberStepper
{
    /// <summary>Digit caps keep random sampling from writing endless numbers (18 integer digits still fit a long).</summary>
    public const int MaxIntDigits = 18, MaxFracDigits = 15, MaxExpDigits = 3;

    public static StepResult Step(ref Frame f, NumberNode n, int sym)
    {
        bool digit = sym is >= '0' and <= '9';
        int d = sym - '0';
        switch (f.NumberPhase)
        {
            case NumberPhase.Start:
                if (sym == '-')
                {
                    if (n.Bounded && n.Min >= 0)
                        return StepResult.Reject;
                    f.NumberPhase = NumberPhase.Minus;
                    f.Flags = 1;
                    return StepResult.Consumed;
                }
                return digit ? FirstDigit(ref f, n, d) : StepResult.Reject;
            case NumberPhase.Minus:
                return digit ? FirstDigit(ref f, n, d) : StepResult.Reject;
            case NumberPhase.Zero:
                if (!n.Integer && sym == '.')
                {
                    f.NumberPhase = NumberPhase.Dot;
                    return StepResult.Consumed;
                }
                if (!n.Integer && sym is 'e' or 'E')
                {
                    f.NumberPhase = NumberPhase.Exp;
                    return StepResult.Consumed;
                }
                return CanEnd(in f, n) ? StepResult.SoftEnd : StepResult.Reject;
            case NumberPhase.Int:
                return StepInt(ref f, n, sym, digit, d);
            default:
                return StepFraction(ref f, sym, digit);
        }
    }

    private static StepResult StepInt(ref Frame f, NumberNode n, int sym, bool digit, int d)
    {
        if (digit && f.Sub < MaxIntDigits)
        {
            if (!n.Bounded)
            {
                f.Sub++;
                return StepResult.Consumed;
            }
            long v = BoundedValue(in f) * 10 + d;
            if (Feasible(n, f.Flags != 0, v, f.Sub + 1))
            {
                SetBoundedValue(ref f, v);
                f.Sub++;
                return StepResult.Consumed;
            }
        }
        if (!n.Integer && sym == '.')
        {
            f.NumberPhase = NumberPhase.Dot;
            return StepResult.Consumed;
        }
        if (!n.Integer && sym is 'e' or 'E')
        {
            f.NumberPhase = NumberPhase.Exp;
            f.Sub = 0;
            return StepResult.Consumed;
        }
        return CanEnd(in f, n) ? StepResult.SoftEnd : StepResult.Reject;
    }

    /// <summary>The fraction and exponent phases (only numbers that are not integers get there).</summary>
    private static StepResult StepFraction(ref Frame f, int sym, bool digit)
    {
        switch (f.NumberPhase)
        {
            case NumberPhase.Dot:
                if (!digit)
                    return StepResult.Reject;
                f.NumberPhase = NumberPhase.Frac;
                f.Sub = 1;
                return StepResult.Consumed;
            case NumberPhase.Frac:
                if (digit && f.Sub < MaxFracDigits)
                {
                    f.Sub++;
                    return StepResult.Consumed;
                }
                if (sym is 'e' or 'E')
                {
                    f.NumberPhase = NumberPhase.Exp;
                    f.Sub = 0;
                    return StepResult.Consumed;
                }
                return StepResult.SoftEnd;
            case NumberPhase.Exp:
                if (sym is '+' or '-')
                {
                    f.NumberPhase = NumberPhase.ExpSign;
                    return StepResult.Consumed;
                }
                goto case NumberPhase.ExpSign;
            case NumberPhase.ExpSign:
                if (!digit)
                    return StepResult.Reject;
                f.NumberPhase = NumberPhase.ExpDigits;
                f.Sub = 1;
                return StepResult.Consumed;
            case NumberPhase.ExpDigits:
                if (digit && f.Sub < MaxExpDigits)
                {
                    f.Sub++;
                    return StepResult.Consumed;
                }
                return StepResult.SoftEnd;
            default:
                return StepResult.Reject;
        }
    }

    private static StepResult FirstDigit(ref Frame f, NumberNode n, int d)
    {
        if (n.Bounded && !Feasible(n, f.Flags != 0, d, 1))
            return StepResult.Reject;
        f.NumberPhase = d == 0 ? NumberPhase.Zero : NumberPhase.Int;
        f.Sub = 1;
        SetBoundedValue(ref f, d);
        return StepResult.Consumed;
    }

    private static long BoundedValue(in Frame f) => ((long)f.Count << 32) | (uint)f.Pos;

    private static void SetBoundedValue(ref Frame f, long v)
    {
        f.Count = (int)(v >> 32);
        f.Pos = (int)v;
    }

    /// <summary>True when the number so far is complete (it may still grow).</summary>
    public static bool CanEnd(in Frame f, NumberNode n)
    {
        switch (f.NumberPhase)
        {
            case NumberPhase.Zero:
            case NumberPhase.Int:
                if (!n.Bounded)
                    return true;
                long v = BoundedValue(in f);
                long x = f.Flags != 0 ? -v : v;
                return x >= n.Min && x <= n.Max;
            case NumberPhase.Frac:
            case NumberPhase.ExpDigits:
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
    public static int ExtraDigitsNeeded(NumberNode n, bool negative, long v, int digits)
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

    /// <summary>Fewest bytes that complete the number (0 when it can end now).</summary>
    public static long Remaining(in Frame f, NumberNode n)
    {
        switch (f.NumberPhase)
        {
            case NumberPhase.Start:
                return n.MinLen;
            case NumberPhase.Minus:
                if (!n.Bounded)
                    return 1;
                return n.Max >= 0 ? 1 : Digits(n.Max);
            case NumberPhase.Zero:
            case NumberPhase.Int:
                if (!n.Bounded)
                    return 0;
                int extra = ExtraDigitsNeeded(n, f.Flags != 0, BoundedValue(in f), f.Sub);
                return extra < 0 ? GNode.Infinite : extra;
            case NumberPhase.Frac:
            case NumberPhase.ExpDigits:
                return 0;
            default:
                return 1;
        }
    }

    /// <summary>Decimal digits of the magnitude of <paramref name="v"/> (no sign).</summary>
    public static int Digits(long v)
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
}
