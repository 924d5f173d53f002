using System.CommandLine;
using LfmSharp.Cli.Commands;

namespace LfmSharp.Cli;

/// <summary>Wiring only: each command's behaviour lives in Commands/*.cs.</summary>
public static class Program
{
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Parses and runs; parse errors become one line on stderr and exit code 2.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, TextReader? stdin = null)
    {
        var root = BuildRoot(stdout, stderr, stdin ?? Console.In);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string command = parsed.CommandResult.Command == root ? "lfm" : $"lfm {parsed.CommandResult.Command.Name}";
            stderr.WriteLine($"{command}: {parsed.Errors[0].Message} (see '{command} --help')");
            return 2;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("lfm: cancelled");
            return 130;
        }
    }

    internal static RootCommand BuildRoot(TextWriter stdout, TextWriter stderr, TextReader stdin)
    {
        var root = new RootCommand("LfmSharp: run Liquid AI LFM2 / LFM2.5 GGUF models in pure .NET.");

        // lfm inspect FILE
        var inspectFile = new Argument<string>("file") { Description = "GGUF file" };
        var inspect = new Command("inspect", "Show a GGUF file's metadata, tensors, totals by type and LFM2 layer layout.") { inspectFile };
        inspect.SetAction(p => InspectCommand.Run(p.GetValue(inspectFile)!, stdout, stderr));
        root.Subcommands.Add(inspect);

        // lfm tokenize -m FILE [--no-special] [--bos] [--json] TEXT
        var tokModel = ModelOption();
        var tokText = new Argument<string>("text") { Description = "text to tokenize" };
        var noSpecial = new Option<bool>("--no-special") { Description = "treat control-token text as plain text" };
        var bos = new Option<bool>("--bos") { Description = "prepend the BOS token" };
        var json = new Option<bool>("--json") { Description = "print {\"ids\":[...],\"pieces\":[...]} with pieces as hex bytes" };
        var tokenize = new Command("tokenize", "Print the token ids and pieces of a text.") { tokModel, noSpecial, bos, json, tokText };
        tokenize.SetAction(p => TokenizeCommand.Run(p.GetValue(tokModel)!, p.GetValue(tokText)!, !p.GetValue(noSpecial), p.GetValue(bos), p.GetValue(json), stdout, stderr));
        root.Subcommands.Add(tokenize);

        // lfm synth [--shape S] [--type T] [--seed N] [-o FILE | --cache] [explicit dims]
        root.Subcommands.Add(SynthCommand.CreateCommand(stdout, stderr));

        root.Subcommands.Add(RunCommand.Create(stdout, stderr));
        root.Subcommands.Add(ChatCommand.Create(stdin, stdout, stderr));
        root.Subcommands.Add(DemoCommand.Create(stdout, stderr));

        return root;
    }

    internal static Option<string> ModelOption(bool required = true) =>
        new("--model", "-m") { Description = "GGUF model file", Required = required };
}
