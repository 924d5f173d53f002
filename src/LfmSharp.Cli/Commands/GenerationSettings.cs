using System.CommandLine;
using LfmSharp.Chat;

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
    public Option<string?> ChatTemplateFile { get; } = new("--chat-template-file") { Description = "Jinja chat template to use instead of the model's own" };

    public void AddTo(Command c)
    {
        foreach (var o in new Option[] { Ctx, Threads, MaxTokens, Temperature, TopK, TopP, MinP, RepeatPenalty, Seed, ThinkBudget, System, HideThinking, ChatTemplateFile })
            c.Options.Add(o);
    }

    public ModelLoadOptions LoadOptions(ParseResult p) =>
        new() { Threads = p.GetValue(Threads), ChatTemplate = ReadChatTemplate(p.GetValue(ChatTemplateFile)) };

    /// <summary>The text of a <c>--chat-template-file</c> (null when not given).</summary>
    /// <exception cref="ChatTemplateFileException">The file cannot be read.</exception>
    public static string? ReadChatTemplate(string? path)
    {
        if (path is null)
            return null;
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ChatTemplateFileException($"--chat-template-file {path}: {(e is FileNotFoundException or DirectoryNotFoundException ? "file not found" : e.Message)}", e);
        }
    }


    /// <summary>The settings a model is not needed to judge (-t, -n, --ctx lower bound): one line, or null when fine.</summary>
    public string? Problem(ParseResult p)
    {
        if (p.GetValue(MaxTokens) is < 1 and var n)
            return $"--max-tokens must be at least 1; got {n}";
        if (p.GetValue(Ctx) is < RuntimeLimits.MinContextLength and var c)
            return $"--ctx must be at least {RuntimeLimits.MinContextLength}; got {c}";
        try
        {
            RuntimeLimits.CheckThreads(p.GetValue(Threads));
        }
        catch (ArgumentException e)
        {
            return "--" + e.Message;
        }
        return null;
    }

    /// <summary>A chat session of --ctx tokens, or null after one error line when the context does not fit (a note
    /// goes to stderr when it is past the model's trained context).</summary>
    public ChatSession? CreateSession(LanguageModel model, ParseResult p, TextWriter stderr, string command)
    {
        int ctx = p.GetValue(Ctx);
        try
        {
            if (RuntimeLimits.CheckContextLength(model.Config, ctx, KvCacheType.F16, 1, p.GetValue(Threads) ?? Environment.ProcessorCount) is string note)
                stderr.WriteLine($"{command}: note: --ctx: {note}");
            return model.CreateChatSession(ctx);
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine($"{command}: --ctx: {e.Message}");
            return null;
        }
    }

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

/// <summary>A <c>--chat-template-file</c> that cannot be read (reported without the model path).</summary>
internal sealed class ChatTemplateFileException(string message, Exception inner) : IOException(message, inner);
