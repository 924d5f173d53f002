using System.Text;
using System.Text.Json;
using LfmSharp.Generation;

namespace LfmSharp.Chat;

/// <summary>
/// Writes tool calls back into the history in the form the model emits them:
/// <c>&lt;|tool_call_start|&gt;[name(arg="v", n=2)]&lt;|tool_call_end|&gt;</c>. Mirrors the <c>render_tool_calls</c>
/// macro of the later LFM2.5 templates: strings in double quotes, <c>True/False/None</c>, dicts and lists as
/// <c>tojson</c>, numbers as Python prints them. One deviation: a backslash or double quote inside a string is
/// escaped (the Jinja macro pastes the string raw, which makes the call unparseable), so every call round-trips
/// through <see cref="ChatOutputParser"/>.
/// </summary>
internal static class PythonicCallWriter
{
    public const string Start = "<|tool_call_start|>";
    public const string End = "<|tool_call_end|>";

    public static void Write(StringBuilder sb, IReadOnlyList<ToolCall> calls)
    {
        sb.Append(Start).Append('[');
        for (int i = 0; i < calls.Count; i++)
        {
            var call = calls[i] ?? throw new ArgumentException("A tool-call list contains null.");
            if (i > 0)
                sb.Append(", ");
            sb.Append(call.Name).Append('(');
            WriteArguments(sb, call);
            sb.Append(')');
        }
        sb.Append(']').Append(End);
    }

    private static void WriteArguments(StringBuilder sb, ToolCall call)
    {
        if (string.IsNullOrWhiteSpace(call.ArgumentsJson))
            return;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(call.ArgumentsJson);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"Tool call '{call.Name}' ({call.Id}): arguments are not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Null)
                return;
            if (root.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"Tool call '{call.Name}' ({call.Id}): arguments must be a JSON object, not {root.ValueKind}.");
            bool first = true;
            foreach (var p in root.EnumerateObject())
            {
                if (!first)
                    sb.Append(", ");
                first = false;
                sb.Append(p.Name).Append('=');
                WriteValue(sb, p.Value);
            }
        }
    }

    private static void WriteValue(StringBuilder sb, JsonElement v)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.String:
                sb.Append('"');
                foreach (char c in v.GetString()!)
                {
                    if (c is '\\' or '"')
                        sb.Append('\\');
                    sb.Append(c);
                }
                sb.Append('"');
                break;
            case JsonValueKind.True:
                sb.Append("True");
                break;
            case JsonValueKind.False:
                sb.Append("False");
                break;
            case JsonValueKind.Null:
                sb.Append("None");
                break;
            case JsonValueKind.Number:
                sb.Append(PythonJson.FormatNumber(v.GetRawText()));
                break;
            default:
                PythonJson.Dump(v, sb, ensureAscii: false);
                break;
        }
    }
}
