using System.Globalization;

namespace LfmSharp.Tokenizers;

/// <summary>
/// The pre-tokenizer llama.cpp uses for <c>tokenizer.ggml.pre</c> = <c>lfm2</c> (and <c>llama3</c>, <c>llama-bpe</c>, ...):
/// <code>
/// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// </code>
/// llama.cpp does not run this through a regex engine but through a hand-written splitter over code points
/// (<c>unicode_regex_split_custom_llama3</c>), and the token ids it produces are the reference. This is the same
/// state machine, written over code points for the same reasons: a .NET <see cref="System.Text.RegularExpressions.Regex"/>
/// works on UTF-16 code units, so <c>\p{L}</c> and <c>\p{N}</c> never match a supplementary-plane letter or digit
/// (for example U+20000 or U+1D7CE), and it is several times slower. Character classes follow llama.cpp's tables:
/// <c>\p{L}</c> = Lu/Ll/Lt/Lm/Lo, <c>\p{N}</c> = Nd/Nl/No, <c>\s</c> = the Unicode White_Space property. Every code
/// point, assigned or not, has a non-empty class; only "past the end of the fragment" has none, which is what
/// llama.cpp's <c>flags.as_uint() == 0</c> tests mean.
/// </summary>
internal static class Llama3PreTokenizer
{
    public const byte Letter = 1;
    public const byte Number = 2;
    public const byte Whitespace = 4;
    public const byte Other = 8;

    // [128] class of each ASCII code point
    private static readonly byte[] s_ascii = BuildAscii();

    /// <summary>The pre-tokenizer names (GGUF <c>tokenizer.ggml.pre</c>) that llama.cpp maps to this splitter.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal)
    {
        "lfm2", "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "jina-v5-nano",
        // llama.cpp gives these the same regex (and the same splitter) without forcing add_bos / ignore_merges
        "dbrx", "smaug-bpe",
    };

    /// <summary>Whether llama.cpp sets <c>ignore_merges</c> (whole pre-token in the vocabulary = one token) for <paramref name="pre"/>.</summary>
    public static bool IgnoresMerges(string pre) => Names.Contains(pre) && pre is not ("dbrx" or "smaug-bpe");

    /// <summary>Whether llama.cpp defaults <c>add_bos</c> to true for <paramref name="pre"/> (the GGUF key still overrides it).</summary>
    public static bool DefaultsToAddBos(string pre) => IgnoresMerges(pre);

    /// <summary>The class bits of one code point (never 0).</summary>
    public static byte Classify(int cp)
    {
        if (cp < 128)
            return s_ascii[cp];
        if (IsUnicodeWhitespace(cp))
            return Whitespace;
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter:
            case UnicodeCategory.LowercaseLetter:
            case UnicodeCategory.TitlecaseLetter:
            case UnicodeCategory.ModifierLetter:
            case UnicodeCategory.OtherLetter:
                return Letter;
            case UnicodeCategory.DecimalDigitNumber:
            case UnicodeCategory.LetterNumber:
            case UnicodeCategory.OtherNumber:
                return Number;
            default:
                return Other;
        }
    }

    /// <summary>
    /// Decodes UTF-16 <paramref name="text"/> into code points (an unpaired surrogate becomes U+FFFD, as it does when
    /// the text is converted to UTF-8 for llama.cpp) and their classes. Returns the number of code points.
    /// </summary>
    /// <param name="text">The text to decode.</param>
    /// <param name="cps">[text.Length] receives the code points.</param>
    /// <param name="classes">[text.Length] receives <see cref="Classify"/> of each code point.</param>
    public static int Decode(ReadOnlySpan<char> text, Span<int> cps, Span<byte> classes)
    {
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            int cp = text[i];
            if (cp < 128)
            {
                cps[n] = cp;
                classes[n++] = s_ascii[cp];
                continue;
            }
            if (char.IsHighSurrogate((char)cp) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                cp = char.ConvertToUtf32((char)cp, text[i + 1]);
                i++;
            }
            else if (char.IsSurrogate((char)cp))
            {
                cp = 0xFFFD;
            }
            cps[n] = cp;
            classes[n++] = Classify(cp);
        }
        return n;
    }

    /// <summary>
    /// Splits code points <c>[0, n)</c> into pre-tokens and appends the exclusive end index (in code points) of each
    /// pre-token to <paramref name="ends"/>.
    /// </summary>
    /// <param name="cps">[n] code points of one text fragment (special tokens already removed).</param>
    /// <param name="classes">[n] their classes.</param>
    /// <param name="ends">Receives the end index of each pre-token.</param>
    public static void Split(ReadOnlySpan<int> cps, ReadOnlySpan<byte> classes, List<int> ends)
    {
        int n = cps.Length;
        int pos = 0;
        while (pos < n)
        {
            // The alternatives of the pattern, tried in its order; each returns the match's end, or -1.
            int end = MatchContraction(cps, pos);
            if (end < 0)
                end = MatchLetters(cps, classes, pos);
            if (end < 0 && (classes[pos] & Number) != 0)
            {
                pos = MatchDigits(classes, pos, ends); // adds its own ends (one per three digits)
                continue;
            }
            if (end < 0)
                end = MatchPunctuation(cps, classes, pos);
            if (end < 0)
                end = MatchWhitespace(cps, classes, pos);
            pos = end;
            ends.Add(pos);
        }
    }

    /// <summary>(?i:'s|'t|'re|'ve|'m|'ll|'d)</summary>
    private static int MatchContraction(ReadOnlySpan<int> cps, int pos)
    {
        int n = cps.Length;
        if (cps[pos] != '\'' || pos + 1 >= n)
            return -1;
        int c1 = AsciiLower(cps[pos + 1]);
        if (c1 is 's' or 't' or 'm' or 'd')
            return pos + 2;
        if (pos + 2 < n)
        {
            int c2 = AsciiLower(cps[pos + 2]);
            if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                return pos + 3;
        }
        return -1;
    }

    /// <summary>[^\r\n\p{L}\p{N}]?\p{L}+</summary>
    private static int MatchLetters(ReadOnlySpan<int> cps, ReadOnlySpan<byte> classes, int pos)
    {
        int cp = cps[pos];
        byte cls = classes[pos];
        if (cp == '\r' || cp == '\n' || (cls & Number) != 0)
            return -1;
        if ((cls & Letter) == 0 && (ClassAt(classes, pos + 1) & Letter) == 0)
            return -1;
        pos++;
        while ((ClassAt(classes, pos) & Letter) != 0)
            pos++;
        return pos;
    }

    /// <summary>\p{N}{1,3}, repeated: a digit run becomes pre-tokens of three digits and a shorter rest.</summary>
    private static int MatchDigits(ReadOnlySpan<byte> classes, int pos, List<int> ends)
    {
        int start = pos;
        while ((ClassAt(classes, pos) & Number) != 0)
        {
            pos++;
            if (pos - start == 3)
            {
                ends.Add(pos);
                start = pos;
            }
        }
        if (pos > start)
            ends.Add(pos);
        return pos;
    }

    /// <summary>
    /// ' ?[^\s\p{L}\p{N}]+[\r\n]*'. llama.cpp tests the class of the code point after an optional space, and stops
    /// at the fragment end (class 0); a lone trailing space therefore ends up here as " ".
    /// </summary>
    private static int MatchPunctuation(ReadOnlySpan<int> cps, ReadOnlySpan<byte> classes, int pos)
    {
        int cp = cps[pos];
        byte cls = classes[pos];
        byte cls2 = cp == ' ' ? ClassAt(classes, pos + 1) : cls;
        if ((cls2 & (Whitespace | Letter | Number)) != 0 || cls == 0)
            return -1;
        if (cp == ' ')
            pos++;
        while ((cls2 & (Whitespace | Letter | Number)) == 0 && cls2 != 0)
        {
            pos++;
            cls2 = ClassAt(classes, pos);
        }
        while (pos < cps.Length && (cps[pos] == '\r' || cps[pos] == '\n'))
            pos++;
        return pos;
    }

    /// <summary>\s*[\r\n]+ | \s+(?!\S) | \s+, from the whitespace run starting here (always advances).</summary>
    private static int MatchWhitespace(ReadOnlySpan<int> cps, ReadOnlySpan<byte> classes, int pos)
    {
        // remember the end of the run's last \r or \n
        int run = 0;
        int lastLineBreakEnd = -1;
        while ((ClassAt(classes, pos + run) & Whitespace) != 0)
        {
            int c = cps[pos + run];
            run++;
            if (c == '\r' || c == '\n')
                lastLineBreakEnd = pos + run;
        }
        if (lastLineBreakEnd >= 0)
            return lastLineBreakEnd;            // \s*[\r\n]+
        if (run > 1 && pos + run < cps.Length)
            return pos + run - 1;               // \s+(?!\S): leave the last space to prefix the next word
        if (run > 0)
            return pos + run;                   // \s+
        return pos + 1; // no alternative matches (cannot happen for a classified code point, kept like llama.cpp)
    }

    private static byte ClassAt(ReadOnlySpan<byte> classes, int i) => (uint)i < (uint)classes.Length ? classes[i] : (byte)0;

    private static int AsciiLower(int c) => c is >= 'A' and <= 'Z' ? c + 32 : c;

    // The Unicode White_Space property (PropList.txt), which is what llama.cpp's unicode tables mark as \s.
    private static bool IsUnicodeWhitespace(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    private static byte[] BuildAscii()
    {
        var t = new byte[128];
        for (int c = 0; c < 128; c++)
        {
            if (IsUnicodeWhitespace(c))
                t[c] = Whitespace;
            else if (c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z'))
                t[c] = Letter;
            else if (c is >= '0' and <= '9')
                t[c] = Number;
            else
                t[c] = Other;
        }
        return t;
    }
}
