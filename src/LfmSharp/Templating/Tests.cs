namespace LfmSharp.Templating;

/// <summary>The tests (<c>value is name(args)</c>) with Jinja2's semantics.</summary>
internal static class Tests
{
    private static readonly Dictionary<string, Func<Evaluator, Value, CallArgs, bool>> s_tests = Build();

    public static Func<Evaluator, Value, CallArgs, bool>? Get(string name) => s_tests.GetValueOrDefault(name);

    private static Dictionary<string, Func<Evaluator, Value, CallArgs, bool>> Build()
    {
        var t = new Dictionary<string, Func<Evaluator, Value, CallArgs, bool>>(StringComparer.Ordinal)
        {
            ["defined"] = (_, v, _) => v is not UndefinedValue,
            ["undefined"] = (_, v, _) => v is UndefinedValue,
            ["none"] = (_, v, _) => v is NoneValue,
            ["boolean"] = (_, v, _) => v is BoolValue,
            ["true"] = (_, v, _) => v is BoolValue { Value: true },
            ["false"] = (_, v, _) => v is BoolValue { Value: false },
            ["integer"] = (_, v, _) => v is IntValue,
            ["float"] = (_, v, _) => v is FloatValue,
            ["number"] = (_, v, _) => v is IntValue or FloatValue or BoolValue,
            ["string"] = (_, v, _) => v is StringValue,
            ["mapping"] = (_, v, _) => v is DictValue,
            ["iterable"] = (_, v, _) => v is StringValue or ListValue or DictValue or UndefinedValue,
            ["sequence"] = (_, v, _) => v is StringValue or ListValue or DictValue or UndefinedValue,
            ["callable"] = (_, v, _) => v is MacroValue or FunctionValue,
            ["sameas"] = (_, v, a) => Same(v, Methods.Arg(a, 0, "other")),
            ["escaped"] = (_, _, _) => false,
            ["lower"] = (_, v, _) => v is StringValue s && string.Equals(s.Value, s.Value.ToLowerInvariant(), StringComparison.Ordinal),
            ["upper"] = (_, v, _) => v is StringValue s && string.Equals(s.Value, s.Value.ToUpperInvariant(), StringComparison.Ordinal),
            ["divisibleby"] = (_, v, a) => PyFormat.ToLong(Methods.Arg(a, 0, "num")) is var n && n != 0
                ? PyFormat.ToLong(v) % n == 0
                : throw new TemplateException("integer division or modulo by zero"),
            ["even"] = (_, v, _) => PyFormat.ToLong(v) % 2 == 0,
            ["odd"] = (_, v, _) => PyFormat.ToLong(v) % 2 != 0,
            ["in"] = (_, v, a) => Evaluator.Contains(Methods.Arg(a, 0, "seq"), v),
            ["filter"] = (_, v, _) => v is StringValue s && Filters.Get(s.Value) is not null,
            ["test"] = (_, v, _) => v is StringValue s && s_tests!.ContainsKey(s.Value),
        };
        AddComparison(t, "==", ["eq", "equalto", "=="]);
        AddComparison(t, "!=", ["ne", "!="]);
        AddComparison(t, "<", ["lt", "lessthan", "<"]);
        AddComparison(t, "<=", ["le", "<="]);
        AddComparison(t, ">", ["gt", "greaterthan", ">"]);
        AddComparison(t, ">=", ["ge", ">="]);
        return t;
    }

    private static void AddComparison(Dictionary<string, Func<Evaluator, Value, CallArgs, bool>> t, string op, string[] names)
    {
        foreach (var name in names)
            t[name] = (ev, v, a) => ev.CompareOnce(op, v, Methods.Arg(a, 0, "other"));
    }

    // Python `is`: the same object; small ints, None, booleans and equal short strings are shared in CPython.
    private static bool Same(Value a, Value b) => ReferenceEquals(a, b) || a switch
    {
        NoneValue => b is NoneValue,
        BoolValue x => b is BoolValue y && x.Value == y.Value,
        IntValue x => b is IntValue y && x.Value == y.Value && x.Value is >= -5 and <= 256,
        _ => false,
    };
}
