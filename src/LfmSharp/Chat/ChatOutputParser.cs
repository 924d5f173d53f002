using System.Text;
using LfmSharp.Generation;

namespace LfmSharp.Chat;

/// <summary>Options of a <see cref="ChatOutputParser"/>.</summary>
internal sealed record ChatOutputParserOptions
{
    /// <summary>The prompt already opened <c>&lt;think&gt;</c> (see <see cref="ChatTemplate.GenerationPromptOpensThinking"/>),
    /// so the output starts inside the reasoning.</summary>
    public bool StartInReasoning { get; init; }

    /// <summary>The tools the model may call. A call to any other name is a <see cref="ParseErrorEvent"/>. Null
    /// accepts any name. Known tools also let positional arguments be mapped onto their schema's parameters.</summary>
    public IReadOnlyList<ToolDefinition>? Tools { get; init; }

    /// <summary>Drop whitespace at the start and end of the reasoning and of the answer (the model writes
    /// <c>&lt;think&gt;\n…\n&lt;/think&gt;\n\n</c>). Whitespace inside is kept, whatever the chunking.</summary>
    public bool TrimWhitespace { get; init; } = true;

    /// <summary>Makes the id of the n-th call of this parser (n from 0). Default <c>call_{n}</c>.</summary>
    public Func<int, string>? ToolCallIdFactory { get; init; }

    /// <summary>When <see cref="Tools"/> are given, an answer that starts with <c>[known_tool(…)]</c> without the
    /// tool-call markers (a known LFM2.5 slip) is read as tool calls; text after the closing bracket stays content.
    /// Such an answer is held back until the output ends (or a marker follows). Text that does not parse stays content.</summary>
    public bool ParseUnmarkedToolCalls { get; init; } = true;

    /// <summary>Deepest list/dict nesting accepted inside a tool call.</summary>
    public int MaxNestingDepth { get; init; } = 64;
}

/// <summary>Where the parser is in the model's output.</summary>
internal enum ChatOutputSection
{
    Content,
    Reasoning,
    ToolCall,
}

/// <summary>
/// Splits streamed model output into reasoning, answer and tool calls. Feed it the generated text in any chunking
/// (special tokens must appear as their text, e.g. <c>&lt;think&gt;</c>); it returns
/// <see cref="ReasoningDelta"/> for text inside <c>&lt;think&gt;…&lt;/think&gt;</c>, <see cref="ContentDelta"/> for
/// the answer, a <see cref="ToolCallEvent"/> per call between <c>&lt;|tool_call_start|&gt;</c> and
/// <c>&lt;|tool_call_end|&gt;</c>, and a <see cref="ParseErrorEvent"/> (with the raw text, markers included) for a
/// call it cannot accept: malformed, unknown tool, or unterminated at the end. A marker split across chunks is held
/// back, never emitted in part, so the merged events do not depend on the chunking.
/// <para>Rules for odd output: a tool call inside the reasoning is still a tool call (then the reasoning goes on);
/// a stray <c>&lt;/think&gt;</c> in the answer and a repeated <c>&lt;think&gt;</c> in the reasoning are dropped; a stray <c>&lt;|tool_call_end|&gt;</c> is a parse error; a
/// new <c>&lt;|tool_call_start|&gt;</c> inside an open call ends the open one as unterminated. The parser never
/// throws on model output. Not thread-safe; one instance per generation (or <see cref="Reset"/>).</para>
/// </summary>
internal sealed class ChatOutputParser
{
    public const string ThinkStart = "<think>";
    public const string ThinkEnd = "</think>";
    public const string ToolCallStart = "<|tool_call_start|>";
    public const string ToolCallEnd = "<|tool_call_end|>";

    private static readonly string[] s_contentMarkers = [ThinkStart, ThinkEnd, ToolCallStart, ToolCallEnd];
    private static readonly string[] s_reasoningMarkers = [ThinkStart, ThinkEnd, ToolCallStart, ToolCallEnd];
    private static readonly string[] s_toolCallMarkers = [ToolCallEnd, ToolCallStart];

    private readonly ChatOutputParserOptions _options;
    private readonly StringBuilder _toolRaw = new();
    private readonly StringBuilder _heldContent = new();
    private readonly StringBuilder _heldReasoning = new();
    private string _pending = "";
    private ChatOutputSection _returnSection;
    private bool _contentStarted;
    private bool _reasoningStarted;
    private bool _finished;
    private int _nextCallIndex;

    // Unmarked calls: the start of the answer is held while it could still be "[known_tool(".
    private enum Unmarked { Undecided, Holding, Off }

    private Unmarked _unmarked;
    private readonly StringBuilder _unmarkedText = new();

    public ChatOutputParser(ChatOutputParserOptions? options = null)
    {
        _options = options ?? new ChatOutputParserOptions();
        if (_options.MaxNestingDepth < 1)
            throw new ArgumentOutOfRangeException(nameof(options), _options.MaxNestingDepth, "MaxNestingDepth must be at least 1.");
        Reset();
    }

    public ChatOutputParserOptions Options => _options;

    /// <summary>Where the text pushed so far left the parser (held-back marker prefixes not counted).</summary>
    public ChatOutputSection Section { get; private set; }

    /// <summary>True while inside <c>&lt;think&gt;…&lt;/think&gt;</c>: count these tokens as reasoning.</summary>
    public bool InReasoning => Section == ChatOutputSection.Reasoning;

    /// <summary>Tool calls emitted so far.</summary>
    public int ToolCallCount { get; private set; }

    /// <summary>Parse errors emitted so far.</summary>
    public int ParseErrorCount { get; private set; }

    /// <summary>Starts over (same options); call ids start again at 0.</summary>
    public void Reset()
    {
        _pending = "";
        _toolRaw.Clear();
        _heldContent.Clear();
        _heldReasoning.Clear();
        Section = _options.StartInReasoning ? ChatOutputSection.Reasoning : ChatOutputSection.Content;
        _returnSection = ChatOutputSection.Content;
        _contentStarted = false;
        _reasoningStarted = false;
        _finished = false;
        _nextCallIndex = 0;
        _unmarked = _options.ParseUnmarkedToolCalls && _options.Tools is { Count: > 0 } ? Unmarked.Undecided : Unmarked.Off;
        _unmarkedText.Clear();
        ToolCallCount = 0;
        ParseErrorCount = 0;
    }

    /// <summary>Feeds generated text; returns the events it completes (often none or one).</summary>
    public IReadOnlyList<GenerationEvent> Push(string text)
    {
        var events = new List<GenerationEvent>(2);
        Push(text, events);
        return events;
    }

    /// <summary>Feeds generated text, appending the events it completes to <paramref name="events"/>.</summary>
    public void Push(string text, List<GenerationEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (_finished)
            throw new InvalidOperationException("The parser has finished; call Reset() to parse another output.");
        if (string.IsNullOrEmpty(text))
            return;
        Process(_pending.Length == 0 ? text : _pending + text, final: false, events);
    }

    /// <summary>Ends the output: releases held text, reports an unterminated tool call.</summary>
    public IReadOnlyList<GenerationEvent> Finish()
    {
        var events = new List<GenerationEvent>(1);
        Finish(events);
        return events;
    }

    /// <inheritdoc cref="Finish()"/>
    public void Finish(List<GenerationEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (_finished)
            return;
        if (_pending.Length > 0)
            Process(_pending, final: true, events);
        ResolveUnmarked(events);
        if (Section == ChatOutputSection.ToolCall)
        {
            Error(events, $"The tool call was not terminated with {ToolCallEnd} before the output ended",
                ToolCallStart + _toolRaw);
            _toolRaw.Clear();
            Section = _returnSection;
        }
        _heldContent.Clear();
        _heldReasoning.Clear();
        _finished = true;
    }

    /// <summary>Parses a whole output at once (same events as streaming it).</summary>
    public static IReadOnlyList<GenerationEvent> ParseAll(string text, ChatOutputParserOptions? options = null)
    {
        var parser = new ChatOutputParser(options);
        var events = new List<GenerationEvent>();
        parser.Push(text, events);
        parser.Finish(events);
        return events;
    }

    private void Process(string buf, bool final, List<GenerationEvent> events)
    {
        int pos = 0;
        while (pos < buf.Length)
        {
            var markers = Section switch
            {
                ChatOutputSection.Content => s_contentMarkers,
                ChatOutputSection.Reasoning => s_reasoningMarkers,
                _ => s_toolCallMarkers,
            };
            int markerAt = -1, holdAt = -1;
            string? marker = null;
            // Every marker starts with '<': look only there.
            for (int i = buf.IndexOf('<', pos); i >= 0; i = buf.IndexOf('<', i + 1))
            {
                marker = MatchAt(buf, i, markers, out bool partial);
                if (marker is not null)
                {
                    markerAt = i;
                    break;
                }
                if (partial && !final)
                {
                    holdAt = i;
                    break;
                }
            }
            int end = markerAt >= 0 ? markerAt : holdAt >= 0 ? holdAt : buf.Length;
            HandleText(buf.AsSpan(pos, end - pos), events);
            if (markerAt < 0)
            {
                _pending = holdAt >= 0 ? buf[holdAt..] : "";
                return;
            }
            HandleMarker(marker!, events);
            pos = markerAt + marker!.Length;
        }
        _pending = "";
    }

    /// <summary>The marker starting at <paramref name="i"/>, or null; <paramref name="partial"/> when the text ends
    /// inside what could still become a marker.</summary>
    private static string? MatchAt(string buf, int i, string[] markers, out bool partial)
    {
        partial = false;
        var rest = buf.AsSpan(i);
        foreach (var m in markers)
        {
            if (rest.StartsWith(m, StringComparison.Ordinal))
                return m;
            if (rest.Length < m.Length && m.AsSpan().StartsWith(rest, StringComparison.Ordinal))
                partial = true;
        }
        return null;
    }

    private void HandleText(ReadOnlySpan<char> text, List<GenerationEvent> events)
    {
        if (text.IsEmpty)
            return;
        switch (Section)
        {
            case ChatOutputSection.ToolCall:
                _toolRaw.Append(text);
                break;
            case ChatOutputSection.Reasoning:
                Emit(text, reasoning: true, events);
                break;
            default:
                EmitContent(text, events);
                break;
        }
    }

    private void EmitContent(ReadOnlySpan<char> text, List<GenerationEvent> events)
    {
        if (_unmarked == Unmarked.Off)
        {
            Emit(text, reasoning: false, events);
            return;
        }
        if (_unmarked == Unmarked.Undecided && _unmarkedText.Length == 0)
        {
            // Leading whitespace decides nothing; pass it on so the held text stays a few characters long.
            int visible = 0;
            while (visible < text.Length && char.IsWhiteSpace(text[visible]))
                visible++;
            if (visible > 0)
                Emit(text[..visible], reasoning: false, events);
            text = text[visible..];
            if (text.IsEmpty)
                return;
        }
        _unmarkedText.Append(text);
        if (_unmarked == Unmarked.Undecided)
        {
            _unmarked = Classify();
            if (_unmarked == Unmarked.Off)
            {
                string held = _unmarkedText.ToString();
                _unmarkedText.Clear();
                Emit(held, reasoning: false, events);
            }
        }
    }

    /// <summary>Holding once the answer starts with "[known_tool("; Undecided while it is still a prefix of that
    /// (or only whitespace); Off otherwise. The text looked at stays short: it is at most a tool name long.</summary>
    private Unmarked Classify()
    {
        if (_unmarkedText.Length > 512)
            return Unmarked.Off; // "[" and a flood of whitespace: not a call, and keep Classify cheap
        string s = _unmarkedText.ToString();
        int i = 0;
        while (i < s.Length && char.IsWhiteSpace(s[i]))
            i++;
        if (i == s.Length)
            return Unmarked.Undecided;
        if (s[i] != '[')
            return Unmarked.Off;
        i++;
        while (i < s.Length && char.IsWhiteSpace(s[i]))
            i++;
        var rest = s.AsSpan(i);
        bool prefix = false;
        foreach (var tool in _options.Tools!)
        {
            string target = tool.Name + "(";
            if (rest.StartsWith(target, StringComparison.Ordinal))
                return Unmarked.Holding;
            if (target.AsSpan().StartsWith(rest, StringComparison.Ordinal))
                prefix = true;
        }
        return prefix ? Unmarked.Undecided : Unmarked.Off;
    }

    /// <summary>Decides held answer text: calls (plus the text after them) when it parses, else plain content.</summary>
    private void ResolveUnmarked(List<GenerationEvent> events)
    {
        if (_unmarked == Unmarked.Off || (_unmarked == Unmarked.Undecided && _unmarkedText.Length == 0))
            return;
        bool holding = _unmarked == Unmarked.Holding;
        _unmarked = Unmarked.Off;
        string s = _unmarkedText.ToString();
        _unmarkedText.Clear();
        if (holding && ToolCallParser.TryParseLeadingList(s, _options.Tools!, _options.MaxNestingDepth, out var calls, out int end))
        {
            AddCalls(calls, events);
            s = s[end..];
        }
        if (s.Length > 0)
            Emit(s, reasoning: false, events);
    }

    private void HandleMarker(string marker, List<GenerationEvent> events)
    {
        // Held answer text ends where any marker starts.
        ResolveUnmarked(events);
        switch (Section, marker)
        {
            case (ChatOutputSection.Content, ThinkStart):
                Section = ChatOutputSection.Reasoning;
                break;
            case (ChatOutputSection.Reasoning, ThinkEnd):
                // Whitespace before </think> belongs to no one.
                _heldReasoning.Clear();
                Section = ChatOutputSection.Content;
                break;
            case (ChatOutputSection.Content, ThinkEnd):
                break; // stray close: nothing to close
            case (ChatOutputSection.Reasoning, ThinkStart):
                break; // already thinking (the prompt opened it and the model wrote it again)
            case (ChatOutputSection.ToolCall, ToolCallEnd):
                CompleteToolCall(events);
                Section = _returnSection;
                break;
            case (ChatOutputSection.ToolCall, ToolCallStart):
                Error(events, $"The tool call was not terminated with {ToolCallEnd} before another {ToolCallStart}",
                    ToolCallStart + _toolRaw);
                _toolRaw.Clear();
                break;
            case (_, ToolCallStart):
                _returnSection = Section;
                _toolRaw.Clear();
                Section = ChatOutputSection.ToolCall;
                break;
            case (_, ToolCallEnd):
                Error(events, $"{ToolCallEnd} without a preceding {ToolCallStart}", ToolCallEnd);
                break;
        }
    }

    private void CompleteToolCall(List<GenerationEvent> events)
    {
        string raw = _toolRaw.ToString();
        _toolRaw.Clear();
        string? error = ToolCallParser.TryParse(raw, _options.Tools, _options.MaxNestingDepth, out var calls);
        if (error is not null)
        {
            Error(events, "Invalid tool call: " + error, ToolCallStart + raw + ToolCallEnd);
            return;
        }
        AddCalls(calls, events);
    }

    private void AddCalls(List<ParsedToolCall> calls, List<GenerationEvent> events)
    {
        foreach (var c in calls)
        {
            int n = _nextCallIndex++;
            string id = _options.ToolCallIdFactory?.Invoke(n) ?? "call_" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
            events.Add(new ToolCallEvent(new ToolCall(id, c.Name, c.ArgumentsJson)));
            ToolCallCount++;
        }
    }

    private void Error(List<GenerationEvent> events, string message, string raw)
    {
        events.Add(new ParseErrorEvent(message, raw));
        ParseErrorCount++;
    }

    /// <summary>Emits reasoning or answer text. With trimming, leading whitespace is dropped until the first visible
    /// character, and trailing whitespace is held until more text of the same kind shows it was inside.</summary>
    private void Emit(ReadOnlySpan<char> text, bool reasoning, List<GenerationEvent> events)
    {
        if (!_options.TrimWhitespace)
        {
            events.Add(reasoning ? new ReasoningDelta(text.ToString()) : new ContentDelta(text.ToString()));
            return;
        }
        ref bool started = ref reasoning ? ref _reasoningStarted : ref _contentStarted;
        var held = reasoning ? _heldReasoning : _heldContent;
        if (!started)
        {
            text = text.TrimStart();
            if (text.IsEmpty)
                return;
            started = true;
        }
        int keep = text.Length;
        while (keep > 0 && char.IsWhiteSpace(text[keep - 1]))
            keep--;
        if (keep == 0)
        {
            held.Append(text);
            return;
        }
        string s;
        if (held.Length == 0)
            s = text[..keep].ToString();
        else
        {
            s = held.Append(text[..keep]).ToString();
            held.Clear();
        }
        held.Append(text[keep..]);
        events.Add(reasoning ? new ReasoningDelta(s) : new ContentDelta(s));
    }
}
