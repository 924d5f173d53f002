using System.Buffers;
using System.Text;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using LfmSharp.Tokenizers;
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
        int n;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
        {
            var root = body.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType("body", "a JSON object", root.ValueKind);
            modelId = server.Host.ResolveModel(Json.String(root, "model"));
            prompt = ParsePrompt(root, model, vocab, server.Options.ContextLength);
            n = (int)(Json.Integer(root, "n", 1, ChatCompletionRequest.MaxChoices) ?? 1);
            if (Json.Bool(root, "echo") == true)
                throw ApiException.BadRequest("'echo' is not supported by this server.", "echo", "unsupported_parameter");
            if (Json.TryGet(root, "suffix", out _))
                throw ApiException.BadRequest("'suffix' (fill-in-the-middle) is not supported by this server.", "suffix", "unsupported_parameter");
            var sampling = ChatCompletionRequest.ParseSampling(root, model.DefaultSampling, vocab, model.Tokenizer.Vocabulary.EndOfGenerationIds);
            // OpenAI's default for this endpoint is 16 tokens.
            int maxTokens = (int)(Json.Integer(root, "max_tokens", 1, int.MaxValue) ?? 16);
            options = new GenerationOptions { MaxTokens = maxTokens, StopStrings = Json.StringOrStrings(root, "stop", 16), Sampling = sampling, Logprobs = ParseLogprobs(root) };
            stream = Json.Bool(root, "stream") ?? false;
            includeUsage = Json.Object(root, "stream_options") is JsonElement so && (Json.Bool(so, "include_usage", "stream_options.include_usage") ?? false);
        }
        if (prompt.Length >= server.Options.ContextLength)
        {
            server.Metrics.BadRequest();
            throw new ApiException(400, $"This model's maximum context length is {server.Options.ContextLength} tokens. However, your prompt resulted in {prompt.Length} tokens.",
                "invalid_request_error", "prompt", "context_length_exceeded");
        }

        var starts = new Task<GenerationStream>[n];
        for (int i = 0; i < n; i++)
        {
            // With a seed, choice i draws with seed + i, so the n choices differ.
            var o = i > 0 && options.Sampling?.Seed is ulong seed ? options with { Sampling = options.Sampling with { Seed = unchecked(seed + (ulong)i) } } : options;
            starts[i] = GenerationStream.StartAsync(ctx, server, scheduler, (slot, ct) =>
            {
                // The longest cached prefix of the prompt (from any slot, chat or raw) is restored, the rest prefilled.
                var (rest, withCheckpoints, controller) = PrefixCacheController.Prepare(slot.Cache, slot.State, prompt, o, model.Tokenizer);
                return new Generator(model).Generate(slot.State, rest, withCheckpoints, controller, ct);
            });
        }
        var generations = await ChatCompletionsEndpoint.WhenAllStartedAsync(starts).ConfigureAwait(false);
        try
        {
            var response = new Response("cmpl-" + ChatCompletionsEndpoint.RandomId(29), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), modelId, model.Tokenizer.Vocabulary, options.Logprobs is not null);
            if (stream)
                await StreamAsync(ctx, generations, response, includeUsage).ConfigureAwait(false);
            else
                await RespondAsync(ctx, generations, response).ConfigureAwait(false);
        }
        finally
        {
            foreach (var g in generations)
                g.Dispose();
        }
    }

    /// <summary><c>logprobs</c>: the number of alternatives per token (0..20; <c>true</c> means 0), or null when off.</summary>
    private static int? ParseLogprobs(JsonElement root)
    {
        if (!Json.TryGet(root, "logprobs", out var lp) || lp.ValueKind is JsonValueKind.Null or JsonValueKind.False)
            return null;
        if (lp.ValueKind == JsonValueKind.True)
            return 0;
        return (int)Json.Integer(root, "logprobs", 0, TokenLogprobs.MaxTop)!.Value;
    }

    private sealed record Response(string Id, long Created, string Model, Vocabulary Vocabulary, bool WantsLogprobs);

    private static async Task StreamAsync(HttpContext ctx, GenerationStream[] generations, Response r, bool includeUsage)
    {
        await HttpJson.StartEventStreamAsync(ctx).ConfigureAwait(false);
        var buffer = new ArrayBufferWriter<byte>(512);
        var pending = new List<TokenLogprobs>[generations.Length];
        var offsets = new int[generations.Length];
        var usages = new List<GenerationUsage>();
        try
        {
            await foreach (var (index, ev) in ChatCompletionsEndpoint.MergeAsync(generations).ConfigureAwait(false))
            {
                var waiting = pending[index] ??= new List<TokenLogprobs>();
                string? text = ev switch { TextDelta t => t.Text, ContentDelta c => c.Text, _ => null };
                if (ev is TokenLogprobs lp)
                {
                    waiting.Add(lp);
                }
                else if (text is { Length: > 0 } || ev is Done)
                {
                    // A chunk carries the log probabilities of the tokens its text completes.
                    var logprobs = r.WantsLogprobs ? waiting.ToArray() : null;
                    waiting.Clear();
                    int offset = offsets[index];
                    offsets[index] += text?.Length ?? 0;
                    string? finish = ev is Done d ? ChatCompletionsEndpoint.FinishReasonText(d.Reason) : null;
                    await HttpJson.WriteEventAsync(ctx, buffer, w => Body(w, r, [(index, text ?? "", finish, logprobs, offset)], null)).ConfigureAwait(false);
                    if (ev is Done done)
                        usages.Add(done.Usage);
                }
            }
            if (includeUsage && usages.Count == generations.Length)
            {
                var usage = ChatCompletionsEndpoint.SumUsage(usages);
                await HttpJson.WriteEventAsync(ctx, buffer, w => Body(w, r, [], usage, timings: false)).ConfigureAwait(false);
            }
        }
        catch (ApiException e)
        {
            await HttpJson.WriteEventAsync(ctx, buffer, e.WriteTo).ConfigureAwait(false);
        }
        await HttpJson.WriteRawEventAsync(ctx, "data: [DONE]\n\n").ConfigureAwait(false);
    }

    private static async Task RespondAsync(HttpContext ctx, GenerationStream[] generations, Response r)
    {
        var choices = new List<(int, string, string?, IReadOnlyList<TokenLogprobs>?, int)>();
        var usages = new List<GenerationUsage>();
        for (int i = 0; i < generations.Length; i++)
        {
            var text = new StringBuilder();
            var logprobs = new List<TokenLogprobs>();
            Done? result = null;
            await foreach (var ev in generations[i].ReadAllAsync().ConfigureAwait(false))
            {
                switch (ev)
                {
                    case TextDelta t: text.Append(t.Text); break;
                    case ContentDelta c: text.Append(c.Text); break;
                    case TokenLogprobs lp: logprobs.Add(lp); break;
                    case Done d: result = d; break;
                }
            }
            if (result is null)
                throw new ApiException(500, "The generation ended without a result.", "server_error");
            choices.Add((i, text.ToString(), ChatCompletionsEndpoint.FinishReasonText(result.Reason), r.WantsLogprobs ? logprobs : null, 0));
            usages.Add(result.Usage);
        }
        await HttpJson.WriteAsync(ctx, 200, w => Body(w, r, choices, ChatCompletionsEndpoint.SumUsage(usages))).ConfigureAwait(false);
    }

    private static void Body(Utf8JsonWriter w, Response r, IReadOnlyList<(int Index, string Text, string? Finish, IReadOnlyList<TokenLogprobs>? Logprobs, int Offset)> choices,
        GenerationUsage? usage, bool timings = true)
    {
        w.WriteStartObject();
        w.WriteString("id", r.Id);
        w.WriteString("object", "text_completion");
        w.WriteNumber("created", r.Created);
        w.WriteString("model", r.Model);
        w.WriteString("system_fingerprint", ChatResponseState.Fingerprint);
        w.WriteStartArray("choices");
        foreach (var c in choices)
        {
            w.WriteStartObject();
            w.WriteString("text", c.Text);
            w.WriteNumber("index", c.Index);
            LogprobsJson.WriteCompletion(w, r.Vocabulary, c.Logprobs, c.Offset);
            if (c.Finish is null) w.WriteNull("finish_reason"); else w.WriteString("finish_reason", c.Finish);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        if (usage is not null)
        {
            ChatCompletionsEndpoint.WriteUsage(w, usage);
            if (timings)
                ChatCompletionsEndpoint.WriteTimings(w, usage);
        }
        w.WriteEndObject();
    }

    /// <summary>A string, a one-element array of strings, or an array of token ids.</summary>
    private static int[] ParsePrompt(JsonElement root, LanguageModel model, int vocab, int context)
    {
        if (!Json.TryGet(root, "prompt", out var p))
            throw ApiException.Missing("prompt");
        if (p.ValueKind == JsonValueKind.String)
            return Encode(model, p.GetString()!, context);
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
            return Encode(model, first.GetString()!, context);
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

    private static int[] Encode(LanguageModel model, string text, int context)
    {
        // A prompt that cannot fit is refused from its byte length, before tokenizing all of it.
        int atLeast = ModelHost.AtLeastTokens(model, text, context);
        if (atLeast >= 4L * context)
            throw new ApiException(400, $"This model's maximum context length is {context} tokens. However, your prompt resulted in at least {atLeast} tokens.",
                "invalid_request_error", "prompt", "context_length_exceeded");
        var ids = model.Tokenizer.EncodePrompt(text);
        if (ids.Length == 0)
            throw ApiException.BadRequest("'prompt' is empty.", "prompt");
        return ids;
    }
}
