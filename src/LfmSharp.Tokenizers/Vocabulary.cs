using System.Text;
using LfmSharp.Gguf;

namespace LfmSharp.Tokenizers;

/// <summary>
/// A byte-level BPE vocabulary as stored in GGUF (<c>tokenizer.ggml.*</c>): token texts in GPT-2 byte-to-unicode form,
/// token types, merges, special ids and flags. Derives what llama.cpp derives at load time: the per-token
/// <see cref="TokenAttributes"/> (type plus text-based fix-ups), the end-of-generation set, and the decoded bytes of
/// every token (its "piece"). Immutable and thread-safe.
/// </summary>
public sealed class Vocabulary
{
    internal const string KeyModel = "tokenizer.ggml.model";
    internal const string KeyPre = "tokenizer.ggml.pre";
    internal const string KeyTokens = "tokenizer.ggml.tokens";
    internal const string KeyTokenType = "tokenizer.ggml.token_type";
    internal const string KeyMerges = "tokenizer.ggml.merges";
    internal const string KeyBosId = "tokenizer.ggml.bos_token_id";
    internal const string KeyEosId = "tokenizer.ggml.eos_token_id";
    internal const string KeyPadId = "tokenizer.ggml.padding_token_id";
    internal const string KeyEotId = "tokenizer.ggml.eot_token_id";
    internal const string KeyEomId = "tokenizer.ggml.eom_token_id";
    internal const string KeyAddBos = "tokenizer.ggml.add_bos_token";
    internal const string KeyAddEos = "tokenizer.ggml.add_eos_token";

    /// <summary>The only <c>tokenizer.ggml.model</c> this library implements: GPT-2 style byte-level BPE.</summary>
    public const string ModelGpt2 = "gpt2";

    // Texts llama.cpp treats as end of generation whatever their type (llama-vocab.cpp, "special_eog_ids").
    private static readonly HashSet<string> s_eogTexts = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
    };

    // Texts llama.cpp detects as FIM pad / repo / file-separator tokens, which it also counts as end of generation.
    private static readonly HashSet<string> s_fimEogTexts = new(StringComparer.Ordinal)
    {
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]",
        "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>",
        "<|file_sep|>",
    };

    // Texts of EOT / EOM / FIM tokens whose attribute llama.cpp forces to CONTROL when they are not already.
    private static readonly HashSet<string> s_forcedControlTexts = new(StringComparer.Ordinal)
    {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>", "<|eom_id|>",
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
        "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
        "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
    };

    // gpt-oss: llama.cpp always renders these as USER_DEFINED.
    private static readonly HashSet<string> s_forcedUserDefinedTexts = new(StringComparer.Ordinal)
    {
        "<|channel|>", "<|message|>", "<|start|>", "<|constrain|>",
    };

    private readonly string[] _tokens;              // [Count] token text, byte-level form
    private readonly TokenType[] _types;            // [Count] raw GGUF type
    private readonly TokenAttributes[] _attrs;      // [Count] effective attributes (llama.cpp's fix-ups applied)
    private readonly string[] _merges;              // [n_merges] "left right", rank = index
    private readonly Dictionary<string, int> _idByText;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _idBySpan;
    private readonly bool[] _isEog;                 // [Count]
    private readonly int[] _eogIds;                 // sorted
    private readonly byte[] _pieceBytes;            // concatenated pieces (special = true)
    private readonly int[] _pieceStart;             // [Count + 1] offsets into _pieceBytes

    /// <summary>Builds a vocabulary from arrays (the same content GGUF stores).</summary>
    /// <param name="tokens">[n_vocab] token texts in byte-level form; id = index. Empty texts become <c>[EMPTY_id]</c> as in llama.cpp.</param>
    /// <param name="tokenTypes">[n_vocab] types, or null for all <see cref="TokenType.Normal"/>.</param>
    /// <param name="merges">[n_merges] <c>"left right"</c>; the rank of a merge is its index.</param>
    /// <param name="bosId">Beginning-of-sequence id, if any.</param>
    /// <param name="eosId">End-of-sequence id, if any (always in the end-of-generation set).</param>
    /// <param name="padId">Padding id, if any.</param>
    /// <param name="addBos">Whether prompts start with <paramref name="bosId"/> (GGUF <c>add_bos_token</c>).</param>
    /// <param name="addEos">Whether prompts end with <paramref name="eosId"/> (GGUF <c>add_eos_token</c>).</param>
    /// <param name="preTokenizer">GGUF <c>tokenizer.ggml.pre</c>; <c>lfm2</c> for LFM2.</param>
    public Vocabulary(
        IReadOnlyList<string> tokens,
        IReadOnlyList<TokenType>? tokenTypes,
        IReadOnlyList<string> merges,
        int? bosId = null,
        int? eosId = null,
        int? padId = null,
        bool addBos = false,
        bool addEos = false,
        string preTokenizer = "lfm2")
        : this(tokens, tokenTypes, merges, bosId, eosId, padId, addBos, addEos, preTokenizer, extraEogIds: null, keyNames: false)
    {
    }

    private Vocabulary(
        IReadOnlyList<string> tokens,
        IReadOnlyList<TokenType>? tokenTypes,
        IReadOnlyList<string> merges,
        int? bosId,
        int? eosId,
        int? padId,
        bool addBos,
        bool addEos,
        string preTokenizer,
        IReadOnlyList<int>? extraEogIds,
        bool keyNames)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        int n = tokens.Count;
        if (n == 0)
            throw new InvalidDataException($"{(keyNames ? KeyTokens : "tokens")} is empty; a vocabulary needs at least one token");
        if (tokenTypes is not null && tokenTypes.Count != n)
            throw new InvalidDataException($"{(keyNames ? KeyTokenType : "tokenTypes")} has {tokenTypes.Count} entries but {(keyNames ? KeyTokens : "tokens")} has {n}");

        CheckId(bosId, n, keyNames ? KeyBosId : nameof(bosId));
        CheckId(eosId, n, keyNames ? KeyEosId : nameof(eosId));
        CheckId(padId, n, keyNames ? KeyPadId : nameof(padId));
        if (addBos && bosId is null)
            throw new InvalidDataException($"{(keyNames ? KeyAddBos : nameof(addBos))} is true, but {(keyNames ? KeyBosId : nameof(bosId))} is not set");
        if (addEos && eosId is null)
            throw new InvalidDataException($"{(keyNames ? KeyAddEos : nameof(addEos))} is true, but {(keyNames ? KeyEosId : nameof(eosId))} is not set");

        _tokens = new string[n];
        _types = new TokenType[n];
        _attrs = new TokenAttributes[n];
        _idByText = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            string? text = tokens[i];
            if (text is null)
                throw new InvalidDataException($"{(keyNames ? KeyTokens : "tokens")}[{i}] is null");
            if (text.Length == 0)
                text = $"[EMPTY_{i}]"; // llama.cpp renames empty tokens the same way
            if (!_idByText.TryAdd(text, i))
                throw new InvalidDataException($"duplicate token in vocabulary: '{text}' has ids {_idByText[text]} and {i}");
            _tokens[i] = text;
            var type = tokenTypes is null ? TokenType.Normal : tokenTypes[i];
            _types[i] = type;
            _attrs[i] = AttributesOf(type);
        }
        _idBySpan = _idByText.GetAlternateLookup<ReadOnlySpan<char>>();

        _merges = new string[merges.Count];
        for (int i = 0; i < _merges.Length; i++)
            _merges[i] = merges[i] ?? throw new InvalidDataException($"{(keyNames ? KeyMerges : "merges")}[{i}] is null");

        BosId = bosId;
        EosId = eosId;
        PadId = padId;
        AddBos = addBos;
        AddEos = addEos;
        PreTokenizer = preTokenizer;

        (_isEog, _eogIds) = DeriveAttributesAndEog(eosId, extraEogIds);
        (_pieceBytes, _pieceStart) = BuildPieces();
    }

    /// <summary>
    /// Reads the vocabulary from GGUF metadata, the way llama.cpp does for <c>tokenizer.ggml.model = gpt2</c>.
    /// Required: <c>model</c>, <c>tokens</c>, <c>merges</c>. Optional: <c>pre</c> (default <c>default</c>),
    /// <c>token_type</c> (default all normal), the special ids, <c>add_bos_token</c> (default true for the llama3 family
    /// of pre-tokenizers, which includes <c>lfm2</c>) and <c>add_eos_token</c> (default false).
    /// </summary>
    /// <exception cref="NotSupportedException">The tokenizer model is not <c>gpt2</c>.</exception>
    /// <exception cref="KeyNotFoundException">A required key is missing (the message names it).</exception>
    /// <exception cref="InvalidDataException">A key has the wrong type, a length mismatch, an id out of range, or a duplicate token.</exception>
    public static Vocabulary FromGguf(GgufMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (!metadata.Contains(KeyModel))
            throw new KeyNotFoundException($"metadata key '{KeyModel}' is missing; the file has no tokenizer");
        string model = metadata.GetString(KeyModel);
        if (model != ModelGpt2)
            throw new NotSupportedException($"tokenizer model '{model}' ({KeyModel}) is not supported; only '{ModelGpt2}' (byte-level BPE, used by LFM2) is implemented");

        string[] tokens = Require(metadata, KeyTokens).GetStringArray(KeyTokens);
        string[] merges = Require(metadata, KeyMerges).GetStringArray(KeyMerges);
        string pre = metadata.Contains(KeyPre) ? metadata.GetString(KeyPre) : "default";

        TokenType[]? types = null;
        if (metadata.Contains(KeyTokenType))
        {
            int[] raw = metadata.GetInt32Array(KeyTokenType);
            if (raw.Length != tokens.Length)
                throw new InvalidDataException($"{KeyTokenType} has {raw.Length} entries but {KeyTokens} has {tokens.Length}");
            types = new TokenType[raw.Length];
            for (int i = 0; i < raw.Length; i++)
                types[i] = (TokenType)raw[i];
        }

        int? bos = OptionalId(metadata, KeyBosId);
        int? eos = OptionalId(metadata, KeyEosId);
        int? pad = OptionalId(metadata, KeyPadId);
        bool addBos = metadata.GetBoolOrDefault(KeyAddBos, Llama3PreTokenizer.DefaultsToAddBos(pre));
        bool addEos = metadata.GetBoolOrDefault(KeyAddEos, false);

        var extraEog = new List<int>(2);
        foreach (string key in (ReadOnlySpan<string>)[KeyEotId, KeyEomId])
        {
            int? id = OptionalId(metadata, key);
            if (id is int v)
            {
                CheckId(v, tokens.Length, key);
                extraEog.Add(v);
            }
        }

        return new Vocabulary(tokens, types, merges, bos, eos, pad, addBos, addEos, pre, extraEog, keyNames: true);
    }

    /// <summary>Number of tokens (ids are 0 .. Count-1).</summary>
    public int Count => _tokens.Length;

    /// <summary>[Count] token texts in byte-level form.</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>[Count] raw token types.</summary>
    public IReadOnlyList<TokenType> TokenTypes => _types;

    /// <summary>Merges, <c>"left right"</c>, rank = index.</summary>
    public IReadOnlyList<string> Merges => _merges;

    /// <summary>The beginning-of-sequence token id, if the vocabulary has one.</summary>
    public int? BosId { get; }

    /// <summary>The end-of-sequence token id, if the vocabulary has one.</summary>
    public int? EosId { get; }

    /// <summary>The padding token id, if the vocabulary has one.</summary>
    public int? PadId { get; }

    /// <summary>Whether the model expects prompts to start with <see cref="BosId"/>.</summary>
    public bool AddBos { get; }

    /// <summary>Whether the model expects prompts to end with <see cref="EosId"/>.</summary>
    public bool AddEos { get; }

    /// <summary>GGUF <c>tokenizer.ggml.pre</c>, e.g. <c>lfm2</c>.</summary>
    public string PreTokenizer { get; }

    /// <summary>End-of-generation ids, ascending: the EOS id plus every token llama.cpp recognises by text (<c>&lt;|im_end|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, ...).</summary>
    public IReadOnlyList<int> EndOfGenerationIds => _eogIds;

    /// <summary>Token text (byte-level form) of <paramref name="id"/>.</summary>
    public string this[int id] => _tokens[CheckId(id)];

    /// <summary>Whether generation should stop at <paramref name="id"/>. Ids outside the vocabulary are not EOG.</summary>
    public bool IsEndOfGeneration(int id) => (uint)id < (uint)_isEog.Length && _isEog[id];

    /// <summary>The stored type of token <paramref name="id"/>.</summary>
    public TokenType GetTokenType(int id) => _types[CheckId(id)];

    /// <summary>The effective attributes llama.cpp uses for <paramref name="id"/>.</summary>
    public TokenAttributes GetAttributes(int id) => _attrs[CheckId(id)];

    /// <summary>Whether <paramref name="id"/> is a control token (rendered only when special tokens are rendered).</summary>
    public bool IsControl(int id) => (_attrs[CheckId(id)] & TokenAttributes.Control) != 0;

    /// <summary>Looks up a token by its exact byte-level text.</summary>
    public bool TryGetId(ReadOnlySpan<char> text, out int id) => _idBySpan.TryGetValue(text, out id);

    /// <summary>The id of the token whose byte-level text is <paramref name="text"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such token.</exception>
    public int GetId(string text) =>
        _idByText.TryGetValue(text, out int id) ? id : throw new KeyNotFoundException($"no token with text '{text}' in the vocabulary");

    /// <summary>
    /// The bytes token <paramref name="id"/> stands for, like llama.cpp's <c>llama_token_to_piece</c>: normal tokens
    /// are mapped back from byte-level form; control, unknown and user-defined tokens give their text as UTF-8
    /// (control and unknown only when <paramref name="special"/>); unused tokens give nothing. A piece may be part of a
    /// UTF-8 sequence.
    /// </summary>
    public ReadOnlySpan<byte> GetTokenBytes(int id, bool special = true)
    {
        CheckId(id);
        if (!special && (_attrs[id] & (TokenAttributes.Control | TokenAttributes.Unknown)) != 0)
            return default;
        return _pieceBytes.AsSpan(_pieceStart[id], _pieceStart[id + 1] - _pieceStart[id]);
    }

    /// <summary>Longest piece in bytes (special tokens included).</summary>
    public int MaxTokenBytes { get; private set; }

    /// <summary>Adds the <c>tokenizer.ggml.*</c> keys that describe this vocabulary (model, pre, tokens, types, merges, special ids, add flags).</summary>
    public void WriteTo(GgufWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.AddString(KeyModel, ModelGpt2);
        writer.AddString(KeyPre, PreTokenizer);
        writer.AddArray(KeyTokens, (string[])_tokens.Clone());
        var types = new int[_types.Length];
        for (int i = 0; i < types.Length; i++)
            types[i] = (int)_types[i];
        writer.AddArray(KeyTokenType, types);
        writer.AddArray(KeyMerges, (string[])_merges.Clone());
        if (BosId is int bos)
            writer.AddUInt32(KeyBosId, (uint)bos);
        if (EosId is int eos)
            writer.AddUInt32(KeyEosId, (uint)eos);
        if (PadId is int pad)
            writer.AddUInt32(KeyPadId, (uint)pad);
        writer.AddBool(KeyAddBos, AddBos);
        writer.AddBool(KeyAddEos, AddEos);
    }

    internal TokenAttributes AttributesUnchecked(int id) => _attrs[id];

    internal int CheckId(int id)
    {
        if ((uint)id >= (uint)_tokens.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is outside the vocabulary (0..{_tokens.Length - 1})");
        return id;
    }

    private static void CheckId(int? id, int count, string name)
    {
        if (id is int v && (uint)v >= (uint)count)
            throw new InvalidDataException($"{name} = {v} is outside the vocabulary (0..{count - 1})");
    }

    private static GgufMetadata Require(GgufMetadata metadata, string key) =>
        metadata.Contains(key) ? metadata : throw new KeyNotFoundException($"metadata key '{key}' is missing; a '{ModelGpt2}' tokenizer needs it");

    private static int? OptionalId(GgufMetadata metadata, string key)
    {
        if (!metadata.Contains(key))
            return null;
        long v = metadata.GetInt64(key);
        // llama.cpp stores "no such token" as -1 in some converters; treat negative ids as absent.
        if (v < 0)
            return null;
        return v <= int.MaxValue ? (int)v : throw new InvalidDataException($"{key} = {v} is not a valid token id");
    }

    private static TokenAttributes AttributesOf(TokenType type) => type switch
    {
        TokenType.Normal => TokenAttributes.Normal,
        TokenType.Unknown => TokenAttributes.Unknown,
        TokenType.Control => TokenAttributes.Control,
        TokenType.UserDefined => TokenAttributes.UserDefined,
        TokenType.Unused => TokenAttributes.Unused,
        TokenType.Byte => TokenAttributes.Byte,
        _ => TokenAttributes.None,
    };

    // Mirrors the text-based fix-ups of llama.cpp's vocabulary loader (src/llama-vocab.cpp, "auto-detect special tokens
    // by text" and "special_eog_ids"), so that tokenization and the stop set agree with llama.cpp on any GGUF.
    private (bool[] IsEog, int[] EogIds) DeriveAttributesAndEog(int? eosId, IReadOnlyList<int>? extraEogIds)
    {
        var eog = new SortedSet<int>();
        for (int i = 0; i < _tokens.Length; i++)
        {
            string text = _tokens[i];
            // every text in the lists starts with one of these; skipping the rest keeps the three set lookups off
            // the ~65k ordinary tokens
            if (text[0] is not ('<' or '[' or '_' or '▁'))
                continue;
            if (s_forcedControlTexts.Contains(text))
                _attrs[i] |= TokenAttributes.Control;
            if (s_eogTexts.Contains(text) || s_fimEogTexts.Contains(text))
            {
                eog.Add(i);
                _attrs[i] |= TokenAttributes.Control;
            }
            if (s_forcedUserDefinedTexts.Contains(text))
                _attrs[i] = TokenAttributes.UserDefined;
        }
        if (eosId is int eos)
            eog.Add(eos);
        if (extraEogIds is not null)
        {
            foreach (int id in extraEogIds)
                eog.Add(id);
        }

        // gpt-oss / solar-open: "<|end|>" is not a stop token when "<|return|>" and "<|call|>" (or "<|calls|>" and "<|flush|>") exist.
        bool Has(string t) => _idByText.TryGetValue(t, out int id) && eog.Contains(id);
        if (_idByText.TryGetValue("<|end|>", out int endId) && eog.Contains(endId)
            && ((Has("<|return|>") && (Has("<|call|>") || Has("<|calls|>"))) || ((Has("<|call|>") || Has("<|calls|>")) && Has("<|flush|>"))))
        {
            eog.Remove(endId);
            _attrs[endId] = TokenAttributes.UserDefined;
        }

        // gemma4 / paddleocr: "</s>" is not a stop token when "<|tool_response>" exists.
        if (_idByText.TryGetValue("</s>", out int sId) && eog.Contains(sId) && Has("<|tool_response>"))
        {
            eog.Remove(sId);
            _attrs[sId] = TokenAttributes.Normal;
        }

        var isEog = new bool[_tokens.Length];
        foreach (int id in eog)
            isEog[id] = true;
        return (isEog, [.. eog]);
    }

    private (byte[] Bytes, int[] Start) BuildPieces()
    {
        int n = _tokens.Length;
        var start = new int[n + 1];
        // a normal token has one byte per char; others are at most 3 UTF-8 bytes per char, plus "[UNK_BYTE_0x..]" text
        var bytes = new byte[n * 8];
        int at = 0;
        int max = 0;
        for (int id = 0; id < n; id++)
        {
            start[id] = at;
            string text = _tokens[id];
            var attr = _attrs[id];
            if ((attr & (TokenAttributes.Control | TokenAttributes.Unknown | TokenAttributes.UserDefined)) != 0)
            {
                Ensure(ref bytes, at + Encoding.UTF8.GetMaxByteCount(text.Length));
                at += Encoding.UTF8.GetBytes(text, bytes.AsSpan(at));
            }
            else if ((attr & TokenAttributes.Normal) != 0)
            {
                Ensure(ref bytes, at + text.Length);
                if (!TryDecodeByteLevel(text, bytes.AsSpan(at, text.Length)))
                {
                    byte[] spelled = DecodeByteLevelSlow(text);
                    Ensure(ref bytes, at + spelled.Length);
                    spelled.CopyTo(bytes, at);
                    at += spelled.Length;
                }
                else
                {
                    at += text.Length;
                }
            }
            else if ((attr & TokenAttributes.Byte) != 0)
            {
                Ensure(ref bytes, at + 1);
                bytes[at++] = ParseByteToken(text);
            }
            // unused / undefined tokens have an empty piece
            max = Math.Max(max, at - start[id]);
        }
        start[n] = at;
        MaxTokenBytes = max;
        return (bytes.AsSpan(0, at).ToArray(), start);
    }

    private static void Ensure(ref byte[] buffer, int length)
    {
        if (buffer.Length < length)
            Array.Resize(ref buffer, Math.Max(length, buffer.Length * 2));
    }

    // The common case: every char is one of the 256 byte chars.
    private static bool TryDecodeByteLevel(string text, Span<byte> destination)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (!ByteLevel.TryCharToByte(text[i], out destination[i]))
                return false;
        }
        return true;
    }

    // llama_decode_text: each code point maps back to its byte; one that is not a byte char is spelled out as
    // "[UNK_BYTE_0x<its UTF-8 in hex><the whole token text>]".
    private static byte[] DecodeByteLevelSlow(string text)
    {
        var result = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            if (ByteLevel.TryCharToByte(text[i], out byte b))
            {
                result.Add(b);
                continue;
            }
            int len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            var rune = len == 2 ? new Rune(text[i], text[i + 1]) : (Rune.IsValid(text[i]) ? new Rune(text[i]) : Rune.ReplacementChar);
            int w = rune.EncodeToUtf8(utf8);
            var sb = new StringBuilder("[UNK_BYTE_0x");
            for (int k = 0; k < w; k++)
                sb.Append(utf8[k].ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            sb.Append(text).Append(']');
            result.AddRange(Encoding.UTF8.GetBytes(sb.ToString()));
            i += len - 1;
        }
        return [.. result];
    }

    // "<0xXX>": llama.cpp reads the two characters after "<0x" as hex (strtol, so a bad digit stops the number).
    private static byte ParseByteToken(string text)
    {
        int value = 0;
        for (int i = 3; i < Math.Min(5, text.Length); i++)
        {
            int d = HexDigit(text[i]);
            if (d < 0)
                break;
            value = value * 16 + d;
        }
        return (byte)value;
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
