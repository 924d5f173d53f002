using System.Globalization;
using System.Numerics;
using System.Text;

namespace LfmSharp.Chat;

/// <summary>A value read from tool-call text (Python literal or JSON syntax), before it is written as JSON.</summary>
internal abstract class PyValue
{
}

/// <summary>A string. <see cref="NumberJson"/> is set for an integer with leading zeros (<c>zip=02134</c>): it stays a
/// string unless the tool's schema says the parameter is a number.</summary>
internal sealed class PyString(string value, string? numberJson = null) : PyValue
{
    public string Value { get; } = value;

    public string? NumberJson { get; } = numberJson;
}

/// <summary>A number, already as valid JSON number text.</summary>
internal sealed class PyNumber(string json) : PyValue
{
    public string Json { get; } = json;
}

internal sealed class PyBool(bool value) : PyValue
{
    public static readonly PyBool True = new(true);
    public static readonly PyBool False = new(false);

    public bool Value { get; } = value;
}

internal sealed class PyNone : PyValue
{
    public static readonly PyNone Instance = new();
}

/// <summary>A list or tuple.</summary>
internal sealed class PyList(List<PyValue> items) : PyValue
{
    public List<PyValue> Items { get; } = items;
}

/// <summary>A dict; keys keep their first position and take their last value, as in Python.</summary>
internal sealed class PyDict(List<KeyValuePair<string, PyValue>> members) : PyValue
{
    public List<KeyValuePair<string, PyValue>> Members { get; } = members;

    public PyValue? Get(string key)
    {
        foreach (var m in Members)
        {
            if (m.Key == key)
                return m.Value;
        }
        return null;
    }
}

/// <summary>Malformed tool-call text; <see cref="Offset"/> is the character offset in the text being parsed.</summary>
internal sealed class ToolCallSyntaxException(string message, int offset) : Exception(message)
{
    public int Offset { get; } = offset;
}

/// <summary>
/// A recursive-descent reader for the values a model writes in tool calls: Python literals and JSON mixed freely.
/// Strings in single, double or triple quotes with Python escapes (<c>\n \t \\ \' \" \xHH \uXXXX \UXXXXXXXX</c>, octal,
/// line continuation; unknown escapes keep the backslash), adjacent strings concatenated, raw newlines tolerated;
/// integers (<c>1_000</c>, <c>0x1F</c>, <c>0o17</c>, <c>0b101</c>), floats (<c>.5</c>, <c>5.</c>, <c>-1.5e-3</c>);
/// <c>True/False/None</c> and <c>true/false/null</c>; lists, tuples and dicts. Nesting is bounded, so input like
/// ten thousand <c>[</c> fails cleanly instead of overflowing the stack. Every failure is a
/// <see cref="ToolCallSyntaxException"/> naming the problem and the offset.
/// </summary>
internal sealed class PythonLiteralReader(string text, int maxDepth)
{
    private readonly string _s = text;
    private readonly int _maxDepth = maxDepth;
    private int _depth;

    public int Position { get; set; }

    public bool AtEnd => Position >= _s.Length;

    public char Peek(int ahead = 0) => Position + ahead < _s.Length ? _s[Position + ahead] : '\0';

    public void SkipWhitespace()
    {
        while (Position < _s.Length && char.IsWhiteSpace(_s[Position]))
            Position++;
    }

    public bool TryConsume(char c)
    {
        if (Position < _s.Length && _s[Position] == c)
        {
            Position++;
            return true;
        }
        return false;
    }

    public ToolCallSyntaxException Error(string message, int? at = null)
    {
        int offset = at ?? Position;
        string where = offset >= _s.Length ? $"at offset {offset} (end of text)" : $"at offset {offset}";
        return new ToolCallSyntaxException($"{message} {where}", offset);
    }

    public string Describe(int at) => at >= _s.Length ? "the end of the text" : $"'{_s[at]}'";

    public static bool IsNameStart(char c) => char.IsLetter(c) || c == '_';

    public static bool IsNamePart(char c) => char.IsLetterOrDigit(c) || c is '_' or '-';

    /// <summary>An identifier (letters, digits, '_' and '-' after the first), optionally dotted (<c>a.b.c</c>).</summary>
    public string? TryReadName(bool allowDots)
    {
        int start = Position;
        if (!IsNameStart(Peek()))
            return null;
        while (true)
        {
            Position++;
            while (Position < _s.Length && IsNamePart(_s[Position]))
                Position++;
            if (allowDots && Peek() == '.' && IsNameStart(Peek(1)))
            {
                Position++;
                continue;
            }
            break;
        }
        return _s[start..Position];
    }

    public PyValue ReadValue()
    {
        SkipWhitespace();
        if (AtEnd)
            throw Error("Expected a value but the text ended");
        char c = _s[Position];
        switch (c)
        {
            case '"':
            case '\'':
                return ReadStrings();
            case '[':
                return ReadSequence(']');
            case '(':
                return ReadSequence(')');
            case '{':
                return ReadDict();
        }
        if (c is '-' or '+' || char.IsAsciiDigit(c) || (c == '.' && char.IsAsciiDigit(Peek(1))))
            return ReadNumber();
        if (IsNameStart(c))
        {
            int at = Position;
            string name = TryReadName(allowDots: false)!;
            switch (name)
            {
                case "True" or "true": return PyBool.True;
                case "False" or "false": return PyBool.False;
                case "None" or "null": return PyNone.Instance;
                case "inf" or "nan" or "Infinity" or "NaN":
                    throw Error($"'{name}' has no JSON form", at);
            }
            throw Error($"Unquoted name '{name}' where a value belongs (strings need quotes)", at);
        }
        throw Error($"Unexpected '{c}' where a value belongs");
    }

    private void Enter(int at)
    {
        if (++_depth > _maxDepth)
            throw Error($"Nesting deeper than {_maxDepth} levels", at);
    }

    /// <summary>A list <c>[…]</c> or tuple <c>(…)</c>; <c>(x)</c> without a comma is just x, as in Python.</summary>
    private PyValue ReadSequence(char close)
    {
        int open = Position;
        Enter(open);
        Position++;
        var items = new List<PyValue>();
        bool trailingComma = false;
        while (true)
        {
            SkipWhitespace();
            if (TryConsume(close))
                break;
            if (AtEnd)
                throw Error($"Unclosed '{_s[open]}' opened at offset {open}");
            items.Add(ReadValue());
            trailingComma = false;
            SkipWhitespace();
            if (TryConsume(','))
            {
                trailingComma = true;
                continue;
            }
            if (TryConsume(close))
                break;
            throw Error($"Expected ',' or '{close}' but found {Describe(Position)}");
        }
        _depth--;
        if (close == ')' && items.Count == 1 && !trailingComma)
            return items[0];
        return new PyList(items);
    }

    private PyValue ReadDict()
    {
        int open = Position;
        Enter(open);
        Position++;
        var members = new List<KeyValuePair<string, PyValue>>();
        while (true)
        {
            SkipWhitespace();
            if (TryConsume('}'))
                break;
            if (AtEnd)
                throw Error($"Unclosed '{{' opened at offset {open}");
            int keyAt = Position;
            string key = ReadValue() switch
            {
                PyString s => s.Value,
                PyNumber n => n.Json,
                // json.dumps turns these keys into JSON's spelling.
                PyBool b => b.Value ? "true" : "false",
                PyNone => "null",
                _ => throw Error("A dict key must be a string, number, boolean or None", keyAt),
            };
            SkipWhitespace();
            if (!TryConsume(':'))
                throw Error($"Expected ':' after a dict key but found {Describe(Position)}");
            var value = ReadValue();
            int existing = members.FindIndex(m => m.Key == key);
            if (existing >= 0)
                members[existing] = new(key, value);
            else
                members.Add(new(key, value));
            SkipWhitespace();
            if (TryConsume(','))
                continue;
            if (TryConsume('}'))
                break;
            throw Error($"Expected ',' or '}}' but found {Describe(Position)}");
        }
        _depth--;
        return new PyDict(members);
    }

    /// <summary>One string literal, or several adjacent ones concatenated (<c>"a" 'b'</c> is <c>"ab"</c> in Python).</summary>
    private PyValue ReadStrings()
    {
        string s = ReadString();
        while (true)
        {
            int save = Position;
            SkipWhitespace();
            if (Peek() is '"' or '\'')
            {
                s += ReadString();
                continue;
            }
            Position = save;
            return new PyString(s);
        }
    }

    private string ReadString()
    {
        int open = Position;
        char q = _s[Position];
        bool triple = Peek(1) == q && Peek(2) == q;
        Position += triple ? 3 : 1;
        var sb = new StringBuilder();
        while (true)
        {
            if (AtEnd)
                throw Error($"Unterminated string opened at offset {open}");
            char c = _s[Position];
            if (c == q && (!triple || (Peek(1) == q && Peek(2) == q)))
            {
                Position += triple ? 3 : 1;
                break;
            }
            if (c != '\\')
            {
                // Raw newlines are not legal in a one-line Python string, but models write them; keep them.
                sb.Append(c);
                Position++;
                continue;
            }
            ReadEscape(sb);
        }
        string result = sb.ToString();
        for (int i = 0; i < result.Length; i++)
        {
            if (char.IsHighSurrogate(result[i]) && i + 1 < result.Length && char.IsLowSurrogate(result[i + 1]))
                i++;
            else if (char.IsSurrogate(result[i]))
                throw Error($"String opened at offset {open} contains a lone surrogate U+{(int)result[i]:X4}", open);
        }
        return result;
    }

    private void ReadEscape(StringBuilder sb)
    {
        int at = Position;
        Position++; // the backslash
        if (AtEnd)
            throw Error("Backslash at the end of the text", at);
        char e = _s[Position++];
        switch (e)
        {
            case '\n': return; // line continuation
            case '\r':
                TryConsume('\n');
                return;
            case '\\': sb.Append('\\'); return;
            case '\'': sb.Append('\''); return;
            case '"': sb.Append('"'); return;
            case '/': sb.Append('/'); return; // JSON
            case 'a': sb.Append('\a'); return;
            case 'b': sb.Append('\b'); return;
            case 'f': sb.Append('\f'); return;
            case 'n': sb.Append('\n'); return;
            case 'r': sb.Append('\r'); return;
            case 't': sb.Append('\t'); return;
            case 'v': sb.Append('\v'); return;
            case 'x': AppendCodePoint(sb, ReadHex(2, at), at); return;
            case 'u': AppendCodePoint(sb, ReadHex(4, at), at); return;
            case 'U': AppendCodePoint(sb, ReadHex(8, at), at); return;
        }
        if (e is >= '0' and <= '7')
        {
            int v = e - '0';
            for (int k = 0; k < 2 && Peek() is >= '0' and <= '7'; k++)
                v = v * 8 + (_s[Position++] - '0');
            sb.Append((char)v);
            return;
        }
        // Python keeps unknown escapes as written.
        sb.Append('\\').Append(e);
    }

    private int ReadHex(int digits, int escapeAt)
    {
        int v = 0;
        for (int k = 0; k < digits; k++)
        {
            char c = Peek();
            int d = HexValue(c);
            if (d < 0)
                throw Error($"Escape needs {digits} hex digits", escapeAt);
            Position++;
            // 8 hex digits can exceed int; anything above 0x10FFFF is rejected below anyway.
            v = v > 0x10FFFF ? v : v * 16 + d;
        }
        return v;
    }

    private static int HexValue(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };

    private void AppendCodePoint(StringBuilder sb, int cp, int at)
    {
        if (cp > 0x10FFFF)
            throw Error("Escape is beyond U+10FFFF", at);
        if (cp < 0x10000)
            sb.Append((char)cp); // surrogate halves are paired up (or rejected) when the string ends
        else
            sb.Append(char.ConvertFromUtf32(cp));
    }

    private PyValue ReadNumber()
    {
        int start = Position;
        bool negative = false;
        if (Peek() is '-' or '+')
        {
            negative = _s[Position] == '-';
            Position++;
            SkipWhitespace();
        }
        string sign = negative ? "-" : "";
        if (Peek() == '0' && Peek(1) is 'x' or 'X' or 'o' or 'O' or 'b' or 'B')
            return ReadPrefixedInteger(start, sign);

        string intPart = ReadDigits();
        bool hasDot = false, hasExp = false;
        string frac = "", exp = "", expSign = "";
        if (Peek() == '.' && !(intPart.Length == 0 && !char.IsAsciiDigit(Peek(1))))
        {
            hasDot = true;
            Position++;
            frac = ReadDigits();
        }
        if (intPart.Length == 0 && frac.Length == 0)
            throw Error("Expected digits", start);
        if (Peek() is 'e' or 'E')
        {
            hasExp = true;
            Position++;
            if (Peek() is '+' or '-')
                expSign = _s[Position++] == '-' ? "-" : "";
            exp = ReadDigits();
            if (exp.Length == 0)
                throw Error("Exponent without digits", start);
        }
        EnsureNumberEnds(start);

        if (!hasDot && !hasExp)
        {
            string stripped = intPart.TrimStart('0');
            if (stripped.Length == 0)
                return new PyNumber("0");
            if (stripped.Length != intPart.Length)
            {
                // 02134 is not a Python int; it is almost always an identifier (zip code, id). Keep the digits.
                return new PyString(_s[start..Position].Replace("_", "", StringComparison.Ordinal), sign + stripped);
            }
            return new PyNumber(sign + intPart);
        }
        string whole = intPart.TrimStart('0');
        if (whole.Length == 0)
            whole = "0";
        var sb = new StringBuilder(sign).Append(whole);
        if (hasDot)
            sb.Append('.').Append(frac.Length == 0 ? "0" : frac);
        if (hasExp)
            sb.Append('e').Append(expSign).Append(exp);
        return new PyNumber(sb.ToString());
    }

    /// <summary>0x…, 0o… or 0b… (underscores allowed), as a decimal integer.</summary>
    private PyNumber ReadPrefixedInteger(int start, string sign)
    {
        int radix = Peek(1) switch { 'x' or 'X' => 16, 'o' or 'O' => 8, _ => 2 };
        Position += 2;
        BigInteger v = BigInteger.Zero;
        int digits = 0;
        while (!AtEnd)
        {
            char c = _s[Position];
            if (c == '_')
            {
                Position++;
                continue;
            }
            int d = HexValue(c);
            if (d < 0 || d >= radix)
                break;
            v = v * radix + d;
            digits++;
            Position++;
        }
        if (digits == 0)
            throw Error("Number prefix without digits", start);
        EnsureNumberEnds(start);
        return new PyNumber(sign + v.ToString(CultureInfo.InvariantCulture));
    }

    private string ReadDigits()
    {
        int start = Position;
        while (!AtEnd && (char.IsAsciiDigit(_s[Position]) || (_s[Position] == '_' && Position > start)))
            Position++;
        return _s[start..Position].Replace("_", "", StringComparison.Ordinal);
    }

    private void EnsureNumberEnds(int start)
    {
        if (!AtEnd && (char.IsLetterOrDigit(_s[Position]) || _s[Position] is '_' or '.'))
            throw Error($"Malformed number '{_s[start..(Position + 1)]}'", start);
    }
}
