using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Chat;

/// <summary>Loads TestData/template-goldens.json (rendered by real Jinja, see render_goldens.py).</summary>
internal static class TemplateGoldens
{
    private static readonly Lazy<JsonDocument> s_doc = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "LfmSharp.Tests", "Chat", "TestData", "template-goldens.json"))));

    public static JsonElement Root => s_doc.Value.RootElement;

    public static IEnumerable<JsonElement> Cases => Root.GetProperty("cases").EnumerateArray();

    public static JsonElement Case(string name) => Cases.Single(c => c.GetProperty("name").GetString() == name);

    public static List<LfmChatMessage> Messages(JsonElement c)
    {
        var list = new List<LfmChatMessage>();
        foreach (var m in c.GetProperty("messages").EnumerateArray())
        {
            var role = m.GetProperty("role").GetString() switch
            {
                "system" => LfmChatRole.System,
                "user" => LfmChatRole.User,
                "assistant" => LfmChatRole.Assistant,
                "tool" => LfmChatRole.Tool,
                var r => throw new InvalidDataException("role " + r),
            };
            List<ToolCall>? calls = null;
            if (m.TryGetProperty("tool_calls", out var tcs))
            {
                calls = tcs.EnumerateArray().Select(tc => new ToolCall(
                    tc.GetProperty("id").GetString()!,
                    tc.GetProperty("function").GetProperty("name").GetString()!,
                    tc.GetProperty("function").GetProperty("arguments").GetString()!)).ToList();
            }
            list.Add(new LfmChatMessage(role, m.GetProperty("content").GetString()!)
            {
                Reasoning = m.TryGetProperty("thinking", out var t) ? t.GetString() : null,
                ToolCalls = calls,
                ToolCallId = m.TryGetProperty("tool_call_id", out var id) ? id.GetString() : null,
            });
        }
        return list;
    }

    public static List<ToolDefinition>? Tools(JsonElement c) =>
        c.TryGetProperty("tools", out var tools) ? tools.EnumerateArray().Select(t => ToolDefinition.FromJson(t.GetString()!)).ToList() : null;
}
