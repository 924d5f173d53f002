using System.Text;
using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using LfmChatMessage = LfmSharp.Chat.LfmChatMessage;

namespace LfmSharp.Server.Responses;

/// <summary>
/// A validated <c>POST /v1/responses</c> body (the subset clients use): <c>input</c> (a string or items: messages,
/// <c>function_call</c>, <c>function_call_output</c>, <c>reasoning</c>, <c>item_reference</c>), <c>instructions</c>,
/// function <c>tools</c>, <c>tool_choice</c>, <c>text.format</c>, <c>reasoning.effort</c>, <c>max_output_tokens</c>,
/// the sampling fields (llama-server's extras too), <c>stream</c>, <c>store</c> and <c>previous_response_id</c>.
/// </summary>
internal sealed record ResponsesRequest(
    string? Model,
    IReadOnlyList<LfmChatMessage> Conversation,
    string? Instructions,
    ChatRequestOptions Options,
    bool Stream,
    bool Store,
    string? PreviousResponseId,
    string? Effort,
    JsonElement? Tools,
    JsonElement? ToolChoice,
    JsonElement? TextFormat,
    JsonElement? Metadata)
{
    /// <summary>The prompt's messages: the instructions (never inherited from a previous response) then the conversation.</summary>
    public IReadOnlyList<LfmChatMessage> Messages =>
        Instructions is null ? Conversation : [LfmChatMessage.System(Instructions), .. Conversation];

    public static ResponsesRequest Parse(JsonElement root, SamplingOptions defaultSampling, int vocabSize, ResponseStore store)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType("body", "a JSON object", root.ValueKind);
        string? model = Json.String(root, "model");
        string? previous = Json.String(root, "previous_response_id");
        var conversation = new List<LfmChatMessage>();
        if (previous is not null)
        {
            if (!store.TryGet(previous, out var history))
                throw ApiException.BadRequest($"Previous response with id '{previous}' not found: this server keeps the last {store.Capacity} stored responses, in memory, until it restarts. Send the whole conversation in 'input' instead.",
                    "previous_response_id", "previous_response_not_found");
            conversation.AddRange(history);
        }
        ParseInput(root, conversation, store);
        if (conversation.Count == 0)
            throw ApiException.BadRequest("'input' must contain at least one item.", "input", "empty_array");

        var sampling = ChatCompletionRequest.ParseSampling(root, defaultSampling, vocabSize);
        var options = new ChatRequestOptions { Sampling = sampling };
        if (Json.Integer(root, "max_output_tokens", 1, int.MaxValue) is long max)
            options = options with { MaxTokens = (int)max };
        var tools = ParseTools(root);
        if (tools is not null)
            options = options with { Tools = tools };
        options = options with { ToolChoice = ParseToolChoice(root, tools) };
        if (Json.Bool(root, "parallel_tool_calls") is bool parallel)
            options = options with { ParallelToolCalls = parallel };
        JsonElement? textFormat = null;
        if (Json.Object(root, "text") is JsonElement text && Json.Object(text, "format", "text.format") is JsonElement format)
        {
            textFormat = format.Clone();
            if (ParseFormat(format) is ResponseFormat rf)
                options = options with { ResponseFormat = rf };
        }
        string? effort = null;
        if (Json.Object(root, "reasoning") is JsonElement reasoning && Json.String(reasoning, "effort", "reasoning.effort") is string e)
        {
            effort = e;
            // xhigh (newer models) is "more than high": four times high's budget.
            options = options with { MaxThinkingTokens = e == "xhigh" ? 16384 : ChatCompletionRequest.BudgetForEffort(e) };
        }
        if (Json.Integer(root, "thinking_budget_tokens", 0, int.MaxValue) is long budget)
            options = options with { MaxThinkingTokens = (int)budget };
        if (Json.TryGet(root, "top_logprobs", out _))
            throw ApiException.BadRequest("'top_logprobs' is not supported on /v1/responses; use /v1/chat/completions with logprobs.", "top_logprobs", "unsupported_parameter");

        return new ResponsesRequest(model, conversation, Json.String(root, "instructions"), options,
            Json.Bool(root, "stream") ?? false, Json.Bool(root, "store") ?? true, previous, effort,
            Json.Array(root, "tools")?.Clone(), Json.TryGet(root, "tool_choice", out var tc) ? tc.Clone() : null, textFormat,
            Json.Object(root, "metadata")?.Clone());
    }

    private static void ParseInput(JsonElement root, List<LfmChatMessage> conversation, ResponseStore store)
    {
        if (!Json.TryGet(root, "input", out var input))
            throw ApiException.Missing("input");
        if (input.ValueKind == JsonValueKind.String)
        {
            conversation.Add(LfmChatMessage.User(input.GetString()!));
            return;
        }
        if (input.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType("input", "a string or an array of input items", input.ValueKind);
        // Function calls and any reasoning before them belong to one assistant turn, so consecutive calls merge.
        string? pendingReasoning = null;
        int i = 0;
        foreach (var item in input.EnumerateArray())
        {
            string p = $"input[{i++}]";
            if (item.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(p, "an input item object", item.ValueKind);
            string type = Json.String(item, "type", p + ".type") ?? (Json.TryGet(item, "role", out _) ? "message" : throw ApiException.Missing(p + ".type"));
            switch (type)
            {
                case "message":
                    AddMessage(conversation, ParseMessage(item, p), ref pendingReasoning);
                    break;
                case "function_call":
                {
                    string callId = Json.String(item, "call_id", p + ".call_id") ?? throw ApiException.Missing(p + ".call_id");
                    string name = Json.String(item, "name", p + ".name") ?? throw ApiException.Missing(p + ".name");
                    string args = Json.String(item, "arguments", p + ".arguments") ?? "{}";
                    CheckArguments(args.Length == 0 ? "{}" : args, p + ".arguments");
                    AddCall(conversation, new ToolCall(callId, name, args.Length == 0 ? "{}" : args), ref pendingReasoning);
                    break;
                }
                case "function_call_output":
                {
                    string callId = Json.String(item, "call_id", p + ".call_id") ?? throw ApiException.Missing(p + ".call_id");
                    if (!Json.TryGet(item, "output", out var output))
                        throw ApiException.Missing(p + ".output");
                    string text = output.ValueKind == JsonValueKind.String ? output.GetString()! : PartsText(output, p + ".output");
                    conversation.Add(LfmChatMessage.Tool(text, callId, FindCallName(conversation, callId)));
                    break;
                }
                case "reasoning":
                    pendingReasoning = ReasoningText(item, p);
                    break;
                case "item_reference":
                {
                    string id = Json.String(item, "id", p + ".id") ?? throw ApiException.Missing(p + ".id");
                    if (!store.TryGetItem(id, out var message))
                        throw ApiException.BadRequest($"'{p}' refers to item '{id}', which this server did not keep. Send the item itself.", p + ".id", "item_not_found");
                    if (message?.ToolCalls is { Count: > 0 } calls)
                    {
                        foreach (var call in calls)
                            AddCall(conversation, call, ref pendingReasoning);
                    }
                    else if (message is not null)
                    {
                        AddMessage(conversation, message, ref pendingReasoning);
                    }
                    break;
                }
                default:
                    throw ApiException.BadRequest($"'{p}.type' is '{type}'; this server reads message, function_call, function_call_output, reasoning and item_reference items.", p + ".type", "unsupported_value");
            }
        }
    }

    private static void AddMessage(List<LfmChatMessage> conversation, LfmChatMessage message, ref string? pendingReasoning)
    {
        if (message.Role == LfmChatRole.Assistant && pendingReasoning is not null)
            message = message with { Reasoning = pendingReasoning };
        pendingReasoning = null;
        conversation.Add(message);
    }

    private static void AddCall(List<LfmChatMessage> conversation, ToolCall call, ref string? pendingReasoning)
    {
        // A call right after the assistant's text (or another call) is part of the same turn.
        if (pendingReasoning is null && conversation.Count > 0 && conversation[^1] is { Role: LfmChatRole.Assistant } last)
        {
            conversation[^1] = last with { ToolCalls = [.. last.ToolCalls ?? [], call] };
            return;
        }
        conversation.Add(LfmChatMessage.Assistant("", pendingReasoning, [call]));
        pendingReasoning = null;
    }

    private static string? FindCallName(List<LfmChatMessage> conversation, string callId)
    {
        for (int i = conversation.Count - 1; i >= 0; i--)
        {
            foreach (var call in conversation[i].ToolCalls ?? [])
            {
                if (call.Id == callId)
                    return call.Name;
            }
        }
        return null;
    }

    private static LfmChatMessage ParseMessage(JsonElement item, string p)
    {
        string role = Json.String(item, "role", p + ".role") ?? throw ApiException.Missing(p + ".role");
        if (!Json.TryGet(item, "content", out var content))
            throw ApiException.Missing(p + ".content");
        string text = content.ValueKind == JsonValueKind.String ? content.GetString()! : PartsText(content, p + ".content");
        return role switch
        {
            "user" => LfmChatMessage.User(text),
            "system" or "developer" => LfmChatMessage.System(text),
            "assistant" => LfmChatMessage.Assistant(text),
            _ => throw ApiException.BadRequest($"'{p}.role' must be user, system, developer or assistant (got '{role}').", p + ".role"),
        };
    }

    /// <summary>The text of an array of content parts (<c>input_text</c>, <c>output_text</c>, <c>text</c>, <c>refusal</c>).</summary>
    private static string PartsText(JsonElement parts, string p)
    {
        if (parts.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType(p, "a string or an array of content parts", parts.ValueKind);
        var sb = new StringBuilder();
        int j = 0;
        foreach (var part in parts.EnumerateArray())
        {
            string pp = $"{p}[{j++}]";
            if (part.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(pp, "a content part object", part.ValueKind);
            string type = Json.String(part, "type", pp + ".type") ?? throw ApiException.Missing(pp + ".type");
            string field = type switch
            {
                "input_text" or "output_text" or "text" or "summary_text" or "reasoning_text" => "text",
                "refusal" => "refusal",
                _ => throw ApiException.BadRequest($"'{pp}.type' is '{type}'; this model reads text only (input_text, output_text).", pp + ".type", "unsupported_value"),
            };
            if (sb.Length > 0)
                sb.Append('\n');
            sb.Append(Json.String(part, field, $"{pp}.{field}") ?? throw ApiException.Missing($"{pp}.{field}"));
        }
        return sb.ToString();
    }

    private static string? ReasoningText(JsonElement item, string p)
    {
        // Open-weight reasoning comes back as content (reasoning_text); OpenAI's own as summary parts.
        if (Json.Array(item, "content", p + ".content") is JsonElement content && content.GetArrayLength() > 0)
            return PartsText(content, p + ".content");
        if (Json.Array(item, "summary", p + ".summary") is JsonElement summary && summary.GetArrayLength() > 0)
            return PartsText(summary, p + ".summary");
        return null;
    }

    private static void CheckArguments(string args, string p)
    {
        try
        {
            using var doc = JsonDocument.Parse(args);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest($"'{p}' must be a JSON object.", p);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"'{p}' is not valid JSON: {e.Message}", p);
        }
    }

    private static List<ToolDefinition>? ParseTools(JsonElement root)
    {
        if (Json.Array(root, "tools") is not JsonElement arr)
            return null;
        var tools = new List<ToolDefinition>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        foreach (var t in arr.EnumerateArray())
        {
            string p = $"tools[{i++}]";
            if (t.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(p, "an object", t.ValueKind);
            string type = Json.String(t, "type", p + ".type") ?? throw ApiException.Missing(p + ".type");
            if (type != "function")
                throw ApiException.BadRequest($"'{p}.type' is '{type}'; this server runs function tools only (no hosted tools).", p + ".type", "unsupported_value");
            string name = ChatCompletionRequest.ValidateFunction(t, p, names);
            string? parameters = Json.TryGet(t, "parameters", out var ps) && ps.ValueKind == JsonValueKind.Object ? ps.GetRawText() : null;
            try
            {
                tools.Add(new ToolDefinition(name, Json.String(t, "description", p + ".description"), parameters));
            }
            catch (ArgumentException e)
            {
                throw new ApiException(400, $"'{p}' is not a valid tool: {e.Message}", param: p, code: "invalid_tool_schema");
            }
        }
        return tools.Count == 0 ? null : tools;
    }

    private static ToolChoice ParseToolChoice(JsonElement root, List<ToolDefinition>? tools)
    {
        if (!Json.TryGet(root, "tool_choice", out var tc))
            return LfmSharp.ToolChoice.Auto;
        ToolChoice choice;
        if (tc.ValueKind == JsonValueKind.String)
        {
            choice = tc.GetString() switch
            {
                "auto" => LfmSharp.ToolChoice.Auto,
                "none" => LfmSharp.ToolChoice.None,
                "required" => LfmSharp.ToolChoice.Required,
                var other => throw ApiException.BadRequest($"'tool_choice' must be none, auto, required or {{\"type\":\"function\",\"name\":…}} (got '{other}').", "tool_choice"),
            };
        }
        else if (tc.ValueKind == JsonValueKind.Object)
        {
            string type = Json.String(tc, "type", "tool_choice.type") ?? throw ApiException.Missing("tool_choice.type");
            if (type != "function")
                throw ApiException.BadRequest($"'tool_choice.type' is '{type}'; only function tools exist here.", "tool_choice.type", "unsupported_value");
            string name = Json.String(tc, "name", "tool_choice.name") ?? throw ApiException.Missing("tool_choice.name");
            if (tools is null || !tools.Exists(t => t.Name == name))
                throw ApiException.BadRequest($"'tool_choice' names the function '{name}', which is not among 'tools'.", "tool_choice");
            choice = LfmSharp.ToolChoice.Function(name);
        }
        else
        {
            throw ApiException.WrongType("tool_choice", "a string or an object", tc.ValueKind);
        }
        if (choice.Mode == ToolChoiceMode.Required && tools is null)
            throw ApiException.BadRequest("'tool_choice' is 'required' but no 'tools' were given.", "tool_choice");
        return choice;
    }

    private static ResponseFormat? ParseFormat(JsonElement format)
    {
        string type = Json.String(format, "type", "text.format.type") ?? throw ApiException.Missing("text.format.type");
        switch (type)
        {
            case "text":
                return null;
            case "json_object":
                return ResponseFormat.JsonObject;
            case "json_schema":
            {
                if (!Json.TryGet(format, "schema", out var schema))
                    throw ApiException.Missing("text.format.schema");
                return ResponseFormat.JsonSchema(ChatCompletionRequest.SchemaText(schema, "text.format.schema"), Json.String(format, "name", "text.format.name"));
            }
            default:
                throw ApiException.BadRequest($"'text.format.type' must be text, json_object or json_schema (got '{type}').", "text.format.type");
        }
    }
}
