using System.CommandLine;
using System.Globalization;
using LfmSharp.Hub;

namespace LfmSharp.Cli;

/// <summary>
/// The one place where the CLI turns a model name given to <c>-m</c> (or to <c>inspect</c>) into a cached file: before
/// a command runs, a name that is not an existing path is resolved (pulled when missing, with progress on stderr) and
/// the argument is replaced by the file's path, so every command keeps working on paths.
/// </summary>
internal static class ModelNames
{
    /// <summary>
    /// Null when nothing needed resolving or it resolved (then <paramref name="args"/> holds the path); otherwise the
    /// exit code after one error line on <paramref name="stderr"/>.
    /// </summary>
    public static int? Resolve(ParseResult parsed, ref string[] args, TextWriter stderr)
    {
        if (parsed.Action is System.CommandLine.Help.HelpAction)
            return null;   // `lfm run -m NAME --help` shows help without downloading anything
        var command = parsed.CommandResult.Command;
        string? value = null;
        bool positional = false;
        foreach (var option in command.Options)
        {
            if (option.Name == "--model" && option is Option<string> model)
                value = parsed.GetValue(model);
        }
        if (value is null && command.Name == "inspect" && command.Arguments.FirstOrDefault() is Argument<string> file)
        {
            value = parsed.GetValue(file);
            positional = true;
        }
        var options = HubOptions.FromEnvironment();
        if (value is null || !ModelLocator.IsModelName(value, options))
            return null;
        try
        {
            string path = ModelLocator.Resolve(value, options, new DownloadProgressPrinter(stderr));
            args = Substitute(args, value, path, positional);
            return null;
        }
        catch (HubException e)
        {
            stderr.WriteLine($"lfm {command.Name}: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm {command.Name}: {value}: {e.Message}");
            return 1;
        }
    }

    private static string[] Substitute(string[] args, string value, string path, bool positional)
    {
        var copy = (string[])args.Clone();
        for (int i = 0; i < copy.Length; i++)
        {
            if (positional ? copy[i] == value : i > 0 && copy[i] == value && copy[i - 1] is "-m" or "--model")
            {
                copy[i] = path;
                return copy;
            }
            foreach (string prefix in new[] { "-m=", "-m:", "--model=", "--model:" })
            {
                if (!positional && copy[i] == prefix + value)
                {
                    copy[i] = prefix + path;
                    return copy;
                }
            }
        }
        return copy;
    }
}

/// <summary>
/// Download progress on stderr: one updating line with bytes, speed and time left on a terminal; a plain line per
/// 10 % otherwise (logs and CI stay readable).
/// </summary>
internal sealed class DownloadProgressPrinter(TextWriter w, bool? terminal = null) : IProgress<DownloadProgress>
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private readonly bool _terminal = terminal ?? (ReferenceEquals(w, Console.Error) && !Console.IsErrorRedirected);
    private readonly Dictionary<string, int> _lastDecile = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public void Report(DownloadProgress p)
    {
        lock (_gate)
        {
            bool seen = _lastDecile.TryGetValue(p.File, out int last);
            if (p.Completed)
            {
                if (_terminal && seen)
                    w.Write("\r\u001b[K");
                w.WriteLine(seen || p.BytesPerSecond > 0
                    ? string.Create(Inv, $"{p.File}: done, {Size(p.BytesDone)} ({Size(p.BytesPerSecond)}/s)")
                    : string.Create(Inv, $"{p.File}: already in the cache ({Size(p.BytesDone)})"));
                _lastDecile.Remove(p.File);
                return;
            }
            if (_terminal)
            {
                string eta = p.Remaining is { } r ? $"ETA {(int)r.TotalMinutes}:{r.Seconds:D2}" : "";
                string pct = p.Fraction is { } f ? string.Create(Inv, $"{f * 100,3:F0}%  ") : "";
                w.Write(string.Create(Inv, $"\r{p.File}  {pct}{Size(p.BytesDone)}{(p.TotalBytes is { } t ? " / " + Size(t) : "")}  {Size(p.BytesPerSecond)}/s  {eta}\u001b[K"));
                _lastDecile[p.File] = 0;
                return;
            }
            int decile = p.Fraction is { } fr ? (int)(fr * 10) : 0;
            if (!seen)
                _lastDecile[p.File] = last = -1;
            if (decile > last && p.Fraction is not null)
            {
                w.WriteLine(string.Create(Inv, $"{p.File}: {decile * 10}% ({Size(p.BytesDone)} of {Size(p.TotalBytes!.Value)})"));
                _lastDecile[p.File] = decile;
            }
        }
    }

    public static string Size(double bytes) => bytes switch
    {
        >= 1e9 => string.Create(Inv, $"{bytes / 1e9:F2} GB"),
        >= 1e6 => string.Create(Inv, $"{bytes / 1e6:F1} MB"),
        >= 1e3 => string.Create(Inv, $"{bytes / 1e3:F1} kB"),
        _ => string.Create(Inv, $"{bytes:F0} B"),
    };
}
