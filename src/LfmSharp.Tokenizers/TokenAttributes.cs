namespace LfmSharp.Tokenizers;

/// <summary>
/// The per-token attribute bits llama.cpp derives from <see cref="TokenType"/> and then adjusts by token text (for
/// example, <c>&lt;|endoftext|&gt;</c> always gains <see cref="Control"/>). Tokenization and decoding test these bits,
/// not the raw type, exactly like llama.cpp's <c>llama_token_attr</c>.
/// </summary>
[Flags]
public enum TokenAttributes
{
    /// <summary>No attribute.</summary>
    None = 0,
    /// <summary>The unknown-token placeholder.</summary>
    Unknown = 1 << 0,
    /// <summary>Padding that is never produced and decodes to nothing.</summary>
    Unused = 1 << 1,
    /// <summary>An ordinary vocabulary token.</summary>
    Normal = 1 << 2,
    /// <summary>A special (control) token, rendered only when special tokens are.</summary>
    Control = 1 << 3,
    /// <summary>An added token, always matched in text.</summary>
    UserDefined = 1 << 4,
    /// <summary>A byte token <c>&lt;0xXX&gt;</c>.</summary>
    Byte = 1 << 5,
}
