namespace LfmSharp.Tokenizers;

/// <summary>
/// GPT-2's reversible byte-to-unicode table (<c>bytes_to_unicode()</c>): printable bytes 0x21-0x7E, 0xA1-0xAC and
/// 0xAE-0xFF map to the same code point; the other 68 bytes map to U+0100.. in byte order. Byte-level BPE vocabularies
/// store every token in this form so that a token is a printable string (space = 'Ġ' U+0120, newline = 'Ċ' U+010A).
/// </summary>
internal static class ByteLevel
{
    // [256] byte -> char
    private static readonly char[] s_byteToChar = BuildByteToChar();

    // [0x144] char -> byte, -1 where the char is not a byte char (the table's highest char is U+0143)
    private static readonly short[] s_charToByte = BuildCharToByte();

    /// <summary>The byte-level char that stands for <paramref name="b"/>.</summary>
    public static char ByteToChar(byte b) => s_byteToChar[b];

    /// <summary>The byte that <paramref name="c"/> stands for, if <paramref name="c"/> is one of the 256 byte chars.</summary>
    public static bool TryCharToByte(char c, out byte b)
    {
        if (c < s_charToByte.Length && s_charToByte[c] >= 0)
        {
            b = (byte)s_charToByte[c];
            return true;
        }
        b = 0;
        return false;
    }

    /// <summary>Maps each byte to its byte-level char (the form vocabulary tokens are stored in).</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes, static (dst, src) => Encode(src, dst));
    }

    /// <summary>Maps each byte to its byte-level char; <paramref name="destination"/> must be as long as <paramref name="bytes"/>.</summary>
    public static void Encode(ReadOnlySpan<byte> bytes, Span<char> destination)
    {
        if (destination.Length < bytes.Length)
            throw new ArgumentException($"destination holds {destination.Length} chars but {bytes.Length} are needed", nameof(destination));
        var table = s_byteToChar;
        for (int i = 0; i < bytes.Length; i++)
            destination[i] = table[bytes[i]];
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
            map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var byteToChar = s_byteToChar; // declared above, so already initialised
        var map = new short[0x144];
        map.AsSpan().Fill(-1);
        for (int b = 0; b < 256; b++)
            map[byteToChar[b]] = (short)b;
        return map;
    }

    private static bool IsPrintable(int b) => b is (>= 0x21 and <= 0x7E) or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
}
