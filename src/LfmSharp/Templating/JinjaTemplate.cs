using System.Globalization;
using System.Text.Json;

namespace LfmSharp.Templating;

/// <summary>
/// A parsed Jinja template, rendered as Python Jinja2 renders it in transformers' sandboxed chat-template
/// environment. Parse once, render many times (a render keeps its state in its own <see cref="Evaluator"/>).
/// </summary>
internal sealed class JinjaTemplate
{
    private readonly List<Stmt> _body;

    private JinjaTemplate(string source, List<Stmt> body)
    {
        Source = source;
        _body = body;
    }

    /// <summary>The source after Jinja2's newline handling (what line and column numbers refer to).</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="TemplateException">A syntax error, with its line and column.</exception>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        string normalized = Lexer.Normalize(source);
        try
        {
            return new JinjaTemplate(normalized, Parser.Parse(normalized));
        }
        catch (InsufficientExecutionStackException)
        {
            throw new TemplateException("template nested too deeply");
        }
    }

    /// <summary>Renders with <paramref name="variables"/> as the template's globals.</summary>
    /// <exception cref="TemplateException">The template failed, called <c>raise_exception</c>, or hit a sandbox limit.</exception>
    public string Render(IReadOnlyDictionary<string, Value> variables, TemplateLimits? limits = null, Func<DateTime>? clock = null)
    {
        var globals = new Scope(null);
        foreach (var (k, v) in variables)
            globals.Set(k, v);
        var ev = new Evaluator(Source, limits ?? new TemplateLimits(), clock ?? (() => DateTime.Now));
        return ev.Render(_body, globals);
    }

    /// <summary>Converts JSON to template values the way <c>json.loads</c> does (ints stay ints, key order kept,
    /// a repeated key keeps its last value at its first position).</summary>
    public static Value FromJson(JsonElement e, int depth = 0)
    {
        if (depth > 128)
            throw new TemplateException("JSON nested too deeply");
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var d = new DictValue();
                foreach (var p in e.EnumerateObject())
                    d.Set(p.Name, FromJson(p.Value, depth + 1));
                return d;
            case JsonValueKind.Array:
                var items = new List<Value>(e.GetArrayLength());
                foreach (var x in e.EnumerateArray())
                    items.Add(FromJson(x, depth + 1));
                return new ListValue(items);
            case JsonValueKind.String: return StringValue.Of(e.GetString()!);
            case JsonValueKind.True: return BoolValue.True;
            case JsonValueKind.False: return BoolValue.False;
            case JsonValueKind.Null: return NoneValue.Instance;
            case JsonValueKind.Number:
                string raw = e.GetRawText();
                if (raw.AsSpan().IndexOfAny('.', 'e', 'E') < 0 && long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                    return IntValue.Of(l);
                return new FloatValue(double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture));
            default:
                throw new TemplateException($"cannot pass a JSON {e.ValueKind} to a template");
        }
    }
}
