namespace LfmSharp.Templating;

/// <summary>
/// A value inside a template: the small closed set of Python types chat templates see (None, bool, int, float, str,
/// list/tuple, dict, namespace, macro/function, Undefined). Templates cannot reach any .NET member: every attribute,
/// method and filter is looked up in the engine's own tables.
/// </summary>
internal abstract class Value
{
    /// <summary>The Python type name used in error messages (<c>str</c>, <c>dict</c>, …).</summary>
    public abstract string TypeName { get; }

    /// <summary>Python truthiness.</summary>
    public virtual bool IsTrue => true;

    public override string ToString() => PyFormat.Str(this);
}

internal sealed class NoneValue : Value
{
    public static readonly NoneValue Instance = new();

    private NoneValue()
    {
    }

    public override string TypeName => "NoneType";

    public override bool IsTrue => false;
}

/// <summary>A missing variable, attribute or key: prints as nothing, iterates as empty, fails when used further.</summary>
internal sealed class UndefinedValue : Value
{
    public static readonly UndefinedValue Plain = new("value is undefined");

    public UndefinedValue(string hint) => Hint = hint;

    /// <summary>What Jinja says when this is used: <c>'x' is undefined</c>, <c>'dict object' has no attribute 'y'</c>.</summary>
    public string Hint { get; }

    public override string TypeName => "Undefined";

    public override bool IsTrue => false;
}

internal sealed class BoolValue : Value
{
    public static readonly BoolValue True = new(true);
    public static readonly BoolValue False = new(false);

    private BoolValue(bool value) => Value = value;

    public bool Value { get; }

    public static BoolValue Of(bool b) => b ? True : False;

    public override string TypeName => "bool";

    public override bool IsTrue => Value;
}

internal sealed class IntValue : Value
{
    private static readonly IntValue[] s_small = CreateSmall();

    private IntValue(long value) => Value = value;

    public long Value { get; }

    public static IntValue Of(long v) => v >= -8 && v < 248 ? s_small[v + 8] : new IntValue(v);

    public override string TypeName => "int";

    public override bool IsTrue => Value != 0;

    private static IntValue[] CreateSmall()
    {
        var a = new IntValue[256];
        for (int i = 0; i < a.Length; i++)
            a[i] = new IntValue(i - 8);
        return a;
    }
}

internal sealed class FloatValue : Value
{
    public FloatValue(double value) => Value = value;

    public double Value { get; }

    public override string TypeName => "float";

    public override bool IsTrue => Value != 0;
}

internal sealed class StringValue : Value
{
    public static readonly StringValue Empty = new("");

    public StringValue(string value, bool isSafe = false)
    {
        Value = value;
        IsSafe = isSafe;
    }

    public string Value { get; }

    /// <summary>Jinja's <c>Markup</c> (from <c>| safe</c> or <c>| e</c>): <c>+</c> escapes the plain string it is joined with.</summary>
    public bool IsSafe { get; }

    public static StringValue Of(string s) => s.Length == 0 ? Empty : new StringValue(s);

    public override string TypeName => "str";

    public override bool IsTrue => Value.Length > 0;
}

/// <summary>A Python list, or a tuple when <see cref="IsTuple"/> (prints with parentheses).</summary>
internal sealed class ListValue : Value
{
    public ListValue(List<Value> items, bool isTuple = false)
    {
        Items = items;
        IsTuple = isTuple;
    }

    public List<Value> Items { get; }

    public bool IsTuple { get; }

    /// <summary>What Jinja's map/select/… filters return: iterable, but no len(), index or JSON, and always true.</summary>
    public bool IsGenerator { get; init; }

    public override string TypeName => IsGenerator ? "generator" : IsTuple ? "tuple" : "list";

    public override bool IsTrue => IsGenerator || Items.Count > 0;

    public static ListValue Generator(List<Value> items) => new(items) { IsGenerator = true };
}

/// <summary>A Python dict: keys compare with Python equality (1 == 1.0 == True) and keep insertion order.</summary>
internal sealed class DictValue : Value
{
    public DictValue() => Items = new OrderedDictionary<Value, Value>(PyEqualityComparer.Instance);

    public DictValue(int capacity) => Items = new OrderedDictionary<Value, Value>(capacity, PyEqualityComparer.Instance);

    public OrderedDictionary<Value, Value> Items { get; }

    public override string TypeName => "dict";

    public override bool IsTrue => Items.Count > 0;

    public Value? Get(string key) => Items.TryGetValue(StringValue.Of(key), out var v) ? v : null;

    public void Set(string key, Value value) => Items[StringValue.Of(key)] = value;
}

/// <summary><c>namespace(...)</c>: the one object whose attributes a template may assign (<c>set ns.x = …</c>).</summary>
internal sealed class NamespaceValue : Value
{
    public Dictionary<string, Value> Attributes { get; } = new(StringComparer.Ordinal);

    public override string TypeName => "Namespace";
}

/// <summary>Positional and keyword arguments of a call.</summary>
internal readonly record struct CallArgs(List<Value> Positional, List<KeyValuePair<string, Value>>? Named)
{
    public static readonly CallArgs None = new([], null);

    public int Count => Positional.Count;

    /// <summary>The argument at <paramref name="index"/> or named <paramref name="name"/>, else null.</summary>
    public Value? Get(int index, string name)
    {
        if (index < Positional.Count)
            return Positional[index];
        if (Named is not null)
        {
            foreach (var kv in Named)
            {
                if (kv.Key == name)
                    return kv.Value;
            }
        }
        return null;
    }
}

/// <summary>A built-in function, filter-like global or bound method.</summary>
internal sealed class FunctionValue : Value
{
    public FunctionValue(string name, Func<Evaluator, CallArgs, Value> call)
    {
        Name = name;
        Call = call;
    }

    public string Name { get; }

    public Func<Evaluator, CallArgs, Value> Call { get; }

    public override string TypeName => "function";
}

/// <summary>A macro defined by the template (or the <c>caller</c> of a call block), closed over its defining scope.</summary>
internal sealed class MacroValue : Value
{
    public MacroValue(MacroNode node, Scope closure, MacroValue? caller = null)
    {
        Node = node;
        Closure = closure;
        Caller = caller;
    }

    public MacroNode Node { get; }

    public Scope Closure { get; }

    /// <summary>For a macro invoked by <c>{% call %}</c>: the block body, bound as <c>caller</c>.</summary>
    public MacroValue? Caller { get; }

    public override string TypeName => "Macro";
}

/// <summary>The <c>loop</c> variable of a for loop.</summary>
internal sealed class LoopValue : Value
{
    public LoopValue(List<Value> items, int depth0)
    {
        Items = items;
        Depth0 = depth0;
    }

    public List<Value> Items { get; }

    public int Index0 { get; set; }

    public int Depth0 { get; }

    public Value? LastChanged { get; set; }

    public override string TypeName => "LoopContext";
}
