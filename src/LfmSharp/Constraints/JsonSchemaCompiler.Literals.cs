using System.Text;
using System.Text.Json;

namespace LfmSharp.Constraints;

/// <summary>enum and const values as the exact bytes the grammar accepts (JSON, or Python literals).</summary>
internal sealed partial class JsonSchemaCompiler
{
    /// <summary>Compact JSON bytes of an enum/const value (Python literals in the Python dialect).</summary>
    private byte[] Serialize(JsonElement v)
    {
        var o = new List<byte>();
        Write(o, v);
        return [.. o];
    }

    private void Write(List<byte> o, JsonElement v)
    {
        switch (v.ValueKind)
        {
            case JsonValueKind.Object:
                o.Add((byte)'{');
                bool first = true;
                foreach (var p in v.EnumerateObject())
                {
                    if (!first)
                        o.Add((byte)',');
                    first = false;
                    AppendJsonString(o, p.Name);
                    o.Add((byte)':');
                    Write(o, p.Value);
                }
                o.Add((byte)'}');
                break;
            case JsonValueKind.Array:
                o.Add((byte)'[');
                int i = 0;
                foreach (var x in v.EnumerateArray())
                {
                    if (i++ > 0)
                        o.Add((byte)',');
                    Write(o, x);
                }
                o.Add((byte)']');
                break;
            case JsonValueKind.String:
                AppendJsonString(o, v.GetString()!);
                break;
            case JsonValueKind.Number:
                o.AddRange(Encoding.UTF8.GetBytes(v.GetRawText()));
                break;
            case JsonValueKind.True:
                o.AddRange(GrammarBuilder.Keyword("true", _python));
                break;
            case JsonValueKind.False:
                o.AddRange(GrammarBuilder.Keyword("false", _python));
                break;
            default:
                o.AddRange(GrammarBuilder.Keyword("null", _python));
                break;
        }
    }

    /// <summary>A quoted JSON string that is also a valid Python literal with the same meaning (no <c>\/</c>, raw UTF-8).</summary>
    internal static void AppendJsonString(List<byte> o, string s)
    {
        o.Add((byte)'"');
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in s.EnumerateRunes())
        {
            int c = rune.Value;
            switch (c)
            {
                case '"': o.Add((byte)'\\'); o.Add((byte)'"'); break;
                case '\\': o.Add((byte)'\\'); o.Add((byte)'\\'); break;
                case '\n': o.Add((byte)'\\'); o.Add((byte)'n'); break;
                case '\r': o.Add((byte)'\\'); o.Add((byte)'r'); break;
                case '\t': o.Add((byte)'\\'); o.Add((byte)'t'); break;
                case '\b': o.Add((byte)'\\'); o.Add((byte)'b'); break;
                case '\f': o.Add((byte)'\\'); o.Add((byte)'f'); break;
                default:
                    if (c < 0x20)
                        o.AddRange(Encoding.ASCII.GetBytes($"\\u{c:x4}"));
                    else
                    {
                        int n = rune.EncodeToUtf8(utf8);
                        for (int k = 0; k < n; k++)
                            o.Add(utf8[k]);
                    }
                    break;
            }
        }
        o.Add((byte)'"');
    }
}
