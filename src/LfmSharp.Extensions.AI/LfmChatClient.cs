using System.Runtime.CompilerServices;
using System.Text.Json;
using LfmSharp.Generation;
using Microsoft.Extensions.AI;
using MeaiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace LfmSharp.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> that runs an LFM2 / LFM2.5 model in-process through <see cref="ChatSession"/>.
/// Messages are rendered with the model's own chat template; reasoning streams as <see cref="TextReasoningContent"/>,
/// separate from the answer's <see cref="TextContent"/>; tool calls come out as <see cref="FunctionCallContent"/> and
/// <see cref="FunctionResultContent"/> goes back in as tool messages, so <c>UseFunctionInvocation()</c> runs real tool
/// loops. Safe for concurrent use: each call borrows one of a pool of sessions.
/// <para>
/// <see cref="ChatOptions"/> mapping: Temperature, TopP, TopK, FrequencyPenalty, PresencePenalty, Seed go to the sampler
/// (unset ones keep the model's recommended defaults); MaxOutputTokens counts reasoning + answer; StopSequences;
/// ResponseFormat Json / ForJsonSchema become constrained decoding after the thinking; Tools (AIFunctionDeclaration
/// only) and ToolMode Auto / None / RequireAny / RequireSpecific; AllowMultipleToolCalls; Reasoning.Effort picks a
/// thinking budget from <see cref="LfmChatClientOptions.ThinkingBudgets"/> (None closes the thinking at once),
/// Reasoning.Output None leaves reasoning out of the response (it is still generated — the model cannot skip it);
/// Instructions become (the start of) the system message. Extras ChatOptions lacks are read from
/// AdditionalProperties: <c>min_p</c>, <c>repetition_penalty</c>, <c>logit_bias</c> (token id → bias),
/// <c>max_thinking_tokens</c>, <c>thinking_budget_notice</c>, <c>keep_past_thinking</c>; and
/// RawRepresentationFactory may return a <see cref="ChatRequestOptions"/> as the starting point. ConversationId and
/// background responses are not supported (calls are stateless; prefix reuse is automatic).
/// </para>
/// </summary>
public sealed class LfmChatClient : IChatClient
{
    /// <summary>Additional property on the final update / response when the loop guard ended the generation.</summary>
    public const string LoopDetectedProperty = "lfm.loop_detected";

    private readonly LanguageModel _model;
    private readonly LfmChatClientOptions _options;
    private readonly ChatSessionPool _pool;
    private readonly ChatClientMetadata _metadata;
    private int _disposed;

    /// <summary>A chat client over <paramref name="model"/>; sessions are created on demand, up to <see cref="LfmChatClientOptions.MaxConcurrentSessions"/>.</summary>
    public LfmChatClient(LanguageModel model, LfmChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        _options = options ?? new LfmChatClientOptions();
        _options.Validate();
        _model = model;
        ModelId = _options.ModelId ?? model.Name;
        _pool = new ChatSessionPool(_options.MaxConcurrentSessions, () => model.CreateChatSession(_options.ContextLength, _options.KvCacheType));
        _metadata = new ChatClientMetadata("lfmsharp", providerUri: null, defaultModelId: ModelId);
    }

    /// <summary>The model this client runs.</summary>
    public LanguageModel Model => _model;

    /// <summary>The options this client was created with.</summary>
    public LfmChatClientOptions Options => _options;

    /// <summary>The id in responses (<see cref="LfmChatClientOptions.ModelId"/> or the model's name).</summary>
    public string ModelId { get; }

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<MeaiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var response = await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken).ConfigureAwait(false);
        return response;
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<MeaiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        // Map first, so bad input fails before a session is taken.
        var lfmMessages = ChatRequestMapper.ToMessages(messages, options?.Instructions);
        var request = ChatRequestMapper.ToRequestOptions(options, _model, _options, this);

        string responseId = "chatcmpl-" + Guid.NewGuid().ToString("N");
        string messageId = "msg-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        int callIndex = 0;

        var session = await _pool.RentAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var ev in session.CompleteAsync(lfmMessages, request, cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                AIContent? content;
                ChatFinishReason? finish = null;
                AdditionalPropertiesDictionary? extra = null;
                switch (ev)
                {
                    case ReasoningDelta r:
                        if (!request.IncludeReasoning || r.Text.Length == 0)
                            continue;
                        content = new TextReasoningContent(r.Text);
                        break;
                    case ContentDelta c:
                        if (c.Text.Length == 0)
                            continue;
                        content = new TextContent(c.Text);
                        break;
                    case ToolCallEvent call:
                        content = ToFunctionCall(call.Call, responseId, callIndex++);
                        break;
                    case ParseErrorEvent error:
                        // The model tried to write something structured and failed: surface it, never drop it.
                        content = new ErrorContent(error.Message) { ErrorCode = "parse_error", Details = error.RawText };
                        break;
                    case LoopDetectedEvent loop:
                        content = null;
                        extra = new AdditionalPropertiesDictionary { [LoopDetectedProperty] = $"{loop.Action}: '{loop.Pattern}' x{loop.Repeats} in {(loop.InReasoning ? "reasoning" : "answer")}" };
                        break;
                    case Done done:
                        if (done.Reason == FinishReason.Cancelled)
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                            throw new OperationCanceledException("The generation was cancelled.");
                        }
                        finish = ToFinishReason(done.Reason);
                        content = new UsageContent(ToUsage(done.Usage));
                        if (done.Reason == FinishReason.Loop)
                            extra = new AdditionalPropertiesDictionary { [LoopDetectedProperty] = "stopped" };
                        break;
                    default:
                        continue;   // raw TextDelta and future event kinds carry nothing new here
                }
                yield return new ChatResponseUpdate(MeaiChatRole.Assistant, content is null ? [] : [content])
                {
                    ResponseId = responseId,
                    MessageId = messageId,
                    CreatedAt = created,
                    ModelId = ModelId,
                    FinishReason = finish,
                    AdditionalProperties = extra,
                    RawRepresentation = ev,
                };
            }
        }
        finally
        {
            _pool.Return(session);
        }
    }

    /// <inheritdoc/>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
            return null;
        if (serviceType == typeof(ChatClientMetadata))
            return _metadata;
        if (serviceType == typeof(LanguageModel))
            return _model;
        if (serviceType.IsInstanceOfType(this))
            return this;
        return null;
    }

    /// <summary>Releases the pooled sessions, and the model when <see cref="LfmChatClientOptions.DisposeModel"/> is set.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _pool.Dispose();
        if (_options.DisposeModel)
            _model.Dispose();
    }

    internal static ChatFinishReason ToFinishReason(FinishReason reason) => reason switch
    {
        FinishReason.Stop => ChatFinishReason.Stop,
        FinishReason.ToolCalls => ChatFinishReason.ToolCalls,
        // A loop the guard stopped is a cut-off answer, like a length stop (LoopDetectedProperty says which).
        FinishReason.Length or FinishReason.Loop => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };

    internal static UsageDetails ToUsage(GenerationUsage usage) => new()
    {
        InputTokenCount = usage.PromptTokens,
        OutputTokenCount = usage.CompletionTokens,
        TotalTokenCount = usage.TotalTokens,
        CachedInputTokenCount = Math.Max(0, usage.PromptTokens - usage.PrefilledTokens),
        ReasoningTokenCount = usage.ReasoningTokens,
    };

    private static FunctionCallContent ToFunctionCall(ToolCall call, string responseId, int index)
    {
        // The parser's ids (call_0, call_1, ...) repeat across responses; a tool loop needs them unique in the history.
        string callId = string.IsNullOrEmpty(call.Id) ? $"call_{index}" : call.Id;
        callId = $"{callId}_{responseId[^8..]}";
        return FunctionCallContent.CreateFromParsedArguments(call.ArgumentsJson, callId, call.Name,
            static json => JsonSerializer.Deserialize(json, AIJsonUtilities.DefaultOptions.GetTypeInfo(typeof(Dictionary<string, object?>))) as Dictionary<string, object?>);
    }
}
