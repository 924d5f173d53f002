using LfmSharp.Cli;

namespace LfmSharp.Hub.Tests;

/// <summary>The CLI speaks to the fake hub through the same environment variables a user sets.</summary>
[CollectionDefinition("environment", DisableParallelization = true)]
public sealed class EnvironmentCollection;

/// <summary>
/// <c>lfm run -m hf.co/ORG/REPO:QUANT</c>, <c>lfm pull</c>, <c>lfm list</c>, <c>lfm rm</c> end to end, with
/// HF_ENDPOINT at the fake hub and HF_HOME in a temporary folder. These tests set process environment variables,
/// so they run alone.
/// </summary>
[Collection("environment")]
public sealed class CliTests : HubTestBase
{
    private static readonly string[] Variables = ["HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"];

    private (int Code, string Out, string Err) Lfm(Dictionary<string, string?> env, params string[] args)
    {
        var saved = Variables.ToDictionary(v => v, Environment.GetEnvironmentVariable);
        try
        {
            foreach (string v in Variables)
                Environment.SetEnvironmentVariable(v, null);
            Environment.SetEnvironmentVariable("HF_ENDPOINT", Hub.Url);
            Environment.SetEnvironmentVariable("HF_HOME", Path.Combine(CacheDir, "home"));
            Environment.SetEnvironmentVariable("HF_TOKEN_PATH", Path.Combine(CacheDir, "no-token"));
            foreach (var (k, v) in env)
                Environment.SetEnvironmentVariable(k, v);
            var o = new StringWriter();
            var e = new StringWriter();
            int code = Program.Run(args, o, e);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            foreach (var (k, v) in saved)
                Environment.SetEnvironmentVariable(k, v);
        }
    }

    private static readonly Dictionary<string, string?> None = [];

    [Fact]
    public void Run_with_a_hub_name_pulls_the_model_then_answers()
    {
        var (code, output, err) = Lfm(None, "run", "-m", "hf.co/Org/Tiny-GGUF:Q4_0", "-n", "4", "-t", "1", "--seed", "1", "hi");
        Assert.True(code == 0, err);
        Assert.Contains("Tiny-Q4_0.gguf: done", err, StringComparison.Ordinal);
        Assert.Contains("4 generated", err, StringComparison.Ordinal);
        Assert.False(string.IsNullOrWhiteSpace(output));
        string blob = Path.Combine(CacheDir, "home", "hub", "models--Org--Tiny-GGUF", "blobs", FakeHub.Sha256(Q4_0));
        Assert.Equal(Q4_0, File.ReadAllBytes(blob));

        // Cached now: the same command works offline, touching no network, and prints no download line.
        int before = Hub.Log.Count;
        var again = Lfm(new() { ["HF_HUB_OFFLINE"] = "1" }, "run", "-m", "Org/Tiny-GGUF:q4_0", "-n", "4", "-t", "1", "--seed", "1", "hi");
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(output, again.Out);
        Assert.DoesNotContain("done", again.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hub.Log.Count);

        // inspect and tokenize take names too.
        var inspect = Lfm(None, "inspect", "Org/Tiny-GGUF:Q4_0");
        Assert.True(inspect.Code == 0, inspect.Err);
        Assert.Contains("lfm2", inspect.Out, StringComparison.Ordinal);
        var tokenize = Lfm(None, "tokenize", "-m", "Org/Tiny-GGUF:Q4_0", "hello");
        Assert.True(tokenize.Code == 0, tokenize.Err);
    }

    [Fact]
    public void Pull_list_and_rm_manage_the_cache()
    {
        var pull = Lfm(None, "pull", "Org/Tiny-GGUF:Q8_0");
        Assert.True(pull.Code == 0, pull.Err);
        Assert.Contains("Org/Tiny-GGUF:Q8_0", pull.Out, StringComparison.Ordinal);
        // Not a terminal: plain lines per 10 %, ending with the done line.
        Assert.Contains("Tiny-Q8_0.gguf: done", pull.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("\r", pull.Err, StringComparison.Ordinal);

        var byFile = Lfm(None, "pull", "Org/Tiny-GGUF", "--file", "Tiny-Q4_0.gguf");
        Assert.True(byFile.Code == 0, byFile.Err);

        var list = Lfm(None, "list");
        Assert.Equal(0, list.Code);
        Assert.Contains("Org/Tiny-GGUF:Q8_0", list.Out, StringComparison.Ordinal);
        Assert.Contains("Org/Tiny-GGUF:Q4_0", list.Out, StringComparison.Ordinal);
        Assert.Contains("388.0 kB", list.Out, StringComparison.Ordinal);

        var rm = Lfm(None, "rm", "Org/Tiny-GGUF:Q8_0");
        Assert.True(rm.Code == 0, rm.Err);
        var after = Lfm(None, "list");
        Assert.DoesNotContain("Q8_0", after.Out, StringComparison.Ordinal);
        Assert.Contains("Org/Tiny-GGUF:Q4_0", after.Out, StringComparison.Ordinal);

        var missing = Lfm(None, "rm", "Org/Other-GGUF");
        Assert.Equal(1, missing.Code);
        Assert.Contains("not in the cache", missing.Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Hub_errors_are_one_line_with_exit_code_1()
    {
        var quant = Lfm(None, "run", "-m", "Org/Tiny-GGUF:Q2_K", "hi");
        Assert.Equal(1, quant.Code);
        Assert.StartsWith("lfm run: Org/Tiny-GGUF has no GGUF file for quant Q2_K; available quants: Q4_0, Q4_K_M, Q8_0", quant.Err, StringComparison.Ordinal);
        Assert.Single(quant.Err.Trim().Split('\n'));

        int before = Hub.Log.Count;
        var offline = Lfm(new() { ["HF_HUB_OFFLINE"] = "1" }, "chat", "-m", "lfm2.5-thinking");
        Assert.Equal(1, offline.Code);
        Assert.Contains("LiquidAI/LFM2.5-1.2B-Thinking-GGUF", offline.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hub.Log.Count);

        var available = Lfm(None, "list", "--available");
        Assert.Contains("LiquidAI/LFM2.5-1.2B-Thinking-GGUF:Q4_K_M", available.Out, StringComparison.Ordinal);

        // A mistyped path is still reported as a missing file, not looked up on the hub.
        var path = Lfm(None, "run", "-m", "models/nothing.gguf", "hi");
        Assert.Equal(1, path.Code);
        Assert.Contains("not found", path.Err, StringComparison.Ordinal);
        Assert.Equal(before, Hub.Log.Count);
    }
}
