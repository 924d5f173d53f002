using LfmSharp.Gguf;

namespace LfmSharp.Tokenizers.Tests;

public class VocabularyTests
{
    private static GgufMetadata TinyWith(Func<GgufMetadataEntry, GgufMetadataEntry?> edit, params GgufMetadataEntry[] extra)
    {
        var entries = new List<GgufMetadataEntry>();
        foreach (var e in Fixtures.Metadata("tiny-f32"))
        {
            if (edit(e) is GgufMetadataEntry kept)
                entries.Add(kept);
        }
        entries.AddRange(extra);
        return new GgufMetadata(entries);
    }

    private static GgufMetadata TinyWithout(string key) => TinyWith(e => e.Key == key ? null : e);

    private static GgufMetadata TinyReplacing(string key, GgufValue value) => TinyWith(e => e.Key == key ? new GgufMetadataEntry(key, value) : e);

    [Fact]
    public void Tiny_vocabulary_reads_like_llama_cpp_reports_it()
    {
        var v = Fixtures.Tokenizer("tiny").Vocabulary;
        Assert.Equal(512, v.Count);
        Assert.Equal(200, v.Merges.Count);
        Assert.Equal(1, v.BosId);
        Assert.Equal(7, v.EosId);
        Assert.Equal(0, v.PadId);
        Assert.True(v.AddBos);
        Assert.False(v.AddEos);
        Assert.Equal("lfm2", v.PreTokenizer);
        Assert.Equal("<|im_end|>", v[7]);
        Assert.Equal(TokenType.Control, v.GetTokenType(3));
        Assert.Equal(TokenType.UserDefined, v.GetTokenType(14));
        Assert.Equal(TokenType.Unused, v.GetTokenType(511));
        Assert.Equal("[PAD511]", v[511]);
        Assert.Equal(16 + 'A', v.GetId("A"));
        Assert.True(v.TryGetId("Ġ".AsSpan(), out int space));
        Assert.Equal(16 + ' ', space);
    }

    [Fact]
    public void End_of_generation_set_is_endoftext_and_im_end()
    {
        // fixtures README section 4: the EOG set llama.cpp derives is {2, 7}
        var v = Fixtures.Tokenizer("tiny").Vocabulary;
        Assert.Equal([2, 7], v.EndOfGenerationIds);
        Assert.True(v.IsEndOfGeneration(2));
        Assert.True(v.IsEndOfGeneration(7));
        Assert.False(v.IsEndOfGeneration(1));
        Assert.False(v.IsEndOfGeneration(-1));
        Assert.False(v.IsEndOfGeneration(100_000));
    }

    [Fact]
    public void Eog_detection_by_text_upgrades_the_token_to_control()
    {
        // A vocabulary where <|endoftext|> is a normal token and eos is elsewhere: llama.cpp still stops on it and treats
        // it as a control token (it is split out of text only with special parsing, and rendered as its text).
        string[] tokens = ["a", "b", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"];
        var v = new Vocabulary(tokens, [TokenType.Normal, TokenType.Normal, TokenType.Normal, TokenType.Control, TokenType.UserDefined], [], eosId: 1);
        Assert.Equal([1, 2, 3, 4], v.EndOfGenerationIds);
        Assert.True((v.GetAttributes(2) & TokenAttributes.Control) != 0);
        Assert.Equal(TokenType.Normal, v.GetTokenType(2));
        var tok = new BpeTokenizer(v);
        Assert.Equal([2], tok.Encode("<|endoftext|>", parseSpecial: true));
        Assert.Equal("<|endoftext|>"u8.ToArray(), tok.TokenBytes(2).ToArray());
        Assert.Empty(v.GetTokenBytes(2, special: false).ToArray());
    }

    [Fact]
    public void Missing_model_key_is_reported_by_name()
    {
        var ex = Assert.Throws<KeyNotFoundException>(() => Vocabulary.FromGguf(TinyWithout(Vocabulary.KeyModel)));
        Assert.Contains("tokenizer.ggml.model", ex.Message);
    }

    [Theory]
    [InlineData("tokenizer.ggml.tokens")]
    [InlineData("tokenizer.ggml.merges")]
    public void Missing_required_keys_are_reported_by_name(string key)
    {
        var ex = Assert.Throws<KeyNotFoundException>(() => Vocabulary.FromGguf(TinyWithout(key)));
        Assert.Contains(key, ex.Message);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("bert")]
    public void Non_gpt2_models_are_not_supported(string model)
    {
        var ex = Assert.Throws<NotSupportedException>(() => Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyModel, GgufValue.From(model))));
        Assert.Contains(model, ex.Message);
        Assert.Contains("gpt2", ex.Message);
    }

    [Fact]
    public void Token_type_length_mismatch_names_both_keys()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyTokenType, GgufValue.Array(new int[511]))));
        Assert.Contains("tokenizer.ggml.token_type", ex.Message);
        Assert.Contains("511", ex.Message);
        Assert.Contains("512", ex.Message);
    }

    [Fact]
    public void Wrong_key_type_is_reported_by_name()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyTokens, GgufValue.Array(new int[3]))));
        Assert.Contains("tokenizer.ggml.tokens", ex.Message);
    }

    [Theory]
    [InlineData("tokenizer.ggml.bos_token_id")]
    [InlineData("tokenizer.ggml.eos_token_id")]
    [InlineData("tokenizer.ggml.padding_token_id")]
    public void Special_id_out_of_range_is_reported_by_name(string key)
    {
        var ex = Assert.Throws<InvalidDataException>(() => Vocabulary.FromGguf(TinyReplacing(key, GgufValue.From(512u))));
        Assert.Contains(key, ex.Message);
        Assert.Contains("512", ex.Message);
    }

    [Fact]
    public void Add_bos_without_bos_id_is_rejected()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Vocabulary.FromGguf(TinyWithout(Vocabulary.KeyBosId)));
        Assert.Contains("add_bos_token", ex.Message);
        Assert.Contains("bos_token_id", ex.Message);
    }

    [Fact]
    public void Add_bos_defaults_to_true_for_lfm2_like_llama_cpp()
    {
        var v = Vocabulary.FromGguf(TinyWithout(Vocabulary.KeyAddBos));
        Assert.True(v.AddBos);
        var gpt2 = Vocabulary.FromGguf(TinyWith(e => e.Key == Vocabulary.KeyAddBos ? null : e.Key == Vocabulary.KeyPre ? new(e.Key, GgufValue.From("gpt-2")) : e));
        Assert.False(gpt2.AddBos);
    }

    [Fact]
    public void Duplicate_token_is_rejected_with_both_ids()
    {
        var tokens = Fixtures.Metadata("tiny-f32").GetStringArray(Vocabulary.KeyTokens).ToArray();
        tokens[300] = tokens[20];
        var ex = Assert.Throws<InvalidDataException>(() => Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyTokens, GgufValue.Array(tokens))));
        Assert.Contains("20", ex.Message);
        Assert.Contains("300", ex.Message);
    }

    [Fact]
    public void Malformed_merge_is_reported_with_its_index()
    {
        var merges = Fixtures.Metadata("tiny-f32").GetStringArray(Vocabulary.KeyMerges).ToArray();
        merges[42] = "nospace";
        var v = Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyMerges, GgufValue.Array(merges)));
        var ex = Assert.Throws<InvalidDataException>(() => new BpeTokenizer(v));
        Assert.Contains("tokenizer.ggml.merges[42]", ex.Message);
    }

    [Fact]
    public void Unsupported_pre_tokenizer_is_named()
    {
        var v = Vocabulary.FromGguf(TinyReplacing(Vocabulary.KeyPre, GgufValue.From("qwen2")));
        var ex = Assert.Throws<NotSupportedException>(() => new BpeTokenizer(v));
        Assert.Contains("qwen2", ex.Message);
        Assert.Contains("lfm2", ex.Message);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(512)]
    [InlineData(int.MaxValue)]
    public void Unknown_ids_throw_naming_the_id(int id)
    {
        var tok = Fixtures.Tokenizer("tiny");
        var e1 = Assert.Throws<ArgumentOutOfRangeException>(() => tok.TokenBytes(id).ToArray());
        Assert.Contains(id.ToString(System.Globalization.CultureInfo.InvariantCulture), e1.Message);
        var e2 = Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([5, id]));
        Assert.Contains(id.ToString(System.Globalization.CultureInfo.InvariantCulture), e2.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new StreamingDetokenizer(tok).Append(id));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Vocabulary[id]);
    }

    [Fact]
    public void Writing_to_gguf_and_reading_back_gives_the_same_vocabulary()
    {
        var original = Fixtures.Tokenizer("small").Vocabulary;
        var writer = new GgufWriter();
        original.WriteTo(writer);
        using var ms = new MemoryStream();
        writer.WriteTo(ms);
        using var file = GgufFile.Load(ms.ToArray());
        var back = Vocabulary.FromGguf(file.Metadata);

        Assert.Equal(original.Tokens, back.Tokens);
        Assert.Equal(original.TokenTypes, back.TokenTypes);
        Assert.Equal(original.Merges, back.Merges);
        Assert.Equal((original.BosId, original.EosId, original.PadId, original.AddBos, original.AddEos, original.PreTokenizer),
            (back.BosId, back.EosId, back.PadId, back.AddBos, back.AddEos, back.PreTokenizer));
        // same key types as the fixture files (ids u32, flags bool, types i32)
        var fixture = Fixtures.Metadata("small-q8_0");
        foreach (var e in file.Metadata)
        {
            Assert.True(fixture.TryGetValue(e.Key, out var expected), e.Key);
            Assert.Equal(expected.Type, e.Value.Type);
            Assert.Equal(expected.ElementType, e.Value.ElementType);
        }
    }

    [Fact]
    public void Empty_token_text_is_renamed_like_llama_cpp()
    {
        var v = new Vocabulary(["a", "", "b"], null, []);
        Assert.Equal("[EMPTY_1]", v[1]);
    }
}
