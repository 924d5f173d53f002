using System.CommandLine;
using LfmSharp.Chat;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm run -m FILE "prompt"</c>: one chat turn, streamed, then one line of figures on stderr.</summary>
internal static class RunCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        var prompt = new Argument<string>("prompt") { Description = "the user message" };
        var settings = new GenerationSettings();
        var cmd = new Command("run", "Answer one prompt, streaming the reasoning (dimmed) and the answer.") { model, prompt };
        settings.AddTo(cmd);
        cmd.SetAction((p, ct) => Task.FromResult(Run(p.GetValue(model)!, p.GetValue(prompt)!, settings, p, stdout, stderr, ct)));
        return cmd;
    }

    private static int Run(string path, string prompt, GenerationSettings settings, ParseResult p, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (settings.Problem(p) is string problem)
        {
            stderr.WriteLine($"lfm run: {problem}");
            return 1;
        }
        LanguageModel model;
        try
        {
            model = LanguageModel.Load(path, settings.LoadOptions(p));
        }
        catch (Exception e) when (ModelErrors.IsUserError(e))
        {
            stderr.WriteLine($"lfm run: {ModelErrors.Describe(path, e)}");
            return 1;
        }
        using (model)
        {
            if (model.ChatTemplate.Warning is { } w)
                stderr.WriteLine($"lfm run: note: {w}");
            using var session = settings.CreateSession(model, p, stderr, "lfm run");
            if (session is null)
                return 1;
            var messages = settings.StartMessages(p);
            messages.Add(LfmChatMessage.User(prompt));
            var printer = new EventPrinter(stdout, CliConsole.UseColor(stdout), !p.GetValue(settings.HideThinking));
            try
            {
                foreach (var e in session.Complete(messages, settings.RequestOptions(p, model), ct))
                    printer.Print(e);
            }
            catch (Exception e) when (e is Generation.ContextOverflowException or ArgumentException or Generation.NumericalFaultException)
            {
                stderr.WriteLine($"lfm run: {e.Message}");
                return 1;
            }
            if (printer.Done is { } d)
                stderr.WriteLine($"[{d.Reason.ToString().ToLowerInvariant()}] {EventPrinter.Stats(d.Usage, CliConsole.PeakRssMiB())}");
            return 0;
        }
    }
}

/// <summary>Turns load failures a user can fix into one line.</summary>
internal static class ModelErrors
{
    public static bool IsUserError(Exception e) => e is IOException or UnauthorizedAccessException or Gguf.GgufFormatException
        or InvalidDataException or NotSupportedException or KeyNotFoundException or ArgumentException;

    public static string Describe(string path, Exception e) => e switch
    {
        ChatTemplateFileException c => c.Message,
        FileNotFoundException => $"{path}: file not found",
        DirectoryNotFoundException => $"{path}: folder not found",
        Gguf.GgufFormatException g => $"{path}: not a valid GGUF file ({g.Message})",
        NotSupportedException n => $"{path}: {n.Message}",
        _ when e.Message.StartsWith(path, StringComparison.Ordinal) => e.Message,
        _ => $"{path}: {e.Message}",
    };
}
