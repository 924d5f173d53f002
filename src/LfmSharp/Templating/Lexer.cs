using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using LfmSharp.Chat;

namespace LfmSharp.Templating;

internal enum TokenKind
{
    Text,
    VarBegin,
    VarEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Int,
    Float,
    Op,
    Eof,
}

internal readonly record struct Token(TokenKind Kind, string Text, int Offset);

/// <summary>
/// Splits template source into text and tag tokens with Jinja2's whitespace rules as transformers configures them:
/// <c>trim_blocks</c> (the first newline after a block or comment tag is dropped), <c>lstrip_blocks</c> (spaces and
/// tabs before a block or comment tag at the start of a line are dropped), <c>-</c> / <c>+</c> modifiers,
/// <c>keep_trailing_newline=False</c>, newlines normalised to <c>\n</c>, and <c>{% raw %}</c>.
/// </summary>
internal sealed partial class Lexer
{
    private readonly string _src;
    private readonly List<Token> _tokens = [];
    private int _pos;
    private bool _lineStarting = true;

    private Lexer(string source) => _src = source;

    /// <summary>The source as Jinja2 sees it: newlines normalised, one trailing newline removed.</summary>
    public static string Normalize(string source)
    {
        string s = source.Contains('\r') ? source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n') : source;
        return s.EndsWith('\n') ? s[..^1] : s;
    }

    public static List<Token> Tokenize(string normalizedSource)
    {
        var lexer = new Lexer(normalizedSource);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        int n = _src.Length;
        while (_pos < n)
        {
            int idx = FindTagStart(_pos);
            if (idx < 0)
            {
                AddText(_src[_pos..]);
                break;
            }
            char kind = _src[idx + 1];
            int inner = idx + 2;
            char mod = inner < n ? _src[inner] : '\0';
            string text = _src[_pos..idx];
            if (mod == '-')
                text = RStrip(text);
            else if (mod != '+' && kind != '{')
                text = LStripBlock(text);
            AddText(text);
            if (mod is '-' or '+')
                inner++;
            if (kind == '#')
                SkipComment(idx, inner);
            else
                LexTag(idx, inner, kind == '{');
        }
        _tokens.Add(new Token(TokenKind.Eof, "", n));
    }

    private int FindTagStart(int from)
    {
        for (int i = _src.IndexOf('{', from); i >= 0 && i + 1 < _src.Length; i = _src.IndexOf('{', i + 1))
        {
            char c = _src[i + 1];
            if (c is '{' or '%' or '#')
                return i;
        }
        return -1;
    }

    private void AddText(string text)
    {
        if (text.Length > 0)
            _tokens.Add(new Token(TokenKind.Text, text, _pos));
    }

    // lstrip_blocks: drop the whitespace between the line start and a block/comment tag.
    private string LStripBlock(string text)
    {
        int lpos = text.LastIndexOf('\n') + 1;
        if (lpos == 0 && !_lineStarting)
            return text;
        for (int i = lpos; i < text.Length; i++)
        {
            if (!PythonJson.IsSpace(text[i]))
                return text;
        }
        return text[..lpos];
    }

    private static string RStrip(string s)
    {
        int end = s.Length;
        while (end > 0 && PythonJson.IsSpace(s[end - 1]))
            end--;
        return s[..end];
    }

    private void SkipComment(int start, int inner)
    {
        int end = _src.IndexOf("#}", inner, StringComparison.Ordinal);
        if (end < 0)
            throw Error("missing end of comment tag", start);
        bool strip = end > inner && _src[end - 1] == '-';
        bool keep = end > inner && _src[end - 1] == '+';
        _pos = end + 2;
        AfterTag(strip, trim: !keep);
    }

    private void AfterTag(bool strip, bool trim)
    {
        if (strip)
        {
            while (_pos < _src.Length && PythonJson.IsSpace(_src[_pos]))
                _pos++;
        }
        else if (trim && _pos < _src.Length && _src[_pos] == '\n')
        {
            _pos++;
        }
        _lineStarting = _pos > 0 && _src[_pos - 1] == '\n';
    }

    private void LexTag(int start, int pos, bool variable)
    {
        int first = _tokens.Count;
        _tokens.Add(new Token(variable ? TokenKind.VarBegin : TokenKind.BlockBegin, "", start));
        char close = variable ? '}' : '%';
        int n = _src.Length;
        int depth = 0; // open ( [ {: as in Jinja2, "}}" inside a dict literal does not end the tag
        while (true)
        {
            while (pos < n && _src[pos] is ' ' or '\t' or '\n' or '\r')
                pos++;
            if (pos >= n)
                throw Error(variable ? "unexpected end of template, expected '}}'" : "unexpected end of template, expected '%}'", start);
            char c = _src[pos];
            // The end of the tag, with its optional - or + modifier.
            if (depth == 0 && ((c == close && At(pos + 1, '}')) || (c is '-' or '+' && At(pos + 1, close) && At(pos + 2, '}'))))
            {
                bool strip = c == '-', keep = c == '+';
                _tokens.Add(new Token(variable ? TokenKind.VarEnd : TokenKind.BlockEnd, "", pos));
                _pos = pos + (c == close ? 2 : 3);
                AfterTag(strip, trim: !variable && !keep);
                break;
            }
            if (c is '(' or '[' or '{')
                depth++;
            else if (c is ')' or ']' or '}' && depth > 0)
                depth--;
            pos = LexExpressionToken(pos);
        }
        if (!variable && _tokens.Count - first == 3 && _tokens[first + 1] is { Kind: TokenKind.Name, Text: "raw" })
        {
            _tokens.RemoveRange(first, 3);
            LexRaw(start);
        }
    }

    private void LexRaw(int start)
    {
        var m = EndRaw().Match(_src, _pos);
        if (!m.Success)
            throw Error("missing {% endraw %} for this raw block", start);
        string text = _src[_pos..m.Index];
        if (m.Groups[1].Value == "-")
            text = RStrip(text);
        else if (m.Groups[1].Value != "+")
            text = LStripBlock(text);
        AddText(text);
        _pos = m.Index + m.Length;
        AfterTag(m.Groups[2].Value == "-", trim: m.Groups[2].Value != "+");
    }

    [GeneratedRegex(@"\{%([-+]?)\s*endraw\s*([-+]?)%\}")]
    private static partial Regex EndRaw();

    private bool At(int i, char c) => i < _src.Length && _src[i] == c;

    private int LexExpressionToken(int pos)
    {
        char c = _src[pos];
        if (char.IsLetter(c) || c == '_')
        {
            int e = pos + 1;
            while (e < _src.Length && (char.IsLetterOrDigit(_src[e]) || _src[e] == '_'))
                e++;
            _tokens.Add(new Token(TokenKind.Name, _src[pos..e], pos));
            return e;
        }
        if (char.IsAsciiDigit(c))
            return LexNumber(pos);
        if (c is '\'' or '"')
            return LexString(pos);
        string two = pos + 1 < _src.Length ? _src.Substring(pos, 2) : "";
        if (two is "//" or "**" or "==" or "!=" or "<=" or ">=")
        {
            _tokens.Add(new Token(TokenKind.Op, two, pos));
            return pos + 2;
        }
        if ("+-*/%~<>=()[]{},.:|".Contains(c))
        {
            _tokens.Add(new Token(TokenKind.Op, c.ToString(), pos));
            return pos + 1;
        }
        throw Error($"unexpected character '{c}'", pos);
    }

    private int LexNumber(int pos)
    {
        int e = Digits(pos);
        bool isFloat = false;
        if (At(e, '.') && e + 1 < _src.Length && char.IsAsciiDigit(_src[e + 1]))
        {
            e = Digits(e + 1);
            isFloat = true;
        }
        if (e < _src.Length && _src[e] is 'e' or 'E')
        {
            int x = e + 1;
            if (x < _src.Length && _src[x] is '+' or '-')
                x++;
            if (x < _src.Length && char.IsAsciiDigit(_src[x]))
            {
                e = Digits(x);
                isFloat = true;
            }
        }
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Int, _src[pos..e].Replace("_", "", StringComparison.Ordinal), pos));
        return e;
    }

    private int Digits(int pos)
    {
        while (pos < _src.Length && (char.IsAsciiDigit(_src[pos]) || (_src[pos] == '_' && pos + 1 < _src.Length && char.IsAsciiDigit(_src[pos + 1]))))
            pos++;
        return pos;
    }

    private int LexString(int start)
    {
        char q = _src[start];
        var sb = new StringBuilder();
        int i = start + 1;
        while (true)
        {
            if (i >= _src.Length)
                throw Error("unterminated string", start);
            char c = _src[i];
            if (c == q)
                break;
            if (c != '\\')
            {
                sb.Append(c);
                i++;
                continue;
            }
            i = Escape(sb, i + 1, start);
        }
        _tokens.Add(new Token(TokenKind.String, sb.ToString(), start));
        return i + 1;
    }

    // Python's unicode-escape, which is how Jinja2 decodes string literals.
    private int Escape(StringBuilder sb, int i, int start)
    {
        if (i >= _src.Length)
            throw Error("unterminated string", start);
        char c = _src[i];
        switch (c)
        {
            case 'n': sb.Append('\n'); return i + 1;
            case 't': sb.Append('\t'); return i + 1;
            case 'r': sb.Append('\r'); return i + 1;
            case '\\': sb.Append('\\'); return i + 1;
            case '\'': sb.Append('\''); return i + 1;
            case '"': sb.Append('"'); return i + 1;
            case 'a': sb.Append('\a'); return i + 1;
            case 'b': sb.Append('\b'); return i + 1;
            case 'f': sb.Append('\f'); return i + 1;
            case 'v': sb.Append('\v'); return i + 1;
            case '\n': return i + 1;
            case 'x': return Hex(sb, i + 1, 2, start);
            case 'u': return Hex(sb, i + 1, 4, start);
            case 'U': return Hex(sb, i + 1, 8, start);
        }
        if (c is >= '0' and <= '7')
        {
            int e = i, v = 0;
            while (e < _src.Length && e < i + 3 && _src[e] is >= '0' and <= '7')
                v = v * 8 + (_src[e++] - '0');
            sb.Append((char)v);
            return e;
        }
        sb.Append('\\').Append(c);
        return i + 1;
    }

    private int Hex(StringBuilder sb, int i, int count, int start)
    {
        if (i + count > _src.Length || !int.TryParse(_src.AsSpan(i, count), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp) || cp > 0x10FFFF)
            throw Error("truncated \\x, \\u or \\U escape in a string", start);
        sb.Append(char.ConvertFromUtf32(cp is >= 0xD800 and <= 0xDFFF ? 0xFFFD : cp));
        return i + count;
    }

    private TemplateException Error(string message, int offset)
    {
        var (line, col) = Position(_src, offset);
        return new TemplateException(message, line, col);
    }

    /// <summary>1-based line and column of <paramref name="offset"/>.</summary>
    public static (int Line, int Column) Position(string src, int offset)
    {
        int line = 1, lineStart = 0;
        for (int i = 0; i < offset && i < src.Length; i++)
        {
            if (src[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }
        return (line, offset - lineStart + 1);
    }
}
