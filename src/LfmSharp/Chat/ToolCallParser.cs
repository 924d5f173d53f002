using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace LfmSharp.Chat;

/// <summary>One call read from tool-call text, before it gets an id.</summary>
internal readonly record struct ParsedToolCall(string Name, string ArgumentsJson);

/// <summary>
/// Reads the text between <c>&lt;|tool_call_start|&gt;</c> and <c>&lt;|tool_call_end|&gt;</c>. Two formats:
/// <list type="bullet">
/// <item>pythonic (LFM2's default): <c>[f(a="x", b=2), pkg.g(c=True)]</c>, or the same calls without the brackets;</item>
/// <item>JSON (what llama.cpp calls LFM2_WITH_JSON_TOOLS): <c>{"name": "f", "arguments": {…}}</c>, a list of those,
/// or several in a row; <c>"arguments"</c> may also be <c>"parameters"</c> or a JSON string, and the OpenAI
/// <c>{"type": "function", "function": {…}}</c> wrapper is accepted.</item>
/// </list>
/// A block is all or nothing: if any call in it is malformed or names an unknown tool, the whole block is an error
/// (a half-executed batch is worse than none). Positional arguments are mapped onto the tool schema's properties in
/// declared order when the tool is known; otherwise they are an error.
/// </summary>
internal static class ToolCallParser
{
    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        // Keep non-ASCII readable in the arguments; this output goes to tools, not to HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Parses a tool-call block.</summary>
    /// <param name="text">The text between the markers.</param>
    /// <param name="tools">Allowed tools; null accepts any name.</param>
    /// <param name="maxDepth">Deepest nesting of lists/dicts accepted.</param>
    /// <param name="calls">The calls, in order (empty on error).</param>
    /// <returns>Null on success, else a message naming the problem and its offset in <paramref name="text"/>.</returns>
    public static string? TryParse(string text, IReadOnlyList<ToolDefinition>? tools, int maxDepth, out List<ParsedToolCall> calls)
    {
        calls = [];
        var r = new PythonLiteralReader(text, maxDepth);
        try
        {
            r.SkipWhitespace();
            if (r.AtEnd)
                throw r.Error("The tool-call block is empty");
            bool json = r.Peek() == '{' || (r.Peek() == '[' && NextNonSpace(text, r.Position + 1) == '{');
            if (json)
                ReadJsonCalls(r, tools, calls);
            else
                ReadPythonicCalls(r, tools, calls, allowTrailing: false);
            if (calls.Count == 0)
                throw r.Error("The tool-call block has no calls", 0);
            return null;
        }
        catch (ToolCallSyntaxException e)
        {
            calls = [];
            return e.Message;
        }
    }

    /// <summary>Parses a bracketed pythonic call list at the start of <paramref name="text"/> (calls written without
    /// the markers); <paramref name="end"/> is where the text after the closing ']' starts.</summary>
    public static bool TryParseLeadingList(string text, IReadOnlyList<ToolDefinition> tools, int maxDepth, out List<ParsedToolCall> calls, out int end)
    {
        calls = [];
        end = 0;
        var r = new PythonLiteralReader(text, maxDepth);
        try
        {
            r.SkipWhitespace();
            if (r.Peek() != '[')
                return false;
            ReadPythonicCalls(r, tools, calls, allowTrailing: true);
            end = r.Position;
            return calls.Count > 0;
        }
        catch (ToolCallSyntaxException)
        {
            calls = [];
            return false;
        }
    }

    private static char NextNonSpace(string s, int i)
    {
        while (i < s.Length && char.IsWhiteSpace(s[i]))
            i++;
        return i < s.Length ? s[i] : '\0';
    }

    // ---- pythonic ----

    private static void ReadPythonicCalls(PythonLiteralReader r, IReadOnlyList<ToolDefinition>? tools, List<ParsedToolCall> calls, bool allowTrailing)
    {
        bool bracketed = r.TryConsume('[');
        while (true)
        {
            r.SkipWhitespace();
            if (bracketed && r.TryConsume(']'))
                break; // empty list or trailing comma
            calls.Add(ReadPythonicCall(r, tools));
            r.SkipWhitespace();
            if (r.TryConsume(','))
            {
                if (!bracketed)
                {
                    r.SkipWhitespace();
                    if (r.AtEnd)
                        break;
                }
                continue;
            }
            if (!bracketed)
                break;
            if (r.TryConsume(']'))
                break;
            throw r.Error($"Expected ',' or ']' after a call but found {r.Describe(r.Position)}");
        }
        if (allowTrailing)
            return;
        r.SkipWhitespace();
        if (!r.AtEnd)
            throw r.Error("Unexpected text after the tool calls");
    }

    private static ParsedToolCall ReadPythonicCall(PythonLiteralReader r, IReadOnlyList<ToolDefinition>? tools)
    {
        int nameAt = r.Position;
        string name = r.TryReadName(allowDots: true)
            ?? throw r.Error($"Expected a function name but found {r.Describe(r.Position)}");
        var tool = ResolveTool(r, tools, name, nameAt);
        r.SkipWhitespace();
        if (!r.TryConsume('('))
            throw r.Error($"Expected '(' after the function name '{name}' but found {r.Describe(r.Position)}");

        var args = new List<KeyValuePair<string, PyValue>>();
        bool sawKeyword = false;
        int positional = 0;
        while (true)
        {
            r.SkipWhitespace();
            if (r.TryConsume(')'))
                break;
            if (r.AtEnd)
                throw r.Error($"Unclosed argument list of '{name}'");
            int argAt = r.Position;
            string? key = r.TryReadName(allowDots: false);
            if (key is not null)
            {
                r.SkipWhitespace();
                // '=' is Python; ':' is a slip small models make. '==' is a comparison, not an argument.
                bool isKeyword = (r.Peek() == '=' && r.Peek(1) != '=') || r.Peek() == ':';
                if (isKeyword)
                    r.Position++;
                else
                {
                    r.Position = argAt;
                    key = null;
                }
            }
            if (key is null)
            {
                if (sawKeyword)
                    throw r.Error($"Positional argument follows a keyword argument in '{name}'", argAt);
                var names = tool?.ParameterNames;
                if (names is null || positional >= names.Count)
                {
                    throw r.Error(tool is null
                        ? $"Positional argument in '{name}' (tool calls use keyword arguments: name=value)"
                        : $"Positional argument {positional + 1} in '{name}' but the tool declares {names!.Count} parameter(s)", argAt);
                }
                key = names[positional++];
            }
            else
            {
                sawKeyword = true;
            }
            foreach (var a in args)
            {
                if (a.Key == key)
                    throw r.Error($"Argument '{key}' given twice in '{name}'", argAt);
            }
            args.Add(new(key, r.ReadValue()));
            r.SkipWhitespace();
            if (r.AtEnd)
                throw r.Error($"Unclosed argument list of '{name}'");
            if (r.TryConsume(','))
                continue;
            if (r.TryConsume(')'))
                break;
            throw r.Error($"Expected ',' or ')' in the arguments of '{name}' but found {r.Describe(r.Position)}");
        }
        return new ParsedToolCall(name, WriteArguments(args, tool));
    }

    // ---- JSON ----

    private static void ReadJsonCalls(PythonLiteralReader r, IReadOnlyList<ToolDefinition>? tools, List<ParsedToolCall> calls)
    {
        while (true)
        {
            r.SkipWhitespace();
            int at = r.Position;
            var value = r.ReadValue();
            if (value is PyList list)
            {
                foreach (var item in list.Items)
                    calls.Add(JsonCall(r, item, tools, at));
            }
            else
            {
                calls.Add(JsonCall(r, value, tools, at));
            }
            r.SkipWhitespace();
            r.TryConsume(',');
            r.SkipWhitespace();
            if (r.AtEnd)
                return;
            if (r.Peek() is not ('{' or '['))
                throw r.Error("Unexpected text after the tool calls");
        }
    }

    private static ParsedToolCall JsonCall(PythonLiteralReader r, PyValue value, IReadOnlyList<ToolDefinition>? tools, int at)
    {
        if (value is not PyDict call)
            throw r.Error("A JSON tool call must be an object {\"name\": …, \"arguments\": {…}}", at);
        if (call.Get("function") is PyDict function && call.Get("name") is null)
            call = function;
        if (call.Get("name") is not PyString { Value.Length: > 0 } nameValue)
            throw r.Error("A JSON tool call needs a string \"name\"", at);
        string name = nameValue.Value;
        var tool = ResolveTool(r, tools, name, at);
        var args = call.Get("arguments") ?? call.Get("parameters");
        if (args is PyString encoded)
        {
            // OpenAI style: the arguments object serialized into a string.
            var inner = new PythonLiteralReader(encoded.Value, 64);
            inner.SkipWhitespace();
            if (inner.AtEnd)
                args = null;
            else
            {
                try
                {
                    args = inner.ReadValue();
                    inner.SkipWhitespace();
                    if (!inner.AtEnd)
                        throw inner.Error("Unexpected text after the arguments object");
                }
                catch (ToolCallSyntaxException e)
                {
                    throw r.Error($"The arguments string of '{name}' is not an object: {e.Message}", at);
                }
            }
        }
        if (args is null or PyNone)
            return new ParsedToolCall(name, "{}");
        if (args is not PyDict dict)
            throw r.Error($"The arguments of '{name}' must be an object", at);
        return new ParsedToolCall(name, WriteArguments(dict.Members, tool));
    }

    // ---- shared ----

    private static ToolDefinition? ResolveTool(PythonLiteralReader r, IReadOnlyList<ToolDefinition>? tools, string name, int at)
    {
        if (tools is null)
            return null;
        foreach (var t in tools)
        {
            if (t.Name == name)
                return t;
        }
        string known = tools.Count == 0 ? "no tools were given" : "known: " + string.Join(", ", tools.Select(t => t.Name));
        throw r.Error($"Unknown tool '{name}' ({known})", at);
    }

    private static string WriteArguments(List<KeyValuePair<string, PyValue>> args, ToolDefinition? tool)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
        {
            w.WriteStartObject();
            foreach (var (key, value) in args)
            {
                w.WritePropertyName(key);
                // A leading-zero integer stays a string unless the schema wants a number here.
                if (value is PyString { NumberJson: { } number } && tool?.ParameterType(key) is "integer" or "number")
                    w.WriteRawValue(number);
                else
                    WriteValue(w, value);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteValue(Utf8JsonWriter w, PyValue value)
    {
        switch (value)
        {
            case PyString s:
                w.WriteStringValue(s.Value);
                break;
            case PyNumber n:
                w.WriteRawValue(n.Json);
                break;
            case PyBool b:
                w.WriteBooleanValue(b.Value);
                break;
            case PyNone:
                w.WriteNullValue();
                break;
            case PyList list:
                w.WriteStartArray();
                foreach (var item in list.Items)
                    WriteValue(w, item);
                w.WriteEndArray();
                break;
            case PyDict dict:
                w.WriteStartObject();
                foreach (var (key, item) in dict.Members)
                {
                    w.WritePropertyName(key);
                    WriteValue(w, item);
                }
                w.WriteEndObject();
                break;
        }
    }
}
