using System.Text.Json;
using LfmSharp.Templating;

namespace LfmSharp.Tests.Templating;

/// <summary>
/// Small templates for the filters, methods, tests, operators and statements the corpus does not reach, against what
/// Python Jinja2 rendered (tests/TestData/templates/snippets.json, from scripts/jinja-snippets.py).
/// </summary>
public class SnippetTests
{
    private static readonly Lazy<JsonDocument> s_doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TemplateCorpus.DataDir, "snippets.json"))));

    public static TheoryData<int> Indices()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < s_doc.Value.RootElement.GetProperty("cases").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Indices))]
    public void Renders_what_jinja2_renders(int index)
    {
        var c = s_doc.Value.RootElement.GetProperty("cases")[index];
        string source = c.GetProperty("template").GetString()!;
        string got = JinjaTemplate.Parse(source).Render(new Dictionary<string, Value>());
        Assert.Equal(c.GetProperty("output").GetString(), got);
    }
}
