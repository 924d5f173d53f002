using System.Buffers;
using System.Text;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary><c>POST /v1/completions</c>: a raw prompt (text or token ids) continued by the generator, no template.</summary>
internal static class CompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerContext server)
    {
        var (model, scheduler) = server.Host.Ready();
        int vocab = model.Tokenizer.Vocabulary.Count;
        int[] prompt;
        GenerationOptions options;
        bool stream, includeUsage;
        string modelId;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
        {
            var root = body.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType("body", "a JSON object", root.ValueKind);
            modelId = server.Host.ResolveModel(Json.String(root, "model"));
            prompt = ParsePrompt(root, model, vocab);
            if (Json.Integer(root, "n", 1, 128) is > 1)
                throw ApiException.BadRequest("Only n = 1 is supported.", "n", "unsupported_value");
            if (Json.Bool(root, "echo") == true)
                throw ApiException.BadRequest("'echo' is not supported by this server.", "echo", "unsupported_parameter");
            if (Json.TryGet(root, "suffix", out _))
                throw ApiException.BadRequest("'suffix' (fill-in-the-middle) is not supported by this server.", "suffix", "unsupported_parameter");
            if (Json.TryGet(root, "logprobs", out var lp) && !(lp.ValueKind == JsonValueKind.False || (lp.ValueKind == JsonValueKind.Number && lp.GetDouble() == 0)))
                throw ApiException.BadRequest("logprobs are not supported by this server.", "logprobs", "unsupported_parameter");
            var sampling = ChatCompletionRequest.ParseSampling(root, model.DefaultSampling, vocab);
            // OpenAI's default for this endpoint is 16 tokens.
            int maxTokens = (int)(Json.Integer(root, "max_tokens", 1, int.MaxValue) ?? 16);
            options = new GenerationOptions { MaxTokens = maxTokens, StopStrings = Json.StringOrStrings(root, "stop", 16), Sampling = sampling };
            stream = Json.Bool(root, "stream") ?? false;
            includeUsage = Json.Object(root, "stream_options") is JsonElement so && (Json.Bool(so, "include_usage", "stream_options.include_usage") ?? false);
        }
        if (prompt.Length >= server.Options.ContextLength)
        {
            server.Metrics.BadRequest();
            throw new ApiException(400, $"This model's maximum context length is {server.Options.ContextLength} tokens. However, your prompt resulted in {prompt.Length} tokens.",
                "invalid_request_error", "prompt", "context_length_exceeded");
        }

        using var generation = await GenerationStream.StartAsync(ctx, server, scheduler, (slot, ct) =>
        {
            var state = slot.State;
            state.Reset();   // a raw completion starts from an empty sequence
            return new Generator(model).Generate(state, prompt, options with { Batcher = slot.Batcher }, controller: null, ct);
        }).ConfigureAwait(false);

        string id = "cmpl-" + ChatCompletionsEndpoint.RandomId(29);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (stream)
        {
            await HttpJson.StartEventStreamAsync(ctx).ConfigureAwait(false);
            var buffer = new ArrayBufferWriter<byte>(512);
            try
            {
                await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
                {
                    if (ev is TextDelta t && t.Text.Length > 0)
                        await HttpJson.WriteEventAsync(ctx, buffer, w => Body(w, id, created, modelId, t.Text, null, null)).ConfigureAwait(false);
                    else if (ev is ContentDelta c && c.Text.Length > 0)
                        await HttpJson.WriteEventAsync(ctx, buffer, w => Body(w, id, created, modelId, c.Text, null, null)).ConfigureAwait(false);
                    else if (ev is Done done)
                    {
                        await HttpJson.WriteEventAsync(ctx, buffer, w => Body(w, id, created, modelId, "", ChatCompletionsEndpoint.FinishReasonText(done.Reason), null)).ConfigureAwait(false);
                        if (includeUsage)
                        {
                            await HttpJson.WriteEventAsync(ctx, buffer, w =>
                            {
                                w.WriteStartObject();
                                w.WriteString("id", id);
                                w.WriteString("object", "text_completion");
                                w.WriteNumber("created", created);
                                w.WriteString("model", modelId);
                                w.WriteStartArray("choices");
                                w.WriteEndArray();
                                ChatCompletionsEndpoint.WriteUsage(w, done.Usage);
                                w.WriteEndObject();
                            }).ConfigureAwait(false);
                        }
                    }
                }
            }
            catch (ApiException e)
            {
                await HttpJson.WriteEventAsync(ctx, buffer, e.WriteTo).ConfigureAwait(false);
            }
            await HttpJson.WriteRawEventAsync(ctx, "data: [DONE]\n\n").ConfigureAwait(false);
            return;
        }

        var text = new StringBuilder();
        Done? result = null;
        await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
        {
            switch (ev)
            {
                case TextDelta t: text.Append(t.Text); break;
                case ContentDelta c: text.Append(c.Text); break;
                case Done d: result = d; break;
            }
        }
        if (result is null)
            throw new ApiException(500, "The generation ended without a result.", "server_error");
        await HttpJson.WriteAsync(ctx, 200, w => Body(w, id, created, modelId, text.ToString(), ChatCompletionsEndpoint.FinishReasonText(result.Reason), result.Usage)).ConfigureAwait(false);
    }

    private static void Body(Utf8JsonWriter w, string id, long created, string model, string text, string? finish, GenerationUsage? usage)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", created);
        w.WriteString("model", model);
        w.WriteString("system_fingerprint", ChatResponseState.Fingerprint);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteString("text", text);
        w.WriteNumber("index", 0);
        w.WriteNull("logprobs");
        if (finish is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", finish);
        w.WriteEndObject();
        w.WriteEndArray();
        if (usage is not null)
        {
            ChatCompletionsEndpoint.WriteUsage(w, usage);
            ChatCompletionsEndpoint.WriteTimings(w, usage);
        }
        w.WriteEndObject();
    }

    /// <summary>A string, a one-element array of strings, or an array of token ids.</summary>
    private static int[] ParsePrompt(JsonElement root, LanguageModel model, int vocab)
    {
        if (!Json.TryGet(root, "prompt", out var p))
            throw ApiException.Missing("prompt");
        if (p.ValueKind == JsonValueKind.String)
            return Encode(model, p.GetString()!);
        if (p.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType("prompt", "a string, an array of strings or an array of token ids", p.ValueKind);
        int count = p.GetArrayLength();
        if (count == 0)
            throw ApiException.BadRequest("'prompt' is empty.", "prompt", "empty_array");
        var first = p[0];
        if (first.ValueKind == JsonValueKind.String)
        {
            if (count > 1)
                throw ApiException.BadRequest("Only one prompt per request is supported.", "prompt", "unsupported_value");
            return Encode(model, first.GetString()!);
        }
        var ids = new int[count];
        int i = 0;
        foreach (var item in p.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int id))
                throw ApiException.WrongType($"prompt[{i}]", "a token id", item.ValueKind);
            if (id < 0 || id >= vocab)
                throw ApiException.BadRequest($"'prompt[{i}]' = {id} is not a token id of this model (0..{vocab - 1}).", "prompt");
            ids[i++] = id;
        }
        return ids;
    }

    private static int[] Encode(LanguageModel model, string text)
    {
        var ids = model.Tokenizer.EncodePrompt(text);
        if (ids.Length == 0)
            throw ApiException.BadRequest("'prompt' is empty.", "prompt");
        return ids;
    }
}
