using System.Text.Json;
using LfmSharp.Cli.Commands;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Cli.Tests;

public class LogitsCommandTests(ITestOutputHelper output)
{
    /// <summary>
    /// Every fixture sequence through <c>lfm logits --kv f32</c> (the goldens' configuration) gives llama.cpp's
    /// batch logits. Tolerances from the fixtures' README §5: f32 weights 1e-4; f16 2e-2 (activation rounding);
    /// quantized 0.35 (activation quantization: an activation on a rounding boundary moves later logits by up to ~0.25).
    /// </summary>
    [Theory]
    [InlineData("tiny-f32", 1e-4)]
    [InlineData("tiny-f16", 2e-2)]
    [InlineData("tiny-q8_0", 0.35)]
    [InlineData("tiny-q4_0", 0.35)]
    [InlineData("tiny-q4_k_m", 0.35)]
    [InlineData("small-q4_k_m", 0.35)]
    public void FixtureSequencesGiveTheGoldenLogits(string model, double tolerance)
    {
        var golden = Golden.Load(model);
        string dir = TestData.NewTempDir();
        foreach (var seq in golden.Sequences)
        {
            string outPath = Path.Combine(dir, $"{seq.Name}.f32");
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            int rc = LogitsCommand.Run(TestData.Model(model), seq.Ids, ctx: null, kv: "f32", outPath, stdout, stderr, threads: 2);
            Assert.True(rc == 0, stderr.ToString());
            Assert.Equal("", stderr.ToString());
            Assert.Contains($"wrote {seq.Ids.Length} x {golden.Vocab} float32 logits", stdout.ToString());

            float[] ours = ReadFloats(outPath);
            Assert.Equal(seq.Ids.Length * golden.Vocab, ours.Length);
            double max = MaxAbsDiff(ours, golden.Rows(seq));
            output.WriteLine($"{model} {seq.Name} ({seq.Ids.Length} tokens): max |Δ| vs llama.cpp {max:E2}");
            Assert.True(max <= tolerance, $"{model} {seq.Name}: max |Δlogit| {max:E2} > {tolerance}");
        }
    }

    [Fact]
    public void Lfm_Logits_RunsThroughTheRootCommand()
    {
        var golden = Golden.Load("tiny-f32");
        var seq = golden.Sequences.First(s => s.Name == "chat");
        string outPath = Path.Combine(TestData.NewTempDir(), "chat.f32");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // Commas, extra spaces and a larger context than needed are all fine.
        int rc = Program.Run(["logits", "-m", TestData.Model("tiny-f32"), "--ids", string.Join(", ", seq.Ids) + "  ", "--ctx", "100", "--kv", "f32", "-t", "2", "-o", outPath], stdout, stderr);
        Assert.True(rc == 0, stderr.ToString());
        double max = MaxAbsDiff(ReadFloats(outPath), golden.Rows(seq));
        Assert.True(max <= 1e-4, $"max |Δlogit| {max:E2}");
    }

    /// <summary>The default KV cache is F16 (llama.cpp's default): still within 2e-2 of the F32-KV goldens (README §5: ~3e-3).</summary>
    [Fact]
    public void DefaultKvCacheIsF16AndStaysCloseToTheGoldens()
    {
        var golden = Golden.Load("tiny-f32");
        var seq = golden.Sequences.First(s => s.Name == "random300");
        string dir = TestData.NewTempDir();
        string f16Path = Path.Combine(dir, "f16.f32"), f32Path = Path.Combine(dir, "f32.f32");
        Assert.Equal(0, Program.Run(["logits", "-m", TestData.Model("tiny-f32"), "--ids", string.Join(' ', seq.Ids), "-t", "2", "-o", f16Path], new StringWriter(), new StringWriter()));
        Assert.Equal(0, Program.Run(["logits", "-m", TestData.Model("tiny-f32"), "--ids", string.Join(' ', seq.Ids), "--kv", "f32", "-t", "2", "-o", f32Path], new StringWriter(), new StringWriter()));
        float[] f16 = ReadFloats(f16Path), f32 = ReadFloats(f32Path);
        double vsGolden = MaxAbsDiff(f16, golden.Rows(seq));
        output.WriteLine($"F16 KV vs golden (F32 KV): {vsGolden:E2}");
        Assert.True(vsGolden <= 2e-2, $"F16 KV: max |Δlogit| {vsGolden:E2}");
        Assert.NotEqual(f32, f16); // the option really changes the cache type
    }

    [Theory]
    [InlineData("1 6 332", new[] { 1, 6, 332 })]
    [InlineData("1,6,332", new[] { 1, 6, 332 })]
    [InlineData(" 1, 6 ,\t332\n", new[] { 1, 6, 332 })]
    [InlineData("[1, 6, 332]", new[] { 1, 6, 332 })]
    [InlineData("0", new[] { 0 })]
    public void ParseIds_AcceptsSpacesCommasAndJsonArrays(string text, int[] expected) =>
        Assert.Equal(expected, LogitsCommand.ParseIds(text));

    [Theory]
    [InlineData("", "--ids is empty")]
    [InlineData(" , ", "--ids is empty")]
    [InlineData("[]", "--ids is empty")]
    [InlineData("1 x 3", "--ids item 2 'x' is not a token id")]
    [InlineData("1 -5", "--ids item 2 '-5' is not a token id")]
    [InlineData("1.5", "--ids item 1 '1.5' is not a token id")]
    [InlineData("1 99999999999", "--ids item 2 '99999999999' is not a token id")]
    [InlineData("1;2", "--ids item 1 '1;2' is not a token id")]
    public void ParseIds_RejectsWhatIsNotATokenId(string text, string message) =>
        Assert.Contains(message, Assert.Throws<FormatException>(() => LogitsCommand.ParseIds(text)).Message);

    public static TheoryData<string, string, string?, string?, string> BadInputs() => new()
    {
        // model, ids, ctx, kv, expected message
        { "missing.gguf", "1 2 3", null, null, "file not found" },
        { "not-gguf", "1 2 3", null, null, "lfm logits: " },
        { "tiny-f32", "1 two 3", null, null, "--ids item 2 'two' is not a token id" },
        { "tiny-f32", "", null, null, "--ids is empty" },
        { "tiny-f32", "1 6 512", null, null, "token id 512 (item 3) is outside the model's vocabulary [0, 512)" },
        { "tiny-f32", "1 2 3", "2", null, "3 ids do not fit a context of 2 tokens" },
        { "tiny-f32", "1 2 3", "0", null, "--ctx 0 must be at least 1" },
        { "tiny-f32", "1 2 3", "4096", null, "--ctx 4096 exceeds the model's context length 2048" },
        { "tiny-f32", "1 2 3", null, "q4", "unknown KV cache type 'q4' (use f16, f32 or q8_0)" },
        { "tiny-f32", "1 2 3", null, "q8_0", "a Q8_0 KV cache needs a head size that is a multiple of 32; this model's is 16" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsOneLineOnStderrAndExitCode1(string model, string ids, string? ctx, string? kv, string message)
    {
        string dir = TestData.NewTempDir();
        string modelPath = model switch
        {
            "missing.gguf" => Path.Combine(dir, "missing.gguf"),
            "not-gguf" => WriteText(Path.Combine(dir, "notes.gguf"), "this is not a GGUF file\n"),
            _ => TestData.Model(model),
        };
        string outPath = Path.Combine(dir, "out.f32");
        var args = new List<string> { "logits", "-m", modelPath, "--ids", ids, "-o", outPath, "-t", "2" };
        if (ctx is not null)
            args.AddRange(["--ctx", ctx]);
        if (kv is not null)
            args.AddRange(["--kv", kv]);

        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = Program.Run([.. args], stdout, stderr);

        string err = stderr.ToString();
        Assert.Equal(1, rc);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("lfm logits: ", err);
        Assert.Contains(message, err);
        Assert.Equal("", stdout.ToString());
        Assert.False(File.Exists(outPath), "a failed run must not leave an output file");
    }

    [Fact]
    public void MissingRequiredOptionIsAParseErrorWithExitCode2()
    {
        var stderr = new StringWriter();
        int rc = Program.Run(["logits", "-m", TestData.Model("tiny-f32"), "-o", Path.Combine(TestData.NewTempDir(), "x.f32")], new StringWriter(), stderr);
        Assert.Equal(2, rc);
        Assert.Contains("--ids", stderr.ToString());
        Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static string WriteText(string path, string text)
    {
        File.WriteAllText(path, text);
        return path;
    }

    private static float[] ReadFloats(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
            values[i] = BitConverter.ToSingle(bytes, 4 * i); // little-endian file, little-endian test hosts
        return values;
    }

    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++)
            max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>A fixture golden: the sidecar's sequences and the <c>.batch.f32</c> rows.</summary>
    private sealed record Golden(int Vocab, IReadOnlyList<Golden.Sequence> Sequences, float[] Batch)
    {
        public sealed record Sequence(string Name, int[] Ids, int RowOffset);

        public ReadOnlySpan<float> Rows(Sequence s) => Batch.AsSpan(s.RowOffset * Vocab, s.Ids.Length * Vocab);

        public static Golden Load(string model)
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Golden($"lfm2-{model}.json")));
            int vocab = doc.RootElement.GetProperty("n_vocab").GetInt32();
            var seqs = doc.RootElement.GetProperty("sequences").EnumerateArray().Select(e => new Sequence(
                e.GetProperty("name").GetString()!,
                e.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
                e.GetProperty("row_offset").GetInt32())).ToList();
            return new Golden(vocab, seqs, ReadFloats(TestData.Golden($"lfm2-{model}.batch.f32")));
        }
    }
}
