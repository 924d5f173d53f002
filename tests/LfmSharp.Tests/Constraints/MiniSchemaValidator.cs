using System.Text.Json;

namespace LfmSharp.Tests.Constraints;

/// <summary>
/// A small JSON-schema validator for the supported subset, written straight from the JSON Schema rules and sharing
/// no code with the grammar compiler (it is the oracle the generated documents are checked against). oneOf means
/// exactly one; additionalProperties absent means any extra key is fine; duplicate keys that name a declared
/// property are reported (a parser keeping the last one would lose data).
/// </summary>
internal static class MiniSchemaValidator
{
    public static List<string> Validate(JsonElement schema, JsonElement instance)
    {
        var errors = new List<string>();
        Check(schema, instance, schema, "$", errors);
        return errors;
    }

    private static bool Check(JsonElement s, JsonElement x, JsonElement root, string at, List<string> errors)
    {
        int before = errors.Count;
        if (s.ValueKind == JsonValueKind.True)
            return true;
        if (s.ValueKind == JsonValueKind.False)
        {
            errors.Add($"{at}: schema false");
            return false;
        }
        if (s.TryGetProperty("$ref", out var r))
            Check(Resolve(root, r.GetString()!), x, root, at, errors);
        if (s.TryGetProperty("allOf", out var allOf))
        {
            foreach (var sub in allOf.EnumerateArray())
                Check(sub, x, root, at, errors);
        }
        if (s.TryGetProperty("anyOf", out var anyOf) && !anyOf.EnumerateArray().Any(sub => Check(sub, x, root, at, [])))
            errors.Add($"{at}: no anyOf alternative matches");
        if (s.TryGetProperty("oneOf", out var oneOf))
        {
            int n = oneOf.EnumerateArray().Count(sub => Check(sub, x, root, at, []));
            if (n != 1)
                errors.Add($"{at}: {n} oneOf alternatives match");
        }
        if (s.TryGetProperty("type", out var type))
        {
            var types = type.ValueKind == JsonValueKind.Array ? type.EnumerateArray().Select(t => t.GetString()!).ToList() : [type.GetString()!];
            if (s.TryGetProperty("nullable", out var nl) && nl.ValueKind == JsonValueKind.True)
                types.Add("null");
            if (!types.Any(t => IsType(x, t)))
                errors.Add($"{at}: {x.ValueKind} is not {string.Join("|", types)}");
        }
        if (s.TryGetProperty("enum", out var en) && !en.EnumerateArray().Any(v => DeepEqual(v, x)))
            errors.Add($"{at}: {x.GetRawText()} not in enum");
        if (s.TryGetProperty("const", out var cn) && !DeepEqual(cn, x))
            errors.Add($"{at}: {x.GetRawText()} is not the const");

        if (x.ValueKind == JsonValueKind.Object)
        {
            var declared = s.TryGetProperty("properties", out var props) ? props.EnumerateObject().Select(p => p.Name).ToHashSet() : [];
            var seen = new HashSet<string>();
            foreach (var p in x.EnumerateObject())
            {
                if (!seen.Add(p.Name) && declared.Contains(p.Name))
                    errors.Add($"{at}: duplicate key {p.Name}");
                if (declared.Contains(p.Name))
                    Check(props.GetProperty(p.Name), p.Value, root, $"{at}.{p.Name}", errors);
                else if (s.TryGetProperty("additionalProperties", out var ap))
                {
                    if (ap.ValueKind == JsonValueKind.False)
                        errors.Add($"{at}: extra key {p.Name}");
                    else
                        Check(ap, p.Value, root, $"{at}.{p.Name}", errors);
                }
            }
            if (s.TryGetProperty("required", out var req))
            {
                foreach (var name in req.EnumerateArray())
                {
                    if (!seen.Contains(name.GetString()!))
                        errors.Add($"{at}: missing {name.GetString()}");
                }
            }
        }
        if (x.ValueKind == JsonValueKind.Array)
        {
            int count = x.GetArrayLength();
            if (s.TryGetProperty("minItems", out var mi) && count < mi.GetInt32())
                errors.Add($"{at}: {count} items < minItems");
            if (s.TryGetProperty("maxItems", out var ma) && count > ma.GetInt32())
                errors.Add($"{at}: {count} items > maxItems");
            if (s.TryGetProperty("items", out var items))
            {
                int i = 0;
                foreach (var item in x.EnumerateArray())
                    Check(items, item, root, $"{at}[{i++}]", errors);
            }
        }
        if (x.ValueKind == JsonValueKind.String)
        {
            int len = x.GetString()!.EnumerateRunes().Count();
            if (s.TryGetProperty("minLength", out var mn) && len < mn.GetInt32())
                errors.Add($"{at}: length {len} < minLength");
            if (s.TryGetProperty("maxLength", out var mx) && len > mx.GetInt32())
                errors.Add($"{at}: length {len} > maxLength");
        }
        if (x.ValueKind == JsonValueKind.Number)
        {
            decimal v = x.TryGetDecimal(out var d) ? d : (decimal)Math.Clamp(x.GetDouble(), -7.9e28, 7.9e28);
            if (s.TryGetProperty("minimum", out var min) && v < min.GetDecimal())
                errors.Add($"{at}: {v} < minimum");
            if (s.TryGetProperty("maximum", out var max) && v > max.GetDecimal())
                errors.Add($"{at}: {v} > maximum");
            if (s.TryGetProperty("exclusiveMinimum", out var xmin) && xmin.ValueKind == JsonValueKind.Number && v <= xmin.GetDecimal())
                errors.Add($"{at}: {v} <= exclusiveMinimum");
            if (s.TryGetProperty("exclusiveMaximum", out var xmax) && xmax.ValueKind == JsonValueKind.Number && v >= xmax.GetDecimal())
                errors.Add($"{at}: {v} >= exclusiveMaximum");
        }
        return errors.Count == before;
    }

    private static bool IsType(JsonElement x, string type) => type switch
    {
        "object" => x.ValueKind == JsonValueKind.Object,
        "array" => x.ValueKind == JsonValueKind.Array,
        "string" => x.ValueKind == JsonValueKind.String,
        "number" => x.ValueKind == JsonValueKind.Number,
        "integer" => x.ValueKind == JsonValueKind.Number && (x.TryGetDecimal(out var d) ? decimal.Truncate(d) == d : Math.Floor(x.GetDouble()) == x.GetDouble()),
        "boolean" => x.ValueKind is JsonValueKind.True or JsonValueKind.False,
        "null" => x.ValueKind == JsonValueKind.Null,
        _ => throw new ArgumentException("unknown type " + type),
    };

    public static bool DeepEqual(JsonElement a, JsonElement b)
    {
        if (a.ValueKind == JsonValueKind.Number && b.ValueKind == JsonValueKind.Number)
            return a.TryGetDecimal(out var x) && b.TryGetDecimal(out var y) ? x == y : a.GetDouble() == b.GetDouble();
        if (a.ValueKind != b.ValueKind)
            return false;
        switch (a.ValueKind)
        {
            case JsonValueKind.String:
                return a.GetString() == b.GetString();
            case JsonValueKind.Array:
                return a.GetArrayLength() == b.GetArrayLength() && a.EnumerateArray().Zip(b.EnumerateArray()).All(p => DeepEqual(p.First, p.Second));
            case JsonValueKind.Object:
                var pa = a.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
                var pb = b.EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
                return pa.Count == pb.Count && pa.All(kv => pb.TryGetValue(kv.Key, out var v) && DeepEqual(kv.Value, v));
            default:
                return true;
        }
    }

    private static JsonElement Resolve(JsonElement root, string reference)
    {
        if (reference == "#")
            return root;
        var cur = root;
        foreach (var seg in reference[2..].Split('/'))
            cur = cur.GetProperty(seg.Replace("~1", "/").Replace("~0", "~"));
        return cur;
    }
}
