using System.Runtime.CompilerServices;

namespace LfmSharp.Templating;

internal sealed partial class Evaluator
{
    internal Value Eval(Expr expr, Scope scope)
    {
        Step();
        try
        {
            switch (expr)
            {
                case ConstExpr c: return c.Value;
                case NameExpr n: return Lookup(n.Name, scope);
                case AttrExpr a: return GetAttr(Eval(a.Target, scope), a.Name);
                case ItemExpr it: return GetItem(Eval(it.Target, scope), Eval(it.Index, scope));
                case SliceExpr s: return Slice(s, scope);
                case CallExpr call: return EvalCall(call, scope);
                case FilterExpr f: return ApplyFilter(f, Eval(f.Target!, scope), scope);
                case TestExpr t: return BoolValue.Of(RunTest(t, scope) != t.Negated);
                case BinaryExpr b: return EvalBinary(b, scope);
                case UnaryExpr u: return EvalUnary(u, scope);
                case CompareExpr c: return EvalCompare(c, scope);
                case CondExpr c:
                    if (Eval(c.Test, scope).IsTrue)
                        return Eval(c.Then, scope);
                    return c.Otherwise is null ? new UndefinedValue("the inline if has no else and its condition is false") : Eval(c.Otherwise, scope);
                case ListExpr l:
                    var items = new List<Value>(l.Items.Count);
                    foreach (var e in l.Items)
                        items.Add(Eval(e, scope));
                    return new ListValue(items, l.IsTuple);
                case DictExpr d:
                    var dict = new DictValue(d.Pairs.Count);
                    foreach (var (k, v) in d.Pairs)
                        dict.Items[Hashable(Eval(k, scope))] = Eval(v, scope);
                    return dict;
                default: throw Error("unknown expression", expr);
            }
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            throw At(e, expr);
        }
    }

    private static Value Hashable(Value key)
    {
        _ = PyEqualityComparer.Instance.GetHashCode(key);
        return key;
    }

    private static Value Lookup(string name, Scope scope) =>
        scope.Lookup(name) ?? Builtins.Global(name) ?? new UndefinedValue($"'{name}' is undefined");

    internal CallArgs EvalArgs(Arguments args, Scope scope)
    {
        if (args.Positional.Count == 0 && args.Named.Count == 0)
            return new CallArgs([], null);
        var pos = new List<Value>(args.Positional.Count);
        foreach (var e in args.Positional)
            pos.Add(Eval(e, scope));
        List<KeyValuePair<string, Value>>? named = null;
        if (args.Named.Count > 0)
        {
            named = new List<KeyValuePair<string, Value>>(args.Named.Count);
            foreach (var (k, e) in args.Named)
                named.Add(new(k, Eval(e, scope)));
        }
        return new CallArgs(pos, named);
    }

    private Value EvalCall(CallExpr call, Scope scope)
    {
        var target = Eval(call.Target, scope);
        var args = EvalArgs(call.Args, scope);
        return Invoke(target, args);
    }

    internal Value Invoke(Value target, CallArgs args)
    {
        RuntimeHelpers.EnsureSufficientExecutionStack();
        return target switch
        {
            FunctionValue f => f.Call(this, args),
            MacroValue m => CallMacro(m, args),
            UndefinedValue u => throw new TemplateException(u.Hint),
            _ => throw new TemplateException($"'{target.TypeName}' object is not callable"),
        };
    }

    private Value ApplyFilter(FilterExpr f, Value input, Scope scope)
    {
        var filter = Filters.Get(f.Name) ?? throw Error($"no filter named '{f.Name}'", f);
        return filter(this, input, EvalArgs(f.Args, scope));
    }

    private bool RunTest(TestExpr t, Scope scope)
    {
        var test = Tests.Get(t.Name) ?? throw Error($"no test named '{t.Name}'", t);
        return test(this, Eval(t.Target, scope), EvalArgs(t.Args, scope));
    }

    /// <summary>Jinja's attribute lookup (<c>a.b</c>): the object's attribute or method first, then its item.</summary>
    internal Value GetAttr(Value obj, string name)
    {
        switch (obj)
        {
            case DictValue d:
                return (Value?)Methods.Bind(obj, name) ?? d.Get(name) ?? new UndefinedValue($"'dict object' has no attribute '{name}'");
            case NamespaceValue ns:
                return ns.Attributes.TryGetValue(name, out var v) ? v : new UndefinedValue($"'Namespace object' has no attribute '{name}'");
            case LoopValue loop:
                return LoopAttribute(loop, name) ?? new UndefinedValue($"'LoopContext object' has no attribute '{name}'");
            case UndefinedValue u:
                throw new TemplateException(u.Hint);
            case NoneValue:
                return new UndefinedValue($"'None' has no attribute '{name}'");
            default:
                return (Value?)Methods.Bind(obj, name) ?? new UndefinedValue($"'{obj.TypeName} object' has no attribute '{name}'");
        }
    }

    /// <summary>Jinja's subscript (<c>a[b]</c>): the item first, then (for a string key) the attribute.</summary>
    internal Value GetItem(Value obj, Value key)
    {
        switch (obj)
        {
            case DictValue d:
                if (d.Items.TryGetValue(Hashable(key), out var v))
                    return v;
                break;
            case ListValue { IsGenerator: true }:
                throw new TemplateException("'generator' object is not subscriptable");
            case ListValue l when key is IntValue or BoolValue:
                long i = PyFormat.ToLong(key);
                if (i < 0)
                    i += l.Items.Count;
                if (i >= 0 && i < l.Items.Count)
                    return l.Items[(int)i];
                return new UndefinedValue($"'{l.TypeName} object' has no element {PyFormat.ToLong(key)}");
            case StringValue s when key is IntValue or BoolValue:
                long j = PyFormat.ToLong(key);
                if (j < 0)
                    j += s.Value.Length;
                if (j >= 0 && j < s.Value.Length)
                    return StringValue.Of(s.Value[(int)j].ToString());
                return new UndefinedValue($"'str object' has no element {PyFormat.ToLong(key)}");
            case UndefinedValue u:
                throw new TemplateException(u.Hint);
        }
        if (key is StringValue name && obj is not DictValue)
            return GetAttr(obj, name.Value);
        if (key is StringValue k && Methods.Bind(obj, k.Value) is { } method)
            return method;
        return new UndefinedValue($"'{obj.TypeName} object' has no attribute {PyFormat.Repr(key)}");
    }

    private Value? LoopAttribute(LoopValue loop, string name)
    {
        int n = loop.Items.Count, i = loop.Index0;
        return name switch
        {
            "index" => IntValue.Of(i + 1),
            "index0" => IntValue.Of(i),
            "revindex" => IntValue.Of(n - i),
            "revindex0" => IntValue.Of(n - i - 1),
            "first" => BoolValue.Of(i == 0),
            "last" => BoolValue.Of(i == n - 1),
            "length" => IntValue.Of(n),
            "depth" => IntValue.Of(loop.Depth0 + 1),
            "depth0" => IntValue.Of(loop.Depth0),
            "previtem" => i > 0 ? loop.Items[i - 1] : new UndefinedValue("there is no previous item"),
            "nextitem" => i < n - 1 ? loop.Items[i + 1] : new UndefinedValue("there is no next item"),
            "cycle" => new FunctionValue("loop.cycle", (_, a) => a.Count == 0 ? throw new TemplateException("no items for cycling given") : a.Positional[i % a.Count]),
            "changed" => new FunctionValue("loop.changed", (_, a) =>
            {
                var now = new ListValue(a.Positional);
                bool changed = loop.LastChanged is null || !PyFormat.Eq(loop.LastChanged, now);
                loop.LastChanged = now;
                return BoolValue.Of(changed);
            }),
            _ => null,
        };
    }

    private Value Slice(SliceExpr s, Scope scope)
    {
        var target = Eval(s.Target, scope);
        long? start = SliceIndex(s.Start, scope), stop = SliceIndex(s.Stop, scope), step = SliceIndex(s.Step, scope);
        int n = target switch
        {
            ListValue { IsGenerator: true } => throw new TemplateException("'generator' object is not subscriptable"),
            ListValue l => l.Items.Count,
            StringValue str => str.Value.Length,
            UndefinedValue u => throw new TemplateException(u.Hint),
            _ => throw new TemplateException($"'{target.TypeName}' object is not subscriptable"),
        };
        var indices = SliceIndices(n, start, stop, step ?? 1);
        if (target is StringValue sv)
        {
            var chars = new char[indices.Count];
            for (int i = 0; i < chars.Length; i++)
                chars[i] = sv.Value[indices[i]];
            return StringValue.Of(new string(chars));
        }
        var list = (ListValue)target;
        var items = new List<Value>(indices.Count);
        foreach (int i in indices)
            items.Add(list.Items[i]);
        return new ListValue(items, list.IsTuple);
    }

    private long? SliceIndex(Expr? e, Scope scope)
    {
        if (e is null)
            return null;
        var v = Eval(e, scope);
        return v switch
        {
            NoneValue => null,
            IntValue or BoolValue => PyFormat.ToLong(v),
            _ => throw new TemplateException("slice indices must be integers or None"),
        };
    }

    /// <summary>The indices Python's <c>slice(start, stop, step).indices(n)</c> walks.</summary>
    internal static List<int> SliceIndices(int n, long? start, long? stop, long step)
    {
        if (step == 0)
            throw new TemplateException("slice step cannot be zero");
        long lo, hi;
        if (step > 0)
        {
            lo = Clamp(start ?? 0, n, 0, n);
            hi = Clamp(stop ?? n, n, 0, n);
        }
        else
        {
            lo = Clamp(start ?? n - 1, n, -1, n - 1);
            hi = Clamp(stop ?? -n - 1, n, -1, n - 1);
        }
        var result = new List<int>();
        for (long i = lo; step > 0 ? i < hi : i > hi; i += step)
            result.Add((int)i);
        return result;
    }

    private static long Clamp(long index, int n, long min, long max)
    {
        if (index < 0)
            index += n;
        return Math.Clamp(index, min, max);
    }
}
