using LfmSharp.Constraints;
using LfmSharp.Server.OpenAi;

namespace LfmSharp.Server;

/// <summary>
/// Compiles a request's structured-output grammar (response_format, or tool_choice required) before it is queued:
/// on a worker thread, within <see cref="GrammarLimits"/>, through the bounded <see cref="GrammarCache"/>. A schema
/// past a limit is a 400 naming the limit; a malformed or unsupported one is a 400 too.
/// </summary>
internal static class StructuredOutput
{
    public static async Task<Grammar?> CompileAsync(ChatRequestOptions options, CancellationToken ct)
    {
        bool tools = options.ToolChoice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function;
        if (!tools && options.ResponseFormat is not (ResponseFormat.JsonSchemaFormat or ResponseFormat.JsonObjectFormat))
            return null;
        string param = tools ? "tools" : "response_format";
        try
        {
            return await Task.Run(() => GrammarCache.For(options), ct).ConfigureAwait(false);
        }
        catch (GrammarLimitException e)
        {
            throw new ApiException(400, $"'{param}' is too large: {e.Message}.", param: param, code: "schema_too_large");
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new ApiException(400, $"'{param}' cannot be used for constrained decoding: {e.Message}", param: param,
                code: tools ? "invalid_tool_schema" : "invalid_schema");
        }
    }
}
