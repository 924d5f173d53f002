using System.Text;
using System.Text.RegularExpressions;

namespace LfmSharp.Tokenizers.Tests;

public class PreTokenizerTests
{
    // llama.cpp's case-expanded form of the LLAMA3 / lfm2 pattern (fixtures README section 4). On BMP text .NET's
    // \s (\f\n\r\t\v\x85\p{Z}) is the Unicode White_Space set and \p{L} / \p{N} are the same categories, so the regex
    // is an independent oracle there; supplementary-plane text is where the two differ (tested separately).
    private static readonly Regex s_llama3 = new(
        @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        RegexOptions.CultureInvariant);

    private static List<string> Split(string text)
    {
        var cps = new int[text.Length];
        var classes = new byte[text.Length];
        int n = Llama3PreTokenizer.Decode(text, cps, classes);
        var ends = new List<int>();
        Llama3PreTokenizer.Split(cps.AsSpan(0, n), classes.AsSpan(0, n), ends);
        var words = new List<string>();
        int start = 0;
        foreach (int end in ends)
        {
            var sb = new StringBuilder();
            for (int i = start; i < end; i++)
                sb.Append(char.ConvertFromUtf32(cps[i]));
            words.Add(sb.ToString());
            start = end;
        }
        return words;
    }

    private static List<string> RegexSplit(string text) => s_llama3.Matches(text).Select(m => m.Value).ToList();

    [Theory]
    [InlineData("Hello world")]
    [InlineData("I don't know, you're right, we'll see, it's fine, they've gone, I'd go, I'm here.")]
    [InlineData("DON'T SHOUT, WE'LL HEAR")]
    [InlineData("1 22 333 4444 55555 666666")]
    [InlineData("   leading spaces")]
    [InlineData("trailing spaces   ")]
    [InlineData("line one\nline two\n\nline four\n")]
    [InlineData("carriage\r\nreturn \r\n\t x")]
    [InlineData("```python\ndef f(x):\n    return x * 2\n```")]
    [InlineData("naïve café 日本語のテキストです。 Привет, мир! \u00a0\u3000x")]
    [InlineData("'s 'S 're 'x ''ll")]
    [InlineData("a  \n  b ?!\n\n ... \t\t")]
    public void Matches_the_regex_on_sample_text(string text)
    {
        Assert.Equal(RegexSplit(text), Split(text));
    }

    [Fact]
    public void Matches_the_regex_on_random_bmp_text()
    {
        // A mix of every class boundary the pattern cares about: letters (ASCII, accented, CJK, Cyrillic), digits
        // (ASCII, Arabic-Indic, superscript), spaces (ASCII, tab, NBSP, ideographic, line separator), line breaks,
        // apostrophes and contraction letters, punctuation and symbols, combining marks, controls.
        string alphabet = "aAsStTrReEvVmMlLdDzé日ж0159٣²  \t\u00a0\u3000\u2028\r\n\r\n''',.!?-+*#(){}<>|😀\u0301\u200d\u0007\u00ad";
        var runes = alphabet.EnumerateRunes().ToArray();
        var rng = new Random(12345);
        for (int trial = 0; trial < 3000; trial++)
        {
            var sb = new StringBuilder();
            int len = rng.Next(0, 24);
            for (int i = 0; i < len; i++)
                sb.Append(runes[rng.Next(runes.Length)].ToString());
            string text = sb.ToString().Replace("😀", "¤", StringComparison.Ordinal); // keep the regex oracle in the BMP
            Assert.True(RegexSplit(text).SequenceEqual(Split(text)), $"split differs for {Escape(text)}: regex [{string.Join("|", RegexSplit(text).Select(Escape))}] ours [{string.Join("|", Split(text).Select(Escape))}]");
        }
    }

    [Fact]
    public void Supplementary_letters_and_digits_are_letters_and_digits()
    {
        // U+20000 and U+2A6D6 are CJK letters (Lo), U+1D7CE is MATHEMATICAL BOLD DIGIT ZERO (Nd). llama.cpp classifies
        // by code point; a UTF-16 regex would see surrogates (Cs) and split them as punctuation.
        Assert.Equal([" \U00020000\U0002A6D6x", " ", "\U0001D7CE\U0001D7CF1", "2"], Split(" \U00020000\U0002A6D6x \U0001D7CE\U0001D7CF12"));
        // emoji are neither: one punctuation-like run, optional leading space
        Assert.Equal(["emoji", ":", " 🦙🚀", " 😶\u200d🌫️", " ✅"], Split("emoji: 🦙🚀 😶\u200d🌫️ ✅"));
    }

    [Fact]
    public void Unpaired_surrogate_becomes_replacement_character()
    {
        Assert.Equal(["a", "\uFFFDb"], Split("a\uD800b")); // U+FFFD is a symbol, so it prefixes the word
        Assert.Equal(["a", "\uFFFD"], Split("a\uDC00"));
    }

    private static string Escape(string s) => string.Concat(s.Select(c => c < 0x20 || c > 0x7e ? $"\\u{(int)c:x4}" : c.ToString()));
}
