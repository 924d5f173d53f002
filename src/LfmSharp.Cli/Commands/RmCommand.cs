using System.CommandLine;
using LfmSharp.Hub;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm rm NAME[:QUANT]</c>: remove a cached model (one quant, or the whole repository without one).</summary>
internal static class RmCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("model") { Description = "ORG/REPO[:QUANT] or a short name; without :QUANT every cached file of the repository goes" };
        var cmd = new Command("rm", "Remove a model from the Hugging Face cache.") { name };
        cmd.SetAction(p => Run(p.GetValue(name)!, stdout, stderr));
        return cmd;
    }

    private static int Run(string name, TextWriter stdout, TextWriter stderr)
    {
        var options = HubOptions.FromEnvironment();
        if (!ModelReference.TryParse(name, out var model, options.Endpoint))
        {
            stderr.WriteLine($"lfm rm: '{name}' is not a model name (lfm list shows the cached ones)");
            return 2;
        }
        // A short name fixes no quant, so `lfm rm lfm2.5-thinking` removes the whole repository, as its pull may have fetched several.
        var cache = new HubCache(options.CacheDirectory);
        try
        {
            if (!Directory.Exists(cache.RepoFolder(model!.Repo)))
            {
                stderr.WriteLine($"lfm rm: {model} is not in the cache ({cache.Directory}); lfm list shows what is");
                return 1;
            }
            long freed = cache.Remove(model);
            if (freed == 0 && Directory.Exists(cache.RepoFolder(model.Repo)))
            {
                var quants = cache.List().Where(m => m.Repo == model.Repo).Select(m => m.Quant).Distinct();
                stderr.WriteLine($"lfm rm: no cached file of {model.Repo} matches {model.Quant ?? model.File}; cached quants: {string.Join(", ", quants)}");
                return 1;
            }
            stdout.WriteLine($"removed {model} ({DownloadProgressPrinter.Size(freed)} freed)");
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm rm: {CliConsole.Describe(e)}");
            return 1;
        }
    }
}
