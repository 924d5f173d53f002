namespace LfmSharp.Hub.Tests;

/// <summary>Parsing the names people type, and picking a file by quant as llama.cpp's -hf does.</summary>
public sealed class ModelReferenceTests
{
    [Theory]
    [InlineData("LiquidAI/LFM2.5-1.2B-Thinking-GGUF", "LiquidAI/LFM2.5-1.2B-Thinking-GGUF", null)]
    [InlineData("LiquidAI/LFM2.5-1.2B-Thinking-GGUF:Q8_0", "LiquidAI/LFM2.5-1.2B-Thinking-GGUF", "Q8_0")]
    [InlineData("hf.co/LiquidAI/LFM2-350M-GGUF:q4_0", "LiquidAI/LFM2-350M-GGUF", "q4_0")]
    [InlineData("https://huggingface.co/LiquidAI/LFM2-700M-GGUF", "LiquidAI/LFM2-700M-GGUF", null)]
    [InlineData("https://huggingface.co/LiquidAI/LFM2-700M-GGUF/tree/main", "LiquidAI/LFM2-700M-GGUF", null)]
    [InlineData("lfm2.5-thinking", "LiquidAI/LFM2.5-1.2B-Thinking-GGUF", null)]
    [InlineData("LFM2.5-Thinking:Q8_0", "LiquidAI/LFM2.5-1.2B-Thinking-GGUF", "Q8_0")]
    [InlineData("lfm2-2.6b", "LiquidAI/LFM2-2.6B-GGUF", null)]
    public void Names_parse_to_a_repository_and_quant(string text, string repo, string? quant)
    {
        Assert.True(ModelReference.TryParse(text, out var r));
        Assert.Equal(repo, r!.Repo);
        Assert.Equal(quant, r.Quant);
        Assert.Equal("main", r.Revision);
    }

    [Fact]
    public void A_file_link_names_the_file_and_revision()
    {
        var r = ModelReference.Parse("https://huggingface.co/Org/Repo-GGUF/resolve/v1.0/sub/Repo-Q4_0.gguf");
        Assert.Equal(("Org/Repo-GGUF", "v1.0", "sub/Repo-Q4_0.gguf"), (r.Repo, r.Revision, r.File));
    }

    [Theory]
    [InlineData("model.gguf")]
    [InlineData("models/model.gguf")]
    [InlineData("/tmp/x/y")]
    [InlineData("./a/b")]
    [InlineData("a/b/c")]
    [InlineData("C:\\models\\m.gguf")]
    [InlineData("org/repo:Q4 K")]
    [InlineData("")]
    public void Paths_are_not_names(string text) => Assert.False(ModelReference.TryParse(text, out _));

    [Fact]
    public void The_quant_is_matched_case_insensitively_before_a_dot_or_dash_and_defaults_to_Q4_K_M()
    {
        string[] files = ["README.md", "m-F16.gguf", "m-Q4_0.gguf", "m-Q4_K_M.gguf", "m-Q4_K_S.gguf", "mmproj-m-Q4_K_M.gguf", "m-Q8_0.gguf"];
        Assert.Equal("m-Q4_K_M.gguf", GgufFileNames.Pick(files, null));
        Assert.Equal("m-Q4_0.gguf", GgufFileNames.Pick(files, "q4_0"));
        Assert.Equal("m-Q8_0.gguf", GgufFileNames.Pick(files, "Q8_0"));
        Assert.Null(GgufFileNames.Pick(files, "Q4_K"));   // "Q4_K" is followed by '_', not '.' or '-'
        Assert.Null(GgufFileNames.Pick(files, "Q5_K_M"));
        Assert.Equal("m-F16.gguf", GgufFileNames.Pick(["m-F16.gguf", "m-Q8_0.gguf"], null));   // no Q4_K_M: the first GGUF
        Assert.Equal(["F16", "Q4_0", "Q4_K_M", "Q4_K_S", "Q8_0"], GgufFileNames.AvailableQuants(files));
    }

    [Fact]
    public void A_split_set_is_picked_by_its_first_part_and_expands_to_all_parts()
    {
        string[] files = ["big-Q8_0-00002-of-00003.gguf", "big-Q8_0-00001-of-00003.gguf", "big-Q8_0-00003-of-00003.gguf"];
        string first = GgufFileNames.Pick(files, "Q8_0")!;
        Assert.Equal("big-Q8_0-00001-of-00003.gguf", first);
        Assert.Equal(["big-Q8_0-00001-of-00003.gguf", "big-Q8_0-00002-of-00003.gguf", "big-Q8_0-00003-of-00003.gguf"], GgufFileNames.SetOf(files, first));
        Assert.Equal("Q8_0", GgufFileNames.Quant(first));
    }

    [Fact]
    public void The_catalog_maps_every_short_name_to_a_LiquidAI_GGUF_repository()
    {
        Assert.Equal("LiquidAI/LFM2.5-1.2B-Thinking-GGUF", ModelCatalog.Find("lfm2.5-thinking")!.Reference.Repo);
        Assert.All(ModelCatalog.Entries, e => Assert.Matches("^LiquidAI/LFM2(\\.5)?-.+-GGUF$", e.Reference.Repo));
        var names = ModelCatalog.Entries.SelectMany(e => e.Aliases.Append(e.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.OrdinalIgnoreCase).Count());
    }
}
