using System.Text.Json.Nodes;
using LfmSharp.Chat;

namespace LfmSharp.Testing;

/// <summary>
/// Makes the random-weight fixture model write an exact token sequence: token i of the chain gets logit bias
/// 100 − 3i, and a repetition penalty of 100 over the last <see cref="Window"/> tokens divides a used token's logit down
/// to about 1, so the next chain token wins. The model's own logits stay within ±7 (fixture sidecars), far below every
/// unused bias. Greedy (temperature 0), so the output is fully determined by the chain — which makes it the oracle.
/// Tiny-vocabulary facts (fixtures README): ids 0..13 are the control tokens, 14/15 are &lt;think&gt;/&lt;/think&gt;,
/// and byte b is token 16 + b.
/// </summary>
public sealed class Steer
{
    public const int EndOfText = 2;
    public const int ImEnd = 7;
    public const int ToolCallStart = 10;
    public const int ToolCallEnd = 11;
    public const int Think = 14;
    public const int EndThink = 15;

    private Steer(List<int> tokens) => Tokens = tokens;

    public IReadOnlyList<int> Tokens { get; }

    /// <summary>The penalty window: long enough to cover every chain token once generated.</summary>
    public int Window => Tokens.Count;

    public IReadOnlyDictionary<int, float> Bias => Tokens.Select((t, i) => (t, b: 100f - 3 * i)).ToDictionary(x => x.t, x => x.b);

    /// <summary>Parts are token ids (int) or ASCII text (one byte token per character). Every token must be distinct.</summary>
    public static Steer Chain(params object[] parts)
    {
        var tokens = new List<int>();
        foreach (var part in parts)
        {
            switch (part)
            {
                case int id:
                    tokens.Add(id);
                    break;
                case string s:
                    foreach (char c in s)
                    {
                        if (c > 127)
                            throw new ArgumentException("ASCII only: one byte, one token.");
                        tokens.Add(16 + c);
                    }
                    break;
                default:
                    throw new ArgumentException("int or string parts only");
            }
        }
        if (tokens.Distinct().Count() != tokens.Count)
            throw new ArgumentException("A chain token may appear once only (the penalty is what moves the chain on).");
        return new Steer(tokens);
    }

    /// <summary>Adds temperature 0, logit_bias, repetition_penalty and repeat_last_n to an OpenAI request body.</summary>
    public JsonObject Apply(JsonObject request)
    {
        var bias = new JsonObject();
        foreach (var (id, b) in Bias)
            bias[id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = b;
        request["temperature"] = 0;
        request["logit_bias"] = bias;
        request["repetition_penalty"] = 100;
        request["repeat_last_n"] = Window;
        return request;
    }

    /// <summary>The same steering as sampling options (for the in-process IChatClient).</summary>
    public Generation.SamplingOptions Sampling(Generation.SamplingOptions baseline) =>
        baseline with { Temperature = 0, LogitBias = Bias, RepetitionPenalty = 100, PenaltyLastN = Window };

    /// <summary>A user message for chains with many letters: its last tokens (the ones the penalty window reaches
    /// at the first steps) are digit tokens, which no chain here uses.</summary>
    public const string DigitTailUser = "Use the tool 9999999999999999";

    /// <summary>
    /// Precondition: the chain's token k is not among the last <see cref="Window"/> − k prompt tokens (at step k the
    /// penalty window still reaches that far back into the prompt, and a penalized chain token would be skipped).
    /// </summary>
    public void AssertPromptAllows(LanguageModel model, IReadOnlyList<LfmChatMessage> messages, IReadOnlyList<ToolDefinition>? tools = null)
    {
        int[] ids = model.Tokenizer.EncodePrompt(model.ChatTemplate.Render(messages, tools));
        var clash = new List<string>();
        for (int k = 0; k < Tokens.Count; k++)
        {
            int reach = Window - k;
            if (ids.Skip(Math.Max(0, ids.Length - reach)).Contains(Tokens[k]))
                clash.Add($"token {Tokens[k]} at step {k}");
        }
        Assert.True(clash.Count == 0, "test setup: the penalty window reaches prompt copies of " + string.Join(", ", clash));
    }
}
