using System.CommandLine;
using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Cli.Commands;

/// <summary>The options run, chat and demo share: model loading, sampling, limits, thinking budget.</summary>
internal sealed class GenerationSettings
{
    public Option<int> Ctx { get; } = new("--ctx", "-c") { Description = "context length to allocate", DefaultValueFactory = _ => 4096 };
    public Option<int?> Threads { get; } = new("--threads", "-t") { Description = "worker threads (default: all cores)" };
    public Option<int> MaxTokens { get; } = new("--max-tokens", "-n") { Description = "most tokens to generate (reasoning included)", DefaultValueFactory = _ => 1024 };
    public Option<float?> Temperature { get; } = new("--temp") { Description = "temperature (0 = greedy); default: the model's recommendation" };
    public Option<int?> TopK { get; } = new("--top-k") { Description = "top-k (0 = off)" };
    public Option<float?> TopP { get; } = new("--top-p") { Description = "top-p (1 = off)" };
    public Option<float?> MinP { get; } = new("--min-p") { Description = "min-p (0 = off)" };
    public Option<float?> RepeatPenalty { get; } = new("--repeat-penalty") { Description = "repetition penalty (1 = off)" };
    public Option<ulong?> Seed { get; } = new("--seed") { Description = "sampling seed" };
    public Option<int?> ThinkBudget { get; } = new("--think-budget") { Description = "most reasoning tokens before </think> is forced (0 = no thinking)" };
    public Option<string?> System { get; } = new("--system", "-s") { Description = "system prompt" };
    public Option<bool> HideThinking { get; } = new("--hide-thinking") { Description = "do not print the reasoning" };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Ctx, Threads, MaxTokens, Temperature, TopK, TopP, MinP, RepeatPenalty, Seed, ThinkBudget, System, HideThinking })
            c.Options.Add(o);
    }

    public ModelLoadOptions LoadOptions(ParseResult p) => new() { Threads = p.GetValue(Threads) };

    public ChatRequestOptions RequestOptions(ParseResult p, LanguageModel model, IReadOnlyList<ToolDefinition>? tools = null)
    {
        var s = model.DefaultSampling;
        if (p.GetValue(Temperature) is float t) s = s with { Temperature = t };
        if (p.GetValue(TopK) is int k) s = s with { TopK = k };
        if (p.GetValue(TopP) is float tp) s = s with { TopP = tp };
        if (p.GetValue(MinP) is float mp) s = s with { MinP = mp };
        if (p.GetValue(RepeatPenalty) is float rp) s = s with { RepetitionPenalty = rp };
        if (p.GetValue(Seed) is ulong seed) s = s with { Seed = seed };
        return new ChatRequestOptions
        {
            Sampling = s,
            MaxTokens = p.GetValue(MaxTokens),
            MaxThinkingTokens = p.GetValue(ThinkBudget),
            IncludeReasoning = true,
            Tools = tools,
        };
    }

    public List<LfmChatMessage> StartMessages(ParseResult p) =>
        p.GetValue(System) is { Length: > 0 } sys ? [LfmChatMessage.System(sys)] : [];
}
