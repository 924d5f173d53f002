using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary>
/// JSON endpoints accept only a JSON body type (<c>application/json</c> or <c>application/*+json</c>, any charset
/// parameter). A web page can send <c>text/plain</c>, form and multipart bodies cross-site without a CORS
/// preflight; refusing them with 415 means no page the user visits can make the local server work.
/// </summary>
internal static class JsonContentType
{
    public static void Check(HttpRequest request)
    {
        string? type = request.ContentType;
        if (type is not null && IsJson(type))
            return;
        throw new ApiException(415, type is null
                ? "The request has no Content-Type; send the JSON body with 'Content-Type: application/json'."
                : $"Content-Type '{type}' is not accepted; send the JSON body with 'Content-Type: application/json'.",
            code: "unsupported_media_type");
    }

    internal static bool IsJson(string contentType)
    {
        var media = contentType.AsSpan();
        int semicolon = media.IndexOf(';');
        if (semicolon >= 0)
            media = media[..semicolon];
        media = media.Trim();
        return media.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (media.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && media.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
    }
}
