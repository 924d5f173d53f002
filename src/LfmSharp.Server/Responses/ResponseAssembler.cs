using System.Text;
using System.Text.Json;
using LfmSharp.Generation;

namespace LfmSharp.Server.Responses;

/// <summary>One output item of a response: reasoning, an assistant message, or a function call.</summary>
internal sealed class OutputItem(string type, string id)
{
    public string Type { get; } = type;

    public string Id { get; } = id;

    /// <summary>The reasoning or message text so far.</summary>
    public StringBuilder Text { get; } = new();

    public ToolCall? Call { get; init; }

    public bool Done { get; set; }

    /// <summary>Writes the item as it is now.</summary>
    public void WriteTo(Utf8JsonWriter w) => WriteTo(w, Done);

    /// <summary>Writes the item as the Responses API shows it: complete, or (<paramref name="done"/> false) as it
    /// opens, in_progress and empty.</summary>
    public void WriteTo(Utf8JsonWriter w, bool done)
    {
        w.WriteStartObject();
        w.WriteString("type", Type);
        w.WriteString("id", Id);
        switch (Type)
        {
            case "reasoning":
                w.WriteStartArray("summary");
                w.WriteEndArray();
                w.WriteStartArray("content");
                if (done)
                    WriteReasoningPart(w, Text.ToString());
                w.WriteEndArray();
                break;
            case "message":
                w.WriteString("status", done ? "completed" : "in_progress");
                w.WriteString("role", "assistant");
                w.WriteStartArray("content");
                if (done)
                    WriteTextPart(w, Text.ToString());
                w.WriteEndArray();
                break;
            default:
                w.WriteString("status", done ? "completed" : "in_progress");
                w.WriteString("call_id", Call!.Id);
                w.WriteString("name", Call.Name);
                w.WriteString("arguments", done ? Call.ArgumentsJson : "");
                break;
        }
        w.WriteEndObject();
    }

    public static void WriteTextPart(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", "output_text");
        w.WriteString("text", text);
        w.WriteStartArray("annotations");
        w.WriteEndArray();
        w.WriteStartArray("logprobs");
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void WriteReasoningPart(Utf8JsonWriter w, string text)
    {
        w.WriteStartObject();
        w.WriteString("type", "reasoning_text");
        w.WriteString("text", text);
        w.WriteEndObject();
    }
}

/// <summary>A typed streaming event: its <c>type</c> and the fields after <c>type</c> and <c>sequence_number</c>.</summary>
internal readonly record struct ResponseEvent(string Type, Action<Utf8JsonWriter> Fields);

/// <summary>
/// Turns the one internal event stream (reasoning, content, tool calls, done) into Responses output items, and, when
/// streaming, into the typed events that open, fill and close each item in order:
/// <c>output_item.added</c> → <c>content_part.added</c> → <c>*.delta</c>… → <c>*.done</c> → <c>content_part.done</c> →
/// <c>output_item.done</c>. Reasoning and text alternate into new items as the model switches between them.
/// </summary>
internal sealed class ResponseAssembler
{
    private OutputItem? _open;

    public List<OutputItem> Items { get; } = new();

    public Done? Result { get; private set; }

    /// <summary>Why the generation failed (NaN/Inf logits), or null; the response's status is then "failed".</summary>
    public string? Fault { get; private set; }

    /// <summary>Applies one event; the streaming events it causes go to <paramref name="emit"/> (null: none wanted).</summary>
    public void Apply(GenerationEvent ev, List<ResponseEvent>? emit)
    {
        switch (ev)
        {
            case ReasoningDelta r when r.Text.Length > 0:
                AppendText("reasoning", r.Text, emit);
                break;
            case ContentDelta c when c.Text.Length > 0:
                AppendText("message", c.Text, emit);
                break;
            case ParseErrorEvent e when e.RawText.Length > 0:
                // What the model wrote but could not be parsed stays visible, as text.
                AppendText("message", e.RawText, emit);
                break;
            case ToolCallEvent call:
            {
                Close(emit);
                var item = new OutputItem("function_call", "fc_" + ChatCompletionsEndpoint.RandomId(24))
                {
                    Call = call.Call with { Id = ChatCompletionsEndpoint.NewCallId() },
                };
                int index = Items.Count;
                Items.Add(item);
                if (emit is not null)
                {
                    emit.Add(new ResponseEvent("response.output_item.added", w => ItemFields(w, index, item, done: false)));
                    string args = item.Call.ArgumentsJson;
                    // The session parses whole calls, so the arguments come as one delta.
                    emit.Add(new ResponseEvent("response.function_call_arguments.delta", w => { Ids(w, index, item); w.WriteString("delta", args); }));
                    emit.Add(new ResponseEvent("response.function_call_arguments.done", w => { Ids(w, index, item); w.WriteString("name", item.Call.Name); w.WriteString("arguments", args); }));
                }
                item.Done = true;
                emit?.Add(new ResponseEvent("response.output_item.done", w => ItemFields(w, index, item, done: true)));
                break;
            }
            case Done d:
                Close(emit);
                Result = d;
                break;
            case GenerationStream.GenerationFault f:
                Close(emit);
                Fault = f.Message;
                Result = new Done(FinishReason.Stop, new GenerationUsage());
                break;
        }
    }

    /// <summary>The text of every message item (what SDKs call <c>output_text</c>).</summary>
    public string OutputText()
    {
        var sb = new StringBuilder();
        foreach (var item in Items)
        {
            if (item.Type == "message")
                sb.Append(item.Text);
        }
        return sb.ToString();
    }

    private void AppendText(string type, string text, List<ResponseEvent>? emit)
    {
        if (_open is null || _open.Type != type)
        {
            Close(emit);
            var item = new OutputItem(type, (type == "reasoning" ? "rs_" : "msg_") + ChatCompletionsEndpoint.RandomId(24));
            int at = Items.Count;
            Items.Add(item);
            _open = item;
            if (emit is not null)
            {
                emit.Add(new ResponseEvent("response.output_item.added", w => ItemFields(w, at, item, done: false)));
                emit.Add(new ResponseEvent("response.content_part.added", w =>
                {
                    Ids(w, at, item);
                    w.WriteNumber("content_index", 0);
                    w.WritePropertyName("part");
                    if (type == "reasoning")
                        OutputItem.WriteReasoningPart(w, "");
                    else
                        OutputItem.WriteTextPart(w, "");
                }));
            }
        }
        var open = _open;
        open.Text.Append(text);
        if (emit is not null)
        {
            int index = Items.Count - 1;
            string name = type == "reasoning" ? "response.reasoning_text.delta" : "response.output_text.delta";
            emit.Add(new ResponseEvent(name, w =>
            {
                Ids(w, index, open);
                w.WriteNumber("content_index", 0);
                w.WriteString("delta", text);
                if (type == "message")
                {
                    w.WriteStartArray("logprobs");
                    w.WriteEndArray();
                }
            }));
        }
    }

    /// <summary>Finishes the open reasoning or message item.</summary>
    private void Close(List<ResponseEvent>? emit)
    {
        var item = _open;
        if (item is null)
            return;
        _open = null;
        item.Done = true;
        if (emit is null)
            return;
        int index = Items.Count - 1;
        string text = item.Text.ToString();
        bool reasoning = item.Type == "reasoning";
        emit.Add(new ResponseEvent(reasoning ? "response.reasoning_text.done" : "response.output_text.done", w =>
        {
            Ids(w, index, item);
            w.WriteNumber("content_index", 0);
            w.WriteString("text", text);
            if (!reasoning)
            {
                w.WriteStartArray("logprobs");
                w.WriteEndArray();
            }
        }));
        emit.Add(new ResponseEvent("response.content_part.done", w =>
        {
            Ids(w, index, item);
            w.WriteNumber("content_index", 0);
            w.WritePropertyName("part");
            if (reasoning)
                OutputItem.WriteReasoningPart(w, text);
            else
                OutputItem.WriteTextPart(w, text);
        }));
        emit.Add(new ResponseEvent("response.output_item.done", w => ItemFields(w, index, item, done: true)));
    }

    private static void Ids(Utf8JsonWriter w, int index, OutputItem item)
    {
        w.WriteString("item_id", item.Id);
        w.WriteNumber("output_index", index);
    }

    private static void ItemFields(Utf8JsonWriter w, int index, OutputItem item, bool done)
    {
        w.WriteNumber("output_index", index);
        w.WritePropertyName("item");
        item.WriteTo(w, done);
    }
}
