using System.Text.Json;

namespace LfmSharp.Server.OpenAi;

/// <summary>
/// A request the server refuses, answered in OpenAI's error shape
/// <c>{"error":{"message","type","param","code"}}</c> with <see cref="StatusCode"/>.
/// </summary>
internal sealed class ApiException : Exception
{
    public ApiException(int statusCode, string message, string type = "invalid_request_error", string? param = null, string? code = null)
        : base(message)
    {
        StatusCode = statusCode;
        Type = type;
        Param = param;
        Code = code;
    }

    public int StatusCode { get; }

    public string Type { get; }

    public string? Param { get; }

    public string? Code { get; }

    public static ApiException BadRequest(string message, string? param = null, string code = "invalid_value") =>
        new(400, message, "invalid_request_error", param, code);

    public static ApiException WrongType(string param, string expected, JsonValueKind got) =>
        new(400, $"'{param}' must be {expected}, not {Describe(got)}.", "invalid_request_error", param, "invalid_type");

    public static ApiException Missing(string param) =>
        new(400, $"Missing required parameter: '{param}'.", "invalid_request_error", param, "missing_required_parameter");

    internal static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    /// <summary>Writes <c>{"error":{...}}</c>.</summary>
    public void WriteTo(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteString("message", Message);
        w.WriteString("type", Type);
        if (Param is null) w.WriteNull("param"); else w.WriteString("param", Param);
        if (Code is null) w.WriteNull("code"); else w.WriteString("code", Code);
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
