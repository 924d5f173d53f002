using System.Text;

namespace LfmSharp.Tokenizers.Tests;

public class BpeTokenizerTests
{
    // A vocabulary written by hand: bytes as tokens (ASCII letters only, so most of them are plain chars), plus merges.
    private static Vocabulary HandVocabulary(string[] extraTokens, string[] merges, (string Text, TokenType Type)[]? specials = null, string pre = "lfm2")
    {
        var tokens = new List<string>();
        var types = new List<TokenType>();
        foreach (var (text, type) in specials ?? [])
        {
            tokens.Add(text);
            types.Add(type);
        }
        for (int b = 0; b < 256; b++)
        {
            tokens.Add(ByteLevel.ByteToChar((byte)b).ToString());
            types.Add(TokenType.Normal);
        }
        foreach (string t in extraTokens)
        {
            tokens.Add(t);
            types.Add(TokenType.Normal);
        }
        return new Vocabulary(tokens, types, merges, preTokenizer: pre);
    }

    [Fact]
    public void Lowest_rank_merges_first_and_leftmost_wins_ties()
    {
        // "aaa": pairs (a,a)@0 and (a,a)@1 have the same rank; llama.cpp merges the left one -> "aa" + "a"
        var v = HandVocabulary(["aa", "aaa_unused"], ["a a"]);
        var tok = new BpeTokenizer(v);
        Assert.Equal([v.GetId("aa"), v.GetId("a")], tok.Encode("aaa"));
        Assert.Equal([v.GetId("aa"), v.GetId("aa")], tok.Encode("aaaa"));

        // rank order beats position: "abc" with merges [b c] (rank 0) then [a b] (rank 1) -> "a" + "bc"
        var v2 = HandVocabulary(["ab", "bc"], ["b c", "a b"]);
        Assert.Equal([v2.GetId("a"), v2.GetId("bc")], new BpeTokenizer(v2).Encode("abc"));
    }

    [Fact]
    public void Merge_through_a_string_missing_from_the_vocabulary_is_still_taken_then_spelled_out()
    {
        // merges produce "xy" (not a token) and then "xyz" (a token): llama.cpp merges by string, so "xyz" is reached
        var v = HandVocabulary(["xyz"], ["x y", "xy z"]);
        var tok = new BpeTokenizer(v);
        Assert.Equal([v.GetId("xyz")], tok.Encode("xyz"));
        // "xyq": "xy" survives as a symbol with no token; llama.cpp then looks up each byte -> x, y
        Assert.Equal([v.GetId("x"), v.GetId("y"), v.GetId("q")], tok.Encode("xyq"));
    }

    [Fact]
    public void Ignore_merges_takes_a_whole_pre_token_that_is_in_the_vocabulary()
    {
        // "hello" is a token but no merge leads to it: lfm2 (ignore_merges) emits it whole, dbrx (same regex, no
        // ignore_merges) runs the merges and gets bytes
        var lfm2 = HandVocabulary(["hello"], []);
        Assert.Equal([lfm2.GetId("hello")], new BpeTokenizer(lfm2).Encode("hello"));
        var dbrx = HandVocabulary(["hello"], [], pre: "dbrx");
        Assert.Equal("hello".Select(c => dbrx.GetId(c.ToString())), new BpeTokenizer(dbrx).Encode("hello"));
    }

    [Fact]
    public void Longer_special_token_is_split_out_first_like_llama_cpp()
    {
        // llama.cpp takes special tokens longest first over the whole text: in "abcd", "bcd" (3 bytes) is claimed
        // before "ab" (2 bytes) is looked for, although "ab" starts earlier.
        (string, TokenType)[] specials = [("ab", TokenType.Control), ("bcd", TokenType.Control)];
        var v = HandVocabulary([], [], specials);
        var tok = new BpeTokenizer(v);
        Assert.Equal([v.GetId("a"), 1], tok.Encode("abcd"));
        Assert.Equal([0, v.GetId("c")], tok.Encode("abc"));
        // overlapping occurrences of one token: left to right, no overlap
        var v2 = HandVocabulary([], [], [("aa", TokenType.UserDefined)]);
        Assert.Equal([0, 0, v2.GetId("a")], new BpeTokenizer(v2).Encode("aaaaa", parseSpecial: false));
    }

    [Fact]
    public void Control_tokens_are_plain_text_without_special_parsing_but_user_defined_ones_are_not()
    {
        var tok = Fixtures.Tokenizer("tiny");
        int[] parsed = tok.Encode("<think>hi<|im_end|>", parseSpecial: false);
        Assert.Equal(14, parsed[0]);
        Assert.DoesNotContain(7, parsed);
        Assert.Equal("<think>hi<|im_end|>", tok.Decode(parsed));
        Assert.Equal([14, .. tok.Encode("hi"), 7], tok.Encode("<think>hi<|im_end|>", parseSpecial: true));
    }

    [Fact]
    public void Scan_and_heap_merge_paths_agree()
    {
        // The array scan (short words) and the priority queue (long words) must give identical ids.
        var scan = new BpeTokenizer(Fixtures.Tokenizer("small").Vocabulary) { HeapThreshold = int.MaxValue };
        var heap = new BpeTokenizer(Fixtures.Tokenizer("small").Vocabulary) { HeapThreshold = 1 };
        var rng = new Random(7);
        string[] pieces = ["the", " the", "and", " of", "ing", "tion", "e", "t", "a", " ", "  ", "日本", "é", "🦙", "'s", "123456", ".", ",", "\n", "xyz"];
        for (int trial = 0; trial < 300; trial++)
        {
            var sb = new StringBuilder();
            int n = rng.Next(1, 40);
            for (int i = 0; i < n; i++)
                sb.Append(pieces[rng.Next(pieces.Length)]);
            // glue pieces into long words too (no spaces), which is where the heap path normally runs
            string text = trial % 2 == 0 ? sb.ToString() : sb.ToString().Replace(" ", "", StringComparison.Ordinal);
            Assert.Equal(scan.Encode(text), heap.Encode(text));
        }
        Assert.Equal(scan.Encode(SyntheticVocabulary.Corpus), heap.Encode(SyntheticVocabulary.Corpus));
    }

    [Fact]
    public void Long_words_round_trip()
    {
        var tok = Fixtures.Tokenizer("small");
        string cjk = string.Concat(Enumerable.Repeat("日本語のテキストです", 200)); // one 6,000-byte pre-token
        Assert.Equal(cjk, tok.Decode(tok.Encode(cjk)));
        string word = string.Concat(Enumerable.Repeat("thequickbrownfox", 300));
        Assert.Equal(word, tok.Decode(tok.Encode(word)));
    }

    [Fact]
    public void Every_byte_sequence_round_trips()
    {
        var tok = Fixtures.Tokenizer("tiny");
        var rng = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            // random code points across the planes (no surrogates), so UTF-8 round trips exactly
            var sb = new StringBuilder();
            for (int i = rng.Next(0, 30); i > 0; i--)
            {
                int cp = rng.Next(4) switch { 0 => rng.Next(0, 0x80), 1 => rng.Next(0x80, 0x800), 2 => rng.Next(0x800, 0xD800), _ => rng.Next(0x10000, 0x110000) };
                sb.Append(char.ConvertFromUtf32(cp));
            }
            string text = sb.ToString();
            Assert.Equal(text, tok.Decode(tok.Encode(text, parseSpecial: false)));
        }
    }

    [Fact]
    public void Decode_options_follow_llama_detokenize()
    {
        var tok = Fixtures.Tokenizer("tiny");
        int[] ids = tok.Encode("<|im_start|>Hi , there . It 's ok ' x ' and they 're 'd<|im_end|>", addBos: true);
        Assert.Equal(1, ids[0]);
        Assert.Equal("<|startoftext|><|im_start|>Hi , there . It 's ok ' x ' and they 're 'd<|im_end|>", tok.Decode(ids));
        // remove_special drops the BOS the model adds (not the EOS: add_eos is false); unparse_special=false hides control tokens
        Assert.Equal("<|im_start|>Hi , there . It 's ok ' x ' and they 're 'd<|im_end|>", tok.Decode(ids, removeSpecial: true));
        Assert.Equal("Hi , there . It 's ok ' x ' and they 're 'd", tok.Decode(ids, unparseSpecial: false));
        // clean_spaces: " ," and " ." lose the space, " ' " becomes "'", " 's" / " 're" lose the space, " 'd" keeps it
        Assert.Equal("Hi, there. It's ok'x'and they're 'd", tok.Decode(ids, removeSpecial: true, unparseSpecial: false, cleanSpaces: true));
    }

    [Fact]
    public void Empty_and_bos_only_inputs()
    {
        var tok = Fixtures.Tokenizer("tiny");
        Assert.Empty(tok.Encode(""));
        Assert.Equal([1], tok.Encode("", addBos: true));
        Assert.Equal(0, tok.CountTokens(""));
        Assert.Equal([1], tok.EncodePrompt("<|startoftext|>"));
        Assert.Equal([1], tok.EncodePrompt(""));
        Assert.Equal("", tok.Decode([]));
    }

    [Fact]
    public void Add_bos_without_a_bos_token_is_an_error()
    {
        var tok = new BpeTokenizer(HandVocabulary([], []));
        var ex = Assert.Throws<InvalidOperationException>(() => tok.Encode("x", addBos: true));
        Assert.Contains("BOS", ex.Message);
    }
}
