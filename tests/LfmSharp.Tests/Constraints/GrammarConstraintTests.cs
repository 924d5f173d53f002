using System.Text;
using LfmSharp.Constraints;
using static LfmSharp.Tests.Constraints.ConstraintTestKit;

namespace LfmSharp.Tests.Constraints;

public class GrammarConstraintTests
{
    private static int Id(string byteLevelText) => Array.IndexOf(FixtureTokens, byteLevelText);

    [Fact]
    public void Byte_level_tokens_decode_like_the_GPT2_table()
    {
        // GPT-2 bytes_to_unicode, written out the way the original builds it: the printable ranges keep their code,
        // the remaining bytes get 256, 257, … in byte order.
        var printable = Enumerable.Range('!', '~' - '!' + 1).Concat(Enumerable.Range(0xA1, 0xAC - 0xA1 + 1)).Concat(Enumerable.Range(0xAE, 0xFF - 0xAE + 1)).ToList();
        var byteOf = new Dictionary<char, byte>();
        foreach (int b in printable)
            byteOf[(char)b] = (byte)b;
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!printable.Contains(b))
                byteOf[(char)(256 + extra++)] = (byte)b;
        }
        var vocab = FixtureVocab;
        int normal = 0;
        for (int id = 0; id < FixtureTokens.Length; id++)
        {
            if (FixtureTypes[id] != 1)
            {
                Assert.True(vocab.IsSpecial(id), $"token {id} '{FixtureTokens[id]}' (type {FixtureTypes[id]}) should be special");
                continue;
            }
            normal++;
            Assert.Equal(FixtureTokens[id].Select(c => byteOf[c]).ToArray(), vocab.GetBytes(id).ToArray());
        }
        Assert.Equal(856, normal);
        Assert.Equal(" the"u8.ToArray(), TokenVocabulary.DecodeByteLevel("Ġthe"));
        Assert.Equal(".\n\n"u8.ToArray(), TokenVocabulary.DecodeByteLevel(".ĊĊ"));
        Assert.Equal(10, vocab.FindToken("<|tool_call_start|>"));
        Assert.Equal(new[] { 2, 7 }, vocab.EndOfGenerationIds.Order().ToArray());
    }

    [Fact]
    public void The_tokenizer_vocabulary_gives_the_same_token_bytes()
    {
        using var gguf = LfmSharp.Gguf.GgufFile.Open(LfmSharp.Testing.TestData.Model("small-q8_0"));
        var fromTokenizer = TokenVocabulary.FromTokenizer(LfmSharp.Tokenizers.Vocabulary.FromGguf(gguf.Metadata));
        var fromGguf = FixtureVocab;
        Assert.Equal(fromGguf.Count, fromTokenizer.Count);
        for (int id = 0; id < fromGguf.Count; id++)
        {
            Assert.Equal(fromGguf.IsSpecial(id), fromTokenizer.IsSpecial(id));
            if (!fromGguf.IsSpecial(id))
                Assert.Equal(fromGguf.GetBytes(id).ToArray(), fromTokenizer.GetBytes(id).ToArray());
        }
        Assert.Contains(7, fromTokenizer.EndOfGenerationIds);
        var c = new GrammarConstraint(Grammar.ForToolCalls(ToolCallGrammarTests.Tools), fromTokenizer);
        Assert.True(c.IsAllowed(10));
    }

    [Fact]
    public void Accept_rejects_a_disallowed_token_and_keeps_the_state()
    {
        var c = new GrammarConstraint(Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["person"]), FixtureVocab);
        c.Accept(Id("{"));
        var ex = Assert.Throws<InvalidOperationException>(() => c.Accept(Id("}")));
        Assert.Contains("not allowed", ex.Message);
        Assert.Throws<InvalidOperationException>(() => c.Accept(7));  // end of generation before the end
        Assert.Throws<InvalidOperationException>(() => c.Accept(6));  // <|im_start|> is never document text
        Assert.Throws<ArgumentOutOfRangeException>(() => c.Accept(5000));
        foreach (char ch in "\"name\":\"x\",\"age\":4}")
            c.Accept(Id(ch.ToString()));
        Assert.True(c.IsComplete);
        Assert.False(c.IsFinished);
        Assert.False(c.IsAllowed(Id(" ")));
        Assert.True(c.IsAllowed(2));
        c.Accept(7);
        Assert.True(c.IsFinished);
        Assert.Throws<InvalidOperationException>(() => c.Accept(7));
        c.Reset();
        Assert.False(c.IsComplete);
        Assert.True(c.IsAllowed(Id("{")));
    }

    [Fact]
    public void Special_tokens_never_appear_inside_strings()
    {
        var c = new GrammarConstraint(Grammar.AnyJsonObject(), FixtureVocab);
        foreach (char ch in "{\"k\":\"")
            c.Accept(Id(ch.ToString()));
        var logits = new float[FixtureVocab.Count];
        c.ApplyMask(logits);
        for (int id = 0; id < 16; id++)
            Assert.True(float.IsNegativeInfinity(logits[id]), $"special token {id} allowed inside a string");
        for (int id = 872; id < 1024; id++)
            Assert.True(float.IsNegativeInfinity(logits[id]), $"unused token {id} allowed");
        Assert.Equal(0f, logits[Id("Ġthe")]);
        Assert.Equal(0f, logits[Id("\"")]);
    }

    [Fact]
    public void Logits_longer_than_the_vocabulary_are_masked_and_shorter_ones_rejected()
    {
        var c = new GrammarConstraint(Grammar.AnyJsonObject(), FixtureVocab);
        var logits = new float[FixtureVocab.Count + 16];
        c.ApplyMask(logits);
        Assert.All(logits[^16..], l => Assert.True(float.IsNegativeInfinity(l)));
        Assert.Throws<ArgumentException>(() => c.ApplyMask(new float[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => c.ApplyMask(logits, 0));
    }

    [Fact]
    public void Force_completion_finishes_within_the_distance()
    {
        var grammar = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["nested"]);
        var c = new GrammarConstraint(grammar, FixtureVocab);
        var logits = new float[FixtureVocab.Count];
        for (int seed = 0; seed < 20; seed++)
        {
            var rng = new Random(seed);
            c.Reset();
            int free = rng.Next(0, 40);
            for (int i = 0; i < free && !c.IsComplete; i++)
            {
                for (int k = 0; k < logits.Length; k++)
                    logits[k] = (float)Gaussian(rng);
                c.ApplyMask(logits);
                c.Accept(Sample(logits, 1.5, rng));
            }
            int distance = c.MinBytesToComplete;
            c.ForceCompletion();
            int steps = 0;
            while (!c.IsFinished)
            {
                for (int k = 0; k < logits.Length; k++)
                    logits[k] = (float)Gaussian(rng);
                c.ApplyMask(logits);
                c.Accept(Sample(logits, 1.5, rng));
                steps++;
                Assert.True(steps <= distance + 1, $"forced completion took more than {distance} tokens + the end token");
            }
        }
    }

    [Fact]
    public void A_budget_too_small_for_the_schema_still_makes_progress()
    {
        var grammar = Grammar.FromJsonSchema(JsonConstraintRandomTests.Schemas["nested"]);
        var c = new GrammarConstraint(grammar, FixtureVocab);
        var logits = new float[FixtureVocab.Count];
        c.ApplyMask(logits, 5); // shortest document is longer than 5 tokens: best effort, not an exception
        Assert.True(c.AllowedCount() > 0);
    }

    [Fact]
    public void A_vocabulary_without_end_tokens_reports_completion_instead_of_masking_everything()
    {
        var bytes = Enumerable.Range(0, 256).Select(b => new[] { (byte)b }).ToArray();
        var vocab = new TokenVocabulary(bytes, []);
        var c = new GrammarConstraint(Grammar.AnyJsonObject(), vocab);
        c.Accept('{');
        c.Accept('}');
        Assert.True(c.IsComplete);
        var ex = Assert.Throws<InvalidOperationException>(() => c.ApplyMask(new float[256]));
        Assert.Contains("complete", ex.Message);
    }

    [Fact]
    public void Vocabulary_arguments_are_checked()
    {
        Assert.Throws<ArgumentException>(() => new TokenVocabulary([], []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenVocabulary([[1]], [5]));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TokenVocabulary([[1]], [], [3]));
        Assert.Throws<ArgumentException>(() => TokenVocabulary.FromGgufTokens(["a", "b"], [1], []));
        var v = TokenVocabulary.FromGgufTokens(["<0x0A>", "Ġx", "<|im_end|>"], [6, 1, 3], [2]);
        Assert.Equal("\n"u8.ToArray(), v.GetBytes(0).ToArray());
        Assert.Equal(" x"u8.ToArray(), v.GetBytes(1).ToArray());
        Assert.True(v.IsSpecial(2));
        Assert.Equal(Encoding.UTF8.GetBytes("<|im_end|>"), v.GetBytes(2).ToArray());
    }
}
