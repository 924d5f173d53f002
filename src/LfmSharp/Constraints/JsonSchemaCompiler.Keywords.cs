using System.Text.Json;

namespace LfmSharp.Constraints;

/// <summary>Which schema keywords are understood, ignored (annotations) or refused, and what types a schema allows.</summary>
internal sealed partial class JsonSchemaCompiler
{
    private static readonly HashSet<string> s_annotations =
    [
        "title", "description", "default", "examples", "example", "$comment", "$schema", "$id", "$defs", "definitions",
        "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "contentSchema", "$anchor",
    ];

    private static readonly HashSet<string> s_unsupported =
    [
        "pattern", "patternProperties", "propertyNames", "minProperties", "maxProperties", "dependentRequired",
        "dependentSchemas", "dependencies", "unevaluatedProperties", "unevaluatedItems", "contains", "minContains",
        "maxContains", "prefixItems", "additionalItems", "multipleOf", "not", "if", "then", "else", "$dynamicRef",
        "$recursiveRef", "$dynamicAnchor", "$recursiveAnchor",
    ];

    /// <summary>Keywords that constrain the value and so cannot sit next to $ref / anyOf / oneOf / allOf.</summary>
    private static readonly HashSet<string> s_validation =
    [
        "type", "properties", "required", "additionalProperties", "enum", "const", "items", "minItems", "maxItems",
        "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "uniqueItems",
        "$ref", "anyOf", "oneOf", "allOf",
    ];

    private static readonly HashSet<string> s_handled = [.. s_validation, "nullable", "format"];

    private void CheckKeywords(JsonElement s, string path)
    {
        foreach (var p in s.EnumerateObject())
        {
            string k = p.Name;
            if (s_annotations.Contains(k))
                continue;
            if (k == "format")
                _b.Ignored.Add($"{path}: format");
            else if (k == "uniqueItems")
            {
                if (p.Value.ValueKind == JsonValueKind.True)
                    Unsupported(path, k, null);
            }
            else if (s_unsupported.Contains(k))
                Unsupported(path, k, null);
            else if (!s_handled.Contains(k))
                _b.Ignored.Add($"{path}: {k} (unknown keyword)");
        }
    }

    private void Unsupported(string path, string keyword, string? detail)
    {
        string what = detail is null ? $"'{keyword}'" : $"'{keyword}' {detail}";
        if (!_b.Options.IgnoreUnsupportedKeywords)
            throw new NotSupportedException($"JSON schema keyword {what} (at {path}) is not supported by constrained decoding; set IgnoreUnsupportedKeywords to skip it");
        _b.Ignored.Add($"{path}: {keyword}" + (detail is null ? "" : " " + detail));
    }

    private void RejectSiblings(JsonElement s, string path, string keyword)
    {
        foreach (var p in s.EnumerateObject())
        {
            if (p.Name != keyword && s_validation.Contains(p.Name) && !(p.Name == "uniqueItems" && p.Value.ValueKind == JsonValueKind.False))
                Unsupported(path, keyword, $"combined with '{p.Name}'");
        }
    }

    private static HashSet<string>? ReadTypes(JsonElement s, string path)
    {
        if (!s.TryGetProperty("type", out var t))
            return null;
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (t.ValueKind == JsonValueKind.String)
            set.Add(CheckType(t.GetString()!, path));
        else if (t.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in t.EnumerateArray())
            {
                if (x.ValueKind != JsonValueKind.String)
                    throw new ArgumentException($"type at {path} must be a string or an array of strings");
                set.Add(CheckType(x.GetString()!, path));
            }
        }
        else
            throw new ArgumentException($"type at {path} must be a string or an array of strings");
        return set;
    }

    private static string CheckType(string type, string path) => type switch
    {
        "object" or "array" or "string" or "number" or "integer" or "boolean" or "null" => type,
        _ => throw new ArgumentException($"unknown type '{type}' at {path}"),
    };

    private static HashSet<string>? InferTypes(JsonElement s)
    {
        bool Has(params string[] keys) => keys.Any(k => s.TryGetProperty(k, out _));
        if (Has("properties", "required", "additionalProperties"))
            return ["object"];
        if (Has("items", "minItems", "maxItems"))
            return ["array"];
        if (Has("minLength", "maxLength"))
            return ["string"];
        if (Has("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"))
            return ["number"];
        return null;
    }

    private static bool TypeAllows(HashSet<string>? types, JsonElement v)
    {
        if (types is null)
            return true;
        return v.ValueKind switch
        {
            JsonValueKind.Object => types.Contains("object"),
            JsonValueKind.Array => types.Contains("array"),
            JsonValueKind.String => types.Contains("string"),
            JsonValueKind.Number => types.Contains("number") || (types.Contains("integer") && IsIntegral(v)),
            JsonValueKind.True or JsonValueKind.False => types.Contains("boolean"),
            JsonValueKind.Null => types.Contains("null"),
            _ => false,
        };
    }

    private static bool IsIntegral(JsonElement v) =>
        v.TryGetDecimal(out decimal d) ? decimal.Truncate(d) == d : v.TryGetDouble(out double x) && Math.Floor(x) == x;
}
