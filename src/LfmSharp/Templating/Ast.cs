namespace LfmSharp.Templating;

// The parsed template: statements and expressions, each with its source offset for error positions.

internal abstract class Node
{
    protected Node(int offset) => Offset = offset;

    public int Offset { get; }
}

internal abstract class Expr(int offset) : Node(offset);

internal sealed class ConstExpr(int offset, Value value) : Expr(offset)
{
    public Value Value { get; } = value;
}

internal sealed class NameExpr(int offset, string name) : Expr(offset)
{
    public string Name { get; } = name;
}

internal sealed class AttrExpr(int offset, Expr target, string name) : Expr(offset)
{
    public Expr Target { get; } = target;

    public string Name { get; } = name;
}

internal sealed class ItemExpr(int offset, Expr target, Expr index) : Expr(offset)
{
    public Expr Target { get; } = target;

    public Expr Index { get; } = index;
}

internal sealed class SliceExpr(int offset, Expr target, Expr? start, Expr? stop, Expr? step) : Expr(offset)
{
    public Expr Target { get; } = target;

    public Expr? Start { get; } = start;

    public Expr? Stop { get; } = stop;

    public Expr? Step { get; } = step;
}

internal sealed class Arguments
{
    public static readonly Arguments Empty = new();

    public List<Expr> Positional { get; } = [];

    public List<KeyValuePair<string, Expr>> Named { get; } = [];
}

internal sealed class CallExpr(int offset, Expr target, Arguments args) : Expr(offset)
{
    public Expr Target { get; } = target;

    public Arguments Args { get; } = args;
}

/// <summary><c>value | name(args)</c>; <see cref="Target"/> is null inside a <c>{% filter %}</c> block head.</summary>
internal sealed class FilterExpr(int offset, Expr? target, string name, Arguments args) : Expr(offset)
{
    public Expr? Target { get; } = target;

    public string Name { get; } = name;

    public Arguments Args { get; } = args;
}

internal sealed class TestExpr(int offset, Expr target, string name, Arguments args, bool negated) : Expr(offset)
{
    public Expr Target { get; } = target;

    public string Name { get; } = name;

    public Arguments Args { get; } = args;

    public bool Negated { get; } = negated;
}

internal sealed class BinaryExpr(int offset, string op, Expr left, Expr right) : Expr(offset)
{
    public string Op { get; } = op;

    public Expr Left { get; } = left;

    public Expr Right { get; } = right;
}

internal sealed class UnaryExpr(int offset, string op, Expr operand) : Expr(offset)
{
    /// <summary><c>not</c>, <c>-</c> or <c>+</c>.</summary>
    public string Op { get; } = op;

    public Expr Operand { get; } = operand;
}

/// <summary>A comparison chain: <c>a &lt; b &lt;= c</c>, <c>x in y</c>, <c>x not in y</c>.</summary>
internal sealed class CompareExpr(int offset, Expr first, List<KeyValuePair<string, Expr>> rest) : Expr(offset)
{
    public Expr First { get; } = first;

    public List<KeyValuePair<string, Expr>> Rest { get; } = rest;
}

internal sealed class CondExpr(int offset, Expr test, Expr then, Expr? otherwise) : Expr(offset)
{
    public Expr Test { get; } = test;

    public Expr Then { get; } = then;

    public Expr? Otherwise { get; } = otherwise;
}

internal sealed class ListExpr(int offset, List<Expr> items, bool isTuple) : Expr(offset)
{
    public List<Expr> Items { get; } = items;

    public bool IsTuple { get; } = isTuple;
}

internal sealed class DictExpr(int offset, List<KeyValuePair<Expr, Expr>> pairs) : Expr(offset)
{
    public List<KeyValuePair<Expr, Expr>> Pairs { get; } = pairs;
}

internal abstract class Stmt(int offset) : Node(offset);

internal sealed class TextStmt(int offset, string text) : Stmt(offset)
{
    public string Text { get; } = text;
}

internal sealed class OutputStmt(int offset, Expr value) : Stmt(offset)
{
    public Expr Value { get; } = value;
}

internal sealed class IfStmt(int offset) : Stmt(offset)
{
    public List<KeyValuePair<Expr, List<Stmt>>> Branches { get; } = [];

    public List<Stmt>? Else { get; set; }
}

internal sealed class ForStmt(int offset, List<string> targets, Expr iterable) : Stmt(offset)
{
    /// <summary>One name, or several to unpack each item into.</summary>
    public List<string> Targets { get; } = targets;

    public bool Unpack { get; set; }

    public Expr Iterable { get; } = iterable;

    public Expr? Filter { get; set; }

    public bool Recursive { get; set; }

    public List<Stmt> Body { get; set; } = [];

    public List<Stmt>? Else { get; set; }
}

/// <summary><c>{% set name = value %}</c>, <c>{% set ns.attr = value %}</c>, <c>{% set a, b = value %}</c>.</summary>
internal sealed class SetStmt(int offset, List<string> targets, string? attribute, Expr value) : Stmt(offset)
{
    public List<string> Targets { get; } = targets;

    /// <summary>Set: assigns <c>Targets[0].Attribute</c> (a namespace attribute).</summary>
    public string? Attribute { get; } = attribute;

    public Expr Value { get; } = value;
}

/// <summary><c>{% set name %}…{% endset %}</c>, optionally filtered.</summary>
internal sealed class SetBlockStmt(int offset, string name, string? attribute, List<FilterExpr> filters, List<Stmt> body) : Stmt(offset)
{
    public string Name { get; } = name;

    public string? Attribute { get; } = attribute;

    public List<FilterExpr> Filters { get; } = filters;

    public List<Stmt> Body { get; } = body;
}

internal sealed class MacroNode(int offset, string name) : Stmt(offset)
{
    public string Name { get; } = name;

    public List<KeyValuePair<string, Expr?>> Parameters { get; } = [];

    public List<Stmt> Body { get; set; } = [];
}

/// <summary><c>{% call(params) macro(args) %}body{% endcall %}</c>.</summary>
internal sealed class CallBlockStmt(int offset, CallExpr call, MacroNode caller) : Stmt(offset)
{
    public CallExpr Call { get; } = call;

    public MacroNode Caller { get; } = caller;
}

internal sealed class FilterBlockStmt(int offset, List<FilterExpr> filters, List<Stmt> body) : Stmt(offset)
{
    public List<FilterExpr> Filters { get; } = filters;

    public List<Stmt> Body { get; } = body;
}

/// <summary><c>{% generation %}…{% endgeneration %}</c> (transformers' assistant-mask marker): renders its body in
/// its own scope, as transformers' call block does.</summary>
internal sealed class GenerationStmt(int offset, List<Stmt> body) : Stmt(offset)
{
    public List<Stmt> Body { get; } = body;
}

internal sealed class LoopControlStmt(int offset, bool isBreak) : Stmt(offset)
{
    public bool IsBreak { get; } = isBreak;
}
