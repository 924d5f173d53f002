using System.Globalization;
using System.Text;
using LfmSharp.Chat;

namespace LfmSharp.Templating;

/// <summary>
/// The Python methods a template may call on strings, dicts and lists. Methods that would modify a list or dict
/// (<c>append</c>, <c>pop</c>, <c>update</c>, …) fail as they do in transformers' ImmutableSandboxedEnvironment.
/// </summary>
internal static class Methods
{
    private static readonly HashSet<string> s_mutating = new(StringComparer.Ordinal)
    {
        "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse", "update", "setdefault", "popitem", "add", "discard",
    };

    public static FunctionValue? Bind(Value obj, string name)
    {
        switch (obj)
        {
            case StringValue s:
                return StringMethod(s.Value, name);
            case DictValue d:
                if (s_mutating.Contains(name))
                    return Unsafe("dict", name);
                return name switch
                {
                    "items" => Fn(name, (_, _) => Items(d)),
                    "keys" => Fn(name, (_, _) => new ListValue([.. d.Items.Keys])),
                    "values" => Fn(name, (_, _) => new ListValue([.. d.Items.Values])),
                    "get" => Fn(name, (_, a) =>
                        d.Items.TryGetValue(Arg(a, 0, "key"), out var v) ? v : a.Get(1, "default") ?? NoneValue.Instance),
                    "copy" => Fn(name, (_, _) => Copy(d)),
                    _ => null,
                };
            case ListValue l:
                if (s_mutating.Contains(name))
                    return Unsafe(l.TypeName, name);
                return name switch
                {
                    "index" => Fn(name, (_, a) =>
                    {
                        var x = Arg(a, 0, "value");
                        int i = l.Items.FindIndex(v => PyFormat.Eq(v, x));
                        return i >= 0 ? IntValue.Of(i) : throw new TemplateException($"{PyFormat.Repr(x)} is not in list");
                    }),
                    "count" => Fn(name, (_, a) =>
                    {
                        var x = Arg(a, 0, "value");
                        return IntValue.Of(l.Items.Count(v => PyFormat.Eq(v, x)));
                    }),
                    "copy" => Fn(name, (_, _) => new ListValue([.. l.Items], l.IsTuple)),
                    _ => null,
                };
            default:
                return null;
        }
    }

    public static ListValue Items(DictValue d)
    {
        var items = new List<Value>(d.Items.Count);
        foreach (var (k, v) in d.Items)
            items.Add(new ListValue([k, v], isTuple: true));
        return new ListValue(items);
    }

    private static DictValue Copy(DictValue d)
    {
        var c = new DictValue(d.Items.Count);
        foreach (var (k, v) in d.Items)
            c.Items[k] = v;
        return c;
    }

    private static FunctionValue Fn(string name, Func<Evaluator, CallArgs, Value> f) => new(name, f);

    private static FunctionValue Unsafe(string type, string name) =>
        Fn(name, (_, _) => throw new TemplateException($"access to attribute '{name}' of '{type}' object is unsafe (the template sandbox is immutable, as in transformers)"));

    internal static Value Arg(CallArgs a, int index, string name) =>
        a.Get(index, name) ?? throw new TemplateException($"missing argument '{name}'");

    private static string? OptString(CallArgs a, int index, string name) => a.Get(index, name) switch
    {
        null or NoneValue => null,
        StringValue s => s.Value,
        var v => throw new TemplateException($"argument '{name}' must be str or None, not {v.TypeName}"),
    };

    private static string Str(CallArgs a, int index, string name) => Arg(a, index, name) is StringValue s
        ? s.Value
        : throw new TemplateException($"argument '{name}' must be str, not {Arg(a, index, name).TypeName}");

    private static FunctionValue? StringMethod(string s, string name) => name switch
    {
        "upper" => Fn(name, (_, _) => StringValue.Of(s.ToUpperInvariant())),
        "lower" => Fn(name, (_, _) => StringValue.Of(s.ToLowerInvariant())),
        "title" => Fn(name, (_, _) => StringValue.Of(PyTitle(s))),
        "capitalize" => Fn(name, (_, _) => StringValue.Of(Capitalize(s))),
        "strip" => Fn(name, (_, a) => StringValue.Of(Strip(s, OptString(a, 0, "chars"), true, true))),
        "lstrip" => Fn(name, (_, a) => StringValue.Of(Strip(s, OptString(a, 0, "chars"), true, false))),
        "rstrip" => Fn(name, (_, a) => StringValue.Of(Strip(s, OptString(a, 0, "chars"), false, true))),
        "split" => Fn(name, (_, a) => Split(s, OptString(a, 0, "sep"), (int)PyFormat.ToLong(a.Get(1, "maxsplit") ?? IntValue.Of(-1)), false)),
        "rsplit" => Fn(name, (_, a) => Split(s, OptString(a, 0, "sep"), (int)PyFormat.ToLong(a.Get(1, "maxsplit") ?? IntValue.Of(-1)), true)),
        "splitlines" => Fn(name, (_, _) => new ListValue(SplitLines(s).ConvertAll(x => (Value)StringValue.Of(x)))),
        "startswith" => Fn(name, (_, a) => BoolValue.Of(AnyAffix(Arg(a, 0, "prefix"), p => s.StartsWith(p, StringComparison.Ordinal)))),
        "endswith" => Fn(name, (_, a) => BoolValue.Of(AnyAffix(Arg(a, 0, "suffix"), p => s.EndsWith(p, StringComparison.Ordinal)))),
        "replace" => Fn(name, (ev, a) => StringValue.Of(Replace(ev, s, Str(a, 0, "old"), Str(a, 1, "new"), a.Get(2, "count") is { } c ? PyFormat.ToLong(c) : -1))),
        "find" => Fn(name, (_, a) => IntValue.Of(s.IndexOf(Str(a, 0, "sub"), StringComparison.Ordinal))),
        "rfind" => Fn(name, (_, a) => IntValue.Of(s.LastIndexOf(Str(a, 0, "sub"), StringComparison.Ordinal))),
        "index" => Fn(name, (_, a) => s.IndexOf(Str(a, 0, "sub"), StringComparison.Ordinal) is var i and >= 0 ? IntValue.Of(i) : throw new TemplateException("substring not found")),
        "count" => Fn(name, (_, a) => IntValue.Of(Count(s, Str(a, 0, "sub")))),
        "join" => Fn(name, (ev, a) => StringValue.Of(Join(ev, s, ev.Iterate(Arg(a, 0, "iterable"))))),
        "format" => Fn(name, (ev, a) => StringValue.Of(StrFormat(ev, s, a))),
        "removeprefix" => Fn(name, (_, a) => StringValue.Of(Str(a, 0, "prefix") is var p && s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s)),
        "removesuffix" => Fn(name, (_, a) => StringValue.Of(Str(a, 0, "suffix") is var p && p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s)),
        "isdigit" => Fn(name, (_, _) => BoolValue.Of(s.Length > 0 && s.All(char.IsDigit))),
        "isalpha" => Fn(name, (_, _) => BoolValue.Of(s.Length > 0 && s.All(char.IsLetter))),
        "isalnum" => Fn(name, (_, _) => BoolValue.Of(s.Length > 0 && s.All(char.IsLetterOrDigit))),
        "isspace" => Fn(name, (_, _) => BoolValue.Of(s.Length > 0 && s.All(PythonJson.IsSpace))),
        "islower" => Fn(name, (_, _) => BoolValue.Of(s.Any(char.IsLetter) && !s.Any(char.IsUpper))),
        "isupper" => Fn(name, (_, _) => BoolValue.Of(s.Any(char.IsLetter) && !s.Any(char.IsLower))),
        _ => null,
    };

    private static bool AnyAffix(Value v, Func<string, bool> test)
    {
        if (v is StringValue s)
            return test(s.Value);
        if (v is ListValue { IsTuple: true } t)
            return t.Items.Any(x => x is StringValue xs ? test(xs.Value) : throw new TemplateException("tuple for startswith/endswith must only contain str"));
        throw new TemplateException($"startswith/endswith first arg must be str or a tuple of str, not {v.TypeName}");
    }

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        int start = 0, end = s.Length;
        Func<char, bool> strip = chars is null ? PythonJson.IsSpace : chars.Contains;
        if (left)
        {
            while (start < end && strip(s[start]))
                start++;
        }
        if (right)
        {
            while (end > start && strip(s[end - 1]))
                end--;
        }
        return s[start..end];
    }

    private static ListValue Split(string s, string? sep, int maxsplit, bool fromRight)
    {
        var parts = new List<string>();
        if (sep is null)
        {
            SplitWhitespace(s, maxsplit, fromRight, parts);
        }
        else
        {
            if (sep.Length == 0)
                throw new TemplateException("empty separator");
            if (!fromRight)
            {
                int pos = 0;
                while (maxsplit < 0 || parts.Count < maxsplit)
                {
                    int i = s.IndexOf(sep, pos, StringComparison.Ordinal);
                    if (i < 0)
                        break;
                    parts.Add(s[pos..i]);
                    pos = i + sep.Length;
                }
                parts.Add(s[pos..]);
            }
            else
            {
                int end = s.Length;
                while (maxsplit < 0 || parts.Count < maxsplit)
                {
                    int i = end - sep.Length < 0 ? -1 : s.LastIndexOf(sep, end - 1, end, StringComparison.Ordinal);
                    if (i < 0 || i + sep.Length > end)
                        break;
                    parts.Add(s[(i + sep.Length)..end]);
                    end = i;
                }
                parts.Add(s[..end]);
                parts.Reverse();
            }
        }
        return new ListValue(parts.ConvertAll(p => (Value)StringValue.Of(p)));
    }

    private static void SplitWhitespace(string s, int maxsplit, bool fromRight, List<string> parts)
    {
        if (fromRight)
        {
            string rev = new(s.Reverse().ToArray());
            SplitWhitespace(rev, maxsplit, false, parts);
            for (int k = 0; k < parts.Count; k++)
                parts[k] = new string(parts[k].Reverse().ToArray());
            parts.Reverse();
            return;
        }
        int i = 0;
        while (true)
        {
            while (i < s.Length && PythonJson.IsSpace(s[i]))
                i++;
            if (i >= s.Length)
                return;
            if (maxsplit >= 0 && parts.Count >= maxsplit)
            {
                parts.Add(Strip(s[i..], null, false, true));
                return;
            }
            int start = i;
            while (i < s.Length && !PythonJson.IsSpace(s[i]))
                i++;
            parts.Add(s[start..i]);
        }
    }

    /// <summary>Python's <c>str.splitlines()</c> (no ends kept).</summary>
    public static List<string> SplitLines(string s)
    {
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is '\n' or '\r' or '\v' or '\f' or '\u001c' or '\u001d' or '\u001e' or '\u0085' or '\u2028' or '\u2029')
            {
                lines.Add(s[start..i]);
                if (c == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                    i++;
                start = i + 1;
            }
        }
        if (start < s.Length)
            lines.Add(s[start..]);
        return lines;
    }

    public static string Replace(Evaluator ev, string s, string old, string @new, long count)
    {
        if (count < 0 && old.Length > 0)
        {
            long n = Count(s, old);
            ev.CheckSize(s.Length + (n * (@new.Length - old.Length)));
            return s.Replace(old, @new, StringComparison.Ordinal);
        }
        var sb = new StringBuilder();
        int pos = 0, done = 0;
        if (old.Length == 0)
        {
            // Python inserts the replacement before every character and at the end.
            for (int i = 0; i <= s.Length; i++)
            {
                if (count < 0 || done < count)
                {
                    sb.Append(@new);
                    done++;
                }
                if (i < s.Length)
                    sb.Append(s[i]);
                ev.CheckSize(sb.Length);
            }
            return sb.ToString();
        }
        while (done < count)
        {
            int i = s.IndexOf(old, pos, StringComparison.Ordinal);
            if (i < 0)
                break;
            sb.Append(s, pos, i - pos).Append(@new);
            pos = i + old.Length;
            done++;
        }
        sb.Append(s, pos, s.Length - pos);
        ev.CheckSize(sb.Length);
        return sb.ToString();
    }

    private static int Count(string s, string sub)
    {
        if (sub.Length == 0)
            return s.Length + 1;
        int n = 0;
        for (int i = s.IndexOf(sub, StringComparison.Ordinal); i >= 0; i = s.IndexOf(sub, i + sub.Length, StringComparison.Ordinal))
            n++;
        return n;
    }

    public static string Join(Evaluator ev, string sep, List<Value> items)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
                sb.Append(sep);
            PyFormat.AppendStr(sb, items[i]);
            ev.CheckSize(sb.Length);
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.title()</c>: upper-case after every non-letter, lower-case elsewhere.</summary>
    public static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevCased = false;
        foreach (char c in s)
        {
            sb.Append(prevCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevCased = char.IsLetter(c);
        }
        return sb.ToString();
    }

    public static string Capitalize(string s) =>
        s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python's <c>str.format</c> for <c>{}</c>, <c>{0}</c> and <c>{name}</c> fields (no format specs).</summary>
    private static string StrFormat(Evaluator ev, string fmt, CallArgs a)
    {
        var sb = new StringBuilder();
        int auto = 0;
        for (int i = 0; i < fmt.Length; i++)
        {
            char c = fmt[i];
            if (c == '{' && i + 1 < fmt.Length && fmt[i + 1] == '{') { sb.Append('{'); i++; continue; }
            if (c == '}' && i + 1 < fmt.Length && fmt[i + 1] == '}') { sb.Append('}'); i++; continue; }
            if (c != '{')
            {
                sb.Append(c);
                continue;
            }
            int end = fmt.IndexOf('}', i);
            if (end < 0)
                throw new TemplateException("Single '{' encountered in format string");
            string field = fmt[(i + 1)..end];
            int colon = field.IndexOf(':');
            if (colon >= 0)
                field = field[..colon];
            Value v = field.Length == 0 ? Arg(a, auto++, "{}")
                : int.TryParse(field, NumberStyles.None, CultureInfo.InvariantCulture, out int idx) ? Arg(a, idx, field)
                : a.Get(int.MaxValue, field) ?? throw new TemplateException($"KeyError: '{field}'");
            PyFormat.AppendStr(sb, v);
            ev.CheckSize(sb.Length);
            i = end;
        }
        return sb.ToString();
    }
}
