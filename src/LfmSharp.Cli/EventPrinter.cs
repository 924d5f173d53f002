using LfmSharp.Generation;

namespace LfmSharp.Cli;

/// <summary>
/// Prints the one event stream to a terminal: reasoning dimmed, the answer plain, tool calls highlighted,
/// parse errors and loop events as warnings. Without a terminal (redirected output) no escape codes are written and
/// reasoning is framed by &lt;think&gt;…&lt;/think&gt; so it stays distinguishable.
/// </summary>
internal sealed class EventPrinter(TextWriter output, bool color, bool showReasoning = true)
{
    private enum Mode { None, Reasoning, Content }

    private Mode _mode;

    public Done? Done { get; private set; }

    public void Print(GenerationEvent e)
    {
        switch (e)
        {
            case ReasoningDelta r when showReasoning:
                Switch(Mode.Reasoning);
                output.Write(r.Text);
                break;
            case ContentDelta c:
                Switch(Mode.Content);
                output.Write(c.Text);
                break;
            case TextDelta t:
                Switch(Mode.Content);
                output.Write(t.Text);
                break;
            case ToolCallEvent t:
                Switch(Mode.None);
                output.WriteLine(color ? $"{CliConsole.Cyan}{CliConsole.Bold}→ tool call {t.Call.Name}({t.Call.ArgumentsJson}){CliConsole.Reset}" : $"[tool call] {t.Call.Name}({t.Call.ArgumentsJson})");
                break;
            case ParseErrorEvent p:
                Switch(Mode.None);
                output.WriteLine(color ? $"{CliConsole.Yellow}! could not parse the model's output: {p.Message}{CliConsole.Reset}" : $"[parse error] {p.Message}");
                break;
            case LoopDetectedEvent l:
                Switch(Mode.None);
                output.WriteLine(color ? $"{CliConsole.Yellow}! repetition loop detected ({l.Repeats}×) — {l.Action}{CliConsole.Reset}" : $"[loop] {l.Repeats}x, {l.Action}");
                break;
            case Done d:
                Switch(Mode.None);
                Done = d;
                break;
        }
        output.Flush();
    }

    private void Switch(Mode mode)
    {
        if (mode == _mode)
            return;
        if (_mode == Mode.Reasoning)
            output.Write(color ? CliConsole.Reset + "\n" : "</think>\n");
        if (_mode == Mode.Content && mode == Mode.None)
            output.WriteLine();
        if (mode == Mode.Reasoning)
            output.Write(color ? CliConsole.Dim : "<think>");
        _mode = mode;
    }

    /// <summary>One line of figures for a finished turn.</summary>
    public static string Stats(GenerationUsage u, double peakRssMiB) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"prompt {u.PromptTokens} tok ({u.PrefilledTokens} prefilled) at {u.PrefillTokensPerSecond:F1} tok/s · {u.CompletionTokens} generated ({u.ReasoningTokens} reasoning) at {u.DecodeTokensPerSecond:F1} tok/s · first token after {u.TimeToFirstToken.TotalMilliseconds:F0} ms · peak RSS {peakRssMiB:F0} MiB");
}
