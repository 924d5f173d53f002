using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LfmSharp.Chat;

/// <summary>
/// Writes JSON the way the chat templates' <c>tojson</c> filter does: Python <c>json.dumps</c> with its default
/// separators <c>", "</c> and <c>": "</c>, keys in insertion order, numbers as Python prints them after
/// <c>json.loads</c> (ints verbatim, floats as <c>repr</c>: <c>1e3</c> → <c>1000.0</c>, <c>1e-05</c>).
/// Non-ASCII is kept as is by default: Hugging Face's chat-template environment and llama.cpp's Jinja engine both
/// override <c>tojson</c> with <c>ensure_ascii=False</c>; <c>ensureAscii: true</c> gives plain <c>json.dumps</c>.
/// </summary>
internal static class PythonJson
{
    public static string Dumps(JsonElement value, bool ensureAscii = false)
    {
        var sb = new StringBuilder();
        Dump(value, sb, ensureAscii);
        return sb.ToString();
    }

    public static void Dump(JsonElement value, StringBuilder sb, bool ensureAscii)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Object:
                // json.loads keeps the last value of a repeated key at the key's first position.
                var members = new List<KeyValuePair<string, JsonElement>>();
                foreach (var p in value.EnumerateObject())
                {
                    int at = members.FindIndex(m => m.Key == p.Name);
                    if (at >= 0)
                        members[at] = new(p.Name, p.Value);
                    else
                        members.Add(new(p.Name, p.Value));
                }
                sb.Append('{');
                for (int i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                        sb.Append(", ");
                    DumpString(members[i].Key, sb, ensureAscii);
                    sb.Append(": ");
                    Dump(members[i].Value, sb, ensureAscii);
                }
                sb.Append('}');
                break;
            case JsonValueKind.Array:
                sb.Append('[');
                bool first = true;
                foreach (var item in value.EnumerateArray())
                {
                    if (!first)
                        sb.Append(", ");
                    first = false;
                    Dump(item, sb, ensureAscii);
                }
                sb.Append(']');
                break;
            case JsonValueKind.String:
                DumpString(value.GetString()!, sb, ensureAscii);
                break;
            case JsonValueKind.Number:
                sb.Append(FormatNumber(value.GetRawText()));
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.Null:
                sb.Append("null");
                break;
            default:
                throw new ArgumentException($"Cannot serialize a JSON value of kind {value.ValueKind}.", nameof(value));
        }
    }

    /// <summary>A JSON string literal as <c>json.dumps</c> writes it (lower-case <c>\u00xx</c> escapes).</summary>
    public static void DumpString(string s, StringBuilder sb, bool ensureAscii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    // ensure_ascii escapes everything outside ' '..'~' (DEL included); UTF-16 units map 1:1 to
                    // Python's surrogate-pair escapes for astral characters.
                    if (c < 0x20 || (ensureAscii && c > 0x7E))
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>
    /// The text Python prints for a JSON number after a <c>json.loads</c> round trip: integers keep their digits
    /// (<c>-0</c> becomes <c>0</c>), anything with a fraction or exponent becomes a float printed by <c>repr</c>.
    /// </summary>
    public static string FormatNumber(string json)
    {
        bool isFloat = json.AsSpan().IndexOfAny('.', 'e', 'E') >= 0;
        if (!isFloat)
            return json.TrimStart('-').Trim('0').Length == 0 ? "0" : json;
        double d = double.Parse(json, NumberStyles.Float, CultureInfo.InvariantCulture);
        return FloatRepr(d);
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, exponent form when the decimal exponent is
    /// below -4 or above 16 (<c>1e-05</c>, <c>1e+16</c>), otherwise fixed with at least one fractional digit.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
            return "NaN";
        if (double.IsInfinity(d))
            return d > 0 ? "Infinity" : "-Infinity";
        bool negative = double.IsNegative(d);
        if (d == 0)
            return negative ? "-0.0" : "0.0";
        string r = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOfAny(['E', 'e']);
        string mantissa = e >= 0 ? r[..e] : r;
        int exponent = e >= 0 ? int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        int dot = mantissa.IndexOf('.');
        string digits = dot >= 0 ? mantissa.Remove(dot, 1) : mantissa;
        // decpt: how many digits stand before the decimal point in fixed notation (value = 0.DIGITS × 10^decpt).
        int decpt = (dot >= 0 ? dot : mantissa.Length) + exponent;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
            lead++;
        digits = digits[lead..];
        decpt -= lead;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
            digits = "0";

        var sb = new StringBuilder(32);
        if (negative)
            sb.Append('-');
        if (decpt <= -4 || decpt > 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            int x = decpt - 1;
            sb.Append('e').Append(x < 0 ? '-' : '+').Append(Math.Abs(x).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (decpt <= 0)
        {
            sb.Append("0.").Append('0', -decpt).Append(digits);
        }
        else if (decpt >= digits.Length)
        {
            sb.Append(digits).Append('0', decpt - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, decpt).Append('.').Append(digits, decpt, digits.Length - decpt);
        }
        return sb.ToString();
    }

    /// <summary>Python's <c>str.isspace</c> (what Jinja's <c>trim</c> strips): wider than <see cref="char.IsWhiteSpace(char)"/>
    /// by the four information separators U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\u001C' && c <= '\u001F');

    /// <summary>Python's <c>str.strip()</c>.</summary>
    public static string Strip(string s)
    {
        int start = 0, end = s.Length;
        while (start < end && IsSpace(s[start]))
            start++;
        while (end > start && IsSpace(s[end - 1]))
            end--;
        return s[start..end];
    }
}
