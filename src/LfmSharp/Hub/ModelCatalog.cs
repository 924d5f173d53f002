namespace LfmSharp.Hub;

/// <summary>One short name: what it stands for and a line about the model.</summary>
/// <param name="Name">The short name, e.g. <c>lfm2.5-thinking</c>.</param>
/// <param name="Reference">The repository (and quantization, when the name fixes one) it stands for.</param>
/// <param name="Description">One line for <c>lfm list --available</c>.</param>
/// <param name="Aliases">Other spellings of the same name.</param>
public sealed record ModelCatalogEntry(string Name, ModelReference Reference, string Description, IReadOnlyList<string> Aliases);

/// <summary>
/// Short names for Liquid AI's LFM2 / LFM2.5 text models, as Ollama names them. One table, so adding a model is one
/// line. A short name takes a quant like a repository does: <c>lfm2.5-thinking:Q8_0</c>.
/// </summary>
public static class ModelCatalog
{
    /// <summary>Every short name, in the order <c>lfm list --available</c> prints them.</summary>
    public static IReadOnlyList<ModelCatalogEntry> Entries { get; } =
    [
        E("lfm2.5-thinking", "LiquidAI/LFM2.5-1.2B-Thinking-GGUF", "LFM2.5 1.2B, reasons before answering (<think>)", "lfm2.5-1.2b-thinking"),
        E("lfm2.5-instruct", "LiquidAI/LFM2.5-1.2B-Instruct-GGUF", "LFM2.5 1.2B instruction-tuned chat", "lfm2.5-1.2b-instruct", "lfm2.5", "lfm2.5-1.2b"),
        E("lfm2.5-base", "LiquidAI/LFM2.5-1.2B-Base-GGUF", "LFM2.5 1.2B pre-trained base model", "lfm2.5-1.2b-base"),
        E("lfm2.5-jp", "LiquidAI/LFM2.5-1.2B-JP-GGUF", "LFM2.5 1.2B tuned for Japanese", "lfm2.5-1.2b-jp"),
        E("lfm2.5-350m", "LiquidAI/LFM2.5-350M-GGUF", "LFM2.5 350M chat"),
        E("lfm2-350m", "LiquidAI/LFM2-350M-GGUF", "LFM2 350M chat"),
        E("lfm2-700m", "LiquidAI/LFM2-700M-GGUF", "LFM2 700M chat"),
        E("lfm2-1.2b", "LiquidAI/LFM2-1.2B-GGUF", "LFM2 1.2B chat", "lfm2"),
        E("lfm2-2.6b", "LiquidAI/LFM2-2.6B-GGUF", "LFM2 2.6B chat"),
    ];

    /// <summary>The entry for <paramref name="name"/> (or one of its aliases), case-insensitive; null when none.</summary>
    public static ModelCatalogEntry? Find(string name)
    {
        foreach (var e in Entries)
        {
            if (e.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
                return e;
            foreach (string a in e.Aliases)
            {
                if (a.Equals(name, StringComparison.OrdinalIgnoreCase))
                    return e;
            }
        }
        return null;
    }

    /// <summary>The short name whose repository is <paramref name="repo"/>, for display; null when none.</summary>
    public static string? ShortNameOf(string repo)
    {
        foreach (var e in Entries)
        {
            if (e.Reference.Repo.Equals(repo, StringComparison.OrdinalIgnoreCase))
                return e.Name;
        }
        return null;
    }

    private static ModelCatalogEntry E(string name, string repo, string description, params string[] aliases) =>
        new(name, new ModelReference(repo), description, aliases);
}
