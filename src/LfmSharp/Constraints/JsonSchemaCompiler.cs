using System.Text;
using System.Text.Json;

namespace LfmSharp.Constraints;

/// <summary>
/// Turns a JSON schema into grammar nodes. The output is always a subset of what the schema accepts, chosen so a
/// generator can always finish:
/// <list type="bullet">
/// <item>properties come in schema order; required ones cannot be skipped, optional ones may be;</item>
/// <item>without <c>additionalProperties</c>, an object with <c>properties</c> gets no extra keys (an object
/// without <c>properties</c> gets any); free keys come after the defined ones, never spell a defined name, and
/// (when defined properties exist) use no escapes;</item>
/// <item>a schema without <c>type</c> is read as object/array/string/number when it only has that type's keywords,
/// otherwise as any value;</item>
/// <item><c>oneOf</c> is treated as <c>anyOf</c> (alternatives that overlap may produce a document matching two);</item>
/// <item><c>format</c> is ignored (listed in <see cref="Grammar.IgnoredKeywords"/>).</item>
/// </list>
/// Validation keywords it cannot enforce throw <see cref="NotSupportedException"/> naming the keyword.
/// </summary>
internal sealed class JsonSchemaCompiler
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

    private static readonly JsonDocument s_anySchema = JsonDocument.Parse("true");

    // The largest magnitude a 18-digit integer can have (the runtime's digit cap).
    private const long IntegerLimit = 999_999_999_999_999_999;

    private readonly GrammarBuilder _b;
    private readonly JsonElement _root;
    private readonly bool _python;
    private readonly List<string> _refStack = [];
    private readonly Dictionary<(string Ref, int Depth), int> _refMemo = [];

    public JsonSchemaCompiler(GrammarBuilder builder, JsonElement root, bool python)
    {
        _b = builder;
        _root = root;
        _python = python;
    }

    private int _depth;

    public int Compile(JsonElement s, string path)
    {
        int max = _b.Options.Limits.MaxNesting;
        if (++_depth > max)
            throw new GrammarLimitException("nesting", $"the schema nests more than {max} levels deep at {path} (limit: nesting)");
        try
        {
            return CompileSchema(s, path);
        }
        finally
        {
            _depth--;
        }
    }

    private int CompileSchema(JsonElement s, string path)
    {
        switch (s.ValueKind)
        {
            case JsonValueKind.True:
                return _b.AnyValue(_python);
            case JsonValueKind.False:
                return _b.Never();
            case JsonValueKind.Object:
                break;
            default:
                throw new ArgumentException($"the schema at {path} must be an object or a boolean, not {s.ValueKind}");
        }
        CheckKeywords(s, path);
        bool nullable = s.TryGetProperty("nullable", out var nl) && nl.ValueKind == JsonValueKind.True;

        if (s.TryGetProperty("$ref", out var reference))
        {
            RejectSiblings(s, path, "$ref");
            if (reference.ValueKind != JsonValueKind.String)
                throw new ArgumentException($"$ref at {path} must be a string");
            return OrNull(CompileRef(reference.GetString()!, path), nullable);
        }
        if (s.TryGetProperty("allOf", out var allOf))
        {
            if (allOf.ValueKind != JsonValueKind.Array || allOf.GetArrayLength() == 0)
                throw new ArgumentException($"allOf at {path} must be a non-empty array");
            RejectSiblings(s, path, "allOf");
            if (allOf.GetArrayLength() > 1)
                Unsupported(path, "allOf", "with more than one schema");
            return OrNull(Compile(allOf[0], path + "/allOf/0"), nullable);
        }
        bool hasAny = s.TryGetProperty("anyOf", out var anyOf);
        bool hasOne = s.TryGetProperty("oneOf", out var oneOf);
        if (hasAny || hasOne)
        {
            if (hasAny && hasOne)
                Unsupported(path, "oneOf", "together with anyOf");
            RejectSiblings(s, path, hasAny ? "anyOf" : "oneOf");
            var list = hasAny ? anyOf : oneOf;
            string name = hasAny ? "anyOf" : "oneOf";
            if (list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
                throw new ArgumentException($"{name} at {path} must be a non-empty array");
            GrammarBudget.Count("alternatives", name, list.GetArrayLength(), _b.Options.Limits.MaxAlternatives, path);
            var alts = new List<int>();
            int k = 0;
            foreach (var alt in list.EnumerateArray())
                alts.Add(Compile(alt, $"{path}/{name}/{k++}"));
            int union = alts.Count == 1 ? alts[0] : _b.Add(new UnionNode { Alternatives = [.. alts] });
            return OrNull(union, nullable);
        }

        HashSet<string>? types = ReadTypes(s, path);
        if (types is not null && nullable)
            types.Add("null");
        if (s.TryGetProperty("const", out var constant))
            return OrNull(TypeAllows(types, constant) ? _b.Literal([Serialize(constant)]) : _b.Never(), nullable && types is null);
        if (s.TryGetProperty("enum", out var values))
        {
            if (values.ValueKind != JsonValueKind.Array)
                throw new ArgumentException($"enum at {path} must be an array");
            GrammarBudget.Count("enum values", "enum", values.GetArrayLength(), _b.Options.Limits.MaxEnumValues, path);
            var alternatives = new List<byte[]>();
            foreach (var v in values.EnumerateArray())
            {
                if (TypeAllows(types, v))
                    alternatives.Add(Serialize(v));
            }
            return OrNull(_b.Literal(alternatives), nullable && types is null);
        }

        types ??= InferTypes(s);
        if (types is null)
            return _b.AnyValue(_python); // includes null, so nullable adds nothing
        var dispatch = new DispatchNode();
        var literals = new List<byte[]>();
        foreach (string type in types)
        {
            switch (type)
            {
                case "object":
                    dispatch.Object = CompileObject(s, path, null);
                    break;
                case "array":
                    dispatch.Array = CompileArray(s, path);
                    break;
                case "string":
                    dispatch.String = CompileString(s, path);
                    break;
                case "number":
                    dispatch.Number = CompileNumber(s, path, integer: false);
                    break;
                case "integer":
                    if (!types.Contains("number"))
                        dispatch.Number = CompileNumber(s, path, integer: true);
                    break;
                case "boolean":
                    literals.Add(GrammarBuilder.Keyword("true", _python));
                    literals.Add(GrammarBuilder.Keyword("false", _python));
                    break;
                case "null":
                    literals.Add(GrammarBuilder.Keyword("null", _python));
                    break;
            }
        }
        if (literals.Count > 0)
            dispatch.Literal = _b.Literal(literals);
        int[] chosen = [.. new[] { dispatch.Object, dispatch.Array, dispatch.String, dispatch.Number, dispatch.Literal }.Where(x => x >= 0)];
        return chosen.Length switch
        {
            0 => _b.Never(),
            1 => chosen[0],
            _ => _b.Add(dispatch),
        };
    }

    /// <summary>Tool parameters: an object schema written as keyword arguments <c>name(a=1, b="x")</c>.</summary>
    public int CompileKeywordArguments(JsonElement s, byte[] open, string path)
    {
        // Follow a top-level $ref (pydantic-style parameter schemas are sometimes just a reference).
        for (int hops = 0; s.ValueKind == JsonValueKind.Object && s.TryGetProperty("$ref", out var r) && r.ValueKind == JsonValueKind.String; hops++)
        {
            if (hops > 16)
                throw new ArgumentException($"$ref chain at {path} is too long");
            s = Resolve(r.GetString()!, path);
        }
        if (s.ValueKind == JsonValueKind.True)
            return _b.Add(new ObjectNode { Open = open, Close = (byte)')', BareKeys = true, KeySeparator = (byte)'=', Python = true });
        if (s.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"the parameters schema at {path} must be an object schema");
        CheckKeywords(s, path);
        if (s.TryGetProperty("type", out var type) && !(type.ValueKind == JsonValueKind.String && type.GetString() == "object"))
            throw new ArgumentException($"the parameters schema at {path} must have type \"object\"");
        foreach (var kw in new[] { "anyOf", "oneOf", "allOf", "enum", "const" })
        {
            if (s.TryGetProperty(kw, out _))
                Unsupported(path, kw, "on tool parameters");
        }
        return CompileObject(s, path, open);
    }

    private int OrNull(int node, bool nullable) =>
        nullable ? _b.Add(new UnionNode { Alternatives = [node, _b.Literal([GrammarBuilder.Keyword("null", _python)])] }) : node;

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

    private int CompileObject(JsonElement s, string path, byte[]? kwargsOpen)
    {
        bool bare = kwargsOpen is not null;
        var required = new List<string>();
        if (s.TryGetProperty("required", out var req))
        {
            if (req.ValueKind != JsonValueKind.Array)
                throw new ArgumentException($"required at {path} must be an array of strings");
            GrammarBudget.Count("properties", "required", req.GetArrayLength(), _b.Options.Limits.MaxProperties, path);
            foreach (var r in req.EnumerateArray())
            {
                if (r.ValueKind != JsonValueKind.String)
                    throw new ArgumentException($"required at {path} must be an array of strings");
                if (!required.Contains(r.GetString()!))
                    required.Add(r.GetString()!);
            }
        }
        bool hasProps = s.TryGetProperty("properties", out var props);
        if (hasProps && props.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"properties at {path} must be an object");
        int maxProps = _b.Options.Limits.MaxProperties;
        if (hasProps)
        {
            int count = 0;
            foreach (var _ in props.EnumerateObject())
                count++;
            GrammarBudget.Count("properties", "properties", count, maxProps, path);
        }

        int additional;
        bool additionalForbidden = false;
        if (s.TryGetProperty("additionalProperties", out var ap))
        {
            if (ap.ValueKind == JsonValueKind.False)
            {
                additional = -1;
                additionalForbidden = true;
            }
            else
                additional = Compile(ap, path + "/additionalProperties");
        }
        else
            additional = hasProps || bare ? -1 : _b.AnyValue(_python); // see the class remarks

        var list = new List<Prop>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (hasProps)
        {
            foreach (var p in props.EnumerateObject())
            {
                if (!names.Add(p.Name))
                    continue;
                list.Add(new Prop
                {
                    Name = p.Name,
                    Key = KeyBytes(p.Name, bare, path),
                    Value = Compile(p.Value, $"{path}/properties/{p.Name}"),
                    Required = required.Contains(p.Name),
                });
            }
        }
        foreach (string name in required)
        {
            if (names.Contains(name))
                continue;
            // Required but not described: its value follows additionalProperties (any value when that is absent).
            int value = additionalForbidden ? _b.Never() : additional >= 0 ? additional : _b.AnyValue(_python);
            list.Add(new Prop { Name = name, Key = KeyBytes(name, bare, path), Value = value, Required = true });
            names.Add(name);
        }

        ObjectNode node = bare
            ? new ObjectNode
            {
                Open = kwargsOpen!,
                Close = (byte)')',
                BareKeys = true,
                KeySeparator = (byte)'=',
                Python = true,
                WsAfterOpen = WsMode.None,
                WsAfterSeparator = WsMode.None,
                WsAfterComma = WsMode.Space,
                WsBeforeClose = WsMode.None,
            }
            : _b.NewJsonObject(_python);
        node.Props = [.. list];
        node.Additional = additional;
        return _b.Add(node);
    }

    private static byte[] KeyBytes(string name, bool bare, string path)
    {
        if (!bare)
        {
            var bytes = new List<byte>();
            AppendJsonString(bytes, name);
            bytes.Add((byte)':');
            return [.. bytes];
        }
        if (name.Length == 0 || !(name[0] is '_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z')
            || !name.All(c => c is '_' or >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'))
            throw new NotSupportedException($"parameter '{name}' (at {path}) is not a Python identifier, so it cannot be a keyword argument");
        return Encoding.ASCII.GetBytes(name + "=");
    }

    private int CompileArray(JsonElement s, string path)
    {
        var node = _b.NewJsonArray();
        if (!s.TryGetProperty("items", out var items) || items.ValueKind == JsonValueKind.True)
            node.Item = _b.AnyValue(_python);
        else if (items.ValueKind == JsonValueKind.Array)
        {
            Unsupported(path, "items", "in the array (tuple) form");
            node.Item = _b.AnyValue(_python);
        }
        else if (items.ValueKind == JsonValueKind.False)
        {
            node.Item = _b.Never();
            node.Max = 0;
        }
        else
            node.Item = Compile(items, path + "/items");
        node.Min = ReadCount(s, "minItems", path) ?? 0;
        node.Max = Math.Min(node.Max, ReadCount(s, "maxItems", path) ?? int.MaxValue);
        return _b.Add(node);
    }

    private int CompileString(JsonElement s, string path) => _b.Add(new StringNode
    {
        Min = ReadCount(s, "minLength", path) ?? 0,
        Max = ReadCount(s, "maxLength", path) ?? int.MaxValue,
        Python = _python,
    });

    private int CompileNumber(JsonElement s, string path, bool integer)
    {
        bool hasMin = s.TryGetProperty("minimum", out var min);
        bool hasMax = s.TryGetProperty("maximum", out var max);
        bool hasXMin = s.TryGetProperty("exclusiveMinimum", out var xmin);
        bool hasXMax = s.TryGetProperty("exclusiveMaximum", out var xmax);
        if (!(hasMin || hasMax || hasXMin || hasXMax))
            return _b.Add(new NumberNode { Integer = integer });
        if (!integer)
        {
            Unsupported(path, hasMin ? "minimum" : hasMax ? "maximum" : hasXMin ? "exclusiveMinimum" : "exclusiveMaximum", "on type number (only integer bounds are enforced)");
            return _b.Add(new NumberNode());
        }
        decimal lo = -IntegerLimit, hi = IntegerLimit;
        // Draft 4 writes exclusiveMinimum/Maximum as booleans that modify minimum/maximum.
        bool xminFlag = hasXMin && xmin.ValueKind == JsonValueKind.True;
        bool xmaxFlag = hasXMax && xmax.ValueKind == JsonValueKind.True;
        if (hasMin)
            lo = Math.Max(lo, xminFlag ? Math.Floor(Num(min, path)) + 1 : Math.Ceiling(Num(min, path)));
        if (hasMax)
            hi = Math.Min(hi, xmaxFlag ? Math.Ceiling(Num(max, path)) - 1 : Math.Floor(Num(max, path)));
        if (hasXMin && xmin.ValueKind == JsonValueKind.Number)
            lo = Math.Max(lo, Math.Floor(Num(xmin, path)) + 1);
        if (hasXMax && xmax.ValueKind == JsonValueKind.Number)
            hi = Math.Min(hi, Math.Ceiling(Num(xmax, path)) - 1);
        lo = Math.Max(lo, -IntegerLimit);
        hi = Math.Min(hi, IntegerLimit);
        return _b.Add(new NumberNode { Integer = true, Bounded = true, Min = (long)lo, Max = (long)hi });
    }

    private static decimal Num(JsonElement v, string path)
    {
        if (v.ValueKind != JsonValueKind.Number)
            throw new ArgumentException($"a numeric bound at {path} must be a number");
        if (v.TryGetDecimal(out decimal d))
            return d;
        double x = v.GetDouble();
        return x > 0 ? IntegerLimit * 10m : -IntegerLimit * 10m;
    }

    private static int? ReadCount(JsonElement s, string keyword, string path)
    {
        if (!s.TryGetProperty(keyword, out var v))
            return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDecimal(out decimal d) || d < 0 || decimal.Truncate(d) != d)
            throw new ArgumentException($"{keyword} at {path} must be a non-negative integer");
        return d > int.MaxValue ? int.MaxValue : (int)d;
    }

    private int CompileRef(string reference, string path)
    {
        var target = Resolve(reference, path);
        int depth = 0;
        foreach (string r in _refStack)
        {
            if (r == reference)
                depth++;
        }
        if (depth > _b.Options.MaxRecursionDepth)
            return _b.Never();
        if (_refMemo.TryGetValue((reference, depth), out int memo))
            return memo;
        _refStack.Add(reference);
        int node = Compile(target, reference);
        _refStack.RemoveAt(_refStack.Count - 1);
        _refMemo[(reference, depth)] = node;
        return node;
    }

    private JsonElement Resolve(string reference, string path)
    {
        if (reference == "#")
            return _root;
        if (!reference.StartsWith("#/", StringComparison.Ordinal))
        {
            Unsupported(path, "$ref", $"to '{reference}' (only local references #, #/$defs/…, #/definitions/… resolve)");
            return s_anySchema.RootElement;
        }
        var cur = _root;
        foreach (string raw in reference[2..].Split('/'))
        {
            string seg = Uri.UnescapeDataString(raw).Replace("~1", "/").Replace("~0", "~");
            if (cur.ValueKind == JsonValueKind.Object && cur.TryGetProperty(seg, out var next))
                cur = next;
            else if (cur.ValueKind == JsonValueKind.Array && int.TryParse(seg, out int i) && i >= 0 && i < cur.GetArrayLength())
                cur = cur[i];
            else
                throw new ArgumentException($"$ref '{reference}' at {path} does not resolve");
        }
        return cur;
    }

    /// <summary>Compact JSON bytes of an enum/const value (Python literals in the Python dialect).</summary>
    private byte[] Serialize(JsonElement v)
    {
        var o = new List<byte>();
        Write(o, v);
        return [.. o];
    }

    private void Write(List<byte> o, JsonElement v)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.Object:
                o.Add((byte)'{');
                bool first = true;
                foreach (var p in v.EnumerateObject())
                {
                    if (!first)
                        o.Add((byte)',');
                    first = false;
                    AppendJsonString(o, p.Name);
                    o.Add((byte)':');
                    Write(o, p.Value);
                }
                o.Add((byte)'}');
                break;
            case JsonValueKind.Array:
                o.Add((byte)'[');
                int i = 0;
                foreach (var x in v.EnumerateArray())
                {
                    if (i++ > 0)
                        o.Add((byte)',');
                    Write(o, x);
                }
                o.Add((byte)']');
                break;
            case JsonValueKind.String:
                AppendJsonString(o, v.GetString()!);
                break;
            case JsonValueKind.Number:
                o.AddRange(Encoding.UTF8.GetBytes(v.GetRawText()));
                break;
            case JsonValueKind.True:
                o.AddRange(GrammarBuilder.Keyword("true", _python));
                break;
            case JsonValueKind.False:
                o.AddRange(GrammarBuilder.Keyword("false", _python));
                break;
            default:
                o.AddRange(GrammarBuilder.Keyword("null", _python));
                break;
        }
    }

    /// <summary>A quoted JSON string that is also a valid Python literal with the same meaning (no <c>\/</c>, raw UTF-8).</summary>
    internal static void AppendJsonString(List<byte> o, string s)
    {
        o.Add((byte)'"');
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in s.EnumerateRunes())
        {
            int c = rune.Value;
            switch (c)
            {
                case '"': o.Add((byte)'\\'); o.Add((byte)'"'); break;
                case '\\': o.Add((byte)'\\'); o.Add((byte)'\\'); break;
                case '\n': o.Add((byte)'\\'); o.Add((byte)'n'); break;
                case '\r': o.Add((byte)'\\'); o.Add((byte)'r'); break;
                case '\t': o.Add((byte)'\\'); o.Add((byte)'t'); break;
                case '\b': o.Add((byte)'\\'); o.Add((byte)'b'); break;
                case '\f': o.Add((byte)'\\'); o.Add((byte)'f'); break;
                default:
                    if (c < 0x20)
                        o.AddRange(Encoding.ASCII.GetBytes($"\\u{c:x4}"));
                    else
                    {
                        int n = rune.EncodeToUtf8(utf8);
                        for (int k = 0; k < n; k++)
                            o.Add(utf8[k]);
                    }
                    break;
            }
        }
        o.Add((byte)'"');
    }
}
