using System.Text;

namespace LfmSharp.Tokenizers.Tests;

public class StreamingDetokenizerTests
{
    private static Vocabulary Tiny => Fixtures.Tokenizer("tiny").Vocabulary;

    // In the fixture vocabularies byte b is token 16 + b, so any byte stream can be fed one byte per token.
    private static int ByteToken(byte b) => 16 + b;

    [Theory]
    [InlineData("日本語のテキストです。")]
    [InlineData("emoji: 🦙🚀 😶\u200d🌫️ ✅")]
    [InlineData("👨\u200d👩\u200d👧\u200d👦 family")]
    [InlineData("naïve café résumé")]
    [InlineData("𠀀𪛖 supplementary")]
    public void Byte_at_a_time_emits_only_whole_characters(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var detok = new StreamingDetokenizer(Tiny);
        var sb = new StringBuilder();
        for (int i = 0; i < bytes.Length; i++)
        {
            string part = detok.Append(ByteToken(bytes[i]));
            LlamaCppGoldenTests.AssertWholeCharacters(part);
            Assert.DoesNotContain('\uFFFD', part);
            sb.Append(part);
            // text comes out as soon as a character is complete: what was emitted is exactly the complete prefix
            Assert.Equal(CompletePrefix(bytes.AsSpan(0, i + 1)), sb.ToString());
            Assert.Equal(sb.Length < Decode(bytes.AsSpan(0, i + 1)).Length, detok.HasPendingBytes);
        }
        Assert.False(detok.HasPendingBytes);
        Assert.Equal("", detok.Flush());
        Assert.Equal(text, sb.ToString());
    }

    [Theory]
    [InlineData("日本語のテキストです。")]
    [InlineData("emoji: 🦙🚀 😶\u200d🌫️ ✅")]
    public void Every_two_token_split_of_the_real_encoding_reassembles(string text)
    {
        var tok = Fixtures.Tokenizer("small");
        int[] ids = tok.Encode(text);
        for (int cut = 0; cut <= ids.Length; cut++)
        {
            var detok = new StreamingDetokenizer(tok);
            var sb = new StringBuilder();
            foreach (int id in ids.AsSpan(0, cut))
                sb.Append(detok.Append(id));
            LlamaCppGoldenTests.AssertWholeCharacters(sb.ToString());
            foreach (int id in ids.AsSpan(cut))
                detok.Append(id, sb);
            sb.Append(detok.Flush());
            Assert.Equal(text, sb.ToString());
        }
    }

    [Fact]
    public void Invalid_bytes_become_replacement_characters_once_they_cannot_complete()
    {
        var detok = new StreamingDetokenizer(Tiny);
        Assert.Equal("", detok.Append(ByteToken(0xE6)));     // lead byte of a 3-byte sequence: wait
        Assert.True(detok.HasPendingBytes);
        Assert.Equal("\uFFFDA", detok.Append(ByteToken((byte)'A'))); // cannot complete any more
        Assert.False(detok.HasPendingBytes);
        Assert.Equal("\uFFFD", detok.Append(ByteToken(0x80)));  // stray continuation byte: replaced at once
        Assert.Equal("", detok.Append(ByteToken(0xF0)));
        Assert.Equal("", detok.Append(ByteToken(0x9F)));
        Assert.Equal("\uFFFD", detok.Flush());                    // stream ends inside a character
        Assert.False(detok.HasPendingBytes);
        Assert.Equal("x", detok.Append(ByteToken((byte)'x')));  // reusable after Flush
    }

    [Fact]
    public void Matches_whole_sequence_decoding_on_random_byte_streams()
    {
        var rng = new Random(11);
        for (int trial = 0; trial < 300; trial++)
        {
            var bytes = new byte[rng.Next(0, 20)];
            for (int i = 0; i < bytes.Length; i++)
                bytes[i] = rng.Next(3) == 0 ? (byte)rng.Next(256) : Encoding.UTF8.GetBytes("é日🦙a")[rng.Next(10)];
            var detok = new StreamingDetokenizer(Tiny);
            var sb = new StringBuilder();
            foreach (byte b in bytes)
                sb.Append(detok.Append(ByteToken(b)));
            sb.Append(detok.Flush());
            Assert.Equal(Decode(bytes), sb.ToString());
        }
    }

    [Fact]
    public void Special_tokens_render_unless_disabled()
    {
        var on = new StreamingDetokenizer(Tiny);
        Assert.Equal("<|im_end|>", on.Append(7));
        Assert.Equal("<think>", on.Append(14));
        var off = new StreamingDetokenizer(Tiny, renderSpecial: false);
        Assert.Equal("", off.Append(7));
        Assert.Equal("<think>", off.Append(14)); // user-defined tokens are text
        Assert.Equal("", off.Append(300 + 211)); // [PAD511] is unused: no text either way
    }

    [Fact]
    public void Reset_drops_held_bytes()
    {
        var detok = new StreamingDetokenizer(Tiny);
        detok.Append(ByteToken(0xE6));
        detok.Reset();
        Assert.False(detok.HasPendingBytes);
        Assert.Equal("a", detok.Append(ByteToken((byte)'a')));
        Assert.Equal("", detok.Flush());
    }

    private static string Decode(ReadOnlySpan<byte> bytes) => Encoding.UTF8.GetString(bytes);

    // The longest prefix of bytes that ends on a character boundary, decoded.
    private static string CompletePrefix(ReadOnlySpan<byte> bytes)
    {
        for (int end = bytes.Length; end >= 0; end--)
        {
            if (System.Text.Unicode.Utf8.IsValid(bytes[..end]))
                return Encoding.UTF8.GetString(bytes[..end]);
        }
        return "";
    }
}
