using System.Text;
using System.Text.Json;
using LfmSharp.Constraints;
using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Constraints;

/// <summary>Vocabularies, a random-logit driver and helpers shared by the constraint tests.</summary>
internal static class ConstraintTestKit
{
    private static readonly Lazy<(TokenVocabulary Vocab, string[] Tokens, int[] Types)> s_fixture = new(LoadFixture);
    private static readonly Lazy<TokenVocabulary> s_synthetic = new(() => BuildSynthetic(65536, seed: 12345));

    /// <summary>The 1024-token byte-level BPE vocabulary of the small fixture model; EOG = &lt;|endoftext|&gt; (2), &lt;|im_end|&gt; (7).</summary>
    public static TokenVocabulary FixtureVocab => s_fixture.Value.Vocab;

    public static string[] FixtureTokens => s_fixture.Value.Tokens;

    public static int[] FixtureTypes => s_fixture.Value.Types;

    /// <summary>65,536 tokens: 14 control tokens (LFM2 ids), every single byte, and random pieces.</summary>
    public static TokenVocabulary Synthetic65k => s_synthetic.Value;

    private static (TokenVocabulary, string[], int[]) LoadFixture()
    {
        using var gguf = GgufFile.Open(TestData.Model("small-q8_0"));
        var tokens = gguf.Metadata.GetStringArray("tokenizer.ggml.tokens");
        var types = gguf.Metadata.GetInt32Array("tokenizer.ggml.token_type");
        int eos = (int)gguf.Metadata.GetInt64("tokenizer.ggml.eos_token_id");
        return (TokenVocabulary.FromGgufTokens(tokens, types, [eos, 2]), tokens, types);
    }

    public static readonly string[] Lfm2Specials =
    [
        "<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>", "<|im_start|>",
        "<|im_end|>", "<|tool_list_start|>", "<|tool_list_end|>", "<|tool_call_start|>", "<|tool_call_end|>",
        "<|tool_response_start|>", "<|tool_response_end|>",
    ];

    /// <summary>A vocabulary shaped roughly like a real BPE one: words, JSON punctuation, UTF-8 pieces (some cut mid-character), whitespace runs, raw bytes.</summary>
    public static TokenVocabulary BuildSynthetic(int size, int seed)
    {
        var rng = new Random(seed);
        var tokens = new List<byte[]>();
        foreach (var s in Lfm2Specials)
            tokens.Add(Encoding.UTF8.GetBytes(s));
        for (int b = 0; b < 256; b++)
            tokens.Add([(byte)b]);
        const string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        const string punct = "{}[]\":,.-+eE0123456789 \\/_tnfrul";
        string[] unicode = ["é", "ü", "ß", "ñ", "日", "本", "語", "中", "文", "🙂", "🚀", "€", "Ж", "ا", "ह", "—", "…"];
        while (tokens.Count < size)
        {
            double r = rng.NextDouble();
            var sb = new StringBuilder();
            byte[] t;
            if (r < 0.5)
            {
                if (rng.Next(2) == 0)
                    sb.Append(' ');
                int n = rng.Next(1, 11);
                for (int i = 0; i < n; i++)
                    sb.Append(letters[rng.Next(letters.Length)]);
                t = Encoding.UTF8.GetBytes(sb.ToString());
            }
            else if (r < 0.65)
            {
                int n = rng.Next(1, 7);
                for (int i = 0; i < n; i++)
                    sb.Append(punct[rng.Next(punct.Length)]);
                t = Encoding.UTF8.GetBytes(sb.ToString());
            }
            else if (r < 0.8)
            {
                int n = rng.Next(1, 4);
                for (int i = 0; i < n; i++)
                    sb.Append(unicode[rng.Next(unicode.Length)]);
                t = Encoding.UTF8.GetBytes(sb.ToString());
                if (rng.Next(4) == 0 && t.Length > 1)
                    t = rng.Next(2) == 0 ? t[..rng.Next(1, t.Length)] : t[rng.Next(1, t.Length)..]; // cut mid-character
            }
            else if (r < 0.9)
            {
                int n = rng.Next(1, 17);
                for (int i = 0; i < n; i++)
                    sb.Append(" \n\t"[rng.Next(3) == 0 ? rng.Next(3) : 0]);
                t = Encoding.UTF8.GetBytes(sb.ToString());
            }
            else
            {
                t = new byte[rng.Next(1, 9)];
                rng.NextBytes(t);
            }
            tokens.Add(t);
        }
        return new TokenVocabulary(tokens, [2, 7], Enumerable.Range(0, Lfm2Specials.Length));
    }

    public sealed record RunResult(string Text, byte[] Bytes, int Tokens, bool EndedWithEog);

    /// <summary>
    /// Generates with random logits: N(0, 2) per token plus a per-run bias towards tokens holding structural
    /// characters (so documents also end on their own), masked, sampled from the tempered softmax. The token budget
    /// goes to the budget-aware mask, so the document must be complete by the end of it.
    /// </summary>
    public static RunResult RandomRun(GrammarConstraint c, int seed, int budget, double temperature = 1.5)
    {
        var v = c.Vocabulary;
        var rng = new Random(seed);
        var logits = new float[v.Count];
        var bias = new float[v.Count];
        double structural = rng.NextDouble() * 4;
        for (int id = 0; id < v.Count; id++)
        {
            var bytes = v.GetBytes(id);
            if (bytes.IndexOfAny("\"}],"u8) >= 0)
                bias[id] = (float)structural;
        }
        var output = new List<byte>();
        c.Reset();
        int tokens = 0;
        for (int step = 0; step < budget; step++)
        {
            for (int id = 0; id < logits.Length; id++)
                logits[id] = (float)(Gaussian(rng) * 2 + bias[id]);
            c.ApplyMask(logits, budget - step);
            int token = Sample(logits, temperature, rng);
            c.Accept(token);
            if (c.IsFinished)
                return new RunResult(Encoding.UTF8.GetString(output.ToArray()), [.. output], tokens, true);
            output.AddRange(v.GetBytes(token).ToArray());
            tokens++;
        }
        Assert.True(c.IsComplete, $"budget of {budget} tokens ran out on an incomplete document: {Encoding.UTF8.GetString(output.ToArray())}");
        return new RunResult(Encoding.UTF8.GetString(output.ToArray()), [.. output], tokens, false);
    }

    public static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble();
        double u2 = rng.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public static int Sample(float[] logits, double temperature, Random rng)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits)
            max = Math.Max(max, l);
        Assert.False(double.IsNegativeInfinity(max), "every token was masked");
        double sum = 0;
        var p = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++)
        {
            p[i] = float.IsNegativeInfinity(logits[i]) ? 0 : Math.Exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        double u = rng.NextDouble() * sum;
        for (int i = 0; i < p.Length; i++)
        {
            u -= p[i];
            if (u <= 0 && p[i] > 0)
                return i;
        }
        for (int i = p.Length - 1; i >= 0; i--)
        {
            if (p[i] > 0)
                return i;
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>Strict parse (no comments, no trailing commas, valid UTF-8) with System.Text.Json.</summary>
    public static JsonDocument Parse(byte[] utf8) => JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = 256 });

    /// <summary>Index of the first byte the matcher rejects, or −1 when it takes them all.</summary>
    public static int FirstRejected(Grammar g, ReadOnlySpan<byte> bytes)
    {
        var m = new GrammarMatcher(g);
        for (int i = 0; i < bytes.Length; i++)
        {
            if (!m.TryAdvance(bytes[i]))
                return i;
        }
        return -1;
    }

    public static bool Accepts(Grammar g, string text)
    {
        var m = new GrammarMatcher(g);
        return m.TryAdvance(text) && m.IsComplete;
    }

    public static string Show(byte[] bytes) => Encoding.UTF8.GetString(bytes).Replace("\n", "\\n");
}
