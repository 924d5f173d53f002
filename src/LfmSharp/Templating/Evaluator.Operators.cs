namespace LfmSharp.Templating;

// Python semantics for the arithmetic, concatenation, logic and comparison operators.
internal sealed partial class Evaluator
{
    private Value EvalBinary(BinaryExpr b, Scope scope)
    {
        if (b.Op == "and")
        {
            var l = Eval(b.Left, scope);
            return l.IsTrue ? Eval(b.Right, scope) : l;
        }
        if (b.Op == "or")
        {
            var l = Eval(b.Left, scope);
            return l.IsTrue ? l : Eval(b.Right, scope);
        }
        var left = Eval(b.Left, scope);
        var right = Eval(b.Right, scope);
        if (b.Op == "~")
        {
            string a = PyFormat.Str(left), c = PyFormat.Str(right);
            CheckSize((long)a.Length + c.Length);
            return StringValue.Of(a + c);
        }
        return Arithmetic(b.Op, left, right);
    }

    internal Value Arithmetic(string op, Value left, Value right)
    {
        if (left is UndefinedValue ul)
            throw new TemplateException(ul.Hint);
        if (right is UndefinedValue ur)
            throw new TemplateException(ur.Hint);
        if (PyFormat.IsNumber(left) && PyFormat.IsNumber(right))
            return NumberOp(op, left, right);
        switch (op)
        {
            case "+" when left is StringValue s && right is StringValue t:
                CheckSize((long)s.Value.Length + t.Value.Length);
                if (s.IsSafe || t.IsSafe)
                    return new StringValue(Filters.EscapeUnlessSafe(s) + Filters.EscapeUnlessSafe(t), isSafe: true);
                return StringValue.Of(s.Value + t.Value);
            case "+" when left is ListValue l && right is ListValue m && l.IsTuple == m.IsTuple && !l.IsGenerator && !m.IsGenerator:
                CheckSize((long)l.Items.Count + m.Items.Count);
                var joined = new List<Value>(l.Items.Count + m.Items.Count);
                joined.AddRange(l.Items);
                joined.AddRange(m.Items);
                return new ListValue(joined, l.IsTuple);
            case "+" when left is StringValue or ListValue:
                throw new TemplateException($"can only concatenate {left.TypeName} (not \"{right.TypeName}\") to {left.TypeName}");
            case "*" when left is StringValue or ListValue && right is IntValue or BoolValue:
                return Repeat(left, PyFormat.ToLong(right));
            case "*" when right is StringValue or ListValue && left is IntValue or BoolValue:
                return Repeat(right, PyFormat.ToLong(left));
            case "%" when left is StringValue fmt:
                return StringValue.Of(PercentFormat.Format(fmt.Value, right, this));
        }
        throw new TemplateException($"unsupported operand type(s) for {op}: '{left.TypeName}' and '{right.TypeName}'");
    }

    private Value Repeat(Value v, long times)
    {
        times = Math.Max(0, times);
        if (v is StringValue s)
        {
            CheckSize(s.Value.Length * times);
            return StringValue.Of(new System.Text.StringBuilder(s.Value.Length * (int)times).Insert(0, s.Value, (int)times).ToString());
        }
        var l = (ListValue)v;
        CheckSize(l.Items.Count * times);
        var items = new List<Value>((int)(l.Items.Count * times));
        for (long i = 0; i < times; i++)
            items.AddRange(l.Items);
        return new ListValue(items, l.IsTuple);
    }

    private static Value NumberOp(string op, Value left, Value right)
    {
        bool isFloat = left is FloatValue || right is FloatValue;
        if (op == "/")
        {
            double d = PyFormat.ToDouble(right);
            if (d == 0)
                throw new TemplateException("division by zero");
            return new FloatValue(PyFormat.ToDouble(left) / d);
        }
        if (isFloat)
        {
            double a = PyFormat.ToDouble(left), b = PyFormat.ToDouble(right);
            if (op is "//" or "%" && b == 0)
                throw new TemplateException("float modulo by zero");
            return new FloatValue(op switch
            {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "//" => Math.Floor(a / b),
                "%" => a - (b * Math.Floor(a / b)),
                "**" => Math.Pow(a, b),
                _ => throw new TemplateException($"unsupported operator {op}"),
            });
        }
        long x = PyFormat.ToLong(left), y = PyFormat.ToLong(right);
        try
        {
            checked
            {
                switch (op)
                {
                    case "+": return IntValue.Of(x + y);
                    case "-": return IntValue.Of(x - y);
                    case "*": return IntValue.Of(x * y);
                    case "//" or "%" when y == 0: throw new TemplateException("integer division or modulo by zero");
                    case "//": return IntValue.Of(FloorDiv(x, y));
                    case "%": return IntValue.Of(x - (y * FloorDiv(x, y)));
                    case "**" when y < 0: return new FloatValue(Math.Pow(x, y));
                    case "**": return IntValue.Of(Power(x, y));
                    default: throw new TemplateException($"unsupported operator {op}");
                }
            }
        }
        catch (OverflowException)
        {
            throw new TemplateException("integer result too large");
        }
    }

    private static long FloorDiv(long x, long y)
    {
        long q = x / y;
        if ((x % y != 0) && ((x < 0) != (y < 0)))
            q--;
        return q;
    }

    private static long Power(long x, long y)
    {
        long result = 1;
        for (long i = 0; i < y; i++)
        {
            result = checked(result * x);
            if (result == 0 || result == 1)
                break;
        }
        return result;
    }

    private Value EvalUnary(UnaryExpr u, Scope scope)
    {
        var v = Eval(u.Operand, scope);
        switch (u.Op)
        {
            case "not": return BoolValue.Of(!v.IsTrue);
            case "-" when v is IntValue i: return IntValue.Of(-i.Value);
            case "-" when v is FloatValue f: return new FloatValue(-f.Value);
            case "-" when v is BoolValue b: return IntValue.Of(b.Value ? -1 : 0);
            case "+" when PyFormat.IsNumber(v): return v is BoolValue bb ? IntValue.Of(bb.Value ? 1 : 0) : v;
            case "-" or "+" when v is UndefinedValue uv: throw new TemplateException(uv.Hint);
            default: throw new TemplateException($"bad operand type for unary {u.Op}: '{v.TypeName}'");
        }
    }

    private Value EvalCompare(CompareExpr c, Scope scope)
    {
        var left = Eval(c.First, scope);
        foreach (var (op, expr) in c.Rest)
        {
            var right = Eval(expr, scope);
            if (!CompareOnce(op, left, right))
                return BoolValue.False;
            left = right;
        }
        return BoolValue.True;
    }

    internal bool CompareOnce(string op, Value left, Value right)
    {
        switch (op)
        {
            case "==": return PyFormat.Eq(left, right);
            case "!=": return !PyFormat.Eq(left, right);
            case "in": return Contains(right, left);
            case "not in": return !Contains(right, left);
        }
        if (left is UndefinedValue ul)
            throw new TemplateException(ul.Hint);
        if (right is UndefinedValue ur)
            throw new TemplateException(ur.Hint);
        int cmp = PyFormat.Compare(left, right, op);
        return op switch
        {
            "<" => cmp < 0,
            "<=" => cmp <= 0,
            ">" => cmp > 0,
            ">=" => cmp >= 0,
            _ => throw new TemplateException($"unknown comparison {op}"),
        };
    }

    /// <summary>Python <c>item in container</c>.</summary>
    internal static bool Contains(Value container, Value item)
    {
        switch (container)
        {
            case StringValue s:
                if (item is not StringValue sub)
                    throw new TemplateException($"'in <string>' requires string as left operand, not {item.TypeName}");
                return s.Value.Contains(sub.Value, StringComparison.Ordinal);
            case ListValue l:
                foreach (var x in l.Items)
                {
                    if (PyFormat.Eq(x, item))
                        return true;
                }
                return false;
            case DictValue d:
                return d.Items.ContainsKey(Hashable(item));
            case UndefinedValue:
                return false;
            default:
                throw new TemplateException($"argument of type '{container.TypeName}' is not iterable");
        }
    }
}
