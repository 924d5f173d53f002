using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp;

/// <summary>How the model may use tools in one turn.</summary>
public enum ToolChoiceMode
{
    /// <summary>The model decides.</summary>
    Auto,
    /// <summary>No tool calls: the tool-call marker token is banned.</summary>
    None,
    /// <summary>The answer must be a call to one of the tools (constrained decoding).</summary>
    Required,
    /// <summary>The answer must be a call to <see cref="ToolChoice.FunctionName"/>.</summary>
    Function,
}

/// <summary>The <c>tool_choice</c> of a request: a mode and, for <see cref="ToolChoiceMode.Function"/>, the function.</summary>
/// <param name="Mode">Whether tools may, must or must not be called.</param>
/// <param name="FunctionName">With <see cref="ToolChoiceMode.Function"/>: the function to call.</param>
public sealed record ToolChoice(ToolChoiceMode Mode, string? FunctionName = null)
{
    /// <summary>The model decides (the default).</summary>
    public static ToolChoice Auto { get; } = new(ToolChoiceMode.Auto);
    /// <summary>No tool calls.</summary>
    public static ToolChoice None { get; } = new(ToolChoiceMode.None);
    /// <summary>At least one tool call.</summary>
    public static ToolChoice Required { get; } = new(ToolChoiceMode.Required);
    /// <summary>A call of the function <paramref name="name"/>.</summary>
    public static ToolChoice Function(string name) => new(ToolChoiceMode.Function, name ?? throw new ArgumentNullException(nameof(name)));
}

/// <summary>The shape the answer (after the reasoning) must have.</summary>
public abstract record ResponseFormat
{
    /// <summary>Free text (the default).</summary>
    public static ResponseFormat Text { get; } = new TextFormat();
    /// <summary>Any JSON object.</summary>
    public static ResponseFormat JsonObject { get; } = new JsonObjectFormat();
    /// <summary>JSON matching the schema <paramref name="schemaJson"/>, optionally named.</summary>
    public static ResponseFormat JsonSchema(string schemaJson, string? name = null) => new JsonSchemaFormat(schemaJson ?? throw new ArgumentNullException(nameof(schemaJson)), name);

    /// <summary>See <see cref="Text"/>.</summary>
    public sealed record TextFormat : ResponseFormat;
    /// <summary>See <see cref="JsonObject"/>.</summary>
    public sealed record JsonObjectFormat : ResponseFormat;
    /// <summary>See <see cref="JsonSchema"/>.</summary>
    /// <param name="SchemaJson">The JSON schema, as JSON text.</param>
    /// <param name="Name">The schema's name, if any.</param>
    public sealed record JsonSchemaFormat(string SchemaJson, string? Name) : ResponseFormat;
}

/// <summary>Options of one chat turn.</summary>
public sealed record ChatRequestOptions
{
    /// <summary>Null: the model's defaults (<see cref="SamplingOptions.ForModel"/>).</summary>
    public SamplingOptions? Sampling { get; init; }

    /// <summary>Most tokens to generate, reasoning and answer together.</summary>
    public int MaxTokens { get; init; } = 2048;

    /// <summary>Stop strings: the answer ends before the first one, which is not returned.</summary>
    public IReadOnlyList<string>? Stop { get; init; }

    /// <summary>Tools the model may call.</summary>
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    /// <summary>Whether and which tools the model may call.</summary>
    public ToolChoice ToolChoice { get; init; } = ToolChoice.Auto;

    /// <summary>When false, a tool-call block may hold one call only.</summary>
    public bool ParallelToolCalls { get; init; } = true;

    /// <summary>Null or <see cref="ResponseFormat.Text"/>: free text. JSON formats constrain the answer after &lt;/think&gt;.</summary>
    public ResponseFormat? ResponseFormat { get; init; }

    /// <summary>Most reasoning tokens; when reached, &lt;/think&gt; is forced and the answer follows. Null: no limit; 0: close at once.</summary>
    public int? MaxThinkingTokens { get; init; }

    /// <summary>Optional text written into the reasoning just before a forced &lt;/think&gt;.</summary>
    public string? ThinkingBudgetNotice { get; init; }

    /// <summary>Repetition-loop detection; null uses the defaults. Set <see cref="LoopGuardEnabled"/> false to turn it off.</summary>
    public LoopGuardOptions? LoopGuard { get; init; }

    /// <summary>Whether the loop guard watches for repeated text (see <see cref="LoopGuard"/>).</summary>
    public bool LoopGuardEnabled { get; init; } = true;

    /// <summary>Keep the reasoning of earlier assistant turns in the prompt (the template drops it by default).</summary>
    public bool KeepPastThinking { get; init; }

    /// <summary>
    /// Extra variables for the chat template (transformers' and llama.cpp's <c>chat_template_kwargs</c>, e.g.
    /// <c>enable_thinking</c>). <see cref="KeepPastThinking"/> adds <c>keep_past_thinking: true</c> unless set here.
    /// </summary>
    public IReadOnlyDictionary<string, System.Text.Json.JsonElement>? ChatTemplateKwargs { get; init; }

    /// <summary>The template variables for a render: <see cref="ChatTemplateKwargs"/> plus <c>keep_past_thinking</c>.</summary>
    public IReadOnlyDictionary<string, System.Text.Json.JsonElement>? TemplateKwargs()
    {
        if (!KeepPastThinking || ChatTemplateKwargs?.ContainsKey("keep_past_thinking") == true)
            return ChatTemplateKwargs;
        var all = ChatTemplateKwargs is null
            ? new Dictionary<string, System.Text.Json.JsonElement>(StringComparer.Ordinal)
            : new Dictionary<string, System.Text.Json.JsonElement>(ChatTemplateKwargs, StringComparer.Ordinal);
        all["keep_past_thinking"] = s_true;
        return all;
    }

    private static readonly System.Text.Json.JsonElement s_true = System.Text.Json.JsonDocument.Parse("true").RootElement;

    /// <summary>When false, reasoning is generated but no <see cref="ReasoningDelta"/> is emitted.</summary>
    public bool IncludeReasoning { get; init; } = true;

    /// <summary>Null: none. 0..20: a <see cref="Generation.TokenLogprobs"/> event per generated token with that many
    /// alternatives (marked <see cref="Generation.TokenLogprobs.InReasoning"/> inside the thinking).</summary>
    public int? Logprobs { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid value.</summary>
    public void Validate()
    {
        if (MaxTokens < 1) throw new ArgumentOutOfRangeException(nameof(MaxTokens), MaxTokens, "max tokens must be at least 1");
        if (MaxThinkingTokens < 0) throw new ArgumentOutOfRangeException(nameof(MaxThinkingTokens), MaxThinkingTokens, "the thinking budget must be >= 0");
        Sampling?.Validate();
        if (Logprobs is < 0 or > Generation.TokenLogprobs.MaxTop) throw new ArgumentOutOfRangeException(nameof(Logprobs), Logprobs, "logprobs alternatives must be in 0..20");
        if (ToolChoice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function && (Tools is null || Tools.Count == 0))
            throw new ArgumentException($"tool choice '{ToolChoice.Mode}' needs at least one tool", nameof(ToolChoice));
        if (ToolChoice.Mode == ToolChoiceMode.Function && !Tools!.Any(t => t.Name == ToolChoice.FunctionName))
            throw new ArgumentException($"tool choice names function '{ToolChoice.FunctionName}', which is not among the tools", nameof(ToolChoice));
    }
}
