using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmChatMessage = LfmSharp.Chat.LfmChatMessage;

namespace LfmSharp.Server.OpenAi;

/// <summary>Where the reasoning goes in a chat response (llama-server's <c>reasoning_format</c>).</summary>
public enum ReasoningFormat
{
    /// <summary><c>deepseek</c> / <c>auto</c>: in <c>reasoning_content</c>, apart from <c>content</c>.</summary>
    Separate,

    /// <summary><c>none</c>: left inline in <c>content</c> as <c>&lt;think&gt;…&lt;/think&gt;</c>.</summary>
    Inline,
}

/// <summary>A validated <c>POST /v1/chat/completions</c> body.</summary>
internal sealed partial record ChatCompletionRequest(
    string? Model,
    IReadOnlyList<LfmChatMessage> Messages,
    ChatRequestOptions Options,
    bool Stream,
    bool IncludeUsage,
    ReasoningFormat ReasoningFormat,
    int N = 1)
{
    /// <summary>Most choices one request may ask for (each is a sequence in the batched decode).</summary>
    public const int MaxChoices = 8;

    // OpenAI's own rule is ^[a-zA-Z0-9_-]{1,64}$; LFM tools are often dotted (Calendar.create_event), so dots pass too.
    [GeneratedRegex("^[A-Za-z0-9_.\\-]{1,64}$")]
    private static partial Regex ToolNamePattern();

    /// <summary>Thinking budgets for OpenAI's <c>reasoning_effort</c>. LFM2.5-Thinking cannot skip its thinking, so
    /// "none" closes it at once.</summary>
    internal static int? BudgetForEffort(string effort) => effort switch
    {
        "none" => 0,
        "minimal" => 64,
        "low" => 256,
        "medium" => 1024,
        "high" => 4096,
        _ => throw ApiException.BadRequest($"'reasoning_effort' must be one of none, minimal, low, medium, high (got '{effort}').", "reasoning_effort"),
    };

    public static ChatCompletionRequest Parse(JsonElement root, SamplingOptions defaultSampling, int vocabSize, IReadOnlyList<int>? endOfGeneration = null)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType("body", "a JSON object", root.ValueKind);

        string? model = Json.String(root, "model");
        var messages = ParseMessages(root);
        var sampling = ParseSampling(root, defaultSampling, vocabSize, endOfGeneration);

        int n = (int)(Json.Integer(root, "n", 1, MaxChoices) ?? 1);
        var options = new ChatRequestOptions { Sampling = sampling, Logprobs = ParseLogprobs(root) };
        long? maxTokens = Json.Integer(root, "max_completion_tokens", 1, int.MaxValue) ?? Json.Integer(root, "max_tokens", 1, int.MaxValue);
        if (maxTokens is long mt)
            options = options with { MaxTokens = (int)mt };
        var stop = Json.StringOrStrings(root, "stop", 16);
        if (stop is not null)
            options = options with { Stop = stop };

        var tools = ParseTools(root);
        if (tools is not null)
            options = options with { Tools = tools };
        options = options with { ToolChoice = ParseToolChoice(root, tools) };
        if (Json.Bool(root, "parallel_tool_calls") is bool parallel)
            options = options with { ParallelToolCalls = parallel };
        if (ParseResponseFormat(root) is ResponseFormat format)
            options = options with { ResponseFormat = format };

        // Thinking budget: explicit token counts win over reasoning_effort.
        int? budget = null;
        bool budgetSet = false;
        foreach (string key in (ReadOnlySpan<string>)["thinking_budget_tokens", "max_thinking_tokens"])
        {
            if (!budgetSet && Json.Integer(root, key, 0, int.MaxValue) is long b)
            {
                budget = (int)b;
                budgetSet = true;
            }
        }
        if (!budgetSet && Json.Integer(root, "reasoning_budget", -1, int.MaxValue) is long rb)
        {
            budget = rb < 0 ? null : (int)rb;   // llama-server: -1 = unlimited
            budgetSet = true;
        }
        if (!budgetSet && Json.String(root, "reasoning_effort") is string effort)
        {
            budget = BudgetForEffort(effort);
            budgetSet = true;
        }
        if (budgetSet)
            options = options with { MaxThinkingTokens = budget };
        string? notice = Json.String(root, "thinking_budget_notice") ?? Json.String(root, "reasoning_budget_message");
        if (notice is not null)
            options = options with { ThinkingBudgetNotice = notice };
        bool? keep = Json.Bool(root, "keep_past_thinking");
        if (Json.Object(root, "chat_template_kwargs") is JsonElement kwargs)
        {
            keep ??= Json.Bool(kwargs, "keep_past_thinking", "chat_template_kwargs.keep_past_thinking");
            options = options with { ChatTemplateKwargs = TemplateKwargs(kwargs) };
        }
        if (keep is bool k)
            options = options with { KeepPastThinking = k };

        var reasoningFormat = Json.String(root, "reasoning_format") switch
        {
            null or "auto" or "deepseek" => ReasoningFormat.Separate,
            "none" => ReasoningFormat.Inline,
            string other => throw ApiException.BadRequest($"'reasoning_format' must be none, deepseek or auto (got '{other}').", "reasoning_format"),
        };

        bool stream = Json.Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (Json.Object(root, "stream_options") is JsonElement so)
            includeUsage = Json.Bool(so, "include_usage", "stream_options.include_usage") ?? false;

        return new ChatCompletionRequest(model, messages, options, stream, includeUsage, reasoningFormat, n);
    }

    /// <summary>OpenAI's <c>logprobs</c> (bool) and <c>top_logprobs</c> (0..20, only with logprobs): the alternatives
    /// per token, or null when off.</summary>
    private static int? ParseLogprobs(JsonElement root)
    {
        bool on = Json.Bool(root, "logprobs") ?? false;
        long? top = Json.Integer(root, "top_logprobs", 0, TokenLogprobs.MaxTop);
        if (top is not null && !on)
            throw ApiException.BadRequest("'top_logprobs' needs 'logprobs': true.", "top_logprobs");
        return on ? (int)(top ?? 0) : null;
    }

    /// <summary>The <c>chat_template_kwargs</c> object's members, passed to the chat template as variables.</summary>
    internal static Dictionary<string, JsonElement> TemplateKwargs(JsonElement kwargs)
    {
        var d = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in kwargs.EnumerateObject())
            d[p.Name] = p.Value.Clone();
        return d;
    }

    /// <summary>Sampling fields shared by chat and text completions, on top of the model's recommended defaults.</summary>
    /// <param name="endOfGeneration">The model's end-of-generation ids, for llama-server's <c>ignore_eos</c> (null: the
    /// field is ignored).</param>
    internal static SamplingOptions ParseSampling(JsonElement root, SamplingOptions sampling, int vocabSize, IReadOnlyList<int>? endOfGeneration = null)
    {
        if (Json.Number(root, "temperature", 0, 100) is double t)
            sampling = sampling with { Temperature = (float)t };
        if (Json.Number(root, "top_p", 0, 1) is double p)
        {
            if (p == 0)
                throw ApiException.BadRequest("'top_p' must be greater than 0.", "top_p");
            sampling = sampling with { TopP = (float)p };
        }
        if (Json.Integer(root, "top_k", 0, int.MaxValue) is long k)
            sampling = sampling with { TopK = (int)k };
        if (Json.Number(root, "min_p", 0, 1) is double minP)
            sampling = sampling with { MinP = (float)minP };
        if (Json.Number(root, "frequency_penalty", -2, 2) is double fp)
            sampling = sampling with { FrequencyPenalty = (float)fp };
        if (Json.Number(root, "presence_penalty", -2, 2) is double pp)
            sampling = sampling with { PresencePenalty = (float)pp };
        double? rep = Json.Number(root, "repetition_penalty", 0, 100) ?? Json.Number(root, "repeat_penalty", 0, 100);
        if (rep is double r)
        {
            if (r == 0)
                throw ApiException.BadRequest("'repetition_penalty' must be greater than 0.", "repetition_penalty");
            sampling = sampling with { RepetitionPenalty = (float)r };
        }
        if (Json.Integer(root, "repeat_last_n", -1, int.MaxValue) is long lastN)
            sampling = sampling with { PenaltyLastN = (int)lastN };
        if (Json.Integer(root, "seed") is long seed)
            sampling = sampling with { Seed = unchecked((ulong)seed) };
        if (Json.Object(root, "logit_bias") is JsonElement bias)
        {
            var dict = new Dictionary<int, float>();
            foreach (var prop in bias.EnumerateObject())
            {
                if (!int.TryParse(prop.Name, out int id) || id < 0 || id >= vocabSize)
                    throw ApiException.BadRequest($"'logit_bias' key '{prop.Name}' is not a token id of this model (0..{vocabSize - 1}).", "logit_bias");
                if (prop.Value.ValueKind != JsonValueKind.Number)
                    throw ApiException.WrongType($"logit_bias.{prop.Name}", "a number", prop.Value.ValueKind);
                double v = prop.Value.GetDouble();
                if (!double.IsFinite(v))
                    throw ApiException.BadRequest($"'logit_bias.{prop.Name}' must be finite.", "logit_bias");
                dict[id] = (float)v;
            }
            if (dict.Count > 0)
                sampling = sampling with { LogitBias = dict };
        }
        if (Json.Bool(root, "ignore_eos") == true && endOfGeneration is { Count: > 0 })
        {
            // llama-server's extension, which benchmarks send so every answer runs to max_tokens: the end-of-generation
            // tokens are never sampled (a bias of −∞, as llama.cpp does it).
            var dict = sampling.LogitBias is null ? new Dictionary<int, float>() : new Dictionary<int, float>(sampling.LogitBias);
            foreach (int id in endOfGeneration)
                dict[id] = float.NegativeInfinity;
            sampling = sampling with { LogitBias = dict };
        }
        return sampling;
    }

    private static List<LfmChatMessage> ParseMessages(JsonElement root)
    {
        if (!Json.TryGet(root, "messages", out var arr))
            throw ApiException.Missing("messages");
        if (arr.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType("messages", "an array", arr.ValueKind);
        var result = new List<LfmChatMessage>();
        int i = 0;
        foreach (var m in arr.EnumerateArray())
        {
            result.Add(ParseMessage(m, $"messages[{i}]"));
            i++;
        }
        if (result.Count == 0)
            throw ApiException.BadRequest("'messages' must contain at least one message.", "messages", "empty_array");
        return result;
    }

    internal static LfmChatMessage ParseMessage(JsonElement m, string path)
    {
        if (m.ValueKind != JsonValueKind.Object)
            throw ApiException.WrongType(path, "an object", m.ValueKind);
        string role = Json.String(m, "role", path + ".role") ?? throw ApiException.Missing(path + ".role");
        switch (role)
        {
            case "system":
            case "developer":
                return LfmChatMessage.System(Content(m, path, required: true));
            case "user":
                return LfmChatMessage.User(Content(m, path, required: true));
            case "tool":
            {
                string? id = Json.String(m, "tool_call_id", path + ".tool_call_id");
                return LfmChatMessage.Tool(Content(m, path, required: true), id, Json.String(m, "name", path + ".name"));
            }
            case "assistant":
            {
                var calls = ParseToolCalls(m, path);
                string content = Content(m, path, required: calls is null);
                string? reasoning = Json.String(m, "reasoning_content", path + ".reasoning_content") ?? Json.String(m, "reasoning", path + ".reasoning");
                return LfmChatMessage.Assistant(content, reasoning, calls);
            }
            default:
                throw ApiException.BadRequest($"'{path}.role' must be system, developer, user, assistant or tool (got '{role}').", path + ".role");
        }
    }

    /// <summary>A string, or an array of text parts (joined with newlines).</summary>
    private static string Content(JsonElement m, string path, bool required)
    {
        if (!Json.TryGet(m, "content", out var c))
        {
            if (required)
                throw ApiException.Missing(path + ".content");
            return "";
        }
        if (c.ValueKind == JsonValueKind.String)
            return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array)
            throw ApiException.WrongType(path + ".content", "a string or an array of content parts", c.ValueKind);
        var sb = new StringBuilder();
        int j = 0;
        foreach (var part in c.EnumerateArray())
        {
            string pp = $"{path}.content[{j}]";
            if (part.ValueKind == JsonValueKind.String)
            {
                AppendPart(sb, part.GetString()!);
            }
            else if (part.ValueKind == JsonValueKind.Object)
            {
                string type = Json.String(part, "type", pp + ".type") ?? throw ApiException.Missing(pp + ".type");
                if (type is "text" or "input_text" or "refusal")
                {
                    string field = type == "refusal" ? "refusal" : "text";
                    AppendPart(sb, Json.String(part, field, $"{pp}.{field}") ?? throw ApiException.Missing($"{pp}.{field}"));
                }
                else
                {
                    throw ApiException.BadRequest($"'{pp}.type' is '{type}'; this model reads text only (content parts of type 'text').", pp + ".type", "unsupported_value");
                }
            }
            else
            {
                throw ApiException.WrongType(pp, "a content part object", part.ValueKind);
            }
            j++;
        }
        return sb.ToString();
    }

    private static void AppendPart(StringBuilder sb, string text)
    {
        if (sb.Length > 0)
            sb.Append('\n');
        sb.Append(text);
    }

    private static List<ToolCall>? ParseToolCalls(JsonElement m, string path)
    {
        if (Json.Array(m, "tool_calls", path + ".tool_calls") is not JsonElement arr)
            return null;
        var calls = new List<ToolCall>();
        int j = 0;
        foreach (var tc in arr.EnumerateArray())
        {
            string p = $"{path}.tool_calls[{j}]";
            if (tc.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(p, "an object", tc.ValueKind);
            var fn = Json.Object(tc, "function", p + ".function") ?? throw ApiException.Missing(p + ".function");
            string name = Json.String(fn, "name", p + ".function.name") ?? throw ApiException.Missing(p + ".function.name");
            string args = "{}";
            if (Json.TryGet(fn, "arguments", out var a))
            {
                // OpenAI sends the arguments as a JSON text; some clients send the object itself.
                args = a.ValueKind switch
                {
                    JsonValueKind.String => a.GetString()!,
                    JsonValueKind.Object => a.GetRawText(),
                    _ => throw ApiException.WrongType(p + ".function.arguments", "a string", a.ValueKind),
                };
                if (args.Length == 0)
                    args = "{}";
                try
                {
                    using var doc = JsonDocument.Parse(args);
                    if (doc.RootElement.ValueKind != JsonValueKind.Object)
                        throw ApiException.BadRequest($"'{p}.function.arguments' must be a JSON object.", p + ".function.arguments");
                }
                catch (JsonException e)
                {
                    throw ApiException.BadRequest($"'{p}.function.arguments' is not valid JSON: {e.Message}", p + ".function.arguments");
                }
            }
            string id = Json.String(tc, "id", p + ".id") ?? $"call_{j}";
            calls.Add(new ToolCall(id, name, args));
            j++;
        }
        return calls.Count == 0 ? null : calls;
    }

    internal static List<ToolDefinition>? ParseTools(JsonElement root)
    {
        if (Json.Array(root, "tools") is not JsonElement arr)
            return null;
        var tools = new List<ToolDefinition>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        int i = 0;
        foreach (var t in arr.EnumerateArray())
        {
            string p = $"tools[{i}]";
            if (t.ValueKind != JsonValueKind.Object)
                throw ApiException.WrongType(p, "an object", t.ValueKind);
            string type = Json.String(t, "type", p + ".type") ?? "function";
            if (type != "function")
                throw ApiException.BadRequest($"'{p}.type' must be 'function' (got '{type}').", p + ".type", "invalid_tool_schema");
            var fn = Json.Object(t, "function", p + ".function") ?? throw ApiException.Missing(p + ".function");
            ValidateFunction(fn, p + ".function", names);
            try
            {
                tools.Add(ToolDefinition.FromJson(t));
            }
            catch (ArgumentException e)
            {
                throw new ApiException(400, $"'{p}' is not a valid tool: {e.Message}", param: p, code: "invalid_tool_schema");
            }
            i++;
        }
        return tools.Count == 0 ? null : tools;
    }

    /// <summary>Checks a function tool's name (pattern, unique in <paramref name="names"/>) and parameter schema;
    /// shared by chat completions (<c>tools[i].function</c>) and Responses (<c>tools[i]</c>, flat).</summary>
    internal static string ValidateFunction(JsonElement fn, string p, HashSet<string> names)
    {
        string name = Json.String(fn, "name", p + ".name") ?? throw ApiException.Missing(p + ".name");
        if (!ToolNamePattern().IsMatch(name))
            throw ApiException.BadRequest($"'{p}.name' must be 1-64 letters, digits, '_', '-' or '.' (got '{name}').", p + ".name", "invalid_tool_schema");
        if (!names.Add(name))
            throw ApiException.BadRequest($"Two tools are named '{name}'.", p + ".name", "invalid_tool_schema");
        Json.String(fn, "description", p + ".description");
        if (Json.TryGet(fn, "parameters", out var parameters))
        {
            string pp = p + ".parameters";
            if (parameters.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, $"'{pp}' must be a JSON Schema object, not {ApiException.Describe(parameters.ValueKind)}.", param: pp, code: "invalid_tool_schema");
            if (Json.TryGet(parameters, "type", out var st) && !(st.ValueKind == JsonValueKind.String && st.GetString() == "object"))
                throw new ApiException(400, $"'{pp}.type' must be \"object\": tool arguments are named.", param: pp, code: "invalid_tool_schema");
            if (Json.TryGet(parameters, "properties", out var props) && props.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, $"'{pp}.properties' must be an object.", param: pp, code: "invalid_tool_schema");
            if (Json.TryGet(parameters, "required", out var req) && req.ValueKind != JsonValueKind.Array)
                throw new ApiException(400, $"'{pp}.required' must be an array of property names.", param: pp, code: "invalid_tool_schema");
        }
        return name;
    }

    private static ToolChoice ParseToolChoice(JsonElement root, List<ToolDefinition>? tools)
    {
        if (!Json.TryGet(root, "tool_choice", out var tc))
            return ToolChoice.Auto;
        ToolChoice choice;
        if (tc.ValueKind == JsonValueKind.String)
        {
            choice = tc.GetString() switch
            {
                "auto" => ToolChoice.Auto,
                "none" => ToolChoice.None,
                "required" => ToolChoice.Required,
                var other => throw ApiException.BadRequest($"'tool_choice' must be none, auto, required or a function object (got '{other}').", "tool_choice"),
            };
        }
        else if (tc.ValueKind == JsonValueKind.Object)
        {
            var fn = Json.Object(tc, "function", "tool_choice.function") ?? throw ApiException.Missing("tool_choice.function");
            string name = Json.String(fn, "name", "tool_choice.function.name") ?? throw ApiException.Missing("tool_choice.function.name");
            if (tools is null || !tools.Any(t => t.Name == name))
                throw ApiException.BadRequest($"'tool_choice' names the function '{name}', which is not among 'tools'.", "tool_choice");
            choice = ToolChoice.Function(name);
        }
        else
        {
            throw ApiException.WrongType("tool_choice", "a string or an object", tc.ValueKind);
        }
        if (choice.Mode == ToolChoiceMode.Required && tools is null)
            throw ApiException.BadRequest("'tool_choice' is 'required' but no 'tools' were given.", "tool_choice");
        return choice;
    }

    private static ResponseFormat? ParseResponseFormat(JsonElement root)
    {
        if (Json.Object(root, "response_format") is not JsonElement rf)
            return null;
        string type = Json.String(rf, "type", "response_format.type") ?? throw ApiException.Missing("response_format.type");
        switch (type)
        {
            case "text":
                return ResponseFormat.Text;
            case "json_object":
                // llama-server extension: {"type": "json_object", "schema": {...}}.
                if (Json.TryGet(rf, "schema", out var inline))
                    return ResponseFormat.JsonSchema(SchemaText(inline, "response_format.schema"));
                return ResponseFormat.JsonObject;
            case "json_schema":
            {
                var js = Json.Object(rf, "json_schema", "response_format.json_schema") ?? throw ApiException.Missing("response_format.json_schema");
                string? name = Json.String(js, "name", "response_format.json_schema.name");
                if (!Json.TryGet(js, "schema", out var schema))
                    throw ApiException.Missing("response_format.json_schema.schema");
                return ResponseFormat.JsonSchema(SchemaText(schema, "response_format.json_schema.schema"), name);
            }
            default:
                throw ApiException.BadRequest($"'response_format.type' must be text, json_object or json_schema (got '{type}').", "response_format.type");
        }
    }

    internal static string SchemaText(JsonElement schema, string param)
    {
        // true/false are valid JSON Schemas but say nothing useful about an answer; an object is required.
        if (schema.ValueKind != JsonValueKind.Object)
            throw new ApiException(400, $"'{param}' must be a JSON Schema object, not {ApiException.Describe(schema.ValueKind)}.", param: param, code: "invalid_schema");
        return schema.GetRawText();
    }
}
