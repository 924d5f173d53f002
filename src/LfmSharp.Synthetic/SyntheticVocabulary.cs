namespace LfmSharp.Tokenizers;

/// <summary>
/// The synthetic LFM2-style vocabulary of the test fixtures (tests/TestData/fixtures/HOW-MADE.md section 1.4): BPE
/// merges trained by <see cref="BpeTrainer"/> on <see cref="Corpus"/>, laid out like LFM2's real vocabulary (16
/// special tokens, 256 byte tokens, merge tokens, <c>[PAD&lt;id&gt;]</c> padding). With 200 merges and 512 tokens it is
/// the vocabulary of lfm2-tiny, with 600 merges and 1024 tokens that of lfm2-small. The corpus runs out after
/// <see cref="MaxMerges"/> merges (1029), which is what a full-size (65,536-token) synthetic model gets.
/// </summary>
internal static class SyntheticVocabulary
{
    /// <summary>Beginning-of-sequence id (<c>&lt;|startoftext|&gt;</c>).</summary>
    public const int BosId = 1;

    /// <summary>End-of-sequence id (<c>&lt;|im_end|&gt;</c>).</summary>
    public const int EosId = 7;

    /// <summary>Padding id (<c>&lt;|pad|&gt;</c>).</summary>
    public const int PadId = 0;

    /// <summary>The pre-tokenizer name stored in <c>tokenizer.ggml.pre</c>.</summary>
    public const string PreTokenizer = "lfm2";

    /// <summary>
    /// The 16 special tokens at ids 0..15: the 14 <c>&lt;|...|&gt;</c> control tokens LFM2 has at those ids, then
    /// <c>&lt;think&gt;</c> and <c>&lt;/think&gt;</c> as user-defined tokens.
    /// </summary>
    public static IReadOnlyList<(string Text, TokenType Type)> SpecialTokens { get; } =
    [
        ("<|pad|>", TokenType.Control),
        ("<|startoftext|>", TokenType.Control),
        ("<|endoftext|>", TokenType.Control),
        ("<|fim_pre|>", TokenType.Control),
        ("<|fim_mid|>", TokenType.Control),
        ("<|fim_suf|>", TokenType.Control),
        ("<|im_start|>", TokenType.Control),
        ("<|im_end|>", TokenType.Control),
        ("<|tool_list_start|>", TokenType.Control),
        ("<|tool_list_end|>", TokenType.Control),
        ("<|tool_call_start|>", TokenType.Control),
        ("<|tool_call_end|>", TokenType.Control),
        ("<|tool_response_start|>", TokenType.Control),
        ("<|tool_response_end|>", TokenType.Control),
        ("<think>", TokenType.UserDefined),
        ("</think>", TokenType.UserDefined),
    ];

    /// <summary>Number of merges the corpus allows before no pair is left (1029).</summary>
    public static int MaxMerges => s_allMerges.Value.Length;

    /// <summary>The first <paramref name="count"/> merges trained on <see cref="Corpus"/> (all <see cref="MaxMerges"/> if fewer), <c>"left right"</c> in byte-level form.</summary>
    public static string[] TrainedMerges(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        string[] all = s_allMerges.Value;
        return count >= all.Length ? (string[])all.Clone() : all[..count];
    }

    /// <summary>
    /// Builds the synthetic vocabulary with the first <paramref name="merges"/> merges (fewer if the corpus runs out;
    /// see <see cref="MaxMerges"/>) padded to <paramref name="vocabSize"/> tokens. BOS 1, EOS 7, PAD 0, add_bos true,
    /// add_eos false, pre-tokenizer <c>lfm2</c>. Write it into a GGUF with <see cref="Vocabulary.WriteTo"/> and add
    /// <see cref="ChatTemplate"/> as <c>tokenizer.chat_template</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="vocabSize"/> is below 16 + 256 + the merges used.</exception>
    public static Vocabulary Create(int vocabSize, int merges)
    {
        return BpeTrainer.BuildVocabulary(SpecialTokens, TrainedMerges(merges), vocabSize, BosId, EosId, PadId, addBos: true, addEos: false, PreTokenizer);
    }

    /// <summary>The training corpus (HOW-MADE.md appendix, 4,812 bytes of UTF-8 with LF line ends).</summary>
    public static string Corpus { get; } = CorpusText.ReplaceLineEndings("\n");

    /// <summary>The ChatML-style Jinja chat template stored in the fixture models (<c>tokenizer.chat_template</c>).</summary>
    public static string ChatTemplate { get; } = ChatTemplateText.ReplaceLineEndings("\n");

    // Declared after Corpus: static initialisers run in text order.
    private static readonly Lazy<string[]> s_allMerges = new(() => BpeTrainer.Train(Corpus, int.MaxValue));

    // Verbatim from HOW-MADE.md; line ends are normalised above in case a checkout converted them.
    private const string CorpusText = """"
        The quick brown fox jumps over the lazy dog. This sentence contains every letter of the English alphabet, and it has been used for a long time to test typewriters, fonts and keyboards.

        Once upon a time there was a small village at the edge of a great forest. The people of the village were farmers and weavers, and every morning they walked to the fields before the sun was high. In the evening they gathered around the fire in the middle of the village and told stories about the old days, about the river that changed its course, and about the travelers who came from the mountains with salt and iron.

        A language model is a program that predicts the next word, or more precisely the next token, given the words that came before it. The model reads the input text as a sequence of tokens, turns each token into a vector, and passes the vectors through a stack of layers. Each layer mixes information between positions and then transforms every position on its own. At the end, the model computes a score for every token in the vocabulary, and these scores are called logits. The token with the highest score is the greedy choice, but one can also sample from the distribution that the scores define.

        Tokenizers split text into pieces. A byte pair encoding tokenizer starts from single bytes and repeatedly merges the most frequent pair of neighbouring symbols into a new symbol. After a few thousand merges, common words such as "the", "and", "of" and "to" become single tokens, while rare words are still spelled out with several smaller pieces. Numbers are usually split into groups of at most three digits, so 12345 becomes 123 and 45, and 3.14159 becomes 3, a dot, 141 and 59.

        The weather today is cold and windy, with light rain in the morning and some sunshine in the afternoon. Tomorrow will be warmer, and the weekend should be dry. If you are planning to go hiking, take a jacket, a bottle of water and something to eat. The path along the river is beautiful in every season, but it can be muddy after rain.

        I don't think we should leave before the meeting ends. She said she'd call us when she's ready, and they're still waiting for the report. We've already finished most of the work, but there's one more section that isn't done yet. You'll have to check the numbers again, because the totals didn't match last time. It's not a big problem, and we'll fix it together.

        In computer science, a cache is a small and fast memory that stores copies of data from a larger and slower memory. When the processor needs a value, it first looks in the cache. If the value is there, the access is fast; otherwise the value must be fetched from main memory, which takes much longer. Good programs are written so that the data they use together is stored together, and so that they read memory in order rather than jumping around at random.

        Matrix multiplication is the most important operation in a neural network. A weight matrix with many rows and columns is multiplied by a vector of activations, and the result is another vector. When the weights are stored with fewer bits, for example four or eight bits per value instead of sixteen, the model becomes smaller and faster to read from memory, at the cost of a small loss of accuracy. Each block of weights keeps a scale factor, and sometimes a minimum, so that the original values can be approximately recovered.

        The history of writing begins with marks on clay and stone. Later people wrote on papyrus, on parchment and finally on paper. The printing press made books cheap, and reading spread from the few to the many. Today most text is written on screens and stored as numbers, one number for each character, and the same text can be copied around the world in less than a second.

        Questions and answers: What is the capital of France? The capital of France is Paris. How many days are there in a week? There are seven days in a week. What is two plus two? Two plus two is four. Who wrote the play about the prince of Denmark? It was written by William Shakespeare. Where does the sun rise? The sun rises in the east and sets in the west.

        Cooking is a kind of chemistry that you can eat. To make bread you need flour, water, salt and yeast. Mix them, knead the dough for ten minutes, let it rise for an hour, shape it, let it rise again, and bake it in a hot oven until the crust is brown. The smell of fresh bread in the kitchen is one of the simple pleasures of life.

        The assistant should answer the user's question clearly and briefly. When the user asks for a function, the assistant can call a tool, read the result and then write the final answer. When the question is hard, the assistant may think step by step before it answers, and it should check its own work at the end. Thank you for your help! You're welcome, and have a nice day.

        """";

    private const string ChatTemplateText = """"
        {{- bos_token -}}
        {%- set ns = namespace(system_prompt="") -%}
        {%- if messages[0]["role"] == "system" -%}
            {%- set ns.system_prompt = messages[0]["content"] -%}
            {%- set messages = messages[1:] -%}
        {%- endif -%}
        {%- if tools -%}
            {%- set ns.system_prompt = ns.system_prompt + ("\n" if ns.system_prompt else "") + "List of tools: <|tool_list_start|>" + (tools | tojson) + "<|tool_list_end|>" -%}
        {%- endif -%}
        {%- if ns.system_prompt -%}
            {{- "<|im_start|>system\n" + ns.system_prompt + "<|im_end|>\n" -}}
        {%- endif -%}
        {%- for message in messages -%}
            {{- "<|im_start|>" + message["role"] + "\n" -}}
            {%- set content = message["content"] -%}
            {%- if content is not string -%}
                {%- set content = content | tojson -%}
            {%- endif -%}
            {%- if message["role"] == "tool" -%}
                {%- set content = "<|tool_response_start|>" + content + "<|tool_response_end|>" -%}
            {%- endif -%}
            {{- content + "<|im_end|>\n" -}}
        {%- endfor -%}
        {%- if add_generation_prompt -%}
            {{- "<|im_start|>assistant\n" -}}
        {%- endif -%}

        """";
}
