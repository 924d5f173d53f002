using System.Text;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Tokenizers;

namespace LfmSharp.Server.OpenAi;

/// <summary>Writes token log probabilities in OpenAI's two shapes: chat's <c>logprobs.content</c> entries and the
/// legacy completions arrays.</summary>
internal static class LogprobsJson
{
    /// <summary>The token's text (a piece of a UTF-8 sequence shows as U+FFFD; <c>bytes</c> has the exact bytes).</summary>
    public static string TokenText(Vocabulary vocab, int id) => Encoding.UTF8.GetString(vocab.GetTokenBytes(id));

    /// <summary><c>{"content":[…],"refusal":null}</c>, or null when logprobs were not asked for.</summary>
    public static void WriteChat(Utf8JsonWriter w, Vocabulary vocab, IReadOnlyList<TokenLogprobs>? entries)
    {
        if (entries is null)
        {
            w.WriteNull("logprobs");
            return;
        }
        w.WriteStartObject("logprobs");
        w.WriteStartArray("content");
        foreach (var e in entries)
        {
            w.WriteStartObject();
            WriteToken(w, vocab, e.TokenId, e.Logprob);
            w.WriteStartArray("top_logprobs");
            foreach (var t in e.Top)
            {
                w.WriteStartObject();
                WriteToken(w, vocab, t.TokenId, t.Logprob);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("refusal");
        w.WriteEndObject();
    }

    private static void WriteToken(Utf8JsonWriter w, Vocabulary vocab, int id, float logprob)
    {
        w.WriteString("token", TokenText(vocab, id));
        w.WriteNumber("logprob", logprob);
        w.WriteStartArray("bytes");
        foreach (byte b in vocab.GetTokenBytes(id))
            w.WriteNumberValue(b);
        w.WriteEndArray();
    }

    /// <summary>The completions shape: <c>tokens</c>, <c>token_logprobs</c>, <c>top_logprobs</c> (token → logprob
    /// maps) and <c>text_offset</c> (character offsets into the returned text, counted from <paramref name="offset"/>).</summary>
    public static void WriteCompletion(Utf8JsonWriter w, Vocabulary vocab, IReadOnlyList<TokenLogprobs>? entries, int offset = 0)
    {
        if (entries is null)
        {
            w.WriteNull("logprobs");
            return;
        }
        w.WriteStartObject("logprobs");
        w.WriteStartArray("tokens");
        foreach (var e in entries)
            w.WriteStringValue(TokenText(vocab, e.TokenId));
        w.WriteEndArray();
        w.WriteStartArray("token_logprobs");
        foreach (var e in entries)
            w.WriteNumberValue(e.Logprob);
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        foreach (var e in entries)
        {
            w.WriteStartObject();
            foreach (var t in e.Top)
            {
                // Two ids can decode to the same text (pieces of UTF-8): the first, more likely, one stays.
                string text = TokenText(vocab, t.TokenId);
                if (!Contains(e.Top, vocab, t, text))
                    w.WriteNumber(text, t.Logprob);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("text_offset");
        foreach (var e in entries)
        {
            w.WriteNumberValue(offset);
            offset += TokenText(vocab, e.TokenId).Length;
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>True when an entry before <paramref name="t"/> has the same text.</summary>
    private static bool Contains(IReadOnlyList<TopLogprob> top, Vocabulary vocab, TopLogprob t, string text)
    {
        foreach (var other in top)
        {
            if (other == t)
                return false;
            if (TokenText(vocab, other.TokenId) == text)
                return true;
        }
        return false;
    }
}
