using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using LfmSharp.Cli.Commands;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Cli.Tests;

public class InspectCommandTests(ITestOutputHelper output)
{
    private static (int Code, string Out, string Err) Inspect(string path)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = InspectCommand.Run(path, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The value on a "  label   value" row of the report.</summary>
    private static string RowValue(string report, string label)
    {
        var m = Regex.Match(report, $@"^  {Regex.Escape(label)} +(.*)$", RegexOptions.Multiline);
        Assert.True(m.Success, $"no '{label}' row in:\n{report}");
        return m.Groups[1].Value.TrimEnd('\r');
    }

    // Expected layouts from the fixture README (section 2), not from our reader.
    [Theory]
    [InlineData("tiny-f32", "c c A c A c", "2, 4", "0, 1, 3, 5", "345.7 K")]
    [InlineData("tiny-f16", "c c A c A c", "2, 4", "0, 1, 3, 5", "345.7 K")]
    [InlineData("tiny-q8_0", "c c A c A c", "2, 4", "0, 1, 3, 5", "345.7 K")]
    [InlineData("tiny-q4_0", "c c A c A c", "2, 4", "0, 1, 3, 5", "345.7 K")]
    [InlineData("tiny-q4_k_m", "c c A c A c", "2, 4", "0, 1, 3, 5", "345.7 K")]
    [InlineData("small-q8_0", "c A c A c", "1, 3", "0, 2, 4", "4.3 M")]
    [InlineData("small-q4_0", "c A c A c", "1, 3", "0, 2, 4", "4.3 M")]
    [InlineData("small-q4_k_m", "c A c A c", "1, 3", "0, 2, 4", "4.3 M")]
    public void Fixture_models_show_their_layer_pattern(string model, string pattern, string attention, string conv, string parameters)
    {
        var (code, stdout, stderr) = Inspect(TestData.Model(model));
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        bool tiny = model.StartsWith("tiny", StringComparison.Ordinal);

        Assert.StartsWith(pattern + "   (c = short conv, A = attention)", RowValue(stdout, "layers"), StringComparison.Ordinal);
        Assert.Equal(attention, RowValue(stdout, "attention at"));
        Assert.Equal(conv, RowValue(stdout, "conv at"));
        Assert.Equal(tiny ? "6" : "5", RowValue(stdout, "blocks"));
        Assert.Equal(tiny ? "4 query, 2 kv, head dim 16 (hidden / heads)" : "4 query, 1 kv, head dim 64 (hidden / heads)", RowValue(stdout, "heads"));
        Assert.Equal(tiny ? "64" : "256", RowValue(stdout, "hidden"));
        Assert.Equal(tiny ? "192" : "768", RowValue(stdout, "ffn"));
        Assert.Equal("2,048", RowValue(stdout, "context length"));
        Assert.Equal(tiny ? "512" : "1,024", RowValue(stdout, "vocab"));
        Assert.Equal("1000000", RowValue(stdout, "rope base"));
        Assert.Equal("1E-05", RowValue(stdout, "rms eps"));
        Assert.Equal("3", RowValue(stdout, "conv l_cache"));
        Assert.Matches($@"(?m)^Parameters: {Regex.Escape(parameters)} \(", stdout);
        Assert.Equal("3", RowValue(stdout, "GGUF version"));
        Assert.Equal("32 (default)", RowValue(stdout, "alignment"));
        Assert.StartsWith(new FileInfo(TestData.Model(model)).Length.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + " bytes", RowValue(stdout, "file size"), StringComparison.Ordinal);
    }

    [Fact]
    public void Report_has_every_section_with_numbers_that_match_the_file()
    {
        string path = TestData.Model("tiny-q4_k_m");
        var (code, stdout, _) = Inspect(path);
        Assert.Equal(0, code);
        output.WriteLine(stdout);
        using var f = GgufFile.Open(path);

        Assert.Equal("56", RowValue(stdout, "tensors"));
        Assert.StartsWith(f.DataOffset.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), RowValue(stdout, "data offset"), StringComparison.Ordinal);
        Assert.Equal("15 (MOSTLY_Q4_K_M)", RowValue(stdout, "file type"));

        // Every metadata key on its own line; long arrays summarized with their count; the chat template shortened.
        foreach (var e in f.Metadata)
            Assert.Matches($@"(?m)^  {Regex.Escape(e.Key)} ", stdout);
        string tokensLine = stdout.Split('\n').Single(l => l.StartsWith("  tokenizer.ggml.tokens ", StringComparison.Ordinal));
        Assert.Contains("str[512]", tokensLine, StringComparison.Ordinal);
        Assert.Contains("\"<|pad|>\"", tokensLine, StringComparison.Ordinal);
        Assert.Contains("(512 items)", tokensLine, StringComparison.Ordinal);
        Assert.True(tokensLine.Length < 160, tokensLine);
        string template = f.Metadata.GetString("tokenizer.chat_template");
        string templateLine = stdout.Split('\n').Single(l => l.StartsWith("  tokenizer.chat_template ", StringComparison.Ordinal));
        Assert.Contains($"({template.Length:N0} chars)", templateLine, StringComparison.Ordinal);
        Assert.True(templateLine.Length < 160, templateLine);
        Assert.Contains("[0, 0, 2, 0, 2, 0]", stdout.Split('\n').Single(l => l.StartsWith("  lfm2.attention.head_count_kv ", StringComparison.Ordinal)), StringComparison.Ordinal);

        // Every tensor in the table with its type, shape and size.
        foreach (var t in f.Tensors)
            Assert.Matches($@"(?m)^  {Regex.Escape(t.Name)} +{GgmlTypes.Name(t.Type)} +{Regex.Escape(t.ShapeString)} +{t.ByteSize:N0}\r?$", stdout);

        // Totals by type, per the fixture README: Q5_0 x31, Q8_0 x4, F32 x21.
        Assert.Matches(@"(?m)^  F32 +21 ", stdout);
        Assert.Matches(@"(?m)^  Q5_0 +31 ", stdout);
        Assert.Matches(@"(?m)^  Q8_0 +4 ", stdout);
        Assert.Matches($@"(?m)^  total +56 +{f.Tensors.Sum(t => t.ByteSize):N0} ", stdout);
    }

    [Fact]
    public void The_LFM2_5_1_2B_layout_reads_as_in_the_spec()
    {
        // Header-only stand-in for LFM2.5-1.2B (spec section 1): attention at 2, 5, 8, 10, 12, 14.
        var w = new GgufWriter();
        w.AddString("general.architecture", "lfm2");
        w.AddUInt32("lfm2.block_count", 16);
        w.AddUInt32("lfm2.context_length", 128000);
        w.AddUInt32("lfm2.embedding_length", 2048);
        w.AddUInt32("lfm2.feed_forward_length", 8192);
        w.AddUInt32("lfm2.attention.head_count", 32);
        w.AddArray("lfm2.attention.head_count_kv", new[] { 0, 0, 8, 0, 0, 8, 0, 0, 8, 0, 8, 0, 8, 0, 8, 0 });
        w.AddFloat32("lfm2.rope.freq_base", 1e6f);
        w.AddFloat32("lfm2.attention.layer_norm_rms_epsilon", 1e-5f);
        w.AddUInt32("lfm2.vocab_size", 65536);
        w.AddUInt32("lfm2.shortconv.l_cache", 3);
        string path = Path.Combine(TestData.NewTempDir(), "lfm2-1.2b-header.gguf");
        w.WriteTo(path);

        var (code, stdout, _) = Inspect(path);
        Assert.Equal(0, code);
        Assert.StartsWith("c c A c c A c c A c A c A c A c ", RowValue(stdout, "layers"), StringComparison.Ordinal);
        Assert.Equal("2, 5, 8, 10, 12, 14", RowValue(stdout, "attention at"));
        Assert.Equal("0, 1, 3, 4, 6, 7, 9, 11, 13, 15", RowValue(stdout, "conv at"));
        Assert.Equal("32 query, 8 kv, head dim 64 (hidden / heads)", RowValue(stdout, "heads"));
        Assert.Equal("128,000", RowValue(stdout, "context length"));
        Assert.Equal("65,536", RowValue(stdout, "vocab"));
    }

    [Theory]
    [InlineData(1_170_340_608L, "1.17 B")]
    [InlineData(4_300_000L, "4.3 M")]
    [InlineData(345_664L, "345.7 K")]
    [InlineData(999L, "999")]
    public void Parameter_counts_read_like_model_cards(long n, string expected)
    {
        Assert.Equal(expected, InspectCommand.FormatCount(n));
    }

    [Fact]
    public void Other_architectures_are_named_without_a_summary()
    {
        var w = new GgufWriter();
        w.AddString("general.architecture", "llama");
        w.AddUInt32("llama.block_count", 2);
        w.AddTensor("w", GgmlType.F32, [4], new byte[16]);
        string path = Path.Combine(TestData.NewTempDir(), "llama.gguf");
        w.WriteTo(path);
        var (code, stdout, stderr) = Inspect(path);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains("Architecture: llama (not LFM2: no architecture summary)", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("  layers", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Text_from_the_file_cannot_break_lines_or_drive_the_terminal()
    {
        var w = new GgufWriter();
        w.AddString("general.architecture", "lfm2");
        w.AddString("evil\u001b[2Jkey", "line one\nline two \u001b[31mred\u0007");
        w.AddArray("list", new[] { "a\r\nb", "\u009b" });
        w.AddTensor("t\n\u001bname", GgmlType.F32, [1], new byte[4]);
        string path = Path.Combine(TestData.NewTempDir(), "evil.gguf");
        w.WriteTo(path);
        var (code, stdout, _) = Inspect(path);
        Assert.Equal(0, code);
        Assert.DoesNotContain('\u001b', stdout);
        Assert.DoesNotContain('\u0007', stdout);
        Assert.DoesNotContain('\u009b', stdout);
        Assert.DoesNotContain('\r', stdout.Replace(Environment.NewLine, "\n", StringComparison.Ordinal));
        Assert.Contains(@"""line one\nline two \u001B[31mred\u0007""", stdout, StringComparison.Ordinal);
        Assert.Contains(@"t\n\u001Bname", stdout, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ errors: one line on stderr, exit code 1

    private static void AssertOneErrorLine(string path, string expectedPart)
    {
        var (code, stdout, stderr) = Inspect(path);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{stderr}");
        Assert.StartsWith("lfm inspect: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expectedPart, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", lines[0].Replace(" at byte ", " ", StringComparison.Ordinal), StringComparison.Ordinal); // no stack trace
    }

    [Fact]
    public void Missing_file()
    {
        AssertOneErrorLine(Path.Combine(TestData.NewTempDir(), "missing.gguf"), "no such file");
    }

    [Fact]
    public void Directory_instead_of_a_file()
    {
        AssertOneErrorLine(TestData.NewTempDir(), "is a directory");
    }

    [Fact]
    public void Not_a_gguf_file()
    {
        string path = Path.Combine(TestData.NewTempDir(), "notes.txt");
        File.WriteAllText(path, "These are notes, not a model.\nSecond line.\n");
        AssertOneErrorLine(path, "not a GGUF file");
        string empty = Path.Combine(TestData.NewTempDir(), "empty.gguf");
        File.WriteAllBytes(empty, []);
        AssertOneErrorLine(empty, "magic");
    }

    [Fact]
    public void Truncated_model()
    {
        string path = Path.Combine(TestData.NewTempDir(), "truncated.gguf");
        File.WriteAllBytes(path, File.ReadAllBytes(TestData.Model("tiny-q4_0"))[..10_000]);
        AssertOneErrorLine(path, "truncated");
        File.WriteAllBytes(path, File.ReadAllBytes(TestData.Model("tiny-q4_0"))[..200_000]);
        AssertOneErrorLine(path, "truncated or corrupt"); // the directory is whole; tensors point past the end
    }

    [Fact]
    public void Damaged_tensor_directory()
    {
        byte[] bytes = File.ReadAllBytes(TestData.Model("tiny-f32"));
        // Find the first tensor info ("token_embd.weight", 2 dims) and give it ggml type id 99.
        byte[] name = Encoding.UTF8.GetBytes("token_embd.weight");
        byte[] lengthAndName = [.. BitConverter.GetBytes((ulong)name.Length), .. name];
        int at = bytes.AsSpan().IndexOf(lengthAndName);
        Assert.True(at > 0);
        int typeAt = at + lengthAndName.Length + 4 + 2 * 8;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(typeAt), 99);
        string path = Path.Combine(TestData.NewTempDir(), "damaged.gguf");
        File.WriteAllBytes(path, bytes);
        AssertOneErrorLine(path, $"tensor[0] 'token_embd.weight'.type at byte {typeAt}: unknown ggml type id 99");
    }
}
