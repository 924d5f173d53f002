using System.Globalization;
using System.Text.Json;

namespace LfmSharp.Server.OpenAi;

/// <summary>
/// Typed reads from a request body with errors that name the parameter and what was wrong, so every bad input
/// becomes a 400 in OpenAI's error shape (a DTO deserializer would give a generic message or a 500).
/// </summary>
internal static class Json
{
    public static bool TryGet(JsonElement obj, string name, out JsonElement value)
    {
        if (obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null)
            return true;
        value = default;
        return false;
    }

    public static string? String(JsonElement obj, string name, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.String)
            throw ApiException.WrongType(param ?? name, "a string", v.ValueKind);
        return v.GetString();
    }

    public static bool? Bool(JsonElement obj, string name, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.WrongType(param ?? name, "a boolean", v.ValueKind),
        };
    }

    public static double? Number(JsonElement obj, string name, double min = double.NegativeInfinity, double max = double.PositiveInfinity, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw ApiException.WrongType(param ?? name, "a number", v.ValueKind);
        double d = v.GetDouble();
        if (!double.IsFinite(d) || d < min || d > max)
            throw ApiException.BadRequest($"'{param ?? name}' must be between {F(min)} and {F(max)} (got {F(d)}).", param ?? name);
        return d;
    }

    public static long? Integer(JsonElement obj, string name, long min = long.MinValue, long max = long.MaxValue, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number)
            throw ApiException.WrongType(param ?? name, "an integer", v.ValueKind);
        if (!v.TryGetInt64(out long l))
        {
            // 5.0 is an integer to JSON Schema; 5.5 and 1e30 are not.
            double d = v.GetDouble();
            if (d != Math.Floor(d) || d < long.MinValue || d > long.MaxValue)
                throw ApiException.WrongType(param ?? name, "an integer", v.ValueKind);
            l = (long)d;
        }
        if (l < min || l > max)
            throw ApiException.BadRequest($"'{param ?? name}' must be between {min} and {max} (got {l}).", param ?? name);
        return l;
    }

    public static JsonElement? Object(JsonElement obj, string name, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType(param ?? name, "an object", v.ValueKind);
        return v;
    }

    public static JsonElement? Array(JsonElement obj, string name, string? param = null)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType(param ?? name, "an array", v.ValueKind);
        return v;
    }

    /// <summary>A string or an array of strings (OpenAI's <c>stop</c>).</summary>
    public static IReadOnlyList<string>? StringOrStrings(JsonElement obj, string name, int maxCount)
    {
        if (!TryGet(obj, name, out var v))
            return null;
        if (v.ValueKind == JsonValueKind.String)
        {
            string s = v.GetString()!;
            return s.Length == 0 ? null : [s];
        }
        if (v.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType(name, "a string or an array of strings", v.ValueKind);
        var list = new List<string>();
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw ApiException.WrongType($"{name}[{i}]", "a string", item.ValueKind);
            string s = item.GetString()!;
            if (s.Length == 0)
                throw ApiException.BadRequest($"'{name}[{i}]' is empty.", name);
            list.Add(s);
            i++;
        }
        if (list.Count > maxCount)
            throw ApiException.BadRequest($"'{name}' has {list.Count} entries; at most {maxCount} are allowed.", name);
        return list.Count == 0 ? null : list;
    }

    private static string F(double d) => d.ToString("R", CultureInfo.InvariantCulture);
}
