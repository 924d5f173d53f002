using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LfmSharp.Tests.Constraints;

/// <summary>
/// Writes random documents that a schema accepts, in the form the grammar promises to accept: properties in schema
/// order (optional ones sometimes left out), keys written with minimal escaping, whitespace only where the default
/// (Flexible) policy allows it. Independent of the grammar code.
/// </summary>
internal sealed class RandomDocuments(Random rng, JsonElement root)
{
    public static string AnyObject(Random rng) => new RandomDocuments(rng, default).Object(null, 0);

    public string Value(JsonElement s, int depth)
    {
        if (s.ValueKind == JsonValueKind.True || (s.ValueKind == JsonValueKind.Object && !s.EnumerateObject().Any()))
            return AnyValue(depth);
        if (s.TryGetProperty("$ref", out var r))
            return Value(Resolve(r.GetString()!), depth + 1);
        if (s.TryGetProperty("allOf", out var all))
            return Value(all[0], depth);
        if (s.TryGetProperty("anyOf", out var alts) || s.TryGetProperty("oneOf", out alts))
            return Value(alts[rng.Next(alts.GetArrayLength())], depth);
        if (s.TryGetProperty("const", out var c))
            return Compact(c);
        if (s.TryGetProperty("enum", out var e))
            return Compact(e[rng.Next(e.GetArrayLength())]);
        var types = !s.TryGetProperty("type", out var t) ? ["object"]
            : t.ValueKind == JsonValueKind.Array ? t.EnumerateArray().Select(x => x.GetString()!).ToList() : [t.GetString()!];
        if (s.TryGetProperty("nullable", out var nl) && nl.ValueKind == JsonValueKind.True)
            types.Add("null");
        return types[rng.Next(types.Count)] switch
        {
            "object" => Object(s, depth),
            "array" => Array(s, depth),
            "string" => String(Int(s, "minLength", 0), Int(s, "maxLength", 12), escapes: true),
            "integer" => Integer(s),
            "number" => Number(),
            "boolean" => rng.Next(2) == 0 ? "true" : "false",
            _ => "null",
        };
    }

    private string AnyValue(int depth) => rng.Next(depth > 3 ? 5 : 7) switch
    {
        0 => String(0, 8, escapes: true),
        1 => Number(),
        2 => "true",
        3 => "false",
        4 => "null",
        5 => Object(null, depth),
        _ => Array(default, depth),
    };

    public string Object(JsonElement? s, int depth)
    {
        var members = new List<string>();
        var used = new HashSet<string>();
        if (s is JsonElement schema)
        {
            var required = schema.TryGetProperty("required", out var req) ? req.EnumerateArray().Select(x => x.GetString()!).ToList() : [];
            bool hasProps = schema.TryGetProperty("properties", out var props);
            if (hasProps)
            {
                foreach (var p in props.EnumerateObject())
                {
                    used.Add(p.Name);
                    // Optional members thin out with depth (recursive schemas are only unrolled a few levels).
                    if (required.Contains(p.Name) || (depth <= 8 && rng.Next(2) == 0))
                        members.Add(Key(p.Name) + ColonWs() + Value(p.Value, depth + 1));
                }
            }
            bool hasAp = schema.TryGetProperty("additionalProperties", out var ap);
            foreach (var name in required.Where(n => !used.Contains(n)))
            {
                used.Add(name);
                members.Add(Key(name) + ColonWs() + (hasAp ? Value(ap, depth + 1) : AnyValue(depth + 1)));
            }
            bool free = hasAp ? ap.ValueKind != JsonValueKind.False : !hasProps;
            if (free)
            {
                for (int k = rng.Next(3); k > 0; k--)
                {
                    string name;
                    do
                        name = "x" + rng.Next(1000);
                    while (!used.Add(name));
                    string key = hasProps ? Key(name) : String(0, 6, escapes: true);
                    members.Add(key + ColonWs() + (hasAp ? Value(ap, depth + 1) : AnyValue(depth + 1)));
                }
            }
        }
        else
        {
            for (int k = rng.Next(depth > 3 ? 2 : 4); k > 0; k--)
                members.Add(String(0, 6, escapes: true) + ColonWs() + AnyValue(depth + 1));
        }
        return Wrap('{', '}', members);
    }

    private string Array(JsonElement s, int depth)
    {
        int min = s.ValueKind == JsonValueKind.Object ? Int(s, "minItems", 0) : 0;
        int max = s.ValueKind == JsonValueKind.Object ? Int(s, "maxItems", min + 3) : 3;
        if (s.ValueKind == JsonValueKind.Object && s.TryGetProperty("items", out var none) && none.ValueKind == JsonValueKind.False)
            max = 0;
        int n = rng.Next(min, Math.Min(max, min + 3) + 1);
        var items = new List<string>();
        for (int i = 0; i < n; i++)
            items.Add(s.ValueKind == JsonValueKind.Object && s.TryGetProperty("items", out var it) ? Value(it, depth + 1) : AnyValue(depth + 1));
        return Wrap('[', ']', items);
    }

    private string Wrap(char open, char close, List<string> members)
    {
        var sb = new StringBuilder().Append(open);
        if (members.Count == 0)
            return sb.Append(rng.Next(4) == 0 ? " " : "").Append(close).ToString();
        sb.Append(Ws());
        for (int i = 0; i < members.Count; i++)
        {
            if (i > 0)
                sb.Append(',').Append(Ws());
            sb.Append(members[i]);
        }
        return sb.Append(Ws()).Append(close).ToString();
    }

    /// <summary>Flexible whitespace: nothing, one space, or a newline and up to 20 spaces/tabs.</summary>
    private string Ws() => rng.Next(4) switch
    {
        0 => " ",
        1 => "\n" + new string(' ', rng.Next(0, 21)),
        2 => "\n\t",
        _ => "",
    };

    private string ColonWs() => rng.Next(2) == 0 ? ":" : ": ";

    private static string Key(string name) => Escape(name);

    /// <summary>Minimal escaping: quote, backslash and control characters only; everything else raw UTF-8.</summary>
    public static string Escape(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char c in s)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                < ' ' => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return sb.Append('"').ToString();
    }

    private string String(int min, int max, bool escapes)
    {
        string[] pieces = ["a", "Z", " ", "~", "\u007f", "é", "日", "🙂", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9", "\\u0041", "\\uD83D\\uDE00", "\\ud7ff"];
        int n = rng.Next(min, Math.Min(max, min + 8) + 1);
        var sb = new StringBuilder("\"");
        for (int i = 0; i < n; i++)
            sb.Append(pieces[rng.Next(escapes ? pieces.Length : 8)]);
        return sb.Append('"').ToString();
    }

    private string Number()
    {
        var sb = new StringBuilder();
        if (rng.Next(3) == 0)
            sb.Append('-');
        sb.Append(rng.Next(4) == 0 ? "0" : rng.NextInt64(1, 1_000_000_000_000).ToString(CultureInfo.InvariantCulture));
        if (rng.Next(2) == 0)
            sb.Append('.').Append(rng.Next(0, 100000));
        if (rng.Next(3) == 0)
            sb.Append("eE"[rng.Next(2)]).Append(rng.Next(3) switch { 0 => "+", 1 => "-", _ => "" }).Append(rng.Next(0, 300));
        return sb.ToString();
    }

    private string Integer(JsonElement s)
    {
        long lo = s.TryGetProperty("minimum", out var a) ? (long)Math.Ceiling(a.GetDecimal()) : -1_000_000;
        long hi = s.TryGetProperty("maximum", out var b) ? (long)Math.Floor(b.GetDecimal()) : 1_000_000;
        if (s.TryGetProperty("exclusiveMinimum", out var xa))
            lo = Math.Max(lo, (long)Math.Floor(xa.GetDecimal()) + 1);
        if (s.TryGetProperty("exclusiveMaximum", out var xb))
            hi = Math.Min(hi, (long)Math.Ceiling(xb.GetDecimal()) - 1);
        return rng.NextInt64(lo, hi + 1).ToString(CultureInfo.InvariantCulture);
    }

    private static int Int(JsonElement s, string name, int fallback) => s.TryGetProperty(name, out var v) ? v.GetInt32() : fallback;

    private static string Compact(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", v.EnumerateObject().Select(p => Escape(p.Name) + ":" + Compact(p.Value))) + "}",
        JsonValueKind.Array => "[" + string.Join(",", v.EnumerateArray().Select(Compact)) + "]",
        JsonValueKind.String => Escape(v.GetString()!),
        _ => v.GetRawText(),
    };

    private JsonElement Resolve(string reference)
    {
        if (reference == "#")
            return root;
        var cur = root;
        foreach (var seg in reference[2..].Split('/'))
            cur = cur.GetProperty(seg);
        return cur;
    }
}
