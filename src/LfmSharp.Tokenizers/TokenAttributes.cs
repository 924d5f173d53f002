namespace LfmSharp.Tokenizers;

/// <summary>
/// The per-token attribute bits llama.cpp derives from <see cref="TokenType"/> and then adjusts by token text (for
/// example, <c>&lt;|endoftext|&gt;</c> always gains <see cref="Control"/>). Tokenization and decoding test these bits,
/// not the raw type, exactly like llama.cpp's <c>llama_token_attr</c>.
/// </summary>
[Flags]
public enum TokenAttributes
{
    None = 0,
    Unknown = 1 << 0,
    Unused = 1 << 1,
    Normal = 1 << 2,
    Control = 1 << 3,
    UserDefined = 1 << 4,
    Byte = 1 << 5,
}
