using LfmSharp.Cli.Commands;
using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Cli.Tests;

public class SynthCommandTests
{
    [Fact]
    public void Run_WritesTheModelAndPrintsASummaryAndProgress()
    {
        string path = Path.Combine(TestData.NewTempDir(), "m.gguf");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = SynthCommand.Run(new SynthOptions { Shape = "tiny", Type = "f16", Seed = 5, Output = path, Layers = "cAc", Hidden = 128, Heads = 8, KvHeads = 2 }, stdout, stderr);
        Assert.Equal(0, rc);
        using var f = GgufFile.Open(path);
        Assert.Equal(3u, f.Metadata.GetUInt32("lfm2.block_count"));
        Assert.Equal(128u, f.Metadata.GetUInt32("lfm2.embedding_length"));
        Assert.Equal([0, 2, 0], f.Metadata.GetInt32Array("lfm2.attention.head_count_kv"));
        Assert.Equal("lfm2-tiny-custom", f.Metadata.GetString("general.name"));
        string summary = stdout.ToString();
        Assert.Contains(Path.GetFullPath(path), summary);
        Assert.Contains("params", summary);
        Assert.Contains("f16 (general.file_type 1)", summary);
        Assert.Contains("\r[", stderr.ToString());
        Assert.Contains("100%", stderr.ToString());
    }

    [Theory]
    [InlineData("huge", "f32", null, "unknown model shape 'huge'")]
    [InlineData("tiny", "q3_x", null, "unknown file type 'q3_x'")]
    [InlineData("tiny", "f32", 63, "hidden size 63 is not divisible by the head count 4")]
    public void Run_ReportsBadInputOnOneLineWithExitCode1(string shape, string type, int? hidden, string message)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = SynthCommand.Run(new SynthOptions { Shape = shape, Type = type, Hidden = hidden, Output = Path.Combine(TestData.NewTempDir(), "x.gguf") }, stdout, stderr);
        Assert.Equal(1, rc);
        string err = stderr.ToString();
        Assert.Contains(message, err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("", stdout.ToString());
    }

    [Fact]
    public void Command_ParsesTheCommandLine()
    {
        string path = Path.Combine(TestData.NewTempDir(), "c.gguf");
        var stdout = new StringWriter();
        var cmd = SynthCommand.CreateCommand(stdout, new StringWriter());
        int rc = cmd.Parse(["--shape", "tiny", "--type", "bf16", "--seed", "9", "-o", path, "-q"]).Invoke();
        Assert.Equal(0, rc);
        using var f = GgufFile.Open(path);
        Assert.Equal(32u, f.Metadata.GetUInt32("general.file_type"));
    }

    [Fact]
    public void Command_TakesRepeatedTensorTypeOverridesAndAnUntiedHead()
    {
        string path = Path.Combine(TestData.NewTempDir(), "mix.gguf");
        var stdout = new StringWriter();
        var cmd = SynthCommand.CreateCommand(stdout, new StringWriter());
        int rc = cmd.Parse(["--shape", "tiny", "--type", "q8_0", "--tensor-type", "ffn_up=q4_1", "--tensor-type", "blk\\.2\\.attn_v=q5_0",
            "--untied-output", "-o", path, "-q"]).Invoke();
        Assert.Equal(0, rc);
        using var f = GgufFile.Open(path);
        Assert.Equal(LfmSharp.Kernels.Quant.GgmlType.Q4_1, f.GetTensor("blk.0.ffn_up.weight").Type);
        Assert.Equal(LfmSharp.Kernels.Quant.GgmlType.Q8_0, f.GetTensor("blk.0.ffn_gate.weight").Type);
        Assert.Equal(LfmSharp.Kernels.Quant.GgmlType.Q5_0, f.GetTensor("blk.2.attn_v.weight").Type);
        Assert.True(f.TryGetTensor("output.weight", out _));
        Assert.Contains("Q4_1 x6", stdout.ToString());
    }

    [Fact]
    public void Run_RejectsABadTensorTypeOverride()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = SynthCommand.Run(new SynthOptions { Shape = "tiny", Type = "q8_0", TensorTypes = ["ffn_up=q9"], Output = Path.Combine(TestData.NewTempDir(), "x.gguf") }, stdout, stderr);
        Assert.Equal(1, rc);
        Assert.Contains("unknown ggml type 'q9'", stderr.ToString());
    }

    [Fact]
    public void Lfm_Synth_RunsThroughTheRootCommand()
    {
        string path = Path.Combine(TestData.NewTempDir(), "r.gguf");
        var stdout = new StringWriter();
        int rc = Program.Run(["synth", "--shape", "tiny", "--type", "q8_0", "-o", path, "--quiet"], stdout, new StringWriter());
        Assert.Equal(0, rc);
        using var f = GgufFile.Open(path);
        Assert.Equal(7u, f.Metadata.GetUInt32("general.file_type"));
        Assert.Equal(2u, f.Metadata.GetUInt32("general.quantization_version"));
    }
}
