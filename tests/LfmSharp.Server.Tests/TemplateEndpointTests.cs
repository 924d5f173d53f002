using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Server;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>/apply-template runs the model's own template on the Jinja engine.</summary>
[Collection("server")]
public sealed class TemplateEndpointTests(ServerFixture fx)
{
    private static string TemplatesDir => Path.Combine(TestData.RepoRoot, "tests", "TestData", "templates");

    [Fact]
    public async Task A_template_with_a_date_line_and_a_json_tool_list_renders_as_jinja2_renders_it()
    {
        // Our LFM2.5 fine-tune style template (strftime_now date line, tools | tojson, thinking, tool calls,
        // generation block) replaces the fixture's; the goldens were rendered by Python Jinja2 on a fixed date.
        string source = File.ReadAllText(Path.Combine(TemplatesDir, "own", "lfm25-finetune.jinja"));
        using var model = LanguageModel.Load(fx.ModelPath, new ModelLoadOptions { Threads = 1, ChatTemplate = source });
        await using var server = LfmServer.Create(new LfmServerOptions { Host = "127.0.0.1", Port = 0, ModelPath = fx.ModelPath }, model);
        await server.StartAsync();
        await server.ModelLoaded;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        using var spec = JsonDocument.Parse(File.ReadAllText(Path.Combine(TemplatesDir, "conversations.json")));
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(TemplatesDir, "goldens", "lfm25-finetune.json")));
        var fixedDate = DateTime.Parse(spec.RootElement.GetProperty("date").GetString()!, CultureInfo.InvariantCulture);
        int checkedCases = 0;
        foreach (string name in new[] { "tools_with_system", "thinking_then_tool_call", "non_ascii" })
        {
            var conv = spec.RootElement.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);
            var body = new JsonObject
            {
                ["messages"] = OpenAiMessages(conv.GetProperty("messages")),
                ["tools"] = JsonNode.Parse(conv.GetProperty("tools").GetRawText()),
                ["add_generation_prompt"] = conv.GetProperty("add_generation_prompt").GetBoolean(),
            };
            string before = DateTime.Now.ToString("dd MMMM yyyy", CultureInfo.InvariantCulture);
            var (status, json, text) = await ServerFixture.PostAsync(http, "apply-template", body.ToJsonString());
            string after = DateTime.Now.ToString("dd MMMM yyyy", CultureInfo.InvariantCulture);
            Assert.True(status == 200, text);
            string want = golden.RootElement.GetProperty("cases").EnumerateArray()
                .Single(c => c.GetProperty("conversation").GetString() == name).GetProperty("output").GetString()!;
            string got = json!.Value.GetProperty("prompt").GetString()!;
            string goldenDate = fixedDate.ToString("dd MMMM yyyy", CultureInfo.InvariantCulture);
            Assert.Contains("Today's date: " + goldenDate + ".", want, StringComparison.Ordinal);
            Assert.Contains("List of tools: [{\"type\": \"function\"", want, StringComparison.Ordinal);
            Assert.True(got == want.Replace(goldenDate, before, StringComparison.Ordinal) || got == want.Replace(goldenDate, after, StringComparison.Ordinal), got);
            checkedCases++;
        }
        Assert.Equal(3, checkedCases);
    }

    [Fact]
    public async Task A_conversation_the_template_rejects_is_a_400_naming_the_reason()
    {
        const string source = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ m.content }}{% endfor %}";
        using var model = LanguageModel.Load(fx.ModelPath, new ModelLoadOptions { Threads = 1, ChatTemplate = source });
        await using var server = LfmServer.Create(new LfmServerOptions { Host = "127.0.0.1", Port = 0, ModelPath = fx.ModelPath }, model);
        await server.StartAsync();
        await server.ModelLoaded;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var (status, _, text) = await ServerFixture.PostAsync(http, "apply-template", """{"messages":[{"role":"system","content":"x"},{"role":"user","content":"hi"}]}""");
        Assert.Equal(400, status);
        Assert.Contains("System role not supported", text, StringComparison.Ordinal);
        var (chatStatus, _, chatText) = await ServerFixture.PostAsync(http, "v1/chat/completions", """{"messages":[{"role":"system","content":"x"},{"role":"user","content":"hi"}],"max_tokens":2}""");
        Assert.Equal(400, chatStatus);
        Assert.Contains("System role not supported", chatText, StringComparison.Ordinal);
    }

    // conversations.json keeps tool-call arguments as objects (what the template sees); the API takes them as JSON text.
    private static JsonArray OpenAiMessages(JsonElement messages)
    {
        var array = new JsonArray();
        foreach (var m in messages.EnumerateArray())
        {
            var node = JsonNode.Parse(m.GetRawText())!.AsObject();
            node.Remove("thinking");
            if (node["tool_calls"] is JsonArray calls)
            {
                foreach (var call in calls)
                {
                    var fn = call!["function"]!.AsObject();
                    fn["arguments"] = fn["arguments"]!.ToJsonString();
                }
            }
            array.Add(node);
        }
        return array;
    }
}
