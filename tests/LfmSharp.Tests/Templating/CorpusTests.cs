using System.Text;
using System.Text.Json;
using LfmSharp.Templating;

namespace LfmSharp.Tests.Templating;

public class CorpusTests
{
    public static TheoryData<string> Templates()
    {
        var data = new TheoryData<string>();
        foreach (var name in TemplateCorpus.GoldenNames())
            data.Add(name);
        return data;
    }

    /// <summary>Every template × every conversation renders byte for byte what Python Jinja2 rendered (or fails
    /// where Jinja2 failed), with the conversation passed to the engine as plain JSON values.</summary>
    [Theory]
    [MemberData(nameof(Templates))]
    public void Engine_renders_what_jinja2_renders(string name)
    {
        var golden = TemplateCorpus.Golden(name);
        string source = TemplateCorpus.Source(name);
        Assert.True(golden.GetProperty("sha256").GetString() == TemplateCorpus.Sha256(source),
            $"{name}: the template differs from the one the goldens were rendered from; rerun scripts/jinja-goldens.py");
        var template = JinjaTemplate.Parse(source);
        var failures = new StringBuilder();
        foreach (var c in golden.GetProperty("cases").EnumerateArray())
        {
            var conv = TemplateCorpus.Conversation(c.GetProperty("conversation").GetString()!);
            string? got = null, error = null;
            try
            {
                got = template.Render(Variables(conv), clock: () => TemplateCorpus.Date);
            }
            catch (TemplateException e)
            {
                error = e.Message;
            }
            Compare(failures, conv.GetProperty("name").GetString()!, c, got, error);
        }
        Assert.True(failures.Length == 0, $"{name}:\n{failures}");
    }

    internal static void Compare(StringBuilder failures, string conversation, JsonElement c, string? got, string? error)
    {
        if (c.TryGetProperty("output", out var expected))
        {
            string want = expected.GetString()!;
            if (got != want)
                failures.AppendLine($"[{conversation}] {(error is not null ? "error: " + error : FirstDifference(want, got!))}");
        }
        else if (error is null)
        {
            failures.AppendLine($"[{conversation}] Jinja2 failed ({c.GetProperty("error").GetString()}) but we rendered");
        }
    }

    internal static string FirstDifference(string want, string got)
    {
        int i = 0;
        while (i < want.Length && i < got.Length && want[i] == got[i])
            i++;
        string Around(string s) => JsonSerializer.Serialize(s.Substring(Math.Max(0, i - 40), Math.Min(s.Length, i + 60) - Math.Max(0, i - 40)));
        return $"differs at {i}: want …{Around(want)}… got …{Around(got)}…";
    }

    internal static Dictionary<string, Value> Variables(JsonElement conv)
    {
        var spec = TemplateCorpus.Spec;
        var vars = new Dictionary<string, Value>
        {
            ["messages"] = JinjaTemplate.FromJson(conv.GetProperty("messages")),
            ["add_generation_prompt"] = BoolValue.Of(conv.GetProperty("add_generation_prompt").GetBoolean()),
            ["bos_token"] = StringValue.Of(spec.GetProperty("bos_token").GetString()!),
            ["eos_token"] = StringValue.Of(spec.GetProperty("eos_token").GetString()!),
        };
        if (conv.TryGetProperty("tools", out var tools))
            vars["tools"] = JinjaTemplate.FromJson(tools);
        if (conv.TryGetProperty("kwargs", out var kwargs))
        {
            foreach (var p in kwargs.EnumerateObject())
                vars[p.Name] = JinjaTemplate.FromJson(p.Value);
        }
        return vars;
    }
}
