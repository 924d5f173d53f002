using System.Buffers;
using System.Text.Json;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Http;
using LfmChatMessage = LfmSharp.Chat.LfmChatMessage;

namespace LfmSharp.Server.Responses;

/// <summary>
/// <c>POST /v1/responses</c>: OpenAI's Responses API over the same chat session and event stream as chat completions.
/// Reasoning comes out as a <c>reasoning</c> item (<c>reasoning_text</c> content), text as a <c>message</c> item, tool
/// calls as <c>function_call</c> items; streamed as the typed <c>response.*</c> events.
/// </summary>
internal static class ResponsesEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerContext server)
    {
        var (model, scheduler) = server.Host.Ready();
        ResponsesRequest request;
        using (var body = await HttpJson.ReadAsync(ctx).ConfigureAwait(false))
            request = ResponsesRequest.Parse(body.RootElement, model.DefaultSampling, model.Tokenizer.Vocabulary.Count, server.Responses);
        string modelName = server.Host.ResolveModel(request.Model);
        var messages = request.Messages;
        var prepared = ModelHost.PreparePrompt(model, messages, request.Options, server.Options.ContextLength, scheduler.Cache.Enabled, refuseFarPastContext: false);
        int promptTokens = prepared.PromptTokens.Length;
        if (promptTokens >= server.Options.ContextLength)
        {
            server.Metrics.BadRequest();
            throw GenerationStream.ContextTooLong(promptTokens, server.Options.ContextLength);
        }

        // A stream's response.created goes out at once, before the prefill; its options are checked now so a mistake is a 400.
        if (request.Stream)
            GenerationStream.CheckOptions(request.Options, server);
        using var generation = await GenerationStream.StartAsync(ctx, server, scheduler,
            (slot, ct) => slot.Session.Complete(prepared, ct), awaitFirst: !request.Stream).ConfigureAwait(false);
        var response = new ResponseState("resp_" + ChatCompletionsEndpoint.RandomId(40), DateTimeOffset.UtcNow.ToUnixTimeSeconds(), modelName, request);
        var assembler = new ResponseAssembler();
        if (request.Stream)
        {
            await StreamAsync(ctx, generation, response, assembler).ConfigureAwait(false);
        }
        else
        {
            await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
                assembler.Apply(ev, null);
            if (assembler.Result is null)
                throw new ApiException(500, "The generation ended without a result.", "server_error");
            await HttpJson.WriteAsync(ctx, 200, w => response.Write(w, assembler)).ConfigureAwait(false);
        }
        if (request.Store && assembler.Result is not null && assembler.Fault is null)
            Keep(server.Responses, response.Id, request, assembler);
    }

    private static async Task StreamAsync(HttpContext ctx, GenerationStream generation, ResponseState response, ResponseAssembler assembler)
    {
        await HttpJson.StartEventStreamAsync(ctx).ConfigureAwait(false);
        var buffer = new ArrayBufferWriter<byte>(512);
        int sequence = 0;
        Task Send(ResponseEvent e) => HttpJson.WriteNamedEventAsync(ctx, buffer, e.Type, w =>
        {
            w.WriteStartObject();
            w.WriteString("type", e.Type);
            w.WriteNumber("sequence_number", sequence++);
            e.Fields(w);
            w.WriteEndObject();
        });

        await Send(new ResponseEvent("response.created", w => { w.WritePropertyName("response"); response.Write(w, assembler); })).ConfigureAwait(false);
        await Send(new ResponseEvent("response.in_progress", w => { w.WritePropertyName("response"); response.Write(w, assembler); })).ConfigureAwait(false);
        var pending = new List<ResponseEvent>();
        try
        {
            await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
            {
                assembler.Apply(ev, pending);
                foreach (var e in pending)
                    await Send(e).ConfigureAwait(false);
                pending.Clear();
            }
            if (assembler.Result is not null)
            {
                string type = ResponseState.Status(assembler) switch
                {
                    "incomplete" => "response.incomplete",
                    "failed" => "response.failed",
                    _ => "response.completed",
                };
                await Send(new ResponseEvent(type, w => { w.WritePropertyName("response"); response.Write(w, assembler); })).ConfigureAwait(false);
            }
        }
        catch (ApiException e)
        {
            // Headers are gone: the Responses stream reports a failure as an "error" event.
            await Send(new ResponseEvent("error", w =>
            {
                w.WriteString("code", e.Code);
                w.WriteString("message", e.Message);
                w.WriteString("param", e.Param);
            })).ConfigureAwait(false);
        }
    }

    /// <summary>Keeps the conversation (this input and the output as one assistant turn) for <c>previous_response_id</c>.</summary>
    private static void Keep(ResponseStore store, string id, ResponsesRequest request, ResponseAssembler assembler)
    {
        string? reasoning = null;
        var text = new System.Text.StringBuilder();
        var calls = new List<ToolCall>();
        var items = new List<(string, LfmChatMessage?)>();
        foreach (var item in assembler.Items)
        {
            switch (item.Type)
            {
                case "reasoning":
                    reasoning = item.Text.ToString();
                    items.Add((item.Id, null));
                    break;
                case "message":
                    text.Append(item.Text);
                    items.Add((item.Id, LfmChatMessage.Assistant(item.Text.ToString())));
                    break;
                default:
                    calls.Add(item.Call!);
                    items.Add((item.Id, LfmChatMessage.Assistant("", toolCalls: [item.Call!])));
                    break;
            }
        }
        List<LfmChatMessage> conversation = [.. request.Conversation, LfmChatMessage.Assistant(text.ToString(), reasoning, calls.Count > 0 ? calls : null)];
        store.Add(id, conversation, items);
    }
}

/// <summary>The response object's fixed fields (id, time, model, the request's settings echoed back).</summary>
internal sealed class ResponseState(string id, long created, string model, ResponsesRequest request)
{
    public string Id { get; } = id;

    public static string Status(ResponseAssembler a) => a.Result switch
    {
        null => "in_progress",
        _ when a.Fault is not null => "failed",
        { Reason: FinishReason.Length or FinishReason.Loop } => "incomplete",
        _ => "completed",
    };

    /// <summary>Writes the response object: in progress (no usage) until the assembler has the result.</summary>
    public void Write(Utf8JsonWriter w, ResponseAssembler a)
    {
        string status = Status(a);
        w.WriteStartObject();
        w.WriteString("id", Id);
        w.WriteString("object", "response");
        w.WriteNumber("created_at", created);
        w.WriteString("status", status);
        w.WriteBoolean("background", false);
        WriteProblem(w, a, status);
        w.WriteString("instructions", request.Instructions);
        w.WriteNumber("max_output_tokens", request.Options.MaxTokens);
        w.WriteString("model", model);
        w.WriteStartArray("output");
        if (a.Result is not null)
        {
            foreach (var item in a.Items)
                item.WriteTo(w);
        }
        w.WriteEndArray();
        w.WriteBoolean("parallel_tool_calls", request.Options.ParallelToolCalls);
        w.WriteString("previous_response_id", request.PreviousResponseId);
        w.WriteStartObject("reasoning");
        w.WriteString("effort", request.Effort);
        w.WriteNull("summary");
        w.WriteEndObject();
        w.WriteBoolean("store", request.Store);
        if (request.Options.Sampling is { } s)
        {
            w.WriteNumber("temperature", s.Temperature);
            w.WriteNumber("top_p", s.TopP);
        }
        WriteFormatAndTools(w);
        w.WriteString("truncation", "disabled");
        WriteUsage(w, a);
        w.WriteNull("user");
        w.WritePropertyName("metadata");
        if (request.Metadata is JsonElement metadata)
            metadata.WriteTo(w);
        else
        {
            w.WriteStartObject();
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    /// <summary>error and incomplete_details: null unless the response failed or stopped at its token limit.</summary>
    private static void WriteProblem(Utf8JsonWriter w, ResponseAssembler a, string status)
    {
        if (a.Fault is not null)
        {
            w.WriteStartObject("error");
            w.WriteString("code", "server_error");
            w.WriteString("message", a.Fault);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("error");
        }
        if (status == "incomplete")
        {
            w.WriteStartObject("incomplete_details");
            w.WriteString("reason", "max_output_tokens");
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("incomplete_details");
        }
    }

    /// <summary>The request's text format, tool choice and tools, echoed (OpenAI's defaults when absent).</summary>
    private void WriteFormatAndTools(Utf8JsonWriter w)
    {
        w.WriteStartObject("text");
        w.WritePropertyName("format");
        if (request.TextFormat is JsonElement format)
            format.WriteTo(w);
        else
        {
            w.WriteStartObject();
            w.WriteString("type", "text");
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WritePropertyName("tool_choice");
        if (request.ToolChoice is JsonElement tc)
            tc.WriteTo(w);
        else
            w.WriteStringValue("auto");
        w.WritePropertyName("tools");
        if (request.Tools is JsonElement tools)
            tools.WriteTo(w);
        else
        {
            w.WriteStartArray();
            w.WriteEndArray();
        }
    }

    /// <summary>Token counts once the result is in (null while in progress).</summary>
    private static void WriteUsage(Utf8JsonWriter w, ResponseAssembler a)
    {
        if (a.Result is { Usage: var u })
        {
            w.WriteStartObject("usage");
            w.WriteNumber("input_tokens", u.PromptTokens);
            w.WriteStartObject("input_tokens_details");
            w.WriteNumber("cached_tokens", Math.Max(0, u.PromptTokens - u.PrefilledTokens));
            w.WriteEndObject();
            w.WriteNumber("output_tokens", u.CompletionTokens);
            w.WriteStartObject("output_tokens_details");
            w.WriteNumber("reasoning_tokens", u.ReasoningTokens);
            w.WriteEndObject();
            w.WriteNumber("total_tokens", u.TotalTokens);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("usage");
        }
    }
}
