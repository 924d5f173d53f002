using System.CommandLine;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm chat -m FILE [--tools FILE.json]</c>: interactive multi-turn chat with /reset and /exit.</summary>
internal static class ChatCommand
{
    public static Command Create(TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        var tools = new Option<string?>("--tools") { Description = "JSON file with tool definitions (an array of OpenAI-style or plain {name, description, parameters} objects)" };
        var settings = new GenerationSettings();
        var cmd = new Command("chat", "Interactive multi-turn chat (/reset starts over, /exit quits).") { model, tools };
        settings.AddTo(cmd);
        cmd.SetAction((p, ct) => RunAsync(p.GetValue(model)!, p.GetValue(tools), settings, p, stdin, stdout, stderr, ct));
        return cmd;
    }

    internal static IReadOnlyList<ToolDefinition> LoadTools(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{path}: expected a JSON array of tool definitions");
        return doc.RootElement.EnumerateArray().Select(ToolDefinition.FromJson).ToList();
    }

    private static async Task<int> RunAsync(string path, string? toolsPath, GenerationSettings settings, ParseResult p, TextReader stdin, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (settings.Problem(p) is string problem)
        {
            stderr.WriteLine($"lfm chat: {problem}");
            return 1;
        }
        IReadOnlyList<ToolDefinition>? tools = null;
        try
        {
            if (toolsPath is not null)
                tools = LoadTools(toolsPath);
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidDataException or ArgumentException)
        {
            stderr.WriteLine($"lfm chat: {toolsPath}: {e.Message}");
            return 1;
        }
        LanguageModel model;
        try
        {
            model = LanguageModel.Load(path, settings.LoadOptions(p));
        }
        catch (Exception e) when (ModelErrors.IsUserError(e))
        {
            stderr.WriteLine($"lfm chat: {ModelErrors.Describe(path, e)}");
            return 1;
        }
        using (model)
        {
            bool color = CliConsole.UseColor(stdout);
            if (model.ChatTemplate.Warning is { } w)
                stderr.WriteLine($"lfm chat: note: {w}");
            stdout.WriteLine($"{model.Name} · {model.Config.LayerCount} layers · context {p.GetValue(settings.Ctx)}{(tools is { Count: > 0 } ? $" · {tools.Count} tools" : "")}. /reset starts over, /exit quits.");
            using var session = settings.CreateSession(model, p, stderr, "lfm chat");
            if (session is null)
                return 1;
            var options = settings.RequestOptions(p, model, tools);
            // The session keeps the conversation (History); the CLI only starts it (the system message) and prints.
            session.Reset(settings.StartMessages(p));
            while (!ct.IsCancellationRequested)
            {
                stdout.Write(color ? $"{CliConsole.Bold}> {CliConsole.Reset}" : "> ");
                stdout.Flush();
                string? line = stdin.ReadLine();
                if (line is null || line.Trim() is "/exit" or "/quit")
                    break;
                if (line.Trim() == "/reset")
                {
                    session.Reset(settings.StartMessages(p));
                    stdout.WriteLine("(conversation cleared)");
                    continue;
                }
                if (line.Trim().Length == 0)
                    continue;
                var printer = new EventPrinter(stdout, color, !p.GetValue(settings.HideThinking));
                try
                {
                    await foreach (var e in session.SendAsync(line, options, ct).ConfigureAwait(false))
                        printer.Print(e);
                }
                catch (NumericalFaultException e)
                {
                    stderr.WriteLine($"lfm chat: {e.Message}");
                    return 1;
                }
                catch (ContextOverflowException e)
                {
                    stderr.WriteLine($"lfm chat: {e.Message} — use /reset");
                    continue;
                }
                if (printer.Done is { } d)
                    stderr.WriteLine($"[{d.Reason.ToString().ToLowerInvariant()}] {EventPrinter.Stats(d.Usage, CliConsole.PeakRssMiB())}");
            }
            return 0;
        }
    }
}
