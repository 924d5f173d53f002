using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace LfmSharp.Server.OpenAi;

/// <summary>
/// Every string of a request body (values and property names, at any depth) must be valid text: well-formed UTF-8
/// and no unpaired surrogate escape such as <c>"\ud800"</c>. The JSON parser accepts both, and reading such a string
/// later throws deep inside an endpoint; checking the raw bytes once up front turns them into a 400 naming the field.
/// </summary>
internal static class TextValidation
{
    /// <summary>Throws a 400 naming the first field whose text is invalid.</summary>
    public static void Check(JsonElement root)
    {
        var path = new List<string>(16);
        if (FindInvalid(root, path) is string what)
        {
            string field = path.Count == 0 ? "body" : string.Concat(path).TrimStart('.');
            throw new ApiException(400, $"'{field}' is not valid text: {what}.", param: field, code: "invalid_text");
        }
    }

    private static string? FindInvalid(JsonElement e, List<string> path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                return Problem(JsonMarshal.GetRawUtf8Value(e));
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    if (Problem(JsonMarshal.GetRawUtf8PropertyName(p)) is string bad)
                    {
                        path.Add(".(a property name)");
                        return bad;
                    }
                    path.Add("." + p.Name);
                    if (FindInvalid(p.Value, path) is string inner)
                        return inner;
                    path.RemoveAt(path.Count - 1);
                }
                return null;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    path.Add($"[{i++}]");
                    if (FindInvalid(item, path) is string inner)
                        return inner;
                    path.RemoveAt(path.Count - 1);
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>What is wrong with raw (still escaped) JSON string bytes, or null when they are fine.</summary>
    internal static string? Problem(ReadOnlySpan<byte> raw)
    {
        if (!Utf8.IsValid(raw))
            return "it contains bytes that are not UTF-8";
        int pendingHigh = -1;   // index after a high-surrogate escape, which a low one must follow at once
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] != (byte)'\\')
            {
                if (pendingHigh >= 0)
                    return "it contains an unpaired surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
                continue;
            }
            if (i + 1 < raw.Length && raw[i + 1] == (byte)'u' && i + 5 < raw.Length && TryHex(raw.Slice(i + 2, 4), out int unit))
            {
                bool high = unit is >= 0xD800 and <= 0xDBFF;
                bool low = unit is >= 0xDC00 and <= 0xDFFF;
                if (pendingHigh >= 0 && !low)
                    return "it contains an unpaired surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
                if (pendingHigh < 0 && low)
                    return "it contains an unpaired surrogate (a lone \\uDC00-\\uDFFF)";
                pendingHigh = high ? i + 6 : -1;
                i += 5;
                continue;
            }
            if (pendingHigh >= 0)
                return "it contains an unpaired surrogate (\\uD800-\\uDBFF not followed by \\uDC00-\\uDFFF)";
            i++;   // a two-byte escape such as \" or \n
        }
        return pendingHigh >= 0 ? "it contains an unpaired surrogate (\\uD800-\\uDBFF at the end)" : null;
    }

    private static bool TryHex(ReadOnlySpan<byte> hex, out int value)
    {
        value = 0;
        foreach (byte b in hex)
        {
            int d = b switch
            {
                >= (byte)'0' and <= (byte)'9' => b - '0',
                >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
                _ => -1,
            };
            if (d < 0)
                return false;
            value = value * 16 + d;
        }
        return true;
    }
}
