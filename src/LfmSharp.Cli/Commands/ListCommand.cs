using System.CommandLine;
using LfmSharp.Hub;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm list [--available]</c>: the cached models, or the short names that can be pulled.</summary>
internal static class ListCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var available = new Option<bool>("--available") { Description = "list the short names (lfm pull NAME) instead of the cache" };
        var cmd = new Command("list", "List the models in the Hugging Face cache: name, quant, size and path.") { available };
        cmd.SetAction(p => p.GetValue(available) ? Available(stdout) : Cached(stdout, stderr));
        return cmd;
    }

    private static int Available(TextWriter stdout)
    {
        int width = ModelCatalog.Entries.Max(e => e.Name.Length) + 2;
        int repoWidth = ModelCatalog.Entries.Max(e => e.Reference.Repo.Length + ModelReference.DefaultQuant.Length + 1) + 2;
        stdout.WriteLine($"{"NAME".PadRight(width)}{"PULLS".PadRight(repoWidth)}DESCRIPTION");
        foreach (var e in ModelCatalog.Entries)
            stdout.WriteLine($"{e.Name.PadRight(width)}{(e.Reference.Repo + ":" + (e.Reference.Quant ?? ModelReference.DefaultQuant)).PadRight(repoWidth)}{e.Description}");
        stdout.WriteLine("Any NAME takes :QUANT (lfm2.5-thinking:Q8_0); any GGUF repository works too (lfm pull ORG/REPO:QUANT).");
        return 0;
    }

    private static int Cached(TextWriter stdout, TextWriter stderr)
    {
        var cache = new HubCache(HubOptions.DefaultCacheDirectory());
        IReadOnlyList<CachedModel> models;
        try
        {
            models = cache.List();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm list: cannot read the cache {cache.Directory}: {e.Message}");
            return 1;
        }
        if (models.Count == 0)
        {
            stdout.WriteLine($"No models in {cache.Directory}. Try: lfm pull lfm2.5-thinking (lfm list --available shows the short names).");
            return 0;
        }
        var rows = models.Select(m => (Name: Display(m), m.Quant, Size: DownloadProgressPrinter.Size(m.SizeBytes) + (m.FileCount > 1 ? $" ({m.FileCount} files)" : ""), m.Path)).ToList();
        int nw = Math.Max(4, rows.Max(r => r.Name.Length)) + 2, qw = Math.Max(5, rows.Max(r => r.Quant.Length)) + 2, sw = Math.Max(4, rows.Max(r => r.Size.Length)) + 2;
        stdout.WriteLine($"{"NAME".PadRight(nw)}{"QUANT".PadRight(qw)}{"SIZE".PadRight(sw)}PATH");
        foreach (var r in rows)
            stdout.WriteLine($"{r.Name.PadRight(nw)}{r.Quant.PadRight(qw)}{r.Size.PadRight(sw)}{r.Path}");
        return 0;
    }

    // The name to type back: repo:quant (with @revision when the snapshot is not main's).
    private static string Display(CachedModel m)
    {
        string name = m.Quant.Length > 0 ? $"{m.Repo}:{m.Quant}" : m.Repo;
        return m.Revision == "main" ? name : $"{name} @{(m.Revision.Length == 40 ? m.Revision[..12] : m.Revision)}";
    }
}
