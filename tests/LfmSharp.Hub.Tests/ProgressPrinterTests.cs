using LfmSharp.Cli;

namespace LfmSharp.Hub.Tests;

/// <summary>The CLI's download progress: an updating line on a terminal, a line per 10 % otherwise.</summary>
public sealed class ProgressPrinterTests
{
    private static void Feed(DownloadProgressPrinter p, long total)
    {
        for (long done = 0; done < total; done += total / 40)
            p.Report(new DownloadProgress("m-Q4_0.gguf", done, total, 2e6, Completed: false));
        p.Report(new DownloadProgress("m-Q4_0.gguf", total, total, 2e6, Completed: true));
    }

    [Fact]
    public void Without_a_terminal_one_plain_line_per_10_percent()
    {
        var w = new StringWriter();
        Feed(new DownloadProgressPrinter(w, terminal: false), 100_000_000);
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Enumerable.Range(0, 10).Select(d => $"m-Q4_0.gguf: {d * 10}% (").Append("m-Q4_0.gguf: done, 100.0 MB (2.0 MB/s)"),
            lines.Select(l => l.StartsWith("m-Q4_0.gguf: done", StringComparison.Ordinal) ? l : l[..(l.IndexOf('(') + 1)]));
        Assert.DoesNotContain('\r', w.ToString());
    }

    [Fact]
    public void On_a_terminal_one_updating_line_with_bytes_speed_and_time_left()
    {
        var w = new StringWriter();
        var p = new DownloadProgressPrinter(w, terminal: true);
        p.Report(new DownloadProgress("m-Q4_0.gguf", 25_000_000, 100_000_000, 5e6, Completed: false));
        Assert.Equal("\rm-Q4_0.gguf   25%  25.0 MB / 100.0 MB  5.0 MB/s  ETA 0:15\u001b[K", w.ToString());
        p.Report(new DownloadProgress("m-Q4_0.gguf", 100_000_000, 100_000_000, 5e6, Completed: true));
        Assert.EndsWith("\r\u001b[Km-Q4_0.gguf: done, 100.0 MB (5.0 MB/s)" + Environment.NewLine, w.ToString(), StringComparison.Ordinal);
    }
}
