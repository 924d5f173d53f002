using System.Text.Json;
using LfmSharp.Testing;

namespace LfmSharp.Cli.Tests;

/// <summary>run, chat and tokenize end to end on the fixture models, through the real command-line parser.</summary>
public sealed class GenerationCommandTests
{
    private static (int Code, string Out, string Err) Lfm(string? stdin, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e, stdin is null ? null : new StringReader(stdin));
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void Tokenize_json_matches_the_llama_cpp_golden_ids_and_pieces()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Tokenizer("tokenizer-tiny.json")));
        var entry = doc.RootElement.GetProperty("cases").EnumerateArray().First(e => e.GetProperty("text").GetString()!.Contains("<|im_start|>", StringComparison.Ordinal));
        string text = entry.GetProperty("text").GetString()!;
        var (code, output, err) = Lfm(null, "tokenize", "-m", TestData.Model("tiny-f32"), "--json", text);
        Assert.True(code == 0, err);
        using var got = JsonDocument.Parse(output);
        Assert.Equal(entry.GetProperty("ids_parse_special").EnumerateArray().Select(x => x.GetInt32()), got.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(entry.GetProperty("pieces_hex").EnumerateArray().Select(x => x.GetString()!.ToLowerInvariant()), got.RootElement.GetProperty("pieces").EnumerateArray().Select(x => x.GetString()));

        var (code2, output2, _) = Lfm(null, "tokenize", "-m", TestData.Model("tiny-f32"), "--json", "--no-special", "--bos", text);
        Assert.Equal(0, code2);
        using var got2 = JsonDocument.Parse(output2);
        Assert.Equal(entry.GetProperty("ids_bos_no_parse_special").EnumerateArray().Select(x => x.GetInt32()), got2.RootElement.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()));
    }

    [Fact]
    public void Run_streams_an_answer_and_reports_figures()
    {
        var (code, output, err) = Lfm(null, "run", "-m", TestData.Model("tiny-q8_0"), "-n", "12", "--temp", "1", "--seed", "4", "-t", "1", "What is 17*23?");
        Assert.True(code == 0, err);
        Assert.False(string.IsNullOrWhiteSpace(output));
        Assert.Contains("[length]", err, StringComparison.Ordinal);
        Assert.Contains("12 generated", err, StringComparison.Ordinal);
        Assert.Contains("peak RSS", err, StringComparison.Ordinal);
        // Seeded: the same command prints the same text.
        Assert.Equal(output, Lfm(null, "run", "-m", TestData.Model("tiny-q8_0"), "-n", "12", "--temp", "1", "--seed", "4", "-t", "1", "What is 17*23?").Out);
    }

    [Fact]
    public void Chat_template_file_replaces_the_models_template_and_bad_files_are_clear_errors()
    {
        string dir = TestData.NewTempDir();
        try
        {
            string bare = Path.Combine(dir, "bare.jinja");
            File.WriteAllText(bare, "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}");
            int Prompt(string err) => int.Parse(err.Split("prompt ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            string[] common = ["run", "-m", TestData.Model("tiny-f32"), "-n", "2", "-t", "1", "--temp", "0"];
            var (code, _, err) = Lfm(null, [.. common, "hello"]);
            Assert.True(code == 0, err);
            var (code2, _, err2) = Lfm(null, [.. common, "--chat-template-file", bare, "hello"]);
            Assert.True(code2 == 0, err2);
            // Without the <|im_start|> framing the prompt is BOS + "hello".
            Assert.True(Prompt(err2) < Prompt(err), err2);

            var (missing, _, missingErr) = Lfm(null, [.. common, "--chat-template-file", Path.Combine(dir, "nope.jinja"), "hello"]);
            Assert.Equal(1, missing);
            Assert.Contains("--chat-template-file", missingErr, StringComparison.Ordinal);
            Assert.Contains("file not found", missingErr, StringComparison.Ordinal);

            string broken = Path.Combine(dir, "broken.jinja");
            File.WriteAllText(broken, "ok\n{% for m in messages %}");
            var (bad, _, badErr) = Lfm(null, [.. common, "--chat-template-file", broken, "hello"]);
            Assert.Equal(1, bad);
            Assert.Contains("line 2", badErr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Chat_keeps_history_until_reset_and_exits()
    {
        var (code, output, err) = Lfm("hello\nsecond turn\n/reset\nafter reset\n/exit\n", "chat", "-m", TestData.Model("tiny-f32"), "-n", "6", "--temp", "1", "--seed", "2", "-t", "1");
        Assert.True(code == 0, err);
        Assert.Contains("(conversation cleared)", output, StringComparison.Ordinal);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith('[')).ToList();
        Assert.Equal(3, lines.Count);
        // The second turn's prompt holds the first exchange, and only the new turn is prefilled.
        int Prompt(string l) => int.Parse(l.Split("prompt ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        int Prefilled(string l) => int.Parse(l.Split('(')[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Prompt(lines[1]) > Prompt(lines[0]));
        Assert.True(Prefilled(lines[1]) < Prompt(lines[1]));
        Assert.True(Prompt(lines[2]) < Prompt(lines[1]));
    }

    [Theory]
    [InlineData("run", "-m", "missing.gguf", "hi")]
    [InlineData("chat", "-m", "missing.gguf")]
    [InlineData("tokenize", "-m", "missing.gguf", "hi")]
    public void A_missing_model_is_one_line_and_exit_code_1(params string[] args)
    {
        var (code, output, err) = Lfm("", args);
        Assert.Equal(1, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("not found", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_file_that_is_not_a_GGUF_or_not_LFM2_is_one_line()
    {
        string dir = TestData.NewTempDir();
        string junk = Path.Combine(dir, "junk.gguf");
        File.WriteAllText(junk, "this is not a model at all, just some text");
        var (code, _, err) = Lfm(null, "run", "-m", junk, "hi");
        Assert.Equal(1, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("GGUF", err, StringComparison.Ordinal);

        string other = Path.Combine(dir, "llama.gguf");
        var w = new Gguf.GgufWriter();
        w.AddString("general.architecture", "llama");
        w.WriteTo(other);
        var (code2, _, err2) = Lfm(null, "run", "-m", other, "hi");
        Assert.Equal(1, code2);
        Assert.Contains("unsupported architecture 'llama'", err2, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_option_is_one_line_and_exit_code_2()
    {
        var (code, _, err) = Lfm(null, "run", "-m", TestData.Model("tiny-f32"), "--temp", "warm", "hi");
        Assert.Equal(2, code);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
