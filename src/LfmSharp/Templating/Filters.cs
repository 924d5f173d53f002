using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LfmSharp.Templating;

/// <summary>The filters (<c>value | name(args)</c>) chat templates use, with Jinja2's semantics.</summary>
internal static partial class Filters
{
    private static readonly Dictionary<string, Func<Evaluator, Value, CallArgs, Value>> s_filters = Build();

    public static Func<Evaluator, Value, CallArgs, Value>? Get(string name) => s_filters.GetValueOrDefault(name);

    private static Dictionary<string, Func<Evaluator, Value, CallArgs, Value>> Build()
    {
        var f = new Dictionary<string, Func<Evaluator, Value, CallArgs, Value>>(StringComparer.Ordinal)
        {
            ["tojson"] = ToJson,
            ["trim"] = (_, v, a) => StringValue.Of(Methods.Strip(PyFormat.Str(v), a.Get(0, "chars") is StringValue c ? c.Value : null, true, true)),
            ["join"] = (ev, v, a) => StringValue.Of(Methods.Join(ev, a.Get(0, "d") is { } d ? PyFormat.Str(d) : "", Attribute(ev, ev.Iterate(v), a.Get(1, "attribute")))),
            ["length"] = Length,
            ["count"] = Length,
            ["default"] = Default,
            ["d"] = Default,
            ["items"] = (_, v, _) => v switch
            {
                DictValue d => ListValue.Generator(Methods.Items(d).Items),
                UndefinedValue => ListValue.Generator([]),
                _ => throw new TemplateException($"can only get item pairs from a mapping, not {v.TypeName}"),
            },
            ["list"] = (ev, v, _) => new ListValue([.. ev.Iterate(v)]),
            ["first"] = (ev, v, _) => ev.Iterate(v) is { Count: > 0 } l ? l[0] : new UndefinedValue("No first item, sequence was empty."),
            ["last"] = (ev, v, _) => v is ListValue { IsGenerator: true } ? throw new TemplateException("'generator' object is not reversible") : ev.Iterate(v) is { Count: > 0 } l ? l[^1] : new UndefinedValue("No last item, sequence was empty."),
            ["lower"] = (_, v, _) => StringValue.Of(PyFormat.Str(v).ToLowerInvariant()),
            ["upper"] = (_, v, _) => StringValue.Of(PyFormat.Str(v).ToUpperInvariant()),
            ["title"] = (_, v, _) => StringValue.Of(JinjaTitle(PyFormat.Str(v))),
            ["capitalize"] = (_, v, _) => StringValue.Of(Methods.Capitalize(PyFormat.Str(v))),
            ["replace"] = (ev, v, a) => StringValue.Of(Methods.Replace(ev, PyFormat.Str(v), PyFormat.Str(Methods.Arg(a, 0, "old")),
                PyFormat.Str(Methods.Arg(a, 1, "new")), a.Get(2, "count") is { } c and not NoneValue ? PyFormat.ToLong(c) : -1)),
            ["string"] = (_, v, _) => v is StringValue ? v : StringValue.Of(PyFormat.Str(v)),
            ["int"] = ToInt,
            ["float"] = ToFloat,
            ["round"] = Round,
            ["abs"] = (_, v, _) => v switch
            {
                IntValue i => IntValue.Of(Math.Abs(i.Value)),
                FloatValue x => new FloatValue(Math.Abs(x.Value)),
                BoolValue b => IntValue.Of(b.Value ? 1 : 0),
                _ => throw new TemplateException($"bad operand type for abs(): '{v.TypeName}'"),
            },
            ["map"] = Map,
            ["select"] = (ev, v, a) => Select(ev, v, a, attr: false, keep: true),
            ["reject"] = (ev, v, a) => Select(ev, v, a, attr: false, keep: false),
            ["selectattr"] = (ev, v, a) => Select(ev, v, a, attr: true, keep: true),
            ["rejectattr"] = (ev, v, a) => Select(ev, v, a, attr: true, keep: false),
            ["unique"] = Unique,
            ["sort"] = Sort,
            ["dictsort"] = DictSort,
            ["indent"] = Indent,
            ["wordcount"] = (_, v, _) => IntValue.Of(WordRegex().Count(PyFormat.Str(v))),
            ["safe"] = (_, v, _) => v is StringValue { IsSafe: true } ? v : new StringValue(PyFormat.Str(v), isSafe: true),
            ["e"] = Escape,
            ["escape"] = Escape,
            ["forceescape"] = Escape,
            ["reverse"] = (ev, v, _) => v is StringValue s
                ? StringValue.Of(new string(s.Value.Reverse().ToArray()))
                : ListValue.Generator(Enumerable.Reverse(ev.Iterate(v)).ToList()),
            ["sum"] = Sum,
            ["min"] = (ev, v, a) => MinMax(ev, v, a, max: false),
            ["max"] = (ev, v, a) => MinMax(ev, v, a, max: true),
            ["center"] = (_, v, a) => StringValue.Of(Center(PyFormat.Str(v), (int)PyFormat.ToLong(a.Get(0, "width") ?? IntValue.Of(80)))),
            ["format"] = (ev, v, a) => StringValue.Of(PercentFormat.Format(PyFormat.Str(v), new ListValue(a.Positional, isTuple: true), ev)),
            ["attr"] = (ev, v, a) => ev.GetAttr(v, PyFormat.Str(Methods.Arg(a, 0, "name"))),
            ["batch"] = Batch,
        };
        return f;
    }

    private static Value ToJson(Evaluator ev, Value v, CallArgs a)
    {
        // transformers: tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
        bool ensureAscii = a.Get(0, "ensure_ascii")?.IsTrue ?? false;
        var indentArg = a.Get(1, "indent");
        string? indent = indentArg switch
        {
            null or NoneValue => null,
            IntValue or BoolValue => new string(' ', (int)Math.Max(0, PyFormat.ToLong(indentArg))),
            StringValue s => s.Value,
            _ => throw new TemplateException($"tojson indent must be an int or a string, not {indentArg.TypeName}"),
        };
        string itemSep = indent is null ? ", " : ",", keySep = ": ";
        if (a.Get(2, "separators") is ListValue { Items.Count: 2 } seps)
        {
            itemSep = PyFormat.Str(seps.Items[0]);
            keySep = PyFormat.Str(seps.Items[1]);
        }
        bool sortKeys = a.Get(3, "sort_keys")?.IsTrue ?? false;
        if (v is UndefinedValue u)
            throw new TemplateException($"Object of type Undefined is not JSON serializable ({u.Hint})");
        var sb = new StringBuilder();
        PyFormat.AppendJson(sb, v, indent, itemSep, keySep, sortKeys, ensureAscii);
        ev.CheckSize(sb.Length);
        return StringValue.Of(sb.ToString());
    }

    private static Value Length(Evaluator ev, Value v, CallArgs a) => v switch
    {
        StringValue s => IntValue.Of(s.Value.EnumerateRunes().Count()),
        ListValue { IsGenerator: true } => throw new TemplateException("object of type 'generator' has no len()"),
        ListValue l => IntValue.Of(l.Items.Count),
        DictValue d => IntValue.Of(d.Items.Count),
        UndefinedValue => IntValue.Of(0),
        _ => throw new TemplateException($"object of type '{v.TypeName}' has no len()"),
    };

    private static Value Default(Evaluator ev, Value v, CallArgs a)
    {
        var fallback = a.Get(0, "default_value") ?? StringValue.Empty;
        bool boolean = a.Get(1, "boolean")?.IsTrue ?? false;
        return v is UndefinedValue || (boolean && !v.IsTrue) ? fallback : v;
    }

    private static Value ToInt(Evaluator ev, Value v, CallArgs a)
    {
        var fallback = a.Get(0, "default") ?? IntValue.Of(0);
        switch (v)
        {
            case IntValue: return v;
            case BoolValue b: return IntValue.Of(b.Value ? 1 : 0);
            case FloatValue f: return double.IsFinite(f.Value) ? IntValue.Of((long)Math.Truncate(f.Value)) : fallback;
            case StringValue s:
                string t = s.Value.Trim().Replace("_", "", StringComparison.Ordinal);
                if (long.TryParse(t, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long i))
                    return IntValue.Of(i);
                if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d))
                    return IntValue.Of((long)Math.Truncate(d));
                return fallback;
            default: return fallback;
        }
    }

    private static Value ToFloat(Evaluator ev, Value v, CallArgs a)
    {
        var fallback = a.Get(0, "default") ?? new FloatValue(0);
        switch (v)
        {
            case FloatValue: return v;
            case IntValue or BoolValue: return new FloatValue(PyFormat.ToDouble(v));
            case StringValue s:
                string t = s.Value.Trim().ToLowerInvariant();
                if (t is "inf" or "+inf" or "infinity")
                    return new FloatValue(double.PositiveInfinity);
                if (t is "-inf" or "-infinity")
                    return new FloatValue(double.NegativeInfinity);
                if (t is "nan")
                    return new FloatValue(double.NaN);
                return double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? new FloatValue(d) : fallback;
            default: return fallback;
        }
    }

    private static Value Round(Evaluator ev, Value v, CallArgs a)
    {
        int precision = (int)PyFormat.ToLong(a.Get(0, "precision") ?? IntValue.Of(0));
        string method = a.Get(1, "method") is StringValue m ? m.Value : "common";
        if (v is IntValue or BoolValue && method == "common")
            return IntValue.Of(PyFormat.ToLong(v));
        double x = PyFormat.ToDouble(v), scale = Math.Pow(10, precision);
        return new FloatValue(method switch
        {
            "common" => RoundHalfEven(x, precision),
            "ceil" => Math.Ceiling(x * scale) / scale,
            "floor" => Math.Floor(x * scale) / scale,
            _ => throw new TemplateException("method must be common, ceil or floor"),
        });
    }

    // Python's round(x, n) rounds the exact binary value half-to-even: round(2.675, 2) == 2.67 (2.675 is 2.67499…).
    private static double RoundHalfEven(double x, int precision)
    {
        if (!double.IsFinite(x) || precision > 15 || Math.Abs(x) >= 1e27)
            return x;
        if (precision < 0)
        {
            double scale = Math.Pow(10, -precision);
            return Math.Round(x / scale, MidpointRounding.ToEven) * scale;
        }
        decimal d = decimal.Parse(x.ToString("G17", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
        return (double)Math.Round(d, precision, MidpointRounding.ToEven);
    }

    private static Value Escape(Evaluator ev, Value v, CallArgs a) =>
        v is StringValue { IsSafe: true } ? v : new StringValue(Escape(PyFormat.Str(v)), isSafe: true);

    /// <summary>How Markup joins a plain string: HTML-escaped (markupsafe's escape).</summary>
    internal static string EscapeUnlessSafe(StringValue s) => s.IsSafe ? s.Value : Escape(s.Value);

    private static string Escape(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (char c in s)
        {
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&#34;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }
        return sb.ToString();
    }

    private static Value Indent(Evaluator ev, Value v, CallArgs a)
    {
        var w = a.Get(0, "width") ?? IntValue.Of(4);
        string indent = w is StringValue ws ? ws.Value : new string(' ', (int)Math.Clamp(PyFormat.ToLong(w), 0, 1000));
        bool first = a.Get(1, "first")?.IsTrue ?? false, blank = a.Get(2, "blank")?.IsTrue ?? false;
        var lines = Methods.SplitLines(PyFormat.Str(v) + "\n");
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Count; i++)
        {
            if (i > 0)
            {
                sb.Append('\n');
                if (blank || lines[i].Length > 0)
                    sb.Append(indent);
            }
            sb.Append(lines[i]);
            ev.CheckSize(sb.Length);
        }
        return StringValue.Of(first ? indent + sb : sb.ToString());
    }

    /// <summary>Jinja's <c>title</c>: words start after whitespace, hyphens and opening brackets.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            bool boundary = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
            sb.Append(boundary ? c : start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = boundary;
        }
        return sb.ToString();
    }

    private static string Center(string s, int width)
    {
        if (width <= s.Length)
            return s;
        int total = width - s.Length, left = (total / 2) + (total & width & 1);
        return new string(' ', left) + s + new string(' ', total - left);
    }

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordRegex();
}
