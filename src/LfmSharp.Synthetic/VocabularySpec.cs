namespace LfmSharp.Synthetic;

/// <summary>
/// The tokenizer half of a synthetic GGUF: token strings (byte-level, GPT-2 byte-to-unicode form), token types and
/// BPE merges, written under <c>tokenizer.ggml.*</c>. Any vocabulary can be passed in; <see cref="CreateDefault"/>
/// builds the fixtures' layout.
/// </summary>
internal sealed class VocabularySpec
{
    /// <summary>llama.cpp token types (<c>tokenizer.ggml.token_type</c>).</summary>
    public const int TypeNormal = 1, TypeControl = 3, TypeUserDefined = 4, TypeUnused = 5;

    /// <summary>The 16 special tokens at ids 0..15: LFM2's 14 control tokens, then <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c>.</summary>
    public static IReadOnlyList<string> SpecialTokens { get; } =
    [
        "<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>",
        "<|im_start|>", "<|im_end|>", "<|tool_list_start|>", "<|tool_list_end|>", "<|tool_call_start|>",
        "<|tool_call_end|>", "<|tool_response_start|>", "<|tool_response_end|>", "<think>", "</think>",
    ];

    /// <summary>Specials plus one token per byte: the smallest vocabulary that can encode any text.</summary>
    public const int MinimumSize = 16 + 256;

    public VocabularySpec(string[] tokens, int[] tokenTypes, string[] merges)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(tokenTypes);
        ArgumentNullException.ThrowIfNull(merges);
        if (tokens.Length != tokenTypes.Length)
            throw new ArgumentException($"{tokens.Length} tokens but {tokenTypes.Length} token types");
        Tokens = tokens;
        TokenTypes = tokenTypes;
        Merges = merges;
    }

    public string[] Tokens { get; }

    public int[] TokenTypes { get; }

    /// <summary>Merges as <c>"left right"</c>, highest priority first.</summary>
    public string[] Merges { get; }

    public int Count => Tokens.Length;

    public uint BosId { get; init; } = 1;

    public uint EosId { get; init; } = 7;

    public uint PadId { get; init; }

    public bool AddBos { get; init; } = true;

    public bool AddEos { get; init; }

    /// <summary>
    /// The vocabulary a synthetic model of <paramref name="shape"/> gets by default: the fixtures' BPE vocabulary,
    /// i.e. the first <see cref="ModelShape.MergeCount"/> merges trained on the HOW-MADE corpus (the corpus runs out
    /// after 1029), as many as fit into the vocabulary size.
    /// </summary>
    public static VocabularySpec ForShape(ModelShape shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        int room = Math.Max(0, shape.VocabSize - MinimumSize);
        return Create(shape.VocabSize, Tokenizers.SyntheticVocabulary.TrainedMerges(Math.Min(shape.MergeCount, room)));
    }

    /// <summary>
    /// The fixtures' layout without trained merges: 16 specials (CONTROL, and USER_DEFINED for the think tags), the
    /// 256 byte tokens ordered by byte value (id = 16 + byte), then merge results, then <c>[PAD&lt;id&gt;]</c> tokens
    /// of type UNUSED up to <paramref name="size"/>, as <c>convert_hf_to_gguf.py</c> pads.
    /// </summary>
    public static VocabularySpec CreateDefault(int size) => Create(size, []);

    /// <summary>Like <see cref="CreateDefault"/> but with BPE merges (<c>"left right"</c> in byte-to-unicode form), each adding its result token in order.</summary>
    public static VocabularySpec Create(int size, IReadOnlyList<string> merges)
    {
        ArgumentNullException.ThrowIfNull(merges);
        if (size < MinimumSize)
            throw new ArgumentException($"vocab size {size} is below {MinimumSize} (16 special + 256 byte tokens)", nameof(size));
        var tokens = new List<string>(size);
        var types = new List<int>(size);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(string token, int type)
        {
            tokens.Add(token);
            types.Add(type);
            seen.Add(token);
        }
        foreach (string s in SpecialTokens)
            Add(s, s.StartsWith("<|", StringComparison.Ordinal) ? TypeControl : TypeUserDefined);
        string[] byteChars = ByteToUnicode();
        for (int b = 0; b < 256; b++)
            Add(byteChars[b], TypeNormal);
        var usedMerges = new List<string>();
        foreach (string m in merges)
        {
            int sp = m.IndexOf(' ');
            if (sp <= 0 || sp == m.Length - 1 || m.IndexOf(' ', sp + 1) >= 0)
                throw new ArgumentException($"merge '{m}' is not of the form 'left right'", nameof(merges));
            string merged = string.Concat(m.AsSpan(0, sp), m.AsSpan(sp + 1));
            if (tokens.Count >= size)
                break;
            usedMerges.Add(m);
            if (!seen.Contains(merged))
                Add(merged, TypeNormal);
        }
        while (tokens.Count < size)
            Add($"[PAD{tokens.Count}]", TypeUnused);
        return new VocabularySpec(tokens.ToArray(), types.ToArray(), usedMerges.ToArray());
    }

    /// <summary>
    /// GPT-2's reversible byte-to-unicode map: printable Latin-1 bytes map to themselves, the other 68 bytes to
    /// U+0100 upwards in byte order (so a space becomes 'Ġ' and a newline 'Ċ').
    /// </summary>
    public static string[] ByteToUnicode()
    {
        var map = new string[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? ((char)b).ToString() : ((char)next++).ToString();
        }
        return map;
    }
}
