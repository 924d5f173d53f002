using System.Text.Json;
using LfmSharp.Cli.Commands;
using LfmSharp.Testing;

namespace LfmSharp.Cli.Tests;

public class BenchCommandTests
{
    private static readonly string Model = TestData.Model("small-q4_0");

    [Fact]
    public void Json_OneObjectPerTestThenPeakRss()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = Program.Run(["bench", "-m", Model, "-p", "8,16", "-n", "4", "-r", "2", "-t", "2", "--json"], stdout, stderr);
        Assert.True(rc == 0, stderr.ToString());
        var lines = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        string[] tests = ["pp8", "pp16", "tg4"];
        for (int i = 0; i < 3; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            var o = doc.RootElement;
            Assert.Equal(tests[i], o.GetProperty("test").GetString());
            Assert.True(o.GetProperty("tps_mean").GetDouble() > 0);
            Assert.True(o.GetProperty("tps_sd").GetDouble() >= 0);
            Assert.Equal(2, o.GetProperty("reps").GetInt32());
            Assert.Equal(2, o.GetProperty("threads").GetInt32());
        }
        using var last = JsonDocument.Parse(lines[3]);
        double rss = last.RootElement.GetProperty("peak_rss_mib").GetDouble();
        Assert.True(rss > 1, $"peak RSS {rss} MiB");
    }

    [Fact]
    public void Table_HasLlamaBenchColumnsAndOneRowPerTest()
    {
        var stdout = new StringWriter();
        int rc = BenchCommand.CreateCommand(stdout, new StringWriter()).Parse(["-m", Model, "-p", "4", "-n", "2", "-r", "1", "-t", "1", "--no-repack"]).Invoke();
        Assert.Equal(0, rc);
        string text = stdout.ToString();
        Assert.Contains("| model", text);
        Assert.Contains("t/s", text);
        Assert.Contains("pp4", text);
        Assert.Contains("tg2", text);
        Assert.Contains("peak RSS", text);
        Assert.Contains(" ± ", text);
    }

    [Theory]
    [InlineData(new[] { "bench", "-p", "8" }, "either -m FILE or --shape")]
    [InlineData(new[] { "bench", "-m", "x.gguf", "--shape", "tiny" }, "either -m FILE or --shape")]
    [InlineData(new[] { "bench", "-m", "MODEL", "-t", "0" }, "-t must be at least 1")]
    [InlineData(new[] { "bench", "-m", "MODEL", "-r", "0" }, "-r must be at least 1")]
    [InlineData(new[] { "bench", "-m", "MODEL", "-p", "12x" }, "'12x' is not a token count")]
    [InlineData(new[] { "bench", "-m", "MODEL", "-p", "0", "-n", "0" }, "nothing to measure")]
    [InlineData(new[] { "bench", "-m", "MODEL", "--kv", "q4" }, "unknown KV cache type 'q4' (use f16, f32 or q8_0)")]
    [InlineData(new[] { "bench", "-m", "/no/such/model.gguf" }, "not found")]
    public void BadInput_OneLineAndExitCode1(string[] args, string message)
    {
        args = args.Select(a => a == "MODEL" ? Model : a).ToArray();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = Program.Run(args, stdout, stderr);
        Assert.Equal(1, rc);
        string err = stderr.ToString();
        Assert.Contains(message, err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", stdout.ToString());
    }

    [Fact]
    public void ResultStatistics_AreTokensPerSecondMeanAndSampleDeviation()
    {
        var r = new BenchResult("pp4", 4, [1.0, 2.0, 4.0]);   // 4, 2, 1 t/s
        Assert.Equal(7.0 / 3, r.Mean, 12);
        double m = 7.0 / 3;
        Assert.Equal(Math.Sqrt(((4 - m) * (4 - m) + (2 - m) * (2 - m) + (1 - m) * (1 - m)) / 2), r.StdDev, 12);
        Assert.Equal(0, new BenchResult("tg1", 1, [0.5]).StdDev);
        Assert.Equal([512, 1024], BenchCommand.ParseList("512,1024"));
    }
}
