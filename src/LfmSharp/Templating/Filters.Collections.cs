namespace LfmSharp.Templating;

internal static partial class Filters
{
    /// <summary>Jinja's attribute getter: <c>"a.b.0"</c> walks items/attributes; null leaves the items as they are.</summary>
    private static List<Value> Attribute(Evaluator ev, List<Value> items, Value? attribute)
    {
        if (attribute is null or NoneValue)
            return items;
        var result = new List<Value>(items.Count);
        foreach (var item in items)
            result.Add(GetPath(ev, item, attribute));
        return result;
    }

    private static Value GetPath(Evaluator ev, Value item, Value attribute)
    {
        if (attribute is IntValue)
            return ev.GetItem(item, attribute);
        foreach (var part in PyFormat.Str(attribute).Split('.'))
        {
            Value key = long.TryParse(part, out long n) ? IntValue.Of(n) : StringValue.Of(part);
            item = ev.GetItem(item, key);
        }
        return item;
    }

    private static Value Map(Evaluator ev, Value v, CallArgs a)
    {
        var items = v.IsTrue ? ev.Iterate(v) : [];
        var result = new List<Value>(items.Count);
        if (a.Get(int.MaxValue, "attribute") is { } attribute)
        {
            var fallback = a.Get(int.MaxValue, "default");
            foreach (var item in items)
            {
                var x = GetPath(ev, item, attribute);
                result.Add(x is UndefinedValue && fallback is not null ? fallback : x);
            }
            return ListValue.Generator(result);
        }
        if (a.Count == 0)
            throw new TemplateException("map requires a filter name or attribute=");
        string name = PyFormat.Str(a.Positional[0]);
        var filter = Get(name) ?? throw new TemplateException($"no filter named '{name}'");
        var rest = new CallArgs(a.Positional.GetRange(1, a.Count - 1), a.Named);
        foreach (var item in items)
            result.Add(filter(ev, item, rest));
        return ListValue.Generator(result);
    }

    private static Value Select(Evaluator ev, Value v, CallArgs a, bool attr, bool keep)
    {
        var items = v.IsTrue ? ev.Iterate(v) : [];
        int next = 0;
        Value? attribute = null;
        if (attr)
        {
            if (a.Count == 0)
                throw new TemplateException("selectattr/rejectattr need an attribute name");
            attribute = a.Positional[next++];
        }
        Func<Evaluator, Value, CallArgs, bool>? test = null;
        CallArgs rest = CallArgs.None;
        if (next < a.Count)
        {
            string name = PyFormat.Str(a.Positional[next++]);
            test = Tests.Get(name) ?? throw new TemplateException($"no test named '{name}'");
            rest = new CallArgs(a.Positional.GetRange(next, a.Count - next), a.Named);
        }
        var result = new List<Value>();
        foreach (var item in items)
        {
            var probe = attribute is null ? item : GetPath(ev, item, attribute);
            bool ok = test is null ? probe.IsTrue : test(ev, probe, rest);
            if (ok == keep)
                result.Add(item);
        }
        return ListValue.Generator(result);
    }

    private static Value Fold(Value v, bool caseSensitive) =>
        !caseSensitive && v is StringValue s ? StringValue.Of(s.Value.ToLowerInvariant()) : v;

    private static Value Unique(Evaluator ev, Value v, CallArgs a)
    {
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTrue ?? false;
        var attribute = a.Get(1, "attribute");
        var seen = new HashSet<Value>(PyEqualityComparer.Instance);
        var result = new List<Value>();
        foreach (var item in ev.Iterate(v))
        {
            var key = Fold(attribute is null ? item : GetPath(ev, item, attribute), caseSensitive);
            if (seen.Add(key))
                result.Add(item);
        }
        return ListValue.Generator(result);
    }

    private static Value Sort(Evaluator ev, Value v, CallArgs a)
    {
        bool reverse = a.Get(0, "reverse")?.IsTrue ?? false;
        bool caseSensitive = a.Get(1, "case_sensitive")?.IsTrue ?? false;
        var attribute = a.Get(2, "attribute");
        var items = ev.Iterate(v);
        var keyed = new List<KeyValuePair<Value, Value>>(items.Count);
        foreach (var item in items)
            keyed.Add(new(Fold(attribute is null ? item : GetPath(ev, item, attribute), caseSensitive), item));
        StableSort(keyed, reverse);
        return new ListValue(keyed.ConvertAll(kv => kv.Value));
    }

    private static Value DictSort(Evaluator ev, Value v, CallArgs a)
    {
        if (v is not DictValue d)
            throw new TemplateException($"dictsort needs a dict, not {v.TypeName}");
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTrue ?? false;
        string by = a.Get(1, "by") is StringValue s ? s.Value : "key";
        bool reverse = a.Get(2, "reverse")?.IsTrue ?? false;
        var keyed = new List<KeyValuePair<Value, Value>>(d.Items.Count);
        foreach (var (k, x) in d.Items)
            keyed.Add(new(Fold(by == "value" ? x : k, caseSensitive), new ListValue([k, x], isTuple: true)));
        StableSort(keyed, reverse);
        return new ListValue(keyed.ConvertAll(kv => kv.Value));
    }

    // Python's sorted() is stable also with reverse=True (equal items keep their order).
    private static void StableSort(List<KeyValuePair<Value, Value>> keyed, bool reverse)
    {
        var indexed = keyed.Select((kv, i) => (kv, i)).ToList();
        indexed.Sort((x, y) =>
        {
            int c = PyFormat.Compare(x.kv.Key, y.kv.Key, "<");
            if (reverse)
                c = -c;
            return c != 0 ? c : x.i.CompareTo(y.i);
        });
        for (int i = 0; i < keyed.Count; i++)
            keyed[i] = indexed[i].kv;
    }

    private static Value Sum(Evaluator ev, Value v, CallArgs a)
    {
        var items = Attribute(ev, ev.Iterate(v), a.Get(0, "attribute"));
        Value total = a.Get(1, "start") ?? IntValue.Of(0);
        foreach (var item in items)
            total = ev.Arithmetic("+", total, item);
        return total;
    }

    private static Value MinMax(Evaluator ev, Value v, CallArgs a, bool max)
    {
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTrue ?? false;
        var attribute = a.Get(1, "attribute");
        Value? best = null, bestKey = null;
        foreach (var item in ev.Iterate(v))
        {
            var key = Fold(attribute is null ? item : GetPath(ev, item, attribute), caseSensitive);
            if (bestKey is null || (PyFormat.Compare(key, bestKey, "<") is var c && (max ? c > 0 : c < 0)))
            {
                best = item;
                bestKey = key;
            }
        }
        return best ?? new UndefinedValue("No aggregated item, sequence was empty.");
    }

    private static Value Batch(Evaluator ev, Value v, CallArgs a)
    {
        int size = (int)PyFormat.ToLong(Methods.Arg(a, 0, "linecount"));
        if (size <= 0)
            throw new TemplateException("batch size must be positive");
        var fill = a.Get(1, "fill_with");
        var result = new List<Value>();
        List<Value>? current = null;
        foreach (var item in ev.Iterate(v))
        {
            current ??= new List<Value>(size);
            current.Add(item);
            if (current.Count == size)
            {
                result.Add(new ListValue(current));
                current = null;
            }
        }
        if (current is not null)
        {
            while (fill is not null && current.Count < size)
                current.Add(fill);
            result.Add(new ListValue(current));
        }
        return ListValue.Generator(result);
    }
}
