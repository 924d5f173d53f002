using System.Runtime.CompilerServices;
using System.Text;

namespace LfmSharp.Templating;

/// <summary>Hard limits for one render, so a hostile template cannot hang or exhaust memory.</summary>
internal sealed record TemplateLimits
{
    /// <summary>Longest output, and longest string or list any operation may build.</summary>
    public int MaxOutputChars { get; init; } = 16 * 1024 * 1024;

    /// <summary>Loop iterations over the whole render (nested loops count every inner iteration).</summary>
    public int MaxLoopIterations { get; init; } = 1_000_000;

    /// <summary>Macro calls nested in each other.</summary>
    public int MaxRecursionDepth { get; init; } = 64;

    /// <summary>Statements and expressions evaluated over the whole render.</summary>
    public long MaxSteps { get; init; } = 20_000_000;
}

/// <summary>Variables visible at one point of the template; a loop body and a macro call get their own.</summary>
internal sealed class Scope
{
    // A scope holds a handful of names (a loop variable, loop, a few sets): a linear scan beats hashing.
    private string[]? _names;
    private Value[]? _values;
    private int _count;

    public Scope(Scope? parent) => Parent = parent;

    public Scope? Parent { get; }

    public Value? Lookup(string name)
    {
        for (var s = this; s is not null; s = s.Parent)
        {
            int i = s.IndexOf(name);
            if (i >= 0)
                return s._values![i];
        }
        return null;
    }

    public void Set(string name, Value value)
    {
        int i = IndexOf(name);
        if (i >= 0)
        {
            _values![i] = value;
            return;
        }
        if (_names is null || _count == _names.Length)
        {
            Array.Resize(ref _names, Math.Max(4, _count * 2));
            Array.Resize(ref _values, _names.Length);
        }
        _names[_count] = name;
        _values![_count++] = value;
    }

    private int IndexOf(string name)
    {
        var names = _names;
        for (int i = 0; i < _count; i++)
        {
            if (string.Equals(names![i], name, StringComparison.Ordinal))
                return i;
        }
        return -1;
    }
}

/// <summary>Runs a parsed template: one instance per render (it holds the output and the limit counters).</summary>
internal sealed partial class Evaluator
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    private readonly string _source;
    private readonly TemplateLimits _limits;
    private StringBuilder _out;
    private long _steps;
    private long _iterations;
    private int _depth;
    private int _loopDepth;

    public Evaluator(string source, TemplateLimits limits, Func<DateTime> clock)
    {
        _source = source;
        _limits = limits;
        Clock = clock;
        _out = new StringBuilder(1024);
    }

    /// <summary>What <c>strftime_now</c> reads.</summary>
    public Func<DateTime> Clock { get; }

    public TemplateLimits Limits => _limits;

    public string Render(List<Stmt> body, Scope globals)
    {
        var top = new Scope(globals);
        try
        {
            ExecBody(body, top);
        }
        catch (InsufficientExecutionStackException)
        {
            throw new TemplateException("template recursion too deep for the stack");
        }
        return _out.ToString();
    }

    internal TemplateException Error(string message, Node? node)
    {
        if (node is null)
            return new TemplateException(message);
        var (line, col) = Lexer.Position(_source, node.Offset);
        return new TemplateException(message, line, col);
    }

    private TemplateException At(TemplateException e, Node node)
    {
        if (e.Line > 0)
            return e;
        var (line, col) = Lexer.Position(_source, node.Offset);
        return e.At(line, col);
    }

    internal void Step()
    {
        if (++_steps > _limits.MaxSteps)
            throw new TemplateException($"the template ran more than {_limits.MaxSteps:N0} steps (a sandbox limit)");
    }

    /// <summary>Fails when a string or list built by the template would pass the output limit.</summary>
    internal void CheckSize(long length)
    {
        if (length > _limits.MaxOutputChars)
            throw new TemplateException($"the template built a value of {length:N0} characters or items, over the {_limits.MaxOutputChars:N0} limit (a sandbox limit)");
    }

    private void Write(string s)
    {
        CheckSize((long)_out.Length + s.Length);
        _out.Append(s);
    }

    private void WriteValue(Value v)
    {
        if (v is StringValue s)
        {
            Write(s.Value);
            return;
        }
        if (v is UndefinedValue)
            return;
        Write(PyFormat.Str(v));
    }

    private Flow ExecBody(List<Stmt> body, Scope scope)
    {
        for (int i = 0; i < body.Count; i++)
        {
            var flow = Exec(body[i], scope);
            if (flow != Flow.Normal)
                return flow;
        }
        return Flow.Normal;
    }

    private Flow Exec(Stmt stmt, Scope scope)
    {
        Step();
        try
        {
            switch (stmt)
            {
                case TextStmt t: Write(t.Text); return Flow.Normal;
                case OutputStmt o: WriteValue(Eval(o.Value, scope)); return Flow.Normal;
                case IfStmt i: return ExecIf(i, scope);
                case ForStmt f: ExecFor(f, scope); return Flow.Normal;
                case SetStmt s: ExecSet(s, scope); return Flow.Normal;
                case SetBlockStmt sb: ExecSetBlock(sb, scope); return Flow.Normal;
                case MacroNode m: scope.Set(m.Name, new MacroValue(m, scope)); return Flow.Normal;
                case CallBlockStmt c: ExecCallBlock(c, scope); return Flow.Normal;
                case FilterBlockStmt fb: ExecFilterBlock(fb, scope); return Flow.Normal;
                case GenerationStmt g: return ExecBody(g.Body, new Scope(scope));
                case LoopControlStmt lc:
                    if (_loopDepth == 0)
                        throw Error($"'{(lc.IsBreak ? "break" : "continue")}' outside a loop", lc);
                    return lc.IsBreak ? Flow.Break : Flow.Continue;
                default: throw Error("unknown statement", stmt);
            }
        }
        catch (TemplateException e) when (e.Line == 0)
        {
            throw At(e, stmt);
        }
    }

    private Flow ExecIf(IfStmt node, Scope scope)
    {
        foreach (var (cond, body) in node.Branches)
        {
            if (Eval(cond, scope).IsTrue)
                return ExecBody(body, scope);
        }
        return node.Else is null ? Flow.Normal : ExecBody(node.Else, scope);
    }

    private void ExecFor(ForStmt node, Scope scope)
    {
        if (node.Recursive)
            throw Error("recursive for loops are not supported", node);
        var items = Iterate(Eval(node.Iterable, scope));
        if (node.Filter is not null)
        {
            var kept = new List<Value>(items.Count);
            foreach (var item in items)
            {
                var probe = new Scope(scope);
                Bind(node, probe, item);
                if (Eval(node.Filter, probe).IsTrue)
                    kept.Add(item);
            }
            items = kept;
        }
        if (items.Count == 0)
        {
            if (node.Else is not null)
                ExecBody(node.Else, scope);
            return;
        }
        var loop = new LoopValue(items, _loopDepth);
        _loopDepth++;
        try
        {
            for (int i = 0; i < items.Count; i++)
            {
                if (++_iterations > _limits.MaxLoopIterations)
                    throw Error($"the template ran more than {_limits.MaxLoopIterations:N0} loop iterations (a sandbox limit)", node);
                loop.Index0 = i;
                var body = new Scope(scope);
                Bind(node, body, items[i]);
                body.Set("loop", loop);
                if (ExecBody(node.Body, body) == Flow.Break)
                    break;
            }
        }
        finally
        {
            _loopDepth--;
        }
    }

    private void Bind(ForStmt node, Scope scope, Value item)
    {
        if (!node.Unpack)
        {
            scope.Set(node.Targets[0], item);
            return;
        }
        Unpack(node.Targets, scope, item, node);
    }

    private void Unpack(List<string> targets, Scope scope, Value item, Node node)
    {
        var parts = Iterate(item);
        if (parts.Count != targets.Count)
            throw Error(parts.Count < targets.Count
                ? $"not enough values to unpack (expected {targets.Count}, got {parts.Count})"
                : $"too many values to unpack (expected {targets.Count})", node);
        for (int i = 0; i < targets.Count; i++)
            scope.Set(targets[i], parts[i]);
    }

    private void ExecSet(SetStmt node, Scope scope)
    {
        var value = Eval(node.Value, scope);
        if (node.Attribute is not null)
        {
            SetAttribute(node.Targets[0], node.Attribute, value, scope, node);
            return;
        }
        if (node.Targets.Count == 1)
            scope.Set(node.Targets[0], value);
        else
            Unpack(node.Targets, scope, value, node);
    }

    private void SetAttribute(string target, string attribute, Value value, Scope scope, Node node)
    {
        if (scope.Lookup(target) is not NamespaceValue ns)
            throw Error($"cannot assign attribute '{attribute}' on '{target}': only namespace() objects can be modified", node);
        ns.Attributes[attribute] = value;
    }

    private void ExecSetBlock(SetBlockStmt node, Scope scope)
    {
        Value value = StringValue.Of(Capture(node.Body, scope));
        foreach (var f in node.Filters)
            value = ApplyFilter(f, value, scope);
        if (node.Attribute is not null)
            SetAttribute(node.Name, node.Attribute, value, scope, node);
        else
            scope.Set(node.Name, value);
    }

    private void ExecFilterBlock(FilterBlockStmt node, Scope scope)
    {
        Value value = StringValue.Of(Capture(node.Body, new Scope(scope)));
        foreach (var f in node.Filters)
            value = ApplyFilter(f, value, scope);
        WriteValue(value);
    }

    private void ExecCallBlock(CallBlockStmt node, Scope scope)
    {
        var target = Eval(node.Call.Target, scope);
        if (target is not MacroValue macro)
            throw Error("'call' needs a macro", node);
        var args = EvalArgs(node.Call.Args, scope);
        var caller = new MacroValue(node.Caller, scope);
        WriteValue(CallMacro(new MacroValue(macro.Node, macro.Closure, caller), args));
    }

    /// <summary>Renders <paramref name="body"/> into a string instead of the output.</summary>
    private string Capture(List<Stmt> body, Scope scope)
    {
        var saved = _out;
        _out = new StringBuilder();
        try
        {
            ExecBody(body, scope);
            return _out.ToString();
        }
        finally
        {
            _out = saved;
        }
    }

    internal Value CallMacro(MacroValue macro, CallArgs args)
    {
        if (_depth >= _limits.MaxRecursionDepth)
            throw new TemplateException($"macro '{macro.Node.Name}' nested more than {_limits.MaxRecursionDepth} calls deep (a sandbox limit; infinite recursion?)");
        RuntimeHelpers.EnsureSufficientExecutionStack();
        var node = macro.Node;
        var scope = new Scope(macro.Closure);
        var p = node.Parameters;
        var varargs = new List<Value>();
        for (int i = 0; i < args.Positional.Count; i++)
        {
            if (i < p.Count)
                scope.Set(p[i].Key, args.Positional[i]);
            else
                varargs.Add(args.Positional[i]);
        }
        var kwargs = new DictValue();
        if (args.Named is not null)
        {
            foreach (var (k, v) in args.Named)
            {
                if (p.FindIndex(x => x.Key == k) >= 0)
                    scope.Set(k, v);
                else
                    kwargs.Set(k, v);
            }
        }
        for (int i = 0; i < p.Count; i++)
        {
            var (name, def) = p[i];
            if (i < args.Positional.Count || args.Named?.FindIndex(x => x.Key == name) >= 0)
                continue;
            scope.Set(name, def is null ? new UndefinedValue($"'{name}' is undefined (no argument for it was passed to macro '{node.Name}')") : Eval(def, scope));
        }
        scope.Set("varargs", new ListValue(varargs, isTuple: true));
        scope.Set("kwargs", kwargs);
        if (macro.Caller is not null)
            scope.Set("caller", macro.Caller);
        int savedLoops = _loopDepth;
        _depth++;
        _loopDepth = 0;
        try
        {
            return StringValue.Of(Capture(node.Body, scope));
        }
        finally
        {
            _depth--;
            _loopDepth = savedLoops;
        }
    }

    /// <summary>Python iteration: a list's items, a dict's keys, a string's characters; Undefined is empty.</summary>
    internal List<Value> Iterate(Value v)
    {
        switch (v)
        {
            case ListValue l: return l.Items;
            case DictValue d:
                var keys = new List<Value>(d.Items.Count);
                foreach (var k in d.Items.Keys)
                    keys.Add(k);
                return keys;
            case StringValue s:
                var chars = new List<Value>(s.Value.Length);
                foreach (var r in s.Value.EnumerateRunes())
                    chars.Add(StringValue.Of(r.ToString()));
                return chars;
            case UndefinedValue: return [];
            case NamespaceValue or NoneValue or IntValue or FloatValue or BoolValue:
                throw new TemplateException($"'{v.TypeName}' object is not iterable");
            default:
                throw new TemplateException($"'{v.TypeName}' object is not iterable");
        }
    }
}
