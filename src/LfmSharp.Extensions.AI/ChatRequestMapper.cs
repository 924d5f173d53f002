using System.Globalization;
using System.Text;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using Microsoft.Extensions.AI;
using LfmChatMessage = LfmSharp.Chat.LfmChatMessage;
using LfmChatRole = LfmSharp.Chat.LfmChatRole;
using LfmResponseFormat = LfmSharp.ResponseFormat;
using MeaiChatMessage = Microsoft.Extensions.AI.ChatMessage;
using MeaiChatRole = Microsoft.Extensions.AI.ChatRole;

namespace LfmSharp.Extensions.AI;

/// <summary>
/// Turns Microsoft.Extensions.AI messages and <see cref="ChatOptions"/> into the chat session's messages and
/// <see cref="ChatRequestOptions"/>. Everything that cannot be honoured is an <see cref="ArgumentException"/> or
/// <see cref="NotSupportedException"/> naming it, never silently dropped.
/// </summary>
internal static class ChatRequestMapper
{
    /// <summary>Keys read from <see cref="ChatOptions.AdditionalProperties"/> (engine extras that ChatOptions lacks).</summary>
    internal const string MinPKey = "min_p";
    internal const string RepetitionPenaltyKey = "repetition_penalty";
    internal const string MaxThinkingTokensKey = "max_thinking_tokens";
    internal const string ThinkingBudgetNoticeKey = "thinking_budget_notice";
    internal const string KeepPastThinkingKey = "keep_past_thinking";
    internal const string LogitBiasKey = "logit_bias";

    // MEAI's defaults indent, which would spend prompt tokens on whitespace.
    private static readonly JsonSerializerOptions s_compact = new(AIJsonUtilities.DefaultOptions) { WriteIndented = false };

    public static List<LfmChatMessage> ToMessages(IEnumerable<MeaiChatMessage> messages, string? instructions)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var result = new List<LfmChatMessage>();
        // Tool results name the call they answer; the template does not need the name, but keep it for readers.
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        int index = 0;
        foreach (var message in messages)
        {
            if (message is null)
                throw new ArgumentException($"messages[{index}] is null.", nameof(messages));
            AddMessage(message, index, result, callNames);
            index++;
        }
        if (!string.IsNullOrEmpty(instructions))
        {
            // Instructions outrank the conversation's own system text, so they come first in the one system block.
            if (result.Count > 0 && result[0].Role == LfmChatRole.System)
                result[0] = result[0] with { Content = result[0].Content.Length == 0 ? instructions : instructions + "\n\n" + result[0].Content };
            else
                result.Insert(0, LfmChatMessage.System(instructions));
        }
        if (result.Count == 0)
            throw new ArgumentException("At least one message is required.", nameof(messages));
        return result;
    }

    private static void AddMessage(MeaiChatMessage message, int index, List<LfmChatMessage> result, Dictionary<string, string> callNames)
    {
        var role = message.Role;
        if (role == MeaiChatRole.Assistant)
        {
            var text = new StringBuilder();
            StringBuilder? reasoning = null;
            List<ToolCall>? calls = null;
            foreach (var content in message.Contents)
            {
                switch (content)
                {
                    case TextContent t:
                        text.Append(t.Text);
                        break;
                    case TextReasoningContent r:
                        (reasoning ??= new StringBuilder()).Append(r.Text);
                        break;
                    case FunctionCallContent call:
                        calls ??= new List<ToolCall>();
                        calls.Add(new ToolCall(call.CallId, call.Name, SerializeArguments(call.Arguments)));
                        callNames[call.CallId] = call.Name;
                        break;
                    case FunctionResultContent fr:
                        // Misplaced, but unambiguous: a result is a tool message wherever it sits.
                        result.Add(ToolMessage(fr, callNames));
                        break;
                    default:
                        CheckIgnorable(content, index);
                        break;
                }
            }
            if (text.Length > 0 || reasoning is not null || calls is not null)
                result.Add(LfmChatMessage.Assistant(text.ToString(), reasoning?.ToString(), calls));
            return;
        }

        LfmChatRole lfmRole;
        if (role == MeaiChatRole.System || string.Equals(role.Value, "developer", StringComparison.OrdinalIgnoreCase))
            lfmRole = LfmChatRole.System;
        else if (role == MeaiChatRole.User)
            lfmRole = LfmChatRole.User;
        else if (role == MeaiChatRole.Tool)
            lfmRole = LfmChatRole.Tool;
        else
            throw new ArgumentException($"messages[{index}] has role '{role.Value}'; supported roles are system, developer, user, assistant and tool.");

        var sb = new StringBuilder();
        bool any = false;
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent t:
                    sb.Append(t.Text);
                    any = true;
                    break;
                case FunctionResultContent fr:
                    result.Add(ToolMessage(fr, callNames));
                    break;
                case TextReasoningContent:
                    break;   // reasoning only means something in assistant turns
                default:
                    CheckIgnorable(content, index);
                    break;
            }
        }
        if (any || message.Contents.Count == 0)
            result.Add(new LfmChatMessage(lfmRole, sb.ToString()));
    }

    private static void CheckIgnorable(AIContent content, int index)
    {
        // Bookkeeping contents carry nothing the model reads; media and anything else would be lost silently.
        if (content is UsageContent or ErrorContent)
            return;
        throw new NotSupportedException(
            $"messages[{index}] contains {content.GetType().Name}; LfmSharp models read text only (TextContent, TextReasoningContent, FunctionCallContent, FunctionResultContent).");
    }

    private static LfmChatMessage ToolMessage(FunctionResultContent fr, Dictionary<string, string> callNames) =>
        LfmChatMessage.Tool(ResultText(fr), fr.CallId, callNames.GetValueOrDefault(fr.CallId));

    internal static string ResultText(FunctionResultContent fr)
    {
        object? result = fr.Result;
        if (result is null && fr.Exception is not null)
            return "Error: " + fr.Exception.Message;
        return result switch
        {
            null => "",
            string s => s,
            JsonElement e when e.ValueKind == JsonValueKind.String => e.GetString()!,
            JsonElement e => e.GetRawText(),
            _ => JsonSerializer.Serialize(result, s_compact.GetTypeInfo(result.GetType())),
        };
    }

    internal static string SerializeArguments(IDictionary<string, object?>? arguments)
    {
        if (arguments is null || arguments.Count == 0)
            return "{}";
        return JsonSerializer.Serialize(arguments, s_compact.GetTypeInfo(typeof(IDictionary<string, object?>)));
    }

    public static ChatRequestOptions ToRequestOptions(ChatOptions? options, LanguageModel model, LfmChatClientOptions clientOptions, IChatClient client)
    {
        var request = options?.RawRepresentationFactory?.Invoke(client) as ChatRequestOptions ?? new ChatRequestOptions();
        if (clientOptions.DefaultMaxOutputTokens is int defaultMax && options?.MaxOutputTokens is null)
            request = request with { MaxTokens = defaultMax };
        if (options is null)
            return request;

        request = request with { Sampling = ToSampling(options, request.Sampling ?? model.DefaultSampling) };

        if (options.MaxOutputTokens is int max)
        {
            if (max < 1)
                throw new ArgumentException($"MaxOutputTokens must be at least 1 (got {max}).", nameof(options));
            request = request with { MaxTokens = max };
        }
        if (options.StopSequences is { Count: > 0 } stops)
            request = request with { Stop = stops.ToArray() };

        request = WithTools(request, options);

        request = options.ResponseFormat switch
        {
            null => request,
            ChatResponseFormatText => request with { ResponseFormat = LfmResponseFormat.Text },
            ChatResponseFormatJson { Schema: JsonElement schema } json => request with { ResponseFormat = LfmResponseFormat.JsonSchema(schema.GetRawText(), json.SchemaName) },
            ChatResponseFormatJson => request with { ResponseFormat = LfmResponseFormat.JsonObject },
            _ => throw new NotSupportedException($"Response format {options.ResponseFormat.GetType().Name} is not supported."),
        };

        return WithThinking(request, options, clientOptions);
    }

    /// <summary>ChatOptions' sampling fields (and the extra min_p, repetition_penalty, logit_bias) over <paramref name="sampling"/>.</summary>
    private static SamplingOptions ToSampling(ChatOptions options, SamplingOptions sampling)
    {
        if (options.Temperature is float temperature)
            sampling = sampling with { Temperature = temperature };
        if (options.TopP is float topP)
            sampling = sampling with { TopP = topP };
        if (options.TopK is int topK)
            sampling = sampling with { TopK = topK };
        if (options.FrequencyPenalty is float frequency)
            sampling = sampling with { FrequencyPenalty = frequency };
        if (options.PresencePenalty is float presence)
            sampling = sampling with { PresencePenalty = presence };
        if (options.Seed is long seed)
            sampling = sampling with { Seed = unchecked((ulong)seed) };

        var extra = options.AdditionalProperties;
        if (extra is not null)
        {
            if (extra.TryGetValue(MinPKey, out float minP))
                sampling = sampling with { MinP = minP };
            if (extra.TryGetValue(RepetitionPenaltyKey, out float repetition))
                sampling = sampling with { RepetitionPenalty = repetition };
            if (extra.TryGetValue(LogitBiasKey, out object? bias) && bias is not null)
                sampling = sampling with { LogitBias = ToLogitBias(bias) };
        }
        try
        {
            sampling.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentException("Invalid sampling option: " + e.Message, nameof(options), e);
        }
        return sampling;
    }

    /// <summary>Tools, tool mode and parallel tool calls; a required tool must be among the tools.</summary>
    private static ChatRequestOptions WithTools(ChatRequestOptions request, ChatOptions options)
    {
        if (options.Tools is { Count: > 0 } tools)
            request = request with { Tools = ToToolDefinitions(tools) };
        request = options.ToolMode switch
        {
            null or AutoChatToolMode => request,
            NoneChatToolMode => request with { ToolChoice = ToolChoice.None },
            RequiredChatToolMode { RequiredFunctionName: string name } => request with { ToolChoice = ToolChoice.Function(name) },
            RequiredChatToolMode => request with { ToolChoice = ToolChoice.Required },
            _ => throw new NotSupportedException($"Tool mode {options.ToolMode.GetType().Name} is not supported."),
        };
        if (request.ToolChoice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function && request.Tools is not { Count: > 0 })
            throw new ArgumentException("ToolMode requires a tool call, but ChatOptions.Tools is empty.", nameof(options));
        if (request.ToolChoice is { Mode: ToolChoiceMode.Function, FunctionName: string required }
            && !request.Tools!.Any(t => t.Name == required))
            throw new ArgumentException($"ToolMode requires the function '{required}', which is not among ChatOptions.Tools.", nameof(options));
        if (options.AllowMultipleToolCalls is bool multiple)
            request = request with { ParallelToolCalls = multiple };
        return request;
    }

    /// <summary>Reasoning effort and output, and the extra thinking keys (budget, notice, keeping past thinking).</summary>
    private static ChatRequestOptions WithThinking(ChatRequestOptions request, ChatOptions options, LfmChatClientOptions clientOptions)
    {
        var extra = options.AdditionalProperties;
        if (options.Reasoning is { } reasoning)
        {
            if (reasoning.Effort is ReasoningEffort effort)
            {
                if (!clientOptions.ThinkingBudgets.TryGetValue(effort, out int? budget))
                    throw new NotSupportedException($"No thinking budget is configured for reasoning effort {effort}.");
                request = request with { MaxThinkingTokens = budget };
            }
            // Summary is not something a local model can produce; it gets the full reasoning.
            if (reasoning.Output == ReasoningOutput.None)
                request = request with { IncludeReasoning = false };
        }

        if (extra is not null)
        {
            if (extra.TryGetValue(MaxThinkingTokensKey, out int thinking))
            {
                if (thinking < 0)
                    throw new ArgumentException($"{MaxThinkingTokensKey} cannot be negative (got {thinking}).", nameof(options));
                request = request with { MaxThinkingTokens = thinking };
            }
            if (extra.TryGetValue(ThinkingBudgetNoticeKey, out string? notice))
                request = request with { ThinkingBudgetNotice = notice };
            if (extra.TryGetValue(KeepPastThinkingKey, out bool keep))
                request = request with { KeepPastThinking = keep };
        }
        return request;
    }

    private static IReadOnlyList<ToolDefinition> ToToolDefinitions(IList<AITool> tools)
    {
        var result = new List<ToolDefinition>(tools.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var tool in tools)
        {
            if (tool is not AIFunctionDeclaration function)
                throw new NotSupportedException($"Tool '{tool?.Name}' ({tool?.GetType().Name}) is not a function; LfmSharp runs function tools only.");
            if (!names.Add(function.Name))
                throw new ArgumentException($"Two tools are named '{function.Name}'.");
            string? schema = function.JsonSchema.ValueKind == JsonValueKind.Object ? function.JsonSchema.GetRawText() : null;
            result.Add(new ToolDefinition(function.Name, string.IsNullOrEmpty(function.Description) ? null : function.Description, schema));
        }
        return result;
    }

    private static IReadOnlyDictionary<int, float> ToLogitBias(object bias)
    {
        var result = new Dictionary<int, float>();
        switch (bias)
        {
            case IEnumerable<KeyValuePair<int, float>> typed:
                foreach (var (k, v) in typed)
                    result[k] = v;
                break;
            case IEnumerable<KeyValuePair<int, int>> ints:
                foreach (var (k, v) in ints)
                    result[k] = v;
                break;
            case IEnumerable<KeyValuePair<string, object?>> loose:
                foreach (var (k, v) in loose)
                {
                    if (!int.TryParse(k, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id))
                        throw new ArgumentException($"{LogitBiasKey}: key '{k}' is not a token id.");
                    result[id] = Convert.ToSingle(v is JsonElement e ? e.GetDouble() : v, CultureInfo.InvariantCulture);
                }
                break;
            default:
                throw new ArgumentException($"{LogitBiasKey} must be a dictionary of token id to bias, not {bias.GetType().Name}.");
        }
        return result;
    }
}
