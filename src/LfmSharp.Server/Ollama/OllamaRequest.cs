using System.Text.Json;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Server.OpenAi;
using LfmChatMessage = LfmSharp.Chat.LfmChatMessage;

namespace LfmSharp.Server.Ollama;

/// <summary>
/// A validated Ollama <c>/api/chat</c> or <c>/api/generate</c> body: messages (or prompt and system), <c>tools</c>,
/// <c>format</c> (<c>"json"</c> or a JSON schema), <c>think</c> (true/false or low/medium/high), <c>stream</c>
/// (default true, as in Ollama) and <c>options</c> (temperature, top_p, top_k, min_p, num_predict, seed, stop,
/// repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty; llama-server's <c>logit_bias</c> too; the
/// runner settings such as num_ctx, num_thread or num_gpu are accepted and ignored, the server's own apply).
/// </summary>
internal sealed record OllamaRequest(string? Model, IReadOnlyList<LfmChatMessage> Messages, ChatRequestOptions Options, bool Stream, bool ShowThinking)
{
    public static OllamaRequest ParseChat(JsonElement root, SamplingOptions defaults, int vocabSize, int contextLength)
    {
        CheckObject(root);
        var messages = new List<LfmChatMessage>();
        if (Json.Array(root, "messages") is JsonElement arr)
        {
            int i = 0;
            foreach (var m in arr.EnumerateArray())
                messages.Add(ParseMessage(m, $"messages[{i++}]"));
        }
        return Finish(root, messages, defaults, vocabSize, contextLength, ChatCompletionRequest.ParseTools(root));
    }

    public static OllamaRequest ParseGenerate(JsonElement root, SamplingOptions defaults, int vocabSize, int contextLength)
    {
        CheckObject(root);
        if (Json.Bool(root, "raw") == true)
            throw ApiException.BadRequest("'raw' prompts are not supported on /api/generate; use POST /v1/completions for raw text.", "raw", "unsupported_parameter");
        if (Json.TryGet(root, "images", out var images) && images.ValueKind == JsonValueKind.Array && images.GetArrayLength() > 0)
            throw ApiException.BadRequest("This model reads text only; 'images' cannot be used.", "images", "unsupported_parameter");
        if (Json.String(root, "suffix") is { Length: > 0 })
            throw ApiException.BadRequest("'suffix' (fill-in-the-middle) is not supported by this model.", "suffix", "unsupported_parameter");
        var messages = new List<LfmChatMessage>();
        if (Json.String(root, "system") is { Length: > 0 } system)
            messages.Add(LfmChatMessage.System(system));
        if (Json.String(root, "prompt") is { Length: > 0 } prompt)
            messages.Add(LfmChatMessage.User(prompt));
        return Finish(root, messages, defaults, vocabSize, contextLength, tools: null);
    }

    private static void CheckObject(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType("body", "a JSON object", root.ValueKind);
    }

    private static OllamaRequest Finish(JsonElement root, List<LfmChatMessage> messages, SamplingOptions defaults, int vocabSize, int contextLength,
        List<ToolDefinition>? tools)
    {
        var sampling = defaults;
        // Ollama's default num_predict is -1: until the model stops or the context is full.
        var options = new ChatRequestOptions { MaxTokens = contextLength };
        if (Json.Object(root, "options") is JsonElement o)
        {
            sampling = ChatCompletionRequest.ParseSampling(o, defaults, vocabSize);
            if (Json.Integer(o, "num_predict", -2, int.MaxValue, "options.num_predict") is long n and > 0)
                options = options with { MaxTokens = (int)Math.Min(n, contextLength) };
            else if (Json.Integer(o, "num_predict", -2, int.MaxValue, "options.num_predict") is 0)
                throw ApiException.BadRequest("'options.num_predict' must not be 0 (-1 means unlimited).", "options.num_predict");
            if (Json.StringOrStrings(o, "stop", 16) is { } stop)
                options = options with { Stop = stop };
        }
        options = options with { Sampling = sampling };
        if (tools is not null)
            options = options with { Tools = tools };
        if (Json.TryGet(root, "format", out var format))
        {
            if (format.ValueKind == JsonValueKind.String)
            {
                string f = format.GetString()!;
                if (f == "json")
                    options = options with { ResponseFormat = ResponseFormat.JsonObject };
                else if (f.Length > 0)
                    throw ApiException.BadRequest($"'format' must be \"json\" or a JSON schema object (got '{f}').", "format");
            }
            else if (format.ValueKind != JsonValueKind.Null)
            {
                options = options with { ResponseFormat = ResponseFormat.JsonSchema(ChatCompletionRequest.SchemaText(format, "format")) };
            }
        }
        bool showThinking = true;
        if (Json.TryGet(root, "think", out var think))
        {
            switch (think.ValueKind)
            {
                case JsonValueKind.True:
                    break;
                case JsonValueKind.False:
                    // LFM2.5-Thinking cannot skip its thinking: close it at once and show none.
                    options = options with { MaxThinkingTokens = 0 };
                    showThinking = false;
                    break;
                case JsonValueKind.String:
                    options = options with { MaxThinkingTokens = ChatCompletionRequest.BudgetForEffort(think.GetString()!) };
                    break;
                default:
                    throw ApiException.WrongType("think", "a boolean or one of low, medium, high", think.ValueKind);
            }
        }
        return new OllamaRequest(Json.String(root, "model"), messages, options, Json.Bool(root, "stream") ?? true, showThinking);
    }

    private static LfmChatMessage ParseMessage(JsonElement m, string p)
    {
        if (m.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType(p, "an object", m.ValueKind);
        if (Json.TryGet(m, "images", out var images) && images.ValueKind == JsonValueKind.Array && images.GetArrayLength() > 0)
            throw ApiException.BadRequest($"This model reads text only; '{p}.images' cannot be used.", p + ".images", "unsupported_parameter");
        string role = Json.String(m, "role", p + ".role") ?? throw ApiException.Missing(p + ".role");
        string content = Json.String(m, "content", p + ".content") ?? "";
        switch (role)
        {
            case "system":
                return LfmChatMessage.System(content);
            case "user":
                return LfmChatMessage.User(content);
            case "tool":
                return LfmChatMessage.Tool(content, Json.String(m, "tool_call_id", p + ".tool_call_id"), Json.String(m, "tool_name", p + ".tool_name"));
            case "assistant":
                return LfmChatMessage.Assistant(content, Json.String(m, "thinking", p + ".thinking"), ParseCalls(m, p));
            default:
                throw ApiException.BadRequest($"'{p}.role' must be system, user, assistant or tool (got '{role}').", p + ".role");
        }
    }

    /// <summary>Ollama's calls: <c>{"function":{"name":…,"arguments":{…}}}</c>, arguments as an object.</summary>
    private static List<ToolCall>? ParseCalls(JsonElement m, string p)
    {
        if (Json.Array(m, "tool_calls", p + ".tool_calls") is not JsonElement arr)
            return null;
        var calls = new List<ToolCall>();
        int j = 0;
        foreach (var tc in arr.EnumerateArray())
        {
            string cp = $"{p}.tool_calls[{j}]";
            if (tc.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(cp, "an object", tc.ValueKind);
            var fn = Json.Object(tc, "function", cp + ".function") ?? throw ApiException.Missing(cp + ".function");
            string name = Json.String(fn, "name", cp + ".function.name") ?? throw ApiException.Missing(cp + ".function.name");
            string args = "{}";
            if (Json.TryGet(fn, "arguments", out var a) && a.ValueKind != JsonValueKind.Null)
            {
                if (a.ValueKind != JsonValueKind.Object)
                    throw ApiException.WrongType(cp + ".function.arguments", "an object", a.ValueKind);
                args = a.GetRawText();
            }
            calls.Add(new ToolCall(Json.String(tc, "id", cp + ".id") ?? $"call_{j}", name, args));
            j++;
        }
        return calls.Count == 0 ? null : calls;
    }
}
