using System.Globalization;
using System.Text;
using LfmSharp.Chat;

namespace LfmSharp.Templating;

/// <summary>Python's <c>str</c>, <c>repr</c>, <c>json.dumps</c>, <c>==</c> and ordering for template values.</summary>
internal static class PyFormat
{
    /// <summary>Python <c>str(value)</c>, which is what <c>{{ value }}</c> prints.</summary>
    public static string Str(Value v) => v switch
    {
        StringValue s => s.Value,
        UndefinedValue => "",
        _ => Repr(v),
    };

    public static void AppendStr(StringBuilder sb, Value v)
    {
        switch (v)
        {
            case StringValue s: sb.Append(s.Value); break;
            case UndefinedValue: break;
            default: AppendRepr(sb, v); break;
        }
    }

    public static string Repr(Value v)
    {
        var sb = new StringBuilder();
        AppendRepr(sb, v);
        return sb.ToString();
    }

    public static void AppendRepr(StringBuilder sb, Value v, int depth = 0)
    {
        if (depth > 200)
            throw new TemplateException("value nested too deeply to print");
        switch (v)
        {
            case NoneValue: sb.Append("None"); break;
            case UndefinedValue: break;
            case BoolValue b: sb.Append(b.Value ? "True" : "False"); break;
            case IntValue i: sb.Append(i.Value.ToString(CultureInfo.InvariantCulture)); break;
            case FloatValue f: sb.Append(FloatStr(f.Value)); break;
            case StringValue s: AppendStringRepr(sb, s.Value); break;
            case ListValue { IsGenerator: true }:
                sb.Append("<generator object>");
                break;
            case ListValue l:
                sb.Append(l.IsTuple ? '(' : '[');
                for (int i = 0; i < l.Items.Count; i++)
                {
                    if (i > 0)
                        sb.Append(", ");
                    AppendRepr(sb, l.Items[i], depth + 1);
                }
                if (l.IsTuple && l.Items.Count == 1)
                    sb.Append(',');
                sb.Append(l.IsTuple ? ')' : ']');
                break;
            case DictValue d:
                sb.Append('{');
                bool first = true;
                foreach (var kv in d.Items)
                {
                    if (!first)
                        sb.Append(", ");
                    first = false;
                    AppendRepr(sb, kv.Key, depth + 1);
                    sb.Append(": ");
                    AppendRepr(sb, kv.Value, depth + 1);
                }
                sb.Append('}');
                break;
            case NamespaceValue: sb.Append("<Namespace>"); break;
            case MacroValue m: sb.Append("<Macro '").Append(m.Node.Name).Append("'>"); break;
            case FunctionValue fn: sb.Append("<function ").Append(fn.Name).Append('>'); break;
            default: sb.Append('<').Append(v.TypeName).Append('>'); break;
        }
    }

    /// <summary>Python <c>repr(float)</c> (<c>str</c> is the same): <c>1.0</c>, <c>1e-05</c>, <c>inf</c>, <c>nan</c>.</summary>
    public static string FloatStr(double d)
    {
        if (double.IsNaN(d))
            return "nan";
        if (double.IsInfinity(d))
            return d > 0 ? "inf" : "-inf";
        return PythonJson.FloatRepr(d);
    }

    /// <summary>Python's <c>repr(str)</c>: single quotes unless the text has a single quote and no double quote.</summary>
    public static void AppendStringRepr(StringBuilder sb, string s)
    {
        char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        sb.Append(q);
        foreach (char c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == q)
                        sb.Append('\\').Append(c);
                    else if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == '\u00AD')
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append(q);
    }

    /// <summary>transformers' <c>tojson</c>: <c>json.dumps(x, ensure_ascii=False, indent, separators, sort_keys)</c>.</summary>
    public static void AppendJson(StringBuilder sb, Value v, string? indent, string itemSep, string keySep, bool sortKeys, bool ensureAscii = false, int level = 0)
    {
        if (level > 200)
            throw new TemplateException("value nested too deeply for tojson");
        switch (v)
        {
            case NoneValue: sb.Append("null"); break;
            case BoolValue b: sb.Append(b.Value ? "true" : "false"); break;
            case IntValue i: sb.Append(i.Value.ToString(CultureInfo.InvariantCulture)); break;
            case FloatValue f: sb.Append(PythonJson.FloatRepr(f.Value)); break;
            case StringValue s: PythonJson.DumpString(s.Value, sb, ensureAscii); break;
            case ListValue { IsGenerator: true }:
                throw new TemplateException("Object of type generator is not JSON serializable");
            case ListValue l:
                if (l.Items.Count == 0)
                {
                    sb.Append("[]");
                    break;
                }
                sb.Append('[');
                for (int i = 0; i < l.Items.Count; i++)
                {
                    if (i > 0)
                        sb.Append(itemSep);
                    NewLine(sb, indent, level + 1);
                    AppendJson(sb, l.Items[i], indent, itemSep, keySep, sortKeys, ensureAscii, level + 1);
                }
                NewLine(sb, indent, level);
                sb.Append(']');
                break;
            case DictValue d:
                AppendJsonObject(sb, d, indent, itemSep, keySep, sortKeys, ensureAscii, level);
                break;
            default:
                throw new TemplateException($"Object of type {v.TypeName} is not JSON serializable");
        }
    }

    private static void AppendJsonObject(StringBuilder sb, DictValue d, string? indent, string itemSep, string keySep, bool sortKeys, bool ensureAscii, int level)
    {
        if (d.Items.Count == 0)
        {
            sb.Append("{}");
            return;
        }
        var entries = new List<KeyValuePair<string, Value>>(d.Items.Count);
        foreach (var kv in d.Items)
            entries.Add(new(JsonKey(kv.Key), kv.Value));
        if (sortKeys)
            entries.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        sb.Append('{');
        for (int i = 0; i < entries.Count; i++)
        {
            if (i > 0)
                sb.Append(itemSep);
            NewLine(sb, indent, level + 1);
            PythonJson.DumpString(entries[i].Key, sb, ensureAscii);
            sb.Append(keySep);
            AppendJson(sb, entries[i].Value, indent, itemSep, keySep, sortKeys, ensureAscii, level + 1);
        }
        NewLine(sb, indent, level);
        sb.Append('}');
    }

    private static string JsonKey(Value k) => k switch
    {
        StringValue s => s.Value,
        BoolValue b => b.Value ? "true" : "false",
        NoneValue => "null",
        IntValue or FloatValue => Str(k),
        _ => throw new TemplateException($"keys must be str, int, float, bool or None, not {k.TypeName}"),
    };

    private static void NewLine(StringBuilder sb, string? indent, int level)
    {
        if (indent is null)
            return;
        sb.Append('\n');
        for (int i = 0; i < level; i++)
            sb.Append(indent);
    }

    /// <summary>Python <c>==</c>.</summary>
    public static bool Eq(Value a, Value b)
    {
        if (ReferenceEquals(a, b))
            return true;
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is FloatValue || b is FloatValue)
                return ToDouble(a) == ToDouble(b);
            return ToLong(a) == ToLong(b);
        }
        switch (a)
        {
            case StringValue s: return b is StringValue t && s.Value == t.Value;
            case NoneValue: return b is NoneValue;
            case UndefinedValue: return b is UndefinedValue;
            case ListValue l when b is ListValue m && !l.IsGenerator && !m.IsGenerator:
                if (l.Items.Count != m.Items.Count)
                    return false;
                for (int i = 0; i < l.Items.Count; i++)
                {
                    if (!Eq(l.Items[i], m.Items[i]))
                        return false;
                }
                return true;
            case DictValue d when b is DictValue e:
                if (d.Items.Count != e.Items.Count)
                    return false;
                foreach (var kv in d.Items)
                {
                    if (!e.Items.TryGetValue(kv.Key, out var other) || !Eq(kv.Value, other))
                        return false;
                }
                return true;
            default: return false;
        }
    }

    /// <summary>Python ordering (<c>&lt;</c> and friends): numbers, strings and lists; anything else is a TypeError.</summary>
    public static int Compare(Value a, Value b, string op)
    {
        if (IsNumber(a) && IsNumber(b))
        {
            if (a is FloatValue || b is FloatValue)
                return ToDouble(a).CompareTo(ToDouble(b));
            return ToLong(a).CompareTo(ToLong(b));
        }
        if (a is StringValue s && b is StringValue t)
            return CompareCodePoints(s.Value, t.Value);
        if (a is ListValue l && b is ListValue m)
        {
            int n = Math.Min(l.Items.Count, m.Items.Count);
            for (int i = 0; i < n; i++)
            {
                if (!Eq(l.Items[i], m.Items[i]))
                    return Compare(l.Items[i], m.Items[i], op);
            }
            return l.Items.Count.CompareTo(m.Items.Count);
        }
        throw new TemplateException($"'{op}' not supported between instances of '{a.TypeName}' and '{b.TypeName}'");
    }

    /// <summary>Orders strings by Unicode code point, as Python does (UTF-16 ordinal order differs above U+D7FF).</summary>
    public static int CompareCodePoints(string a, string b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
        {
            char x = a[i], y = b[i];
            if (x == y)
                continue;
            if (char.IsSurrogate(x) || char.IsSurrogate(y))
            {
                int cx = char.IsSurrogate(x) ? 0x10000 + x : x, cy = char.IsSurrogate(y) ? 0x10000 + y : y;
                return cx.CompareTo(cy);
            }
            return x.CompareTo(y);
        }
        return a.Length.CompareTo(b.Length);
    }

    public static bool IsNumber(Value v) => v is IntValue or FloatValue or BoolValue;

    public static double ToDouble(Value v) => v switch
    {
        IntValue i => i.Value,
        FloatValue f => f.Value,
        BoolValue b => b.Value ? 1 : 0,
        _ => throw new TemplateException($"expected a number, got {v.TypeName}"),
    };

    public static long ToLong(Value v) => v switch
    {
        IntValue i => i.Value,
        BoolValue b => b.Value ? 1 : 0,
        FloatValue f => (long)f.Value,
        _ => throw new TemplateException($"expected an integer, got {v.TypeName}"),
    };
}

/// <summary>Python equality and hashing for dict keys (1, 1.0 and True are the same key).</summary>
internal sealed class PyEqualityComparer : IEqualityComparer<Value>
{
    public static readonly PyEqualityComparer Instance = new();

    public bool Equals(Value? x, Value? y) => x is not null && y is not null && PyFormat.Eq(x, y);

    public int GetHashCode(Value v) => v switch
    {
        StringValue s => s.Value.GetHashCode(StringComparison.Ordinal),
        IntValue i => i.Value.GetHashCode(),
        BoolValue b => (b.Value ? 1L : 0L).GetHashCode(),
        FloatValue f => f.Value == Math.Floor(f.Value) && Math.Abs(f.Value) < 9e18 ? ((long)f.Value).GetHashCode() : f.Value.GetHashCode(),
        NoneValue => 17,
        ListValue l when l.IsTuple => l.Items.Count,
        _ => throw new TemplateException($"unhashable type: '{v.TypeName}'"),
    };
}
