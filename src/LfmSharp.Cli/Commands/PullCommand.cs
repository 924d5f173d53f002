using System.CommandLine;
using LfmSharp.Hub;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm pull NAME[:QUANT] [--file F] [--revision R]</c>: download a model into the Hugging Face cache.</summary>
internal static class PullCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var name = new Argument<string>("model") { Description = "ORG/REPO[:QUANT], hf.co/ORG/REPO[:QUANT], a huggingface.co link or a short name (lfm list --available)" };
        var file = new Option<string?>("--file") { Description = "an exact file in the repository instead of picking by quant" };
        var revision = new Option<string?>("--revision") { Description = "branch, tag or commit (default main)" };
        var cmd = new Command("pull", "Download a GGUF model from Hugging Face into the shared cache (HF_HOME / HF_HUB_CACHE).") { name, file, revision };
        cmd.SetAction((p, ct) => RunAsync(p.GetValue(name)!, p.GetValue(file), p.GetValue(revision), stdout, stderr, ct));
        return cmd;
    }

    public static async Task<int> RunAsync(string name, string? file, string? revision, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        var options = HubOptions.FromEnvironment();
        if (!ModelReference.TryParse(name, out var model, options.Endpoint))
        {
            stderr.WriteLine($"lfm pull: '{name}' is not a model name: expected ORG/REPO[:QUANT], hf.co/ORG/REPO[:QUANT] or a short name ({string.Join(", ", ModelCatalog.Entries.Select(e => e.Name))})");
            return 2;
        }
        model = model! with { File = file ?? model!.File, Revision = revision ?? model!.Revision };
        try
        {
            using var client = new HubClient(options);
            var result = await client.PullAsync(model, new DownloadProgressPrinter(stderr), ct).ConfigureAwait(false);
            long size = result.Files.Sum(f => new FileInfo(f).Length);
            stdout.WriteLine($"{model.Repo}:{result.Quant} {DownloadProgressPrinter.Size(size)} (commit {result.Commit[..Math.Min(12, result.Commit.Length)]})");
            stdout.WriteLine(result.Path);
            return 0;
        }
        catch (HubException e)
        {
            stderr.WriteLine($"lfm pull: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm pull: {CliConsole.Describe(e)}");
            return 1;
        }
    }
}
