using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary>Request bodies in, JSON and SSE out.</summary>
internal static class HttpJson
{
    // Relaxed escaping: the bodies are JSON, never embedded in HTML, so quotes and non-ASCII text go out as they are
    // (smaller, and readable in logs) instead of as \uXXXX.
    private static readonly JsonWriterOptions s_writerOptions = new() { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly byte[] s_dataPrefix = "data: "u8.ToArray();
    private static readonly byte[] s_eventEnd = "\n\n"u8.ToArray();

    /// <summary>Parses the body as JSON: a non-JSON Content-Type is a 415, malformed JSON or invalid text (bad UTF-8,
    /// a lone surrogate) a 400, a body over the limit a 413.</summary>
    public static async Task<JsonDocument> ReadAsync(HttpContext ctx)
    {
        JsonContentType.Check(ctx.Request);
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(ctx.Request.Body, new JsonDocumentOptions { MaxDepth = 128 }, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new ApiException(400, "We could not parse the JSON body of your request: " + e.Message, code: "invalid_json");
        }
        catch (BadHttpRequestException e)
        {
            string message = e.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? "The request body is too large for this server."
                : "The request body could not be read: " + e.Message;
            throw new ApiException(e.StatusCode, message, code: e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request_too_large" : "bad_request");
        }
        try
        {
            TextValidation.Check(doc.RootElement);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
        return doc;
    }

    public static async Task WriteAsync(HttpContext ctx, int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
            write(w);
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        ctx.Response.ContentLength = buffer.WrittenCount;
        if (HttpMethods.IsHead(ctx.Request.Method))
            return;   // same headers as GET, no body
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
    }

    public static Task WriteErrorAsync(HttpContext ctx, ApiException error)
    {
        if (error.StatusCode == StatusCodes.Status429TooManyRequests)
            ctx.Response.Headers.RetryAfter = "1";
        if (error.StatusCode == StatusCodes.Status401Unauthorized)
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
        return WriteAsync(ctx, error.StatusCode, error.WriteTo);
    }

    public static async Task StartEventStreamAsync(HttpContext ctx)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream; charset=utf-8";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Response.Headers["X-Accel-Buffering"] = "no";   // proxies must not hold events back
        await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Writes one <c>data: {json}</c> event and flushes it, so each delta reaches the client at once.</summary>
    public static async Task WriteEventAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, Action<Utf8JsonWriter> write)
    {
        buffer.ResetWrittenCount();
        buffer.Write(s_dataPrefix);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
            write(w);
        buffer.Write(s_eventEnd);
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Writes one named <c>event: NAME</c> / <c>data: {json}</c> event (the Responses API's typed events) and
    /// flushes it.</summary>
    public static async Task WriteNamedEventAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, string name, Action<Utf8JsonWriter> write)
    {
        buffer.ResetWrittenCount();
        buffer.Write("event: "u8);
        Encoding.UTF8.GetBytes(name, buffer);
        buffer.Write("\n"u8);
        buffer.Write(s_dataPrefix);
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
            write(w);
        buffer.Write(s_eventEnd);
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Writes one line of NDJSON (Ollama's streaming format) and flushes it.</summary>
    public static async Task WriteLineAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, Action<Utf8JsonWriter> write)
    {
        buffer.ResetWrittenCount();
        using (var w = new Utf8JsonWriter(buffer, s_writerOptions))
            write(w);
        buffer.Write("\n"u8);
        await ctx.Response.Body.WriteAsync(buffer.WrittenMemory, ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }

    public static async Task WriteRawEventAsync(HttpContext ctx, string text)
    {
        await ctx.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(text), ctx.RequestAborted).ConfigureAwait(false);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted).ConfigureAwait(false);
    }
}
