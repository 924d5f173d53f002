namespace LfmSharp.Tokenizers;

/// <summary>
/// Token type as stored in GGUF <c>tokenizer.ggml.token_type</c> (the values of llama.cpp's <c>llama_token_type</c>
/// and gguf-py's <c>TokenType</c>).
/// </summary>
public enum TokenType
{
    /// <summary>No type stored.</summary>
    Undefined = 0,
    /// <summary>An ordinary vocabulary token.</summary>
    Normal = 1,
    /// <summary>The unknown-token placeholder.</summary>
    Unknown = 2,
    /// <summary>Special tokens such as <c>&lt;|im_start|&gt;</c>: matched in text only when special parsing is on.</summary>
    Control = 3,
    /// <summary>Added tokens such as <c>&lt;think&gt;</c>: always matched in text, even without special parsing.</summary>
    UserDefined = 4,
    /// <summary>Padding such as <c>[PAD300]</c>: never produced by the tokenizer, decodes to nothing.</summary>
    Unused = 5,
    /// <summary>SentencePiece-style byte tokens <c>&lt;0xXX&gt;</c>.</summary>
    Byte = 6,
}
