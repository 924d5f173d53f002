namespace LfmSharp.Cli;

/// <summary>Terminal helpers shared by the commands: ANSI styling only when writing to a terminal.</summary>
internal static class CliConsole
{
    public static bool UseColor(TextWriter w) =>
        ReferenceEquals(w, Console.Out) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null;

    public const string Dim = "\u001b[2m";
    public const string Bold = "\u001b[1m";
    public const string Cyan = "\u001b[36m";
    public const string Yellow = "\u001b[33m";
    public const string Reset = "\u001b[0m";

    /// <summary>Peak resident set size of this process in MiB (VmHWM on Linux).</summary>
    public static double PeakRssMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>Current resident set size in MiB (VmRSS on Linux).</summary>
    public static double RssMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        using var p = System.Diagnostics.Process.GetCurrentProcess();
        return p.WorkingSet64 / (1024.0 * 1024.0);
    }

    /// <summary>The one-line message for an exception a user can fix (no stack trace).</summary>
    public static string Describe(Exception e) => e switch
    {
        FileNotFoundException f => $"file not found: {f.FileName ?? f.Message}",
        DirectoryNotFoundException d => $"folder not found: {d.Message}",
        UnauthorizedAccessException u => $"access denied: {u.Message}",
        _ => e.Message,
    };
}
