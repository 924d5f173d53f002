using System.Buffers;
using System.Text.Json;

namespace LfmSharp.Chat;

/// <summary>
/// A tool the model may call. Keeps the tool's JSON object exactly as given (key order included), because the chat
/// template serializes it verbatim into the system prompt: a bare <c>{"name", "description", "parameters"}</c> object
/// (Liquid's own examples) or an OpenAI-style <c>{"type": "function", "function": {…}}</c> wrapper both stay as they are.
/// </summary>
public sealed class ToolDefinition
{
    private readonly string[] _parameterNames;
    private readonly Dictionary<string, string> _parameterTypes;

    /// <summary>Builds the bare form <c>{"name": …, "description": …, "parameters": …}</c> (null parts are left out).</summary>
    /// <param name="name">The function name the model must write.</param>
    /// <param name="description">What the tool does.</param>
    /// <param name="parametersJsonSchema">A JSON Schema object for the arguments (kept with its key order).</param>
    public ToolDefinition(string name, string? description = null, string? parametersJsonSchema = null)
        : this(BuildBare(name, description, parametersJsonSchema))
    {
    }

    private ToolDefinition(JsonElement json)
    {
        Json = json;
        JsonElement function = json;
        if (json.TryGetProperty("function", out var f) && f.ValueKind == JsonValueKind.Object)
            function = f;
        if (!function.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(n.GetString()))
            throw new ArgumentException("A tool needs a non-empty string \"name\" (or \"function\": {\"name\": …}).");
        Name = n.GetString()!;
        if (function.TryGetProperty("description", out var d) && d.ValueKind == JsonValueKind.String)
            Description = d.GetString();
        var names = new List<string>();
        _parameterTypes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (function.TryGetProperty("parameters", out var p))
        {
            if (p.ValueKind != JsonValueKind.Object)
                throw new ArgumentException($"Tool '{Name}': \"parameters\" must be a JSON object (a JSON Schema), not {p.ValueKind}.");
            ParametersJsonSchema = p.GetRawText();
            if (p.TryGetProperty("properties", out var props) && props.ValueKind == JsonValueKind.Object)
            {
                foreach (var prop in props.EnumerateObject())
                {
                    if (names.Contains(prop.Name))
                        continue;
                    names.Add(prop.Name);
                    if (prop.Value.ValueKind == JsonValueKind.Object && prop.Value.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String)
                        _parameterTypes[prop.Name] = t.GetString()!;
                }
            }
        }
        _parameterNames = names.ToArray();
    }

    /// <summary>The function name.</summary>
    public string Name { get; }

    /// <summary>What the tool does, for the model; null when not given.</summary>
    public string? Description { get; }

    /// <summary>The <c>parameters</c> JSON Schema object as text, or null.</summary>
    public string? ParametersJsonSchema { get; }

    /// <summary>The whole tool object exactly as given; this is what the template serializes.</summary>
    public JsonElement Json { get; }

    /// <summary>Names of the schema's top-level properties in their declared order.</summary>
    public IReadOnlyList<string> ParameterNames => _parameterNames;

    /// <summary>Reads a tool from its JSON object text (bare or OpenAI-style).</summary>
    public static ToolDefinition FromJson(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ArgumentException("Tool definition is not valid JSON: " + e.Message, nameof(json), e);
        }
        using (doc)
            return FromJson(doc.RootElement);
    }

    /// <summary>Reads a tool from a JSON object (cloned, so the caller's document may be disposed).</summary>
    public static ToolDefinition FromJson(JsonElement json)
    {
        if (json.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"A tool definition must be a JSON object, not {json.ValueKind}.", nameof(json));
        return new ToolDefinition(json.Clone());
    }

    /// <summary>The declared JSON Schema "type" of a top-level parameter, or null.</summary>
    internal string? ParameterType(string name) => _parameterTypes.GetValueOrDefault(name);

    /// <summary>The definition as OpenAI-style JSON.</summary>
    public override string ToString() => Json.GetRawText();

    private static JsonElement BuildBare(string name, string? description, string? parametersJsonSchema)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            if (description is not null)
                w.WriteString("description", description);
            if (parametersJsonSchema is not null)
            {
                try
                {
                    using var schema = JsonDocument.Parse(parametersJsonSchema);
                    if (schema.RootElement.ValueKind != JsonValueKind.Object)
                        throw new ArgumentException($"Tool '{name}': the parameters schema must be a JSON object, not {schema.RootElement.ValueKind}.", nameof(parametersJsonSchema));
                    w.WritePropertyName("parameters");
                    schema.RootElement.WriteTo(w);
                }
                catch (JsonException e)
                {
                    throw new ArgumentException($"Tool '{name}': the parameters schema is not valid JSON: {e.Message}", nameof(parametersJsonSchema), e);
                }
            }
            w.WriteEndObject();
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }
}
