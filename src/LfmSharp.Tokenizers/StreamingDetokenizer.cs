using System.Text;

namespace LfmSharp.Tokenizers;

/// <summary>
/// Turns a stream of token ids into text without ever emitting half a character. A token's bytes can end in the
/// middle of a UTF-8 sequence (byte-level BPE splits emoji and CJK characters freely); those bytes are held until
/// the sequence completes. Bytes that can no longer form a valid character become U+FFFD as soon as that is certain,
/// and <see cref="Flush"/> turns a trailing incomplete sequence into U+FFFD. Concatenating everything returned equals
/// decoding all the bytes at once. Not thread-safe: one instance per stream.
/// </summary>
public sealed class StreamingDetokenizer
{
    private readonly Vocabulary _vocab;
    private readonly bool _renderSpecial;
    private readonly Decoder _decoder = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    /// <param name="vocabulary">The vocabulary the ids come from.</param>
    /// <param name="renderSpecial">Whether control tokens (<c>&lt;|im_end|&gt;</c>, ...) produce their text; user-defined tokens such as <c>&lt;think&gt;</c> always do.</param>
    public StreamingDetokenizer(Vocabulary vocabulary, bool renderSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        _vocab = vocabulary;
        _renderSpecial = renderSpecial;
    }

    /// <summary>A detokenizer over <paramref name="tokenizer"/>'s vocabulary.</summary>
    public StreamingDetokenizer(BpeTokenizer tokenizer, bool renderSpecial = true)
        : this((tokenizer ?? throw new ArgumentNullException(nameof(tokenizer))).Vocabulary, renderSpecial)
    {
    }

    /// <summary>Whether bytes of an incomplete character are being held.</summary>
    public bool HasPendingBytes { get; private set; }

    /// <summary>Adds one token; returns the text it completes (often empty while a character is split across tokens).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string Append(int tokenId) => AppendBytes(_vocab.GetTokenBytes(tokenId, _renderSpecial));

    /// <summary>Adds one token and appends the completed text to <paramref name="output"/>; returns the number of chars appended.</summary>
    public int Append(int tokenId, StringBuilder output)
    {
        ArgumentNullException.ThrowIfNull(output);
        int n = DecodeChars(_vocab.GetTokenBytes(tokenId, _renderSpecial), flush: false);
        output.Append(_chars, 0, n);
        return n;
    }

    /// <summary>Adds raw bytes (for example a piece obtained elsewhere); returns the text they complete.</summary>
    public string AppendBytes(ReadOnlySpan<byte> bytes)
    {
        int n = DecodeChars(bytes, flush: false);
        return n == 0 ? string.Empty : new string(_chars, 0, n);
    }

    /// <summary>Ends the stream: held bytes that never completed become U+FFFD. The instance can then be reused.</summary>
    public string Flush()
    {
        int n = DecodeChars(default, flush: true);
        return n == 0 ? string.Empty : new string(_chars, 0, n);
    }

    /// <summary>Drops any held bytes and starts a new stream.</summary>
    public void Reset()
    {
        _decoder.Reset();
        HasPendingBytes = false;
    }

    private int DecodeChars(ReadOnlySpan<byte> bytes, bool flush)
    {
        // held bytes (at most 3) plus the new ones can each produce at most one char (or one U+FFFD)
        int max = bytes.Length + 4;
        if (_chars.Length < max)
            _chars = new char[Math.Max(max, _chars.Length * 2)];
        _decoder.Convert(bytes, _chars, flush, out _, out int charsUsed, out _);
        // The decoder keeps state only for an incomplete sequence; ask it how many chars one more (empty, flushing)
        // step would produce without disturbing it.
        HasPendingBytes = !flush && _decoder.GetCharCount(ReadOnlySpan<byte>.Empty, flush: true) > 0;
        return charsUsed;
    }
}
