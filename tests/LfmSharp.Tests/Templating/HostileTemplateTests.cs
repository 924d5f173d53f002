using System.Diagnostics;
using LfmSharp.Chat;
using LfmSharp.Templating;

namespace LfmSharp.Tests.Templating;

/// <summary>Malformed and hostile templates (a downloaded GGUF is untrusted input): a clear error, bounded time and memory.</summary>
public class HostileTemplateTests
{
    private static readonly Dictionary<string, Value> s_vars = new()
    {
        ["messages"] = new ListValue([]),
        ["add_generation_prompt"] = BoolValue.True,
    };

    private static TemplateException Fails(string source, TemplateLimits? limits = null)
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source).Render(s_vars, limits));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
        return e;
    }

    [Theory]
    [InlineData("{% if true %}open", "'if' block", 1, 1)]
    [InlineData("line one\n  {% for m in messages %}{{ m }}", "'for' block", 2, 3)]
    [InlineData("{% macro f() %}x", "'macro' block", 1, 1)]
    [InlineData("{{ 1 + }}", "unexpected", 1, 8)]
    [InlineData("{{ 'unterminated }}", "unterminated string", 1, 4)]
    [InlineData("{% endif %}", "'endif'", 1, 1)]
    [InlineData("{% include 'x.j2' %}", "unknown tag 'include'", 1, 1)]
    [InlineData("{# comment", "comment", 1, 1)]
    [InlineData("{{ x ", "'}}'", 1, 1)]
    public void Syntax_errors_name_the_problem_and_its_position(string source, string what, int line, int column)
    {
        var e = Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(source));
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.StartsWith($"chat template line {line}, column {column}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_filters_and_tests_are_errors_with_position()
    {
        var e = Fails("ok\n{{ messages | shout }}");
        Assert.Contains("no filter named 'shout'", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.Line);
        Assert.Contains("no test named 'loud'", Fails("{% if messages is loud %}{% endif %}").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Infinite_macro_recursion_stops_at_the_depth_limit()
    {
        var e = Fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        Assert.Contains("nested more than", e.Message, StringComparison.Ordinal);
        Assert.True(e.Line > 0);
    }

    [Fact]
    public void Mutual_recursion_through_call_blocks_stops_too()
    {
        var e = Fails("{% macro a() %}{% call b() %}x{% endcall %}{% endmacro %}{% macro b() %}{{ a() }}{{ caller() }}{% endmacro %}{{ a() }}");
        Assert.Contains("nested more than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_billion_iteration_loop_is_refused_at_once()
    {
        var e = Fails("{% for i in range(1000000000) %}x{% endfor %}");
        Assert.Contains("loop iteration limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nested_loops_past_the_iteration_budget_stop()
    {
        var e = Fails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
        Assert.Contains("loop iterations", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_gigabyte_of_output_stops_at_the_output_limit()
    {
        // 1 GB by repetition, by doubling a string, and by writing in a loop.
        Assert.Contains("limit", Fails("{{ 'x' * 1073741824 }}").Message, StringComparison.Ordinal);
        Assert.Contains("limit", Fails("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}").Message, StringComparison.Ordinal);
        var small = new TemplateLimits { MaxOutputChars = 1 << 20 };
        Assert.Contains("limit", Fails("{% for i in range(1000000) %}{{ 'abcdefghij' * 100 }}{% endfor %}", small).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_total_step_budget_bounds_any_other_busy_loop()
    {
        var tight = new TemplateLimits { MaxSteps = 10_000 };
        Assert.Contains("steps", Fails("{% for i in range(5000) %}{{ i + i + i }}{% endfor %}", tight).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deeply_nested_expressions_and_blocks_are_refused_not_a_stack_overflow()
    {
        Assert.Contains("nested too deeply", Assert.Throws<TemplateException>(() => JinjaTemplate.Parse("{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}")).Message, StringComparison.Ordinal);
        string ifs = string.Concat(Enumerable.Repeat("{% if true %}", 5000)) + string.Concat(Enumerable.Repeat("{% endif %}", 5000));
        Assert.Contains("nested too deeply", Assert.Throws<TemplateException>(() => JinjaTemplate.Parse(ifs)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{{ messages.__class__ }}")]
    [InlineData("{{ ''.__class__.__mro__ }}")]
    [InlineData("{{ cycler }}{{ lipsum }}{{ self }}")]
    public void No_host_objects_are_reachable(string source)
    {
        // Unknown attributes are Jinja's Undefined (prints nothing) or an error; never a .NET member.
        try
        {
            Assert.Equal("", JinjaTemplate.Parse(source).Render(s_vars));
        }
        catch (TemplateException e)
        {
            Assert.True(e.Message.Contains("undefined", StringComparison.Ordinal) || e.Message.Contains("has no attribute", StringComparison.Ordinal), e.Message);
        }
    }

    [Fact]
    public void Mutating_a_list_is_refused_as_in_the_immutable_sandbox()
    {
        Assert.Contains("unsafe", Fails("{% set l = [] %}{{ l.append(1) }}").Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_template_error_reaches_the_chat_caller_as_an_argument_error_with_the_line()
    {
        var t = new JinjaChatTemplate("{% if messages[-1].role == 'tool' %}{{ raise_exception('no trailing tool message') }}{% endif %}{{ messages[-1].content }}");
        var e = Assert.Throws<ArgumentException>(() => t.Render([LfmChatMessage.User("q"), LfmChatMessage.Tool("r")]));
        var inner = Assert.IsType<TemplateException>(e.InnerException);
        Assert.True(inner.RaisedByTemplate);
        Assert.Equal(1, inner.Line);
        Assert.Contains("no trailing tool message", e.Message, StringComparison.Ordinal);
    }
}
