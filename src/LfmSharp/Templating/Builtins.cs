using System.Globalization;
using System.Text;

namespace LfmSharp.Templating;

/// <summary>The template globals: <c>range</c>, <c>namespace</c>, <c>dict</c>, <c>raise_exception</c>, <c>strftime_now</c>.</summary>
internal static class Builtins
{
    private static readonly Dictionary<string, Value> s_globals = new(StringComparer.Ordinal)
    {
        ["range"] = new FunctionValue("range", Range),
        ["namespace"] = new FunctionValue("namespace", Namespace),
        ["dict"] = new FunctionValue("dict", Dict),
        ["raise_exception"] = new FunctionValue("raise_exception", (_, a) =>
            throw new TemplateException(a.Count > 0 ? PyFormat.Str(a.Positional[0]) : "raise_exception called", raisedByTemplate: true)),
        ["strftime_now"] = new FunctionValue("strftime_now", (ev, a) =>
            StringValue.Of(Strftime(ev.Clock(), a.Count > 0 ? PyFormat.Str(a.Positional[0]) : ""))),
    };

    public static Value? Global(string name) => s_globals.GetValueOrDefault(name);

    private static Value Range(Evaluator ev, CallArgs a)
    {
        long start = 0, stop, step = 1;
        if (a.Count == 0 || a.Count > 3)
            throw new TemplateException($"range expected 1 to 3 arguments, got {a.Count}");
        foreach (var v in a.Positional)
        {
            if (v is not (IntValue or BoolValue))
                throw new TemplateException($"'{v.TypeName}' object cannot be interpreted as an integer");
        }
        if (a.Count == 1)
            stop = PyFormat.ToLong(a.Positional[0]);
        else
        {
            start = PyFormat.ToLong(a.Positional[0]);
            stop = PyFormat.ToLong(a.Positional[1]);
            if (a.Count == 3)
                step = PyFormat.ToLong(a.Positional[2]);
        }
        if (step == 0)
            throw new TemplateException("range() arg 3 must not be zero");
        long count = step > 0 ? Math.Max(0, (stop - start + step - 1) / step) : Math.Max(0, (start - stop - step - 1) / -step);
        if (count > ev.Limits.MaxLoopIterations)
            throw new TemplateException($"range of {count:N0} items is over the {ev.Limits.MaxLoopIterations:N0} loop iteration limit (a sandbox limit)");
        var items = new List<Value>((int)count);
        for (long i = 0; i < count; i++)
            items.Add(IntValue.Of(start + (i * step)));
        return new ListValue(items);
    }

    private static Value Namespace(Evaluator ev, CallArgs a)
    {
        var ns = new NamespaceValue();
        foreach (var v in a.Positional)
        {
            if (v is not DictValue d)
                throw new TemplateException("namespace() takes keyword arguments or a dict");
            foreach (var (k, x) in d.Items)
                ns.Attributes[PyFormat.Str(k)] = x;
        }
        if (a.Named is not null)
        {
            foreach (var (k, v) in a.Named)
                ns.Attributes[k] = v;
        }
        return ns;
    }

    private static Value Dict(Evaluator ev, CallArgs a)
    {
        var d = new DictValue();
        foreach (var v in a.Positional)
        {
            if (v is DictValue src)
            {
                foreach (var (k, x) in src.Items)
                    d.Items[k] = x;
            }
            else
            {
                foreach (var pair in ev.Iterate(v))
                {
                    var kv = ev.Iterate(pair);
                    if (kv.Count != 2)
                        throw new TemplateException("dictionary update sequence element has the wrong length; 2 is required");
                    d.Items[kv[0]] = kv[1];
                }
            }
        }
        if (a.Named is not null)
        {
            foreach (var (k, v) in a.Named)
                d.Set(k, v);
        }
        return d;
    }

    private static readonly string[] s_days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

    /// <summary>Python's <c>datetime.strftime</c> in the C locale (glibc's <c>%-d</c> style flags included).</summary>
    public static string Strftime(DateTime t, string format)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c != '%' || i + 1 >= format.Length)
            {
                sb.Append(c);
                continue;
            }
            char d = format[++i];
            bool noPad = false;
            if (d == '-' && i + 1 < format.Length)
            {
                noPad = true;
                d = format[++i];
            }
            string P(int v, int width) => noPad ? v.ToString(ci) : v.ToString(new string('0', width), ci);
            int weekday = ((int)t.DayOfWeek + 6) % 7;
            sb.Append(d switch
            {
                'Y' => t.Year.ToString(ci),
                'y' => P(t.Year % 100, 2),
                'm' => P(t.Month, 2),
                'd' => P(t.Day, 2),
                'e' => t.Day.ToString(ci).PadLeft(2),
                'H' => P(t.Hour, 2),
                'I' => P(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => P(t.Minute, 2),
                'S' => P(t.Second, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'B' => ci.DateTimeFormat.GetMonthName(t.Month),
                'b' or 'h' => ci.DateTimeFormat.GetAbbreviatedMonthName(t.Month),
                'A' => s_days[weekday],
                'a' => s_days[weekday][..3],
                'j' => P(t.DayOfYear, 3),
                'w' => ((int)t.DayOfWeek).ToString(ci),
                'u' => (weekday + 1).ToString(ci),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", ci),
                'F' => t.ToString("yyyy-MM-dd", ci),
                'D' => t.ToString("MM/dd/yy", ci),
                'T' => t.ToString("HH:mm:ss", ci),
                'R' => t.ToString("HH:mm", ci),
                'c' => $"{s_days[weekday][..3]} {ci.DateTimeFormat.GetAbbreviatedMonthName(t.Month)} {t.Day,2} {t:HH:mm:ss} {t.Year}",
                'x' => t.ToString("MM/dd/yy", ci),
                'X' => t.ToString("HH:mm:ss", ci),
                'z' or 'Z' => "",
                '%' => "%",
                _ => "%" + d,
            });
        }
        return sb.ToString();
    }
}

/// <summary>Python's <c>str % args</c> for the conversions templates use (<c>%s %r %d %i %f %x %%</c>).</summary>
internal static class PercentFormat
{
    public static string Format(string fmt, Value args, Evaluator ev)
    {
        var list = args is ListValue { IsTuple: true } t ? t.Items : [args];
        var sb = new StringBuilder();
        int next = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c != '%')
            {
                sb.Append(c);
                continue;
            }
            if (++i >= fmt.Length)
                throw new TemplateException("incomplete format");
            int specStart = i;
            while (i < fmt.Length && "-+ #0123456789.".Contains(fmt[i]))
                i++;
            if (i >= fmt.Length)
                throw new TemplateException("incomplete format");
            char conv = fmt[i];
            if (conv == '%')
            {
                sb.Append('%');
                continue;
            }
            if (next >= list.Count)
                throw new TemplateException("not enough arguments for format string");
            var v = list[next++];
            string spec = fmt[specStart..i];
            sb.Append(Convert(conv, spec, v));
        }
        if (next < list.Count && args is ListValue { IsTuple: true })
            throw new TemplateException("not all arguments converted during string formatting");
        ev.CheckSize(sb.Length);
        return sb.ToString();
    }

    private static string Convert(char conv, string spec, Value v)
    {
        var ci = CultureInfo.InvariantCulture;
        int dot = spec.IndexOf('.');
        int precision = dot >= 0 && int.TryParse(spec.AsSpan(dot + 1), NumberStyles.None, ci, out int p) ? p : -1;
        string widthText = (dot >= 0 ? spec[..dot] : spec).TrimStart('-', '+', ' ', '#', '0');
        int width = int.TryParse(widthText, NumberStyles.None, ci, out int w) ? w : 0;
        string s = conv switch
        {
            's' => PyFormat.Str(v),
            'r' => PyFormat.Repr(v),
            'd' or 'i' => ((long)Math.Truncate(PyFormat.ToDouble(v))).ToString(ci),
            'f' or 'F' => PyFormat.ToDouble(v).ToString("F" + (precision < 0 ? 6 : precision), ci),
            'x' => PyFormat.ToLong(v).ToString("x", ci),
            'X' => PyFormat.ToLong(v).ToString("X", ci),
            _ => throw new TemplateException($"unsupported format character '{conv}'"),
        };
        if (conv == 's' && precision >= 0 && s.Length > precision)
            s = s[..precision];
        if (s.Length < width)
            s = spec.StartsWith('-') ? s.PadRight(width) : (spec.StartsWith('0') && conv != 's' ? s.PadLeft(width, '0') : s.PadLeft(width));
        return s;
    }
}
