using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server.Ollama;

/// <summary>
/// Ollama's API, for the desktop and editor tools that speak only it: <c>POST /api/chat</c> and <c>/api/generate</c>
/// (NDJSON streamed by default, or one JSON object with <c>"stream": false</c>; reasoning in <c>thinking</c>, tool
/// calls in <c>message.tool_calls</c>), <c>GET /api/tags</c>, <c>POST /api/show</c>, <c>GET /api/version</c>,
/// <c>GET /api/ps</c>. Errors use Ollama's shape, <c>{"error":"…"}</c>.
/// </summary>
internal static class OllamaEndpoints
{
    /// <summary>The Ollama version reported: clients gate features (tools, thinking, structured output) on it.</summary>
    public const string CompatibleVersion = "0.12.6";

    public static void Map(WebApplication app, ServerContext server)
    {
        app.MapPost("/api/chat", ctx => Guard(ctx, server, () => GenerateAsync(ctx, server, chat: true)));
        app.MapPost("/api/generate", ctx => Guard(ctx, server, () => GenerateAsync(ctx, server, chat: false)));
        app.MapGet("/api/tags", ctx => Guard(ctx, server, () => OllamaInfo.TagsAsync(ctx, server)));
        app.MapPost("/api/show", ctx => Guard(ctx, server, () => OllamaInfo.ShowAsync(ctx, server)));
        app.MapGet("/api/ps", ctx => Guard(ctx, server, () => OllamaInfo.PsAsync(ctx, server)));
        app.MapGet("/api/version", ctx => Guard(ctx, server, () => HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("version", CompatibleVersion);
            w.WriteEndObject();
        })));
    }

    /// <summary>Refusals in Ollama's error shape (OllamaSharp and others read <c>error</c> as a string).</summary>
    private static async Task Guard(HttpContext ctx, ServerContext server, Func<Task> handler)
    {
        try
        {
            await handler().ConfigureAwait(false);
        }
        catch (ApiException e) when (!ctx.Response.HasStarted)
        {
            if (e.StatusCode is >= 400 and < 500 and not 429)
                server.Metrics.BadRequest();
            await HttpJson.WriteAsync(ctx, e.StatusCode, w => Error(w, e.Message)).ConfigureAwait(false);
        }
    }

    private static void Error(Utf8JsonWriter w, string message)
    {
        w.WriteStartObject();
        w.WriteString("error", message);
        w.WriteEndObject();
    }

    private static async Task GenerateAsync(HttpContext ctx, ServerContext server, bool chat)
    {
        var (model, scheduler) = server.Host.Ready();
        OllamaRequest request;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
        {
            int vocab = model.Tokenizer.Vocabulary.Count;
            request = chat
                ? OllamaRequest.ParseChat(body.RootElement, model.DefaultSampling, vocab, server.Options.ContextLength)
                : OllamaRequest.ParseGenerate(body.RootElement, model.DefaultSampling, vocab, server.Options.ContextLength);
        }
        var reply = new OllamaReply(server.Host.ResolveModel(request.Model), chat, request.ShowThinking);
        if (request.Messages.Count == 0)
        {
            // Ollama's way to load a model: nothing to answer, done at once.
            await HttpJson.WriteAsync(ctx, 200, w => reply.Final(w, "load", null)).ConfigureAwait(false);
            return;
        }
        var prepared = ModelHost.PreparePrompt(model, request.Messages, request.Options, server.Options.ContextLength, scheduler.Cache.Enabled, refuseFarPastContext: false);
        int promptTokens = prepared.PromptTokens.Length;
        if (promptTokens >= server.Options.ContextLength)
        {
            server.Metrics.BadRequest();
            throw GenerationStream.ContextTooLong(promptTokens, server.Options.ContextLength);
        }
        var options = request.Options;
        // The answer may not run past the context: Ollama's "unlimited" ends there.
        options = options with { MaxTokens = Math.Min(options.MaxTokens, server.Options.ContextLength - promptTokens) };
        using var generation = await GenerationStream.StartAsync(ctx, server, scheduler,
            (slot, ct) => slot.Session.Complete(prepared with { Options = options }, ct)).ConfigureAwait(false);
        if (request.Stream)
            await StreamAsync(ctx, generation, reply).ConfigureAwait(false);
        else
            await RespondAsync(ctx, generation, reply).ConfigureAwait(false);
    }

    /// <summary>NaN/Inf logits stopped the generation: Ollama has no finish reason for it, so it is an error.</summary>
    private static ApiException NumericalFault(GenerationStream.GenerationFault f) =>
        new(500, f.Message, "server_error", code: "numerical_fault");

    private static async Task RespondAsync(HttpContext ctx, GenerationStream generation, OllamaReply reply)
    {
        var content = new StringBuilder();
        var thinking = new StringBuilder();
        var calls = new List<ToolCall>();
        Done? done = null;
        await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
        {
            switch (ev)
            {
                case ReasoningDelta r: thinking.Append(r.Text); break;
                case ContentDelta c: content.Append(c.Text); break;
                case ParseErrorEvent e: content.Append(e.RawText); break;
                case ToolCallEvent t: calls.Add(t.Call); break;
                case Done d: done = d; break;
                case GenerationStream.GenerationFault f: throw NumericalFault(f);
            }
        }
        if (done is null)
            throw new ApiException(500, "The generation ended without a result.", "server_error");
        await HttpJson.WriteAsync(ctx, 200, w => reply.Write(w, content.ToString(), thinking.ToString(), calls, done)).ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpContext ctx, GenerationStream generation, OllamaReply reply)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/x-ndjson";
        await ctx.Response.StartAsync(ctx.RequestAborted).ConfigureAwait(false);
        var buffer = new ArrayBufferWriter<byte>(512);
        try
        {
            await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
            {
                switch (ev)
                {
                    case ReasoningDelta r when r.Text.Length > 0 && reply.ShowThinking:
                        await HttpJson.WriteLineAsync(ctx, buffer, w => reply.Write(w, "", r.Text, null, null)).ConfigureAwait(false);
                        break;
                    case ContentDelta or ParseErrorEvent:
                    {
                        string text = ev is ContentDelta c ? c.Text : ((ParseErrorEvent)ev).RawText;
                        if (text.Length > 0)
                            await HttpJson.WriteLineAsync(ctx, buffer, w => reply.Write(w, text, "", null, null)).ConfigureAwait(false);
                        break;
                    }
                    case ToolCallEvent t:
                        await HttpJson.WriteLineAsync(ctx, buffer, w => reply.Write(w, "", "", [t.Call], null)).ConfigureAwait(false);
                        break;
                    case Done d:
                        await HttpJson.WriteLineAsync(ctx, buffer, w => reply.Write(w, "", "", null, d)).ConfigureAwait(false);
                        break;
                    case GenerationStream.GenerationFault f:
                        throw NumericalFault(f);
                }
            }
        }
        catch (ApiException e)
        {
            // Headers are gone: Ollama ends a failed stream with an error line.
            await HttpJson.WriteLineAsync(ctx, buffer, w => Error(w, e.Message)).ConfigureAwait(false);
        }
    }
}

/// <summary>Writes Ollama's chat and generate objects (one NDJSON line or the whole answer).</summary>
internal sealed class OllamaReply(string model, bool chat, bool showThinking)
{
    public bool ShowThinking { get; } = showThinking;

    /// <summary>A chunk (<paramref name="done"/> null) or the last object, with the statistics.</summary>
    public void Write(Utf8JsonWriter w, string content, string thinking, IReadOnlyList<ToolCall>? calls, Done? done)
    {
        w.WriteStartObject();
        Header(w);
        if (chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", content);
            if (thinking.Length > 0 && ShowThinking)
                w.WriteString("thinking", thinking);
            if (calls is { Count: > 0 })
            {
                w.WriteStartArray("tool_calls");
                foreach (var call in calls)
                {
                    w.WriteStartObject();
                    w.WriteString("id", call.Id);
                    w.WriteStartObject("function");
                    w.WriteString("name", call.Name);
                    w.WritePropertyName("arguments");
                    w.WriteRawValue(call.ArgumentsJson);   // Ollama sends the arguments as an object, not a string
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        else
        {
            w.WriteString("response", content);
            if (thinking.Length > 0 && ShowThinking)
                w.WriteString("thinking", thinking);
        }
        w.WriteBoolean("done", done is not null);
        if (done is not null)
            Stats(w, done);
        w.WriteEndObject();
    }

    /// <summary>An answer with no generation (a load request).</summary>
    public void Final(Utf8JsonWriter w, string reason, Done? done)
    {
        w.WriteStartObject();
        Header(w);
        if (chat)
        {
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", "");
            w.WriteEndObject();
        }
        else
        {
            w.WriteString("response", "");
        }
        w.WriteBoolean("done", true);
        w.WriteString("done_reason", reason);
        if (done is not null)
            Stats(w, done);
        w.WriteEndObject();
    }

    private void Header(Utf8JsonWriter w)
    {
        w.WriteString("model", model);
        w.WriteString("created_at", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture));
    }

    private static void Stats(Utf8JsonWriter w, Done done)
    {
        var u = done.Usage;
        w.WriteString("done_reason", done.Reason is FinishReason.Length or FinishReason.Loop ? "length" : "stop");
        // Ollama reports durations in nanoseconds.
        w.WriteNumber("total_duration", (long)((u.PrefillTime + u.DecodeTime).TotalMilliseconds * 1e6));
        w.WriteNumber("load_duration", 0);
        w.WriteNumber("prompt_eval_count", u.PrefilledTokens);   // as Ollama: the tokens evaluated, not those restored from the cache
        w.WriteNumber("prompt_eval_duration", (long)(u.PrefillTime.TotalMilliseconds * 1e6));
        w.WriteNumber("eval_count", u.CompletionTokens);
        w.WriteNumber("eval_duration", (long)(u.DecodeTime.TotalMilliseconds * 1e6));
    }
}
