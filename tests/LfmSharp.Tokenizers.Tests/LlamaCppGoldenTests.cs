using System.Text;

namespace LfmSharp.Tokenizers.Tests;

/// <summary>Every tokenization golden that llama.cpp produced for the fixture vocabularies, reproduced exactly.</summary>
public class LlamaCppGoldenTests
{
    public static TheoryData<string, int> AllCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string vocab in new[] { "tiny", "small" })
        {
            for (int i = 0; i < Fixtures.Cases(vocab).Length; i++)
                data.Add(vocab, i);
        }
        return data;
    }

    [Fact]
    public void Fixtures_hold_34_cases_per_vocabulary()
    {
        Assert.Equal(34, Fixtures.Cases("tiny").Length);
        Assert.Equal(34, Fixtures.Cases("small").Length);
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Ids_match_llama_tokenize_for_all_four_flag_combinations(string vocab, int index)
    {
        var c = Fixtures.Cases(vocab)[index];
        var tok = Fixtures.Tokenizer(vocab);
        Assert.Equal(Fixtures.FromHex(c.TextHex), Encoding.UTF8.GetBytes(c.Text));

        Assert.Equal(c.IdsParseSpecial, tok.Encode(c.Text, addBos: false, parseSpecial: true));
        Assert.Equal(c.IdsNoParseSpecial, tok.Encode(c.Text, addBos: false, parseSpecial: false));
        Assert.Equal(c.IdsBosParseSpecial, tok.Encode(c.Text, addBos: true, parseSpecial: true));
        Assert.Equal(c.IdsBosNoParseSpecial, tok.Encode(c.Text, addBos: true, parseSpecial: false));
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Count_list_and_span_overloads_agree_with_encode(string vocab, int index)
    {
        var c = Fixtures.Cases(vocab)[index];
        var tok = Fixtures.Tokenizer(vocab);
        Assert.Equal(c.IdsBosParseSpecial.Length, tok.CountTokens(c.Text, addBos: true));
        Assert.Equal(c.IdsNoParseSpecial.Length, tok.CountTokens(c.Text, parseSpecial: false));

        var list = new List<int> { -42 };
        tok.Encode(c.Text, list, addBos: true);
        Assert.Equal([-42, .. c.IdsBosParseSpecial], list);

        var span = new int[c.IdsParseSpecial.Length];
        Assert.True(tok.TryEncode(c.Text, span, out int written));
        Assert.Equal(c.IdsParseSpecial.Length, written);
        Assert.Equal(c.IdsParseSpecial, span);
        if (c.IdsParseSpecial.Length > 0)
        {
            Assert.False(tok.TryEncode(c.Text, new int[c.IdsParseSpecial.Length - 1], out int needed));
            Assert.Equal(c.IdsParseSpecial.Length, needed);
        }
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Pieces_match_llama_token_to_piece(string vocab, int index)
    {
        var c = Fixtures.Cases(vocab)[index];
        var tok = Fixtures.Tokenizer(vocab);
        Assert.Equal(c.IdsParseSpecial.Length, c.PiecesHex.Length);
        for (int i = 0; i < c.IdsParseSpecial.Length; i++)
            Assert.Equal(c.PiecesHex[i], Convert.ToHexStringLower(tok.TokenBytes(c.IdsParseSpecial[i])));
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Detokenize_matches_llama_detokenize(string vocab, int index)
    {
        var c = Fixtures.Cases(vocab)[index];
        var tok = Fixtures.Tokenizer(vocab);
        // llama_detokenize(remove_special = false, unparse_special = true), which applies clean_spaces for this vocab
        byte[] bytes = tok.DecodeToBytes(c.IdsParseSpecial, removeSpecial: false, unparseSpecial: true, cleanSpaces: true);
        Assert.Equal(c.DetokHex, Convert.ToHexStringLower(bytes));
        // every fixture string round-trips, so the plain decode gives the text back too
        Assert.Equal(c.Text, tok.Decode(c.IdsParseSpecial));
    }

    [Theory]
    [MemberData(nameof(AllCases))]
    public void Streaming_detokenizer_reproduces_the_text_token_by_token(string vocab, int index)
    {
        var c = Fixtures.Cases(vocab)[index];
        var detok = new StreamingDetokenizer(Fixtures.Tokenizer(vocab));
        var sb = new StringBuilder();
        foreach (int id in c.IdsParseSpecial)
        {
            string part = detok.Append(id);
            AssertWholeCharacters(part);
            sb.Append(part);
        }
        sb.Append(detok.Flush());
        Assert.Equal(c.Text, sb.ToString());
    }

    [Fact]
    public void Chat_prompt_rendered_by_llama_cpp_tokenizes_to_the_34_recorded_ids()
    {
        // fixtures README section 4: llama-completion --jinja -sys "You are helpful." -p "hi" on lfm2-tiny, single BOS
        const string prompt = "<|startoftext|><|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
        int[] expected = [1, 6, 131, 137, 306, 117, 125, 26, 105, 292, 352, 48, 273, 124, 128, 118, 379, 62, 7, 26, 6, 332, 280, 26, 120, 121, 7, 26, 6, 354, 131, 374, 423, 26];
        var tok = Fixtures.Tokenizer("tiny");

        Assert.Equal(expected, tok.EncodePrompt(prompt));
        Assert.Equal(expected, tok.EncodePrompt(prompt.AsSpan("<|startoftext|>".Length)));
        Assert.Equal(expected, tok.Encode(prompt, addBos: false, parseSpecial: true));
        // llama_tokenize with add_special keeps the BOS text too: two BOS, as the fixture's ids_bos_parse_special shows
        Assert.Equal([1, .. expected], tok.Encode(prompt, addBos: true, parseSpecial: true));
    }

    [Fact]
    public void Golden_sequences_short_and_chat_match()
    {
        // tests/TestData/fixtures/golden/sequences.json: the model goldens' inputs are the tiny tokenization (parse_special)
        var tok = Fixtures.Tokenizer("tiny");
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(LfmSharp.Testing.TestData.Golden("sequences.json")));
        var seqs = doc.RootElement.GetProperty("sequences");
        int[] Ids(string name)
        {
            foreach (var s in seqs.EnumerateArray())
            {
                if (s.GetProperty("name").GetString() == name)
                    return s.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            }
            throw new InvalidOperationException(name);
        }
        string Text(string name) => seqs.EnumerateArray().Single(s => s.GetProperty("name").GetString() == name).GetProperty("text").GetString()!;
        Assert.Equal(Ids("short"), tok.Encode("<|startoftext|><|im_start|>user\nHi<|im_end|>"));
        Assert.Equal(Ids("chat"), tok.Encode("<|startoftext|><|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n<|im_start|>assistant\n<think>\n"));
        Assert.Equal(Ids("chat"), tok.EncodePrompt(Text("chat")));
        Assert.Equal(Ids("short"), tok.EncodePrompt(Text("short")));
    }

    internal static void AssertWholeCharacters(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                Assert.True(i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]), $"unpaired high surrogate at {i} in '{s}'");
                i++;
            }
            else
            {
                Assert.False(char.IsLowSurrogate(s[i]), $"unpaired low surrogate at {i} in '{s}'");
            }
        }
    }
}
