using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using LfmSharp.Tokenizers;
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
            request = ChatCompletionRequest.Parse(body.RootElement, model.DefaultSampling, model.Tokenizer.Vocabulary.Count, model.Tokenizer.Vocabulary.EndOfGenerationIds);
        string modelName = server.Host.ResolveModel(request.Model);

        // The grammar is compiled here, on a worker thread, so the decode thread finds it cached and one large schema
        // cannot stall the other requests' tokens (and a hostile one is refused before its prompt is rendered). The
        // local reference keeps it alive for the request.
        var grammar = await StructuredOutput.CompileAsync(request.Options, ctx.RequestAborted).ConfigureAwait(false);

        // Refuse an over-long prompt before it waits in the queue (the session would refuse it too, later).
        var prepared = ModelHost.PreparePrompt(model, request.Messages, request.Options, server.Options.ContextLength, scheduler.Cache.Enabled);
        int promptTokens = prepared.PromptTokens.Length;
        int context = server.Options.ContextLength;
        if (promptTokens >= context)
        {
            server.Metrics.BadRequest();
            throw GenerationStream.ContextTooLong(promptTokens, context);
        }

        // A stream starts at once (its role chunk before the prefill); its options are checked now so a mistake is a 400.
        if (request.Stream)
            GenerationStream.CheckOptions(request.Options, server);
        var generations = await StartChoicesAsync(ctx, server, scheduler, request, prepared).ConfigureAwait(false);
        GC.KeepAlive(grammar);
        try
        {
            var response = new ChatResponseState(modelName, request.ReasoningFormat, model.Tokenizer.Vocabulary, request.Options.Logprobs is not null);
            if (request.Stream)
                await StreamAsync(ctx, generations, response, request.IncludeUsage).ConfigureAwait(false);
            else
                await RespondAsync(ctx, generations, response).ConfigureAwait(false);
        }
        finally
        {
            foreach (var g in generations)
                g.Dispose();
        }
    }

    /// <summary>
    /// One generation per choice (<c>n</c>), each a sequence of its own in the scheduler, so the choices' decode steps
    /// run together in the batched forward pass. With a seed, choice i draws with seed + i (the same seed for all would
    /// give n copies of one answer).
    /// </summary>
    private static async Task<GenerationStream[]> StartChoicesAsync(HttpContext ctx, ServerContext server, GenerationScheduler scheduler, ChatCompletionRequest request,
        ChatSession.Prepared prepared)
    {
        var starts = new Task<GenerationStream>[request.N];
        for (int i = 0; i < request.N; i++)
        {
            var options = request.Options;
            if (i > 0 && options.Sampling?.Seed is ulong seed)
                options = options with { Sampling = options.Sampling with { Seed = unchecked(seed + (ulong)i) } };
            starts[i] = GenerationStream.StartAsync(ctx, server, scheduler, (slot, ct) => slot.Session.Complete(prepared with { Options = options }, ct),
                awaitFirst: !request.Stream);
        }
        return await WhenAllStartedAsync(starts).ConfigureAwait(false);
    }

    /// <summary>All the choices' generations, or (one failed to start) none: the started ones are stopped.</summary>
    internal static async Task<GenerationStream[]> WhenAllStartedAsync(Task<GenerationStream>[] starts)
    {
        try
        {
            return await Task.WhenAll(starts).ConfigureAwait(false);
        }
        catch
        {
            foreach (var t in starts)
            {
                if (t.IsCompletedSuccessfully)
                    t.Result.Dispose();
            }
            throw;
        }
    }

    private sealed class ChoiceResult(int index)
    {
        public int Index { get; } = index;
        public StringBuilder Content { get; } = new();
        public StringBuilder Reasoning { get; } = new();
        public List<(string Id, ToolCall Call)> Calls { get; } = new();
        public List<TokenLogprobs> Logprobs { get; } = new();
        public Done? Done { get; set; }
        public string? Fault { get; set; }
    }

    private static async Task RespondAsync(HttpContext ctx, GenerationStream[] generations, ChatResponseState state)
    {
        var results = new ChoiceResult[generations.Length];
        for (int i = 0; i < generations.Length; i++)
            results[i] = await CollectAsync(generations[i], state.Choice(i)).ConfigureAwait(false);
        var usage = SumUsage(results.Select(r => r.Done!.Usage));

        await HttpJson.WriteAsync(ctx, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", state.Id);
            w.WriteString("object", "chat.completion");
            w.WriteNumber("created", state.Created);
            w.WriteString("model", state.Model);
            w.WriteString("system_fingerprint", ChatResponseState.Fingerprint);
            w.WriteStartArray("choices");
            foreach (var r in results)
                WriteChoice(w, r, state);
            w.WriteEndArray();
            if (results.FirstOrDefault(r => r.Fault is not null) is { } faulted)
                WriteFault(w, faulted.Fault!);
            WriteUsage(w, usage);
            WriteTimings(w, results[0].Done!.Usage);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task<ChoiceResult> CollectAsync(GenerationStream generation, ChoiceState choice)
    {
        var r = new ChoiceResult(choice.Index);
        await foreach (var ev in generation.ReadAllAsync().ConfigureAwait(false))
        {
            switch (ev)
            {
                case GenerationStream.GenerationFault f:
                    r.Content.Append(choice.CloseInlineThinking());
                    r.Fault = f.Message;
                    r.Done = new Done(FinishReason.Stop, new GenerationUsage());
                    break;
                case ReasoningDelta rd when choice.Format == ReasoningFormat.Separate:
                    r.Reasoning.Append(rd.Text);
                    break;
                case ReasoningDelta or ContentDelta or ParseErrorEvent:
                    r.Content.Append(choice.ContentText(ev));
                    break;
                case TokenLogprobs lp when !lp.InReasoning || choice.Format == ReasoningFormat.Inline:
                    r.Logprobs.Add(lp);
                    break;
                case ToolCallEvent call:
                    r.Content.Append(choice.CloseInlineThinking());
                    r.Calls.Add((NewCallId(), call.Call));
                    break;
                case Done d:
                    r.Content.Append(choice.CloseInlineThinking());
                    r.Done = d;
                    break;
            }
        }
        if (r.Done is null)
            throw new ApiException(500, "The generation ended without a result.", "server_error");
        return r;
    }

    private static void WriteChoice(Utf8JsonWriter w, ChoiceResult r, ChatResponseState state)
    {
        w.WriteStartObject();
        w.WriteNumber("index", r.Index);
        w.WriteStartObject("message");
        w.WriteString("role", "assistant");
        if (r.Content.Length == 0 && r.Calls.Count > 0)
            w.WriteNull("content");
        else
            w.WriteString("content", r.Content.ToString());
        if (r.Reasoning.Length > 0)
            w.WriteString("reasoning_content", r.Reasoning.ToString());
        if (r.Calls.Count > 0)
        {
            w.WriteStartArray("tool_calls");
            foreach (var (id, call) in r.Calls)
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
        LogprobsJson.WriteChat(w, state.Vocabulary, state.WantsLogprobs ? r.Logprobs : null);
        w.WriteString("finish_reason", r.Fault is null ? FinishReasonText(r.Done!.Reason) : "error");
        w.WriteEndObject();
    }

    /// <summary>The usage of n choices: the prompt once (as OpenAI counts it), the completions added up.</summary>
    internal static GenerationUsage SumUsage(IEnumerable<GenerationUsage> all)
    {
        GenerationUsage? sum = null;
        foreach (var u in all)
        {
            sum = sum is null ? u : sum with
            {
                CompletionTokens = sum.CompletionTokens + u.CompletionTokens,
                ReasoningTokens = sum.ReasoningTokens + u.ReasoningTokens,
            };
        }
        return sum ?? new GenerationUsage();
    }

    private static async Task StreamAsync(HttpContext ctx, GenerationStream[] generations, ChatResponseState state, bool includeUsage)
    {
        await HttpJson.StartEventStreamAsync(ctx).ConfigureAwait(false);
        var buffer = new ArrayBufferWriter<byte>(512);
        for (int i = 0; i < generations.Length; i++)
        {
            int index = i;
            await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, d =>
            {
                d.WriteString("role", "assistant");
                d.WriteString("content", "");
            })).ConfigureAwait(false);
        }

        var usages = new List<GenerationUsage>();
        try
        {
            await foreach (var (index, ev) in MergeAsync(generations).ConfigureAwait(false))
            {
                await StreamEventAsync(ctx, buffer, state, state.Choice(index), ev).ConfigureAwait(false);
                if (ev is Done done)
                    usages.Add(done.Usage);
            }
            if (includeUsage && usages.Count == generations.Length)
            {
                var usage = SumUsage(usages);
                await HttpJson.WriteEventAsync(ctx, buffer, w =>
                {
                    state.ChunkHeader(w);
                    w.WriteStartArray("choices");
                    w.WriteEndArray();
                    WriteUsage(w, usage);
                    w.WriteEndObject();
                }).ConfigureAwait(false);
            }
        }
        catch (ApiException e)
        {
            // Headers are gone: report in-band the way llama-server does, then end the stream.
            await HttpJson.WriteEventAsync(ctx, buffer, e.WriteTo).ConfigureAwait(false);
        }
        await HttpJson.WriteRawEventAsync(ctx, "data: [DONE]\n\n").ConfigureAwait(false);
    }

    /// <summary>The events of every choice as they come, tagged with the choice's index.</summary>
    internal static async IAsyncEnumerable<(int Index, GenerationEvent Event)> MergeAsync(GenerationStream[] generations)
    {
        if (generations.Length == 1)
        {
            await foreach (var ev in generations[0].ReadAllAsync().ConfigureAwait(false))
                yield return (0, ev);
            yield break;
        }
        var merged = Channel.CreateUnbounded<(int, GenerationEvent)>(new UnboundedChannelOptions { SingleReader = true });
        var pumps = new Task[generations.Length];
        for (int i = 0; i < generations.Length; i++)
        {
            int index = i;
            pumps[i] = Task.Run(async () =>
            {
                await foreach (var ev in generations[index].ReadAllAsync().ConfigureAwait(false))
                    await merged.Writer.WriteAsync((index, ev)).ConfigureAwait(false);
            });
        }
        _ = Task.WhenAll(pumps).ContinueWith(t => merged.Writer.TryComplete(t.Exception?.InnerException), TaskScheduler.Default);
        await foreach (var item in merged.Reader.ReadAllAsync().ConfigureAwait(false))
            yield return item;
    }

    private static async Task StreamEventAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, ChatResponseState state, ChoiceState choice, GenerationEvent ev)
    {
        int index = choice.Index;
        switch (ev)
        {
            case ReasoningDelta r when choice.Format == ReasoningFormat.Separate:
                if (r.Text.Length > 0)
                    await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, d => d.WriteString("reasoning_content", r.Text))).ConfigureAwait(false);
                break;
            case ReasoningDelta or ContentDelta or ParseErrorEvent:
                await WriteContentAsync(ctx, buffer, state, choice, choice.ContentText(ev)).ConfigureAwait(false);
                break;
            case TokenLogprobs lp when !lp.InReasoning || choice.Format == ReasoningFormat.Inline:
                // Sent with the text that follows (its token's), as OpenAI pairs them.
                choice.PendingLogprobs.Add(lp);
                break;
            case ToolCallEvent call:
                await WriteContentAsync(ctx, buffer, state, choice, choice.CloseInlineThinking()).ConfigureAwait(false);
                await WriteToolCallAsync(ctx, buffer, state, choice, call.Call).ConfigureAwait(false);
                break;
            case GenerationStream.GenerationFault f:
                await WriteContentAsync(ctx, buffer, state, choice, choice.CloseInlineThinking()).ConfigureAwait(false);
                await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, static _ => { }, "error", fault: f.Message)).ConfigureAwait(false);
                break;
            case LoopDetectedEvent loop:
                // An SSE comment: visible to anyone reading the raw stream, ignored by clients.
                await HttpJson.WriteRawEventAsync(ctx, $": loop detected ({loop.Action}), {loop.Repeats} repeats\n\n").ConfigureAwait(false);
                break;
            case Done done:
            {
                await WriteContentAsync(ctx, buffer, state, choice, choice.CloseInlineThinking()).ConfigureAwait(false);
                var logprobs = choice.TakeLogprobs(state.WantsLogprobs);
                await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, static _ => { }, FinishReasonText(done.Reason), done.Usage, logprobs)).ConfigureAwait(false);
                break;
            }
        }
    }

    /// <summary>A content delta with the log probabilities of the tokens it completes.</summary>
    private static Task WriteContentAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, ChatResponseState state, ChoiceState choice, string text)
    {
        if (text.Length == 0)
            return Task.CompletedTask;
        var logprobs = choice.TakeLogprobs(state.WantsLogprobs);
        return HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, choice.Index, d => d.WriteString("content", text), logprobs: logprobs));
    }

    private static async Task WriteToolCallAsync(HttpContext ctx, ArrayBufferWriter<byte> buffer, ChatResponseState state, ChoiceState choice, ToolCall call)
    {
        int index = choice.Index;
        int callIndex = choice.NextCallIndex++;
        string id = NewCallId();
        // OpenAI streams a call as a header (id, type, name) and then argument fragments; clients concatenate the
        // fragments by index. The session parses whole calls, so there is one fragment.
        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, d =>
        {
            d.WriteStartArray("tool_calls");
            d.WriteStartObject();
            d.WriteNumber("index", callIndex);
            d.WriteString("id", id);
            d.WriteString("type", "function");
            d.WriteStartObject("function");
            d.WriteString("name", call.Name);
            d.WriteString("arguments", "");
            d.WriteEndObject();
            d.WriteEndObject();
            d.WriteEndArray();
        })).ConfigureAwait(false);
        await HttpJson.WriteEventAsync(ctx, buffer, w => state.Chunk(w, index, d =>
        {
            d.WriteStartArray("tool_calls");
            d.WriteStartObject();
            d.WriteNumber("index", callIndex);
            d.WriteStartObject("function");
            d.WriteString("arguments", call.ArgumentsJson);
            d.WriteEndObject();
            d.WriteEndObject();
            d.WriteEndArray();
        })).ConfigureAwait(false);
    }

    /// <summary>Why a response ended with finish_reason "error" (a numerical fault in the model).</summary>
    internal static void WriteFault(Utf8JsonWriter w, string message)
    {
        w.WriteStartObject("error");
        w.WriteString("message", message);
        w.WriteString("type", "server_error");
        w.WriteString("code", "numerical_fault");
        w.WriteEndObject();
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

/// <summary>Per-response ids, and each choice's state.</summary>
internal sealed class ChatResponseState(string model, ReasoningFormat format, Vocabulary vocabulary, bool wantsLogprobs)
{
    public const string Fingerprint = "lfmsharp";
    private readonly Dictionary<int, ChoiceState> _choices = new();

    public string Id { get; } = "chatcmpl-" + ChatCompletionsEndpoint.RandomId(29);

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public string Model { get; } = model;

    public Vocabulary Vocabulary { get; } = vocabulary;

    /// <summary>The request asked for <c>logprobs</c>.</summary>
    public bool WantsLogprobs { get; } = wantsLogprobs;

    public ChoiceState Choice(int index)
    {
        if (!_choices.TryGetValue(index, out var choice))
            _choices[index] = choice = new ChoiceState(index, format);
        return choice;
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

    public void Chunk(Utf8JsonWriter w, int index, Action<Utf8JsonWriter> delta, string? finishReason = null, GenerationUsage? timings = null,
        IReadOnlyList<TokenLogprobs>? logprobs = null, string? fault = null)
    {
        ChunkHeader(w);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", index);
        w.WriteStartObject("delta");
        delta(w);
        w.WriteEndObject();
        LogprobsJson.WriteChat(w, Vocabulary, logprobs);
        if (finishReason is null)
            w.WriteNull("finish_reason");
        else
            w.WriteString("finish_reason", finishReason);
        w.WriteEndObject();
        w.WriteEndArray();
        if (fault is not null)
            ChatCompletionsEndpoint.WriteFault(w, fault);
        if (timings is not null)
            ChatCompletionsEndpoint.WriteTimings(w, timings);
        w.WriteEndObject();
    }
}

/// <summary>One choice of a response: the inline-thinking bookkeeping of <c>reasoning_format: none</c>, its tool call
/// numbering and the log probabilities not yet sent.</summary>
internal sealed class ChoiceState(int index, ReasoningFormat format)
{
    private bool _thinkOpen;

    public int Index { get; } = index;

    public ReasoningFormat Format { get; } = format;

    public int NextCallIndex { get; set; }

    public List<TokenLogprobs> PendingLogprobs { get; } = new();

    /// <summary>The pending log probabilities (null when none were asked for), and a fresh list for the next ones.</summary>
    public IReadOnlyList<TokenLogprobs>? TakeLogprobs(bool wanted)
    {
        if (!wanted)
            return null;
        var taken = PendingLogprobs.ToArray();
        PendingLogprobs.Clear();
        return taken;
    }

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
}
