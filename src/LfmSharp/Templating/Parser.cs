using System.Globalization;

namespace LfmSharp.Templating;

/// <summary>Builds the statement tree from the tokens, following Jinja2's grammar and operator precedence.</summary>
internal sealed partial class Parser
{
    private const int MaxNesting = 200;

    private readonly string _src;
    private readonly List<Token> _t;
    private int _i;
    private int _depth;

    private Parser(string source, List<Token> tokens)
    {
        _src = source;
        _t = tokens;
    }

    public static List<Stmt> Parse(string normalizedSource)
    {
        var p = new Parser(normalizedSource, Lexer.Tokenize(normalizedSource));
        var body = p.ParseBody(null, out _);
        return body;
    }

    private Token Cur => _t[_i];

    private Token Next() => _t[_i++];

    private bool IsOp(string op) => Cur.Kind == TokenKind.Op && Cur.Text == op;

    private bool IsName(string name) => Cur.Kind == TokenKind.Name && Cur.Text == name;

    private bool SkipOp(string op)
    {
        if (!IsOp(op))
            return false;
        _i++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!IsName(name))
            return false;
        _i++;
        return true;
    }

    private void ExpectOp(string op)
    {
        if (!SkipOp(op))
            throw Error($"expected '{op}', got {Describe(Cur)}", Cur.Offset);
    }

    private string ExpectName()
    {
        if (Cur.Kind != TokenKind.Name)
            throw Error($"expected a name, got {Describe(Cur)}", Cur.Offset);
        return Next().Text;
    }

    private void ExpectBlockEnd()
    {
        if (Cur.Kind != TokenKind.BlockEnd)
            throw Error($"expected end of statement block, got {Describe(Cur)}", Cur.Offset);
        _i++;
    }

    private static string Describe(Token t) => t.Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.VarEnd => "'}}'",
        TokenKind.String => "a string",
        _ => $"'{t.Text}'",
    };

    internal TemplateException Error(string message, int offset)
    {
        var (line, col) = Lexer.Position(_src, offset);
        return new TemplateException(message, line, col);
    }

    /// <summary>
    /// Parses statements until a block tag whose name is in <paramref name="endTags"/> (left unconsumed: the cursor
    /// stands on that name) or, when <paramref name="endTags"/> is null, until the end of the template.
    /// </summary>
    private List<Stmt> ParseBody(string[]? endTags, out string endTag, string? opener = null, int openerOffset = 0)
    {
        var body = new List<Stmt>();
        endTag = "";
        while (true)
        {
            var tok = Cur;
            switch (tok.Kind)
            {
                case TokenKind.Eof:
                    if (endTags is null)
                        return body;
                    throw Error($"unexpected end of template: the '{opener}' block opened here is never closed (expected {string.Join(" or ", endTags.Select(e => "'" + e + "'"))})", openerOffset);
                case TokenKind.Text:
                    body.Add(new TextStmt(tok.Offset, tok.Text));
                    _i++;
                    break;
                case TokenKind.VarBegin:
                    _i++;
                    var e = ParseTuple();
                    if (Cur.Kind != TokenKind.VarEnd)
                        throw Error($"expected '}}}}', got {Describe(Cur)}", Cur.Offset);
                    _i++;
                    body.Add(new OutputStmt(tok.Offset, e));
                    break;
                case TokenKind.BlockBegin:
                    _i++;
                    if (Cur.Kind == TokenKind.Name && endTags is not null && Array.IndexOf(endTags, Cur.Text) >= 0)
                    {
                        endTag = Cur.Text;
                        return body;
                    }
                    body.Add(ParseStatement(tok.Offset));
                    break;
                default:
                    throw Error($"unexpected {Describe(tok)}", tok.Offset);
            }
        }
    }

    private Stmt ParseStatement(int offset)
    {
        if (Cur.Kind != TokenKind.Name)
            throw Error($"expected a statement name, got {Describe(Cur)}", Cur.Offset);
        var name = Next().Text;
        if (++_depth > MaxNesting)
            throw Error("blocks nested too deeply", offset);
        try
        {
            return name switch
            {
                "if" => ParseIf(offset),
                "for" => ParseFor(offset),
                "set" => ParseSet(offset),
                "macro" => ParseMacro(offset),
                "call" => ParseCallBlock(offset),
                "filter" => ParseFilterBlock(offset),
                "generation" => ParseGeneration(offset),
                "break" or "continue" => ParseLoopControl(offset, name == "break"),
                _ => throw Error(name.StartsWith("end", StringComparison.Ordinal) || name is "else" or "elif"
                    ? $"unexpected '{name}': no open block it could close"
                    : $"unknown tag '{name}' (supported: if, for, set, macro, call, filter, raw, generation, break, continue)", offset),
            };
        }
        finally
        {
            _depth--;
        }
    }

    private Stmt ParseLoopControl(int offset, bool isBreak)
    {
        ExpectBlockEnd();
        return new LoopControlStmt(offset, isBreak);
    }

    private IfStmt ParseIf(int offset)
    {
        var node = new IfStmt(offset);
        var cond = ParseTuple();
        while (true)
        {
            ExpectBlockEnd();
            var body = ParseBody(["elif", "else", "endif"], out string end, "if", offset);
            node.Branches.Add(new(cond, body));
            _i++;
            if (end == "elif")
            {
                cond = ParseTuple();
                continue;
            }
            if (end == "else")
            {
                ExpectBlockEnd();
                node.Else = ParseBody(["endif"], out _, "if", offset);
                _i++;
            }
            ExpectBlockEnd();
            return node;
        }
    }

    private ForStmt ParseFor(int offset)
    {
        var targets = new List<string>();
        bool paren = SkipOp("(");
        targets.Add(ExpectName());
        while (SkipOp(","))
            targets.Add(ExpectName());
        if (paren)
            ExpectOp(")");
        if (!SkipName("in"))
            throw Error($"expected 'in' in the for loop, got {Describe(Cur)}", Cur.Offset);
        var iterable = ParseTuple(withCondExpr: false);
        var node = new ForStmt(offset, targets, iterable) { Unpack = targets.Count > 1 };
        if (SkipName("if"))
            node.Filter = ParseExpression();
        if (SkipName("recursive"))
            node.Recursive = true;
        ExpectBlockEnd();
        node.Body = ParseBody(["endfor", "else"], out string end, "for", offset);
        _i++;
        if (end == "else")
        {
            ExpectBlockEnd();
            node.Else = ParseBody(["endfor"], out _, "for", offset);
            _i++;
        }
        ExpectBlockEnd();
        return node;
    }

    private Stmt ParseSet(int offset)
    {
        var targets = new List<string> { ExpectName() };
        string? attribute = null;
        if (SkipOp("."))
            attribute = ExpectName();
        else
        {
            while (SkipOp(","))
                targets.Add(ExpectName());
        }
        if (SkipOp("="))
        {
            var value = ParseTuple();
            ExpectBlockEnd();
            return new SetStmt(offset, targets, attribute, value);
        }
        if (targets.Count > 1)
            throw Error("a block set assigns one name", offset);
        var filters = ParseFilterChain();
        ExpectBlockEnd();
        var body = ParseBody(["endset"], out _, "set", offset);
        _i++;
        ExpectBlockEnd();
        return new SetBlockStmt(offset, targets[0], attribute, filters, body);
    }

    private List<FilterExpr> ParseFilterChain(bool firstWithoutPipe = false)
    {
        var filters = new List<FilterExpr>();
        while ((firstWithoutPipe && filters.Count == 0) || SkipOp("|"))
        {
            int at = Cur.Offset;
            string name = ExpectName();
            var args = IsOp("(") ? ParseCallArgs() : Arguments.Empty;
            filters.Add(new FilterExpr(at, null, name, args));
        }
        return filters;
    }

    private MacroNode ParseMacro(int offset)
    {
        var node = new MacroNode(offset, ExpectName());
        ParseParameters(node);
        ExpectBlockEnd();
        node.Body = ParseBody(["endmacro"], out _, "macro", offset);
        _i++;
        ExpectBlockEnd();
        return node;
    }

    private void ParseParameters(MacroNode node)
    {
        ExpectOp("(");
        while (!SkipOp(")"))
        {
            if (node.Parameters.Count > 0)
                ExpectOp(",");
            if (SkipOp(")"))
                break;
            string p = ExpectName();
            Expr? def = SkipOp("=") ? ParseExpression() : null;
            node.Parameters.Add(new(p, def));
        }
    }

    private Stmt ParseCallBlock(int offset)
    {
        var caller = new MacroNode(offset, "caller");
        if (IsOp("("))
            ParseParameters(caller);
        var call = ParseExpression() as CallExpr ?? throw Error("expected a macro call after 'call'", offset);
        ExpectBlockEnd();
        caller.Body = ParseBody(["endcall"], out _, "call", offset);
        _i++;
        ExpectBlockEnd();
        return new CallBlockStmt(offset, call, caller);
    }

    private Stmt ParseFilterBlock(int offset)
    {
        var filters = ParseFilterChain(firstWithoutPipe: true);
        if (filters.Count == 0)
            throw Error("expected a filter name after 'filter'", offset);
        ExpectBlockEnd();
        var body = ParseBody(["endfilter"], out _, "filter", offset);
        _i++;
        ExpectBlockEnd();
        return new FilterBlockStmt(offset, filters, body);
    }

    private Stmt ParseGeneration(int offset)
    {
        ExpectBlockEnd();
        var body = ParseBody(["endgeneration"], out _, "generation", offset);
        _i++;
        ExpectBlockEnd();
        return new GenerationStmt(offset, body);
    }

    // ---- expressions ----

    /// <summary>An expression, or a tuple when commas follow (<c>{{ a, b }}</c>, <c>{% set x = 1, 2 %}</c>).</summary>
    private Expr ParseTuple(bool withCondExpr = true)
    {
        int at = Cur.Offset;
        var first = withCondExpr ? ParseExpression() : ParseOr();
        if (!IsOp(","))
            return first;
        var items = new List<Expr> { first };
        while (SkipOp(","))
        {
            if (Cur.Kind is TokenKind.BlockEnd or TokenKind.VarEnd || IsName("if"))
                break;
            items.Add(withCondExpr ? ParseExpression() : ParseOr());
        }
        return new ListExpr(at, items, isTuple: true);
    }

    internal Expr ParseExpression()
    {
        if (++_depth > MaxNesting)
            throw Error("expression nested too deeply", Cur.Offset);
        try
        {
            int at = Cur.Offset;
            var expr = ParseOr();
            while (SkipName("if"))
            {
                var test = ParseOr();
                Expr? otherwise = SkipName("else") ? ParseExpression() : null;
                expr = new CondExpr(at, test, expr, otherwise);
            }
            return expr;
        }
        finally
        {
            _depth--;
        }
    }

    private Expr ParseOr()
    {
        var left = ParseAnd();
        while (IsName("or"))
        {
            int at = Next().Offset;
            left = new BinaryExpr(at, "or", left, ParseAnd());
        }
        return left;
    }

    private Expr ParseAnd()
    {
        var left = ParseNot();
        while (IsName("and"))
        {
            int at = Next().Offset;
            left = new BinaryExpr(at, "and", left, ParseNot());
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (IsName("not"))
        {
            int at = Next().Offset;
            return new UnaryExpr(at, "not", ParseNot());
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int at = Cur.Offset;
        var first = ParseMath1();
        List<KeyValuePair<string, Expr>>? rest = null;
        while (true)
        {
            string? op = null;
            if (Cur.Kind == TokenKind.Op && Cur.Text is "==" or "!=" or "<" or ">" or "<=" or ">=")
                op = Next().Text;
            else if (IsName("in"))
            {
                _i++;
                op = "in";
            }
            else if (IsName("not") && _t[_i + 1].Kind == TokenKind.Name && _t[_i + 1].Text == "in")
            {
                _i += 2;
                op = "not in";
            }
            if (op is null)
                break;
            (rest ??= []).Add(new(op, ParseMath1()));
        }
        return rest is null ? first : new CompareExpr(at, first, rest);
    }

    private Expr ParseMath1()
    {
        var left = ParseConcat();
        while (Cur.Kind == TokenKind.Op && Cur.Text is "+" or "-")
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, op.Text, left, ParseConcat());
        }
        return left;
    }

    private Expr ParseConcat()
    {
        var left = ParseMath2();
        while (IsOp("~"))
        {
            int at = Next().Offset;
            left = new BinaryExpr(at, "~", left, ParseMath2());
        }
        return left;
    }

    private Expr ParseMath2()
    {
        var left = ParsePow();
        while (Cur.Kind == TokenKind.Op && Cur.Text is "*" or "/" or "//" or "%")
        {
            var op = Next();
            left = new BinaryExpr(op.Offset, op.Text, left, ParsePow());
        }
        return left;
    }

    private Expr ParsePow()
    {
        var left = ParseUnary(withFilter: true);
        while (IsOp("**"))
        {
            int at = Next().Offset;
            left = new BinaryExpr(at, "**", left, ParseUnary(withFilter: true));
        }
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Expr node;
        if (Cur.Kind == TokenKind.Op && Cur.Text is "-" or "+")
        {
            var op = Next();
            if (++_depth > MaxNesting)
                throw Error("expression nested too deeply", op.Offset);
            node = new UnaryExpr(op.Offset, op.Text, ParseUnary(withFilter: false));
            _depth--;
        }
        else
        {
            node = ParsePostfix(ParsePrimary());
        }
        return withFilter ? ParseFilterExpr(node) : node;
    }

    private static Value ParseInt(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v)
            ? IntValue.Of(v)
            : new FloatValue(double.Parse(text, CultureInfo.InvariantCulture));
}
