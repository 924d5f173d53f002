using System.Text;
using System.Text.Json;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary><c>/health</c>, <c>/v1/models</c>, <c>/metrics</c>, and llama-server's <c>/tokenize</c>,
/// <c>/detokenize</c>, <c>/apply-template</c>.</summary>
internal static class UtilityEndpoints
{
    public static Task HealthAsync(HttpContext ctx, ServerContext server)
    {
        if (server.Drain.Draining)
            return HttpJson.WriteAsync(ctx, 503, w => ErrorWithNumericCode(w, 503, "Shutting down", "unavailable_error"));
        if (server.Host.IsReady)
            return HttpJson.WriteAsync(ctx, 200, w => { w.WriteStartObject(); w.WriteString("status", "ok"); w.WriteEndObject(); });
        if (server.Host.LoadError is Exception e)
            return HttpJson.WriteAsync(ctx, 500, w => ErrorWithNumericCode(w, 500, "Model failed to load: " + e.Message, "server_error"));
        // llama-server's exact loading answer, which health checks and clients already poll for.
        return HttpJson.WriteAsync(ctx, 503, w => ErrorWithNumericCode(w, 503, "Loading model", "unavailable_error"));
    }

    private static void ErrorWithNumericCode(Utf8JsonWriter w, int code, string message, string type)
    {
        w.WriteStartObject();
        w.WriteStartObject("error");
        w.WriteNumber("code", code);
        w.WriteString("message", message);
        w.WriteString("type", type);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static Task ModelsAsync(HttpContext ctx, ServerContext server)
    {
        var (model, _) = server.Host.Ready();
        return HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("object", "list");
            w.WriteStartArray("data");
            foreach (string name in server.Host.Names)
                WriteModel(w, server, model, name);
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    public static Task ModelAsync(HttpContext ctx, ServerContext server, string id)
    {
        var (model, _) = server.Host.Ready();
        string name = server.Host.ResolveModel(id);
        return HttpJson.WriteAsync(ctx, 200, w => WriteModel(w, server, model, name));
    }

    private static void WriteModel(Utf8JsonWriter w, ServerContext server, LanguageModel model, string id)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "model");
        w.WriteNumber("created", server.Host.Created.ToUnixTimeSeconds());
        w.WriteString("owned_by", "lfmsharp");
        w.WriteStartObject("meta");
        w.WriteString("name", model.Name);
        w.WriteNumber("n_vocab", model.Tokenizer.Vocabulary.Count);
        w.WriteNumber("n_ctx_train", model.Config.ContextLength);
        w.WriteNumber("n_ctx", server.Options.ContextLength);
        w.WriteNumber("slots", server.Options.Slots);
        if (server.Host.SourcePath is string path && File.Exists(path))
            w.WriteNumber("size", new FileInfo(path).Length);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public static async Task MetricsAsync(HttpContext ctx, ServerContext server)
    {
        string text = server.Metrics.Render(server.Host.Scheduler);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await ctx.Response.WriteAsync(text, ctx.RequestAborted).ConfigureAwait(false);
    }

    public static async Task TokenizeAsync(HttpContext ctx, ServerContext server)
    {
        var (model, _) = server.Host.Ready();
        using var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false);
        var root = Object(body);
        string content = Json.String(root, "content") ?? throw ApiException.Missing("content");
        bool addSpecial = Json.Bool(root, "add_special") ?? false;
        bool parseSpecial = Json.Bool(root, "parse_special") ?? true;
        bool withPieces = Json.Bool(root, "with_pieces") ?? false;
        var tokenizer = model.Tokenizer;
        int[] ids = tokenizer.Encode(content, addBos: addSpecial && tokenizer.Vocabulary.AddBos, parseSpecial: parseSpecial);
        await HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (int id in ids)
            {
                if (!withPieces)
                {
                    w.WriteNumberValue(id);
                    continue;
                }
                w.WriteStartObject();
                w.WriteNumber("id", id);
                // llama-server: the piece as text when it is whole UTF-8, else its bytes.
                var bytes = tokenizer.TokenBytes(id);
                if (IsValidUtf8(bytes))
                    w.WriteString("piece", Encoding.UTF8.GetString(bytes));
                else
                {
                    w.WriteStartArray("piece");
                    foreach (byte b in bytes)
                        w.WriteNumberValue(b);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    public static async Task DetokenizeAsync(HttpContext ctx, ServerContext server)
    {
        var (model, _) = server.Host.Ready();
        using var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false);
        var root = Object(body);
        var arr = Json.Array(root, "tokens") ?? throw ApiException.Missing("tokens");
        int vocab = model.Tokenizer.Vocabulary.Count;
        var ids = new int[arr.GetArrayLength()];
        int i = 0;
        foreach (var item in arr.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                throw ApiException.WrongType($"tokens[{i}]", "a token id", item.ValueKind);
            if (id < 0 || id >= vocab)
                throw ApiException.BadRequest($"'tokens[{i}]' = {id} is not a token id of this model (0..{vocab - 1}).", "tokens");
            ids[i++] = id;
        }
        string text = model.Tokenizer.Decode(ids);
        await HttpJson.WriteAsync(ctx, 200, w => { w.WriteStartObject(); w.WriteString("content", text); w.WriteEndObject(); }).ConfigureAwait(false);
    }

    public static async Task ApplyTemplateAsync(HttpContext ctx, ServerContext server)
    {
        var (model, _) = server.Host.Ready();
        using var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false);
        var root = Object(body);
        var arr = Json.Array(root, "messages") ?? throw ApiException.Missing("messages");
        var messages = new List<LfmSharp.Chat.LfmChatMessage>();
        int i = 0;
        foreach (var m in arr.EnumerateArray())
            messages.Add(ChatCompletionRequest.ParseMessage(m, $"messages[{i++}]"));
        var tools = ChatCompletionRequest.ParseTools(root);
        bool addGenerationPrompt = Json.Bool(root, "add_generation_prompt") ?? true;
        bool keep = Json.Bool(root, "keep_past_thinking") ?? false;
        var options = new ChatRequestOptions { KeepPastThinking = keep };
        if (Json.Object(root, "chat_template_kwargs") is JsonElement kwargs)
            options = options with { ChatTemplateKwargs = ChatCompletionRequest.TemplateKwargs(kwargs) };
        string prompt;
        try
        {
            prompt = model.ChatTemplate.Render(messages, tools, addGenerationPrompt, options.TemplateKwargs());
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message, "messages");
        }
        await HttpJson.WriteAsync(ctx, 200, w => { w.WriteStartObject(); w.WriteString("prompt", prompt); w.WriteEndObject(); }).ConfigureAwait(false);
    }

    private static JsonElement Object(JsonDocument body)
    {
        if (body.RootElement.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType("body", "a JSON object", body.RootElement.ValueKind);
        return body.RootElement;
    }

    private static bool IsValidUtf8(ReadOnlySpan<byte> bytes) => System.Text.Unicode.Utf8.IsValid(bytes);
}
