using System.Text;

namespace LfmSharp.Tokenizers.Tests;

public class BpeTrainerTests
{
    [Fact]
    public void Corpus_is_the_4812_byte_appendix_of_how_made()
    {
        Assert.Equal(4812, Encoding.UTF8.GetByteCount(SyntheticVocabulary.Corpus));
        string howMade = File.ReadAllText(Path.Combine(LfmSharp.Testing.TestData.Fixtures, "HOW-MADE.md")).ReplaceLineEndings("\n");
        int start = howMade.IndexOf("```\n", howMade.IndexOf("## Appendix: corpus.txt", StringComparison.Ordinal), StringComparison.Ordinal) + 4;
        int end = howMade.IndexOf("```", start, StringComparison.Ordinal);
        Assert.Equal(howMade[start..end], SyntheticVocabulary.Corpus);
    }

    [Theory]
    [InlineData("tiny-f32", 512, 200)]
    [InlineData("small-q8_0", 1024, 600)]
    public void Training_reproduces_the_fixture_vocabulary_exactly(string model, int vocabSize, int merges)
    {
        var md = Fixtures.Metadata(model);
        string[] expectedMerges = md.GetStringArray(Vocabulary.KeyMerges);
        Assert.Equal(merges, expectedMerges.Length);

        Assert.Equal(expectedMerges, BpeTrainer.Train(SyntheticVocabulary.Corpus, merges));

        var v = SyntheticVocabulary.Create(vocabSize, merges);
        Assert.Equal(md.GetStringArray(Vocabulary.KeyTokens), v.Tokens);
        Assert.Equal(md.GetInt32Array(Vocabulary.KeyTokenType), v.TokenTypes.Select(t => (int)t));
        Assert.Equal(expectedMerges, v.Merges);
        Assert.Equal((int)md.GetInt64(Vocabulary.KeyBosId), v.BosId);
        Assert.Equal((int)md.GetInt64(Vocabulary.KeyEosId), v.EosId);
        Assert.Equal((int)md.GetInt64(Vocabulary.KeyPadId), v.PadId);
        Assert.Equal(md.GetBool(Vocabulary.KeyAddBos), v.AddBos);
        Assert.Equal(md.GetBool(Vocabulary.KeyAddEos), v.AddEos);
        Assert.Equal(md.GetString(Vocabulary.KeyPre), v.PreTokenizer);
        Assert.Equal(md.GetString("tokenizer.chat_template"), SyntheticVocabulary.ChatTemplate);
    }

    [Fact]
    public void Corpus_is_exhausted_after_1029_merges_and_shorter_runs_are_prefixes()
    {
        // HOW-MADE.md 1.1: the full preset asked for 2000 merges and got 1029
        Assert.Equal(1029, SyntheticVocabulary.MaxMerges);
        string[] all = BpeTrainer.Train(SyntheticVocabulary.Corpus, 2000);
        Assert.Equal(1029, all.Length);
        Assert.Equal(all[..300], BpeTrainer.Train(SyntheticVocabulary.Corpus, 300));

        var full = SyntheticVocabulary.Create(65536, 2000);
        Assert.Equal(65536, full.Count);
        Assert.Equal(16 + 256 + 1029, full.TokenTypes.Count(t => t != TokenType.Unused));
        Assert.Equal("[PAD65535]", full[65535]);
    }

    [Fact]
    public void Ties_go_to_the_smallest_pair_by_code_point()
    {
        // words "ab" and "Ġba" once each: (a,b), (Ġ,b) and (b,a) tie at 1, and 'a' < 'b' < 'Ġ' (U+0120)
        Assert.Equal(["a b"], BpeTrainer.Train("ab ba", 1));
        // frequency beats order; among the pairs seen three times, (b,a) < (Ġ,b)
        Assert.Equal("b a", BpeTrainer.Train("ab ba ba ba", 1)[0]);
        // replacement is left to right without overlap: "aaa" -> (aa, a), so the next best pair is (aa, a)
        Assert.Equal(["a a", "aa a"], BpeTrainer.Train("aaa", 5));
    }

    [Fact]
    public void Vocabulary_too_small_for_its_merges_is_rejected()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => SyntheticVocabulary.Create(16 + 256 + 99, 100));
        Assert.Contains("372", ex.Message);
    }
}
