using System.Globalization;
using System.Text;

namespace LfmSharp.Templating;

internal sealed partial class Parser
{
    private Expr ParsePrimary()
    {
        var tok = Cur;
        switch (tok.Kind)
        {
            case TokenKind.Name:
                _i++;
                return tok.Text switch
                {
                    "true" or "True" => new ConstExpr(tok.Offset, BoolValue.True),
                    "false" or "False" => new ConstExpr(tok.Offset, BoolValue.False),
                    "none" or "None" => new ConstExpr(tok.Offset, NoneValue.Instance),
                    _ => new NameExpr(tok.Offset, tok.Text),
                };
            case TokenKind.String:
                _i++;
                if (Cur.Kind != TokenKind.String)
                    return new ConstExpr(tok.Offset, StringValue.Of(tok.Text));
                var sb = new StringBuilder(tok.Text);
                while (Cur.Kind == TokenKind.String)
                    sb.Append(Next().Text);
                return new ConstExpr(tok.Offset, StringValue.Of(sb.ToString()));
            case TokenKind.Int:
                _i++;
                return new ConstExpr(tok.Offset, ParseInt(tok.Text));
            case TokenKind.Float:
                _i++;
                return new ConstExpr(tok.Offset, new FloatValue(double.Parse(tok.Text, CultureInfo.InvariantCulture)));
            case TokenKind.Op when tok.Text == "(":
                return ParseParenthesized();
            case TokenKind.Op when tok.Text == "[":
                return ParseListLiteral();
            case TokenKind.Op when tok.Text == "{":
                return ParseDictLiteral();
            default:
                throw Error($"unexpected {Describe(tok)} in an expression", tok.Offset);
        }
    }

    private Expr ParseParenthesized()
    {
        int at = Next().Offset;
        if (SkipOp(")"))
            return new ListExpr(at, [], isTuple: true);
        var first = ParseExpression();
        if (SkipOp(")"))
            return first;
        var items = new List<Expr> { first };
        while (SkipOp(","))
        {
            if (IsOp(")"))
                break;
            items.Add(ParseExpression());
        }
        ExpectOp(")");
        return new ListExpr(at, items, isTuple: true);
    }

    private Expr ParseListLiteral()
    {
        int at = Next().Offset;
        var items = new List<Expr>();
        while (!SkipOp("]"))
        {
            if (items.Count > 0)
            {
                ExpectOp(",");
                if (SkipOp("]"))
                    break;
            }
            items.Add(ParseExpression());
        }
        return new ListExpr(at, items, isTuple: false);
    }

    private Expr ParseDictLiteral()
    {
        int at = Next().Offset;
        var pairs = new List<KeyValuePair<Expr, Expr>>();
        while (!SkipOp("}"))
        {
            if (pairs.Count > 0)
            {
                ExpectOp(",");
                if (SkipOp("}"))
                    break;
            }
            var key = ParseExpression();
            ExpectOp(":");
            pairs.Add(new(key, ParseExpression()));
        }
        return new DictExpr(at, pairs);
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (IsOp("."))
            {
                int at = Next().Offset;
                if (Cur.Kind == TokenKind.Int)
                    node = new ItemExpr(at, node, new ConstExpr(at, ParseInt(Next().Text)));
                else
                    node = new AttrExpr(at, node, ExpectName());
            }
            else if (IsOp("["))
            {
                node = ParseSubscript(node);
            }
            else if (IsOp("("))
            {
                node = new CallExpr(Cur.Offset, node, ParseCallArgs());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target)
    {
        int at = Next().Offset;
        Expr? start = null, stop = null, step = null;
        if (!IsOp(":"))
        {
            start = ParseExpression();
            if (SkipOp("]"))
                return new ItemExpr(at, target, start);
        }
        ExpectOp(":");
        if (!IsOp("]") && !IsOp(":"))
            stop = ParseExpression();
        if (SkipOp(":") && !IsOp("]"))
            step = ParseExpression();
        ExpectOp("]");
        return new SliceExpr(at, target, start, stop, step);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            if (IsOp("|"))
            {
                _i++;
                int at = Cur.Offset;
                string name = ExpectName();
                while (SkipOp("."))
                    name += "." + ExpectName();
                var args = IsOp("(") ? ParseCallArgs() : Arguments.Empty;
                node = new FilterExpr(at, node, name, args);
            }
            else if (IsName("is"))
            {
                node = ParseTest(node);
            }
            else if (IsOp("("))
            {
                node = new CallExpr(Cur.Offset, node, ParseCallArgs());
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseTest(Expr node)
    {
        int at = Next().Offset;
        bool negated = SkipName("not");
        string name = ExpectName();
        Arguments args = Arguments.Empty;
        if (IsOp("("))
        {
            args = ParseCallArgs();
        }
        else if ((Cur.Kind is TokenKind.Name or TokenKind.String or TokenKind.Int or TokenKind.Float || IsOp("[") || IsOp("{"))
            && !IsName("else") && !IsName("or") && !IsName("and") && !IsName("if") && !IsName("in") && !IsName("not"))
        {
            if (IsName("is"))
                throw Error("tests cannot be chained with 'is'", Cur.Offset);
            args = new Arguments();
            args.Positional.Add(ParsePostfix(ParsePrimary()));
        }
        return new TestExpr(at, node, name, args, negated);
    }

    private Arguments ParseCallArgs()
    {
        int open = Cur.Offset;
        ExpectOp("(");
        var args = new Arguments();
        bool first = true;
        while (!SkipOp(")"))
        {
            if (!first)
            {
                ExpectOp(",");
                if (SkipOp(")"))
                    break;
            }
            first = false;
            if (IsOp("*") || IsOp("**"))
                throw Error("*args and **kwargs in calls are not supported", Cur.Offset);
            if (Cur.Kind == TokenKind.Name && _t[_i + 1].Kind == TokenKind.Op && _t[_i + 1].Text == "=")
            {
                string key = Next().Text;
                _i++;
                args.Named.Add(new(key, ParseExpression()));
            }
            else
            {
                if (args.Named.Count > 0)
                    throw Error("a positional argument follows a keyword argument", Cur.Offset);
                args.Positional.Add(ParseExpression());
            }
            if (Cur.Kind == TokenKind.Eof)
                throw Error("unclosed '(' in a call", open);
        }
        return args;
    }
}
