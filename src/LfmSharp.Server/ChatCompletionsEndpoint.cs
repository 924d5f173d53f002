using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;

namespace LfmSharp.Server;

/// <summary><c>POST /v1/chat/completions</c>: JSON or SSE, reasoning in <c>reasoning_content</c>, tool calls, usage.</summary>
internal static class ChatCompletionsEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerContext server)
    {
        var (model, scheduler) = server.Host.Ready();
        ChatCompletionRequest request;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
            request = ChatCompletionRequest.Parse(body.RootElement, model.DefaultSampling, model.Tokenizer.Vocabulary.Count);
        string modelName = server.Host.ResolveModel(request.Model);

        // Refuse an over-long prompt before it waits in the queue (the session would refuse it too, later).
        int promptTokens = ModelHost.CountPromptTokens(model, request.Messages, request.Options);
        int context = server.Options.ContextLength;
        if (promptTokens >= context)
        {
            server.Metrics.BadRequest();
            throw GenerationStream.ContextTooLong(promptTokens, context);
        }

        using var generation = await GenerationStream.StartAsync(ctx, server, scheduler,
            (slot, ct) => slot.Session.Complete(request.Messages, request.Options, ct)).ConfigureAwait(false);
        var response = new ChatResponseState(modelName, request.ReasoningFormat);
        if (request.Stream)
            await StreamAsync(ctx, generation, response, request.IncludeUsage).ConfigureAwait(false);
        else
            await RespondAsync(ctx, generation, response).ConfigureAwait(false);
    }

    private static async Task RespondAsync(HttpContext ctx, GenerationStream generation, ChatResponseState state)
    {
        var content = new StringBuilder();
        var reasoning = new StringBuilder();
        var calls = new List<(string Id, ToolCall Call)>();
        Done? done = null;
        await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
        {
            switch (ev)
            {
                case ReasoningDelta r when state.Format == ReasoningFormat.Separate:
                    reasoning.Append(r.Text);
                    break;
                case ReasoningDelta or ContentDelta or ParseErrorEvent:
                    content.Append(state.ContentText(ev));
                    break;
                case ToolCallEvent call:
                    content.Append(state.CloseInlineThinking());
                    calls.Add((NewCallId(), call.Call));
                    break;
                case Done d:
                    content.Append(state.CloseInlineThinking());
                    done = d;
                    break;
            }
        }
        if (done is null)
            throw new ApiException(500, "The generation ended without a result.", "server_error");

        await HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", state.Id);
            w.WriteString("object", "chat.completion");
            w.WriteNumber("created", state.Created);
            w.WriteString("model", state.Model);
            w.WriteString("system_fingerprint", ChatResponseState.Fingerprint);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            if (content.Length == 0 && calls.Count > 0)
                w.WriteNull("content");
            else
                w.WriteString("content", content.ToString());
            if (reasoning.Length > 0)
                w.WriteString("reasoning_content", reasoning.ToString());
            if (calls.Count > 0)
            {
                w.WriteStartArray("tool_calls");
                foreach (var (id, call) in calls)
                {
                    w.WriteStartObject();
                    w.WriteString("id", id);
                    w.WriteString("type", "function");
                    w.WriteStartObject("function");
                    w.WriteString("name", call.Name);
                    w.WriteString("arguments", call.ArgumentsJson);
                    w.WriteEndObject();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            w.WriteEndObject();
            w.WriteNull("logprobs");
            w.WriteString("finish_reason", FinishReasonText(done.Reason));
            w.WriteEndObject();
            w.WriteEndArray();
            WriteUsage(w, done.Usage);
            WriteTimings(w, done.Usage);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task StreamAsync(HttpContext ctx, GenerationStream generation, ChatResponseState state, bool includeUsage)
    {
        await HttpJson.StartEventStreamAsync(ctx).ConfigureAwait(false);
        var buffer = new ArrayBufferWriter<byte>(512);
        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d =>
        {
            d.WriteString("role", "assistant");
            d.WriteString("content", "");
        })).ConfigureAwait(false);

        int callIndex = 0;
        try
        {
            await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
            {
                switch (ev)
                {
                    case ReasoningDelta r when state.Format == ReasoningFormat.Separate:
                        if (r.Text.Length > 0)
                            await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d => d.WriteString("reasoning_content", r.Text))).ConfigureAwait(false);
                        break;
                    case ReasoningDelta or ContentDelta or ParseErrorEvent:
                    {
                        string text = state.ContentText(ev);
                        if (text.Length > 0)
                            await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d => d.WriteString("content", text))).ConfigureAwait(false);
                        break;
                    }
                    case ToolCallEvent call:
                    {
                        string close = state.CloseInlineThinking();
                        if (close.Length > 0)
                            await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d => d.WriteString("content", close))).ConfigureAwait(false);
                        int index = callIndex++;
                        string id = NewCallId();
                        // OpenAI streams a call as a header (id, type, name) and then argument fragments; clients
                        // concatenate the fragments by index. The session parses whole calls, so there is one fragment.
                        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d =>
                        {
                            d.WriteStartArray("tool_calls");
                            d.WriteStartObject();
                            d.WriteNumber("index", index);
                            d.WriteString("id", id);
                            d.WriteString("type", "function");
                            d.WriteStartObject("function");
                            d.WriteString("name", call.Call.Name);
                            d.WriteString("arguments", "");
                            d.WriteEndObject();
                            d.WriteEndObject();
                            d.WriteEndArray();
                        })).ConfigureAwait(false);
                        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d =>
                        {
                            d.WriteStartArray("tool_calls");
                            d.WriteStartObject();
                            d.WriteNumber("index", index);
                            d.WriteStartObject("function");
                            d.WriteString("arguments", call.Call.ArgumentsJson);
                            d.WriteEndObject();
                            d.WriteEndObject();
                            d.WriteEndArray();
                        })).ConfigureAwait(false);
                        break;
                    }
                    case LoopDetectedEvent loop:
                        // An SSE comment: visible to anyone reading the raw stream, ignored by clients.
                        await HttpJson.WriteRawEventAsync(ctx, $": loop detected ({loop.Action}), {loop.Repeats} repeats\n\n").ConfigureAwait(false);
                        break;
                    case Done done:
                    {
                        string close = state.CloseInlineThinking();
                        if (close.Length > 0)
                            await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, d => d.WriteString("content", close))).ConfigureAwait(false);
                        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, static _ => { }, FinishReasonText(done.Reason), done.Usage)).ConfigureAwait(false);
                        if (includeUsage)
                        {
                            await HttpJson.WriteEventAsync(ctx, buffer, w =>
                            {
                                state.ChunkHeader(w);
                                w.WriteStartArray("choices");
                                w.WriteEndArray();
                                WriteUsage(w, done.Usage);
                                w.WriteEndObject();
                            }).ConfigureAwait(false);
                        }
                        break;
                    }
                }
            }
        }
        catch (ApiException e)
        {
            // Headers are gone: report in-band the way llama-server does, then end the stream.
            await HttpJson.WriteEventAsync(ctx, buffer, e.WriteTo).ConfigureAwait(false);
        }
        await HttpJson.WriteRawEventAsync(ctx, "data: [DONE]\n\n").ConfigureAwait(false);
    }

    internal static string FinishReasonText(FinishReason reason) => reason switch
    {
        FinishReason.ToolCalls => "tool_calls",
        // The loop guard cut the answer short: to a client that is a truncated answer, like a length stop.
        FinishReason.Length or FinishReason.Loop => "length",
        _ => "stop",
    };

    internal static void WriteUsage(Utf8JsonWriter w, GenerationUsage usage)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", usage.PromptTokens);
        w.WriteNumber("completion_tokens", usage.CompletionTokens);
        w.WriteNumber("total_tokens", usage.TotalTokens);
        w.WriteStartObject("prompt_tokens_details");
        w.WriteNumber("cached_tokens", Math.Max(0, usage.PromptTokens - usage.PrefilledTokens));
        w.WriteEndObject();
        w.WriteStartObject("completion_tokens_details");
        w.WriteNumber("reasoning_tokens", usage.ReasoningTokens);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>llama-server's <c>timings</c> object.</summary>
    internal static void WriteTimings(Utf8JsonWriter w, GenerationUsage usage)
    {
        w.WriteStartObject("timings");
        w.WriteNumber("cache_n", Math.Max(0, usage.PromptTokens - usage.PrefilledTokens));
        w.WriteNumber("prompt_n", usage.PrefilledTokens);
        w.WriteNumber("prompt_ms", Math.Round(usage.PrefillTime.TotalMilliseconds, 3));
        w.WriteNumber("prompt_per_second", Math.Round(usage.PrefillTokensPerSecond, 3));
        w.WriteNumber("predicted_n", usage.CompletionTokens);
        w.WriteNumber("predicted_ms", Math.Round(usage.DecodeTime.TotalMilliseconds, 3));
        w.WriteNumber("predicted_per_second", Math.Round(usage.DecodeTokensPerSecond, 3));
        w.WriteEndObject();
    }

    internal static string NewCallId() => "call_" + RandomId(24);

    internal static string RandomId(int length)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        return RandomNumberGenerator.GetString(alphabet, length);
    }
}

/// <summary>Per-response ids and the inline-thinking bookkeeping of <c>reasoning_format: none</c>.</summary>
internal sealed class ChatResponseState(string model, ReasoningFormat format)
{
    public const string Fingerprint = "lfmsharp";
    private bool _thinkOpen;

    public string Id { get; } = "chatcmpl-" + ChatCompletionsEndpoint.RandomId(29);

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public string Model { get; } = model;

    public ReasoningFormat Format { get; } = format;

    /// <summary>The text an event adds to <c>content</c> (with inline reasoning wrapped in think tags).</summary>
    public string ContentText(GenerationEvent ev)
    {
        switch (ev)
        {
            case ReasoningDelta r:
                if (_thinkOpen)
                    return r.Text;
                _thinkOpen = true;
                return "<think>" + r.Text;
            case ContentDelta c:
                return CloseInlineThinking() + c.Text;
            case ParseErrorEvent e:
                // What the model wrote but could not be parsed stays visible, as text.
                return CloseInlineThinking() + e.RawText;
            default:
                return "";
        }
    }

    public string CloseInlineThinking()
    {
        if (!_thinkOpen)
            return "";
        _thinkOpen = false;
        return "</think>";
    }

    public void ChunkHeader(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("object", "chat.completion.chunk");
        w.WriteNumber("created", Created);
        w.WriteString("model", Model);
        w.WriteString("system_fingerprint", Fingerprint);
    }

    public void Chunk(Utf8JsonWriter w, Action<Utf8JsonWriter> delta, string? finishReason = null, GenerationUsage? timings = null)
    {
        ChunkHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", 0);
        w.WriteStartObject("delta");
        delta(w);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        if (timings is not null)
            ChatCompletionsEndpoint.WriteTimings(w, timings);
        w.WriteEndObject();
    }
}
