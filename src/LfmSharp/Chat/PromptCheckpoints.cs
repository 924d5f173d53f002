using System.Text.Json;
using LfmSharp.Tokenizers;

namespace LfmSharp.Chat;

/// <summary>
/// Where in a prompt the state is worth copying for later prompts (see <see cref="Generation.PrefixCache"/>): the
/// places other prompts share with this one. Those are the end of the system block, the end of each message, every
/// <c>interval</c> tokens inside a long message (counted from the message's start, so two prompts that share the
/// start of a long message share those positions), and the last-but-one token (an identical prompt then prefills
/// one token, which it must do to get logits).
/// </summary>
internal static class PromptCheckpoints
{
    /// <summary>Message ends looked for at the tail of a long conversation (besides the first message's end): each
    /// costs a render of that prefix, and a tokenization when <see cref="PrefixTokenMemo"/> has not seen it (a new
    /// message), on the thread that starts the generation.</summary>
    internal const int MaxTailMessages = 16;

    /// <summary>Most interval checkpoints inside one message. Each checkpoint copies the whole KV cache up to it, so
    /// a very long message doubles its spacing until it has at most this many (doubling keeps the coarser positions a
    /// subset of the finer ones, so two prompts that share a long message still share checkpoints).</summary>
    internal const int MaxPerMessage = 8;

    /// <summary>
    /// Token positions in <paramref name="prompt"/> where a message ends (ascending, each &lt; prompt length). A
    /// boundary counts only when rendering the conversation up to that message and tokenizing it gives exactly the
    /// first tokens of <paramref name="prompt"/>; a template that renders a prefix differently (it drops past
    /// thinking, or refuses a conversation that does not end with a user message) just yields fewer boundaries.
    /// The prefixes' tokens come from <paramref name="memo"/> (default: the tokenizer's shared one), so a conversation's
    /// next turn tokenizes only the prefixes that end in its new messages.
    /// </summary>
    public static int[] MessageBoundaries(ChatTemplate template, BpeTokenizer tokenizer, IReadOnlyList<LfmChatMessage> messages,
        IReadOnlyList<ToolDefinition>? tools, IReadOnlyDictionary<string, JsonElement>? kwargs, string promptText, int[] prompt,
        PrefixTokenMemo? memo = null)
    {
        memo ??= PrefixTokenMemo.For(tokenizer);
        var ends = new List<int>();
        // The system block alone, when the tools make one without a system message.
        if (tools is { Count: > 0 } && messages.Count > 0 && messages[0].Role != LfmChatRole.System)
            AddIfPrefix(ends, template, tokenizer, memo, [], tools, kwargs, promptText, prompt);
        int firstTail = Math.Max(1, messages.Count - MaxTailMessages);
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0 || i >= firstTail)
                AddIfPrefix(ends, template, tokenizer, memo, Take(messages, i + 1), tools, kwargs, promptText, prompt);
        }
        ends.Sort();
        return [.. ends.Distinct()];
    }

    /// <summary>Most tokens of a generation prompt (<c>&lt;|im_start|&gt;assistant\n</c> and the like) between the last
    /// message end and the prompt end for which the last-but-one token's checkpoint stands in for that end.</summary>
    internal const int MaxGenerationPromptTokens = 8;

    /// <summary>
    /// The message ends worth a copy of their own. The last one is left out when only the generation prompt follows it
    /// and the template re-renders that prompt at the start of the answer (it does not open thinking there): the
    /// checkpoint at the last-but-one token then serves every later prompt the message end would (the next turn, the
    /// same conversation again), and a second copy of nearly the same prefix would only take memory.
    /// </summary>
    public static int[] WithoutCoveredLastEnd(int[] ends, int promptLength, bool generationPromptOpensThinking)
    {
        ArgumentNullException.ThrowIfNull(ends);
        if (generationPromptOpensThinking || ends.Length == 0 || promptLength - 1 - ends[^1] > MaxGenerationPromptTokens)
            return ends;
        return ends[..^1];
    }

    /// <summary>Fewest tokens between the restored prefix and a checkpoint (other than the last-but-one token): the
    /// restored prefix is cached itself, so a checkpoint a few tokens past it would save a later prompt only those few
    /// tokens of prefill, for a copy of the whole state (the end of the answer a conversation's next turn restores is
    /// two tokens before that message's end).</summary>
    internal const int MinTokensPastStart = 8;

    /// <summary>
    /// The checkpoints of one prefill (ascending, all in (<paramref name="start"/>, prompt length)): the
    /// <paramref name="boundaries"/>, every <paramref name="interval"/> tokens after each boundary (and after 0) up to the
    /// next (a power-of-two multiple of it in a message longer than <see cref="MaxPerMessage"/> intervals), and prompt
    /// length − 1; none fewer than <see cref="MinTokensPastStart"/> tokens past a restored prefix but the last.
    /// </summary>
    public static int[] Positions(IReadOnlyList<int> boundaries, int promptLength, int interval, int start)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, 1);
        var points = new SortedSet<int>();
        int segmentStart = 0;
        for (int b = 0; b <= boundaries.Count; b++)
        {
            int segmentEnd = b < boundaries.Count ? boundaries[b] : promptLength - 1;
            long step = interval;
            while ((segmentEnd - segmentStart - 1) / step > MaxPerMessage)
                step *= 2;
            for (long p = segmentStart + step; p < segmentEnd; p += step)
                points.Add((int)p);
            points.Add(segmentEnd);
            segmentStart = Math.Max(segmentStart, segmentEnd);
        }
        points.Add(promptLength - 1);
        var result = new List<int>(points.Count);
        foreach (int p in points)
        {
            if (p > start && p < promptLength && (p == promptLength - 1 || start == 0 || p - start >= MinTokensPastStart))
                result.Add(p);
        }
        return [.. result];
    }

    private static void AddIfPrefix(List<int> ends, ChatTemplate template, BpeTokenizer tokenizer, PrefixTokenMemo memo, IReadOnlyList<LfmChatMessage> messages,
        IReadOnlyList<ToolDefinition>? tools, IReadOnlyDictionary<string, JsonElement>? kwargs, string promptText, int[] prompt)
    {
        string text;
        try
        {
            text = template.Render(messages, tools, addGenerationPrompt: false, kwargs);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A template may refuse a partial conversation (raise_exception); that prefix is just not a checkpoint.
            return;
        }
        // The text check is cheap and rejects most misfits before the tokenizer runs.
        if (text.Length == 0 || text.Length >= promptText.Length || !promptText.StartsWith(text, StringComparison.Ordinal))
            return;
        int[] tokens = memo.EncodePrompt(tokenizer, text);
        if (tokens.Length > 0 && tokens.Length < prompt.Length && prompt.AsSpan(0, tokens.Length).SequenceEqual(tokens))
            ends.Add(tokens.Length);
    }

    private static LfmChatMessage[] Take(IReadOnlyList<LfmChatMessage> messages, int count)
    {
        var list = new LfmChatMessage[count];
        for (int i = 0; i < count; i++)
            list[i] = messages[i];
        return list;
    }
}
