using LfmSharp.Chat;

namespace LfmSharp.Server.Responses;

/// <summary>
/// The responses the server kept (<c>store</c>, default true) so a later request can continue them with
/// <c>previous_response_id</c> or point at one of their items with <c>item_reference</c>. Bounded: past
/// <see cref="Capacity"/> responses, or past <see cref="MaxChars"/> characters of kept text, the oldest response (and
/// its items) is forgotten, and a request naming it gets a clear 400. Memory is the conversation text only (no model
/// state: the slot's prefix cache does the reuse).
/// </summary>
internal sealed class ResponseStore(int capacity, long maxChars = 32L * 1024 * 1024)
{
    private long _chars;
    private readonly object _lock = new();
    private readonly Dictionary<string, Entry> _responses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, LfmChatMessage?> _items = new(StringComparer.Ordinal);
    private readonly Queue<string> _order = new();

    public int Capacity { get; } = capacity;

    /// <summary>Most characters of conversation text kept over all responses (each keeps its whole history).</summary>
    public long MaxChars { get; } = maxChars;

    /// <summary>Keeps a response: the conversation it continues (without instructions) and its output items by id
    /// (null for items that add nothing to a prompt, like reasoning).</summary>
    public void Add(string id, IReadOnlyList<LfmChatMessage> conversation, IReadOnlyList<(string ItemId, LfmChatMessage? Message)> items)
    {
        long chars = Size(conversation);
        if (Capacity == 0 || chars > MaxChars)
            return;
        lock (_lock)
        {
            while (_order.Count >= Capacity || (_order.Count > 0 && _chars + chars > MaxChars))
            {
                string old = _order.Dequeue();
                if (_responses.Remove(old, out var gone))
                {
                    _chars -= gone.Chars;
                    foreach (string item in gone.ItemIds)
                        _items.Remove(item);
                }
            }
            var ids = new string[items.Count];
            for (int i = 0; i < items.Count; i++)
            {
                ids[i] = items[i].ItemId;
                _items[items[i].ItemId] = items[i].Message;
            }
            _responses[id] = new Entry(conversation, ids, chars);
            _chars += chars;
            _order.Enqueue(id);
        }
    }

    /// <summary>The conversation of a kept response (its input and its output as messages), or false.</summary>
    public bool TryGet(string id, out IReadOnlyList<LfmChatMessage> conversation)
    {
        lock (_lock)
        {
            if (_responses.TryGetValue(id, out var e))
            {
                conversation = e.Conversation;
                return true;
            }
        }
        conversation = [];
        return false;
    }

    /// <summary>An output item of a kept response as a message (null message: an item with nothing to render).</summary>
    public bool TryGetItem(string id, out LfmChatMessage? message)
    {
        lock (_lock)
            return _items.TryGetValue(id, out message);
    }

    private static long Size(IReadOnlyList<LfmChatMessage> conversation)
    {
        long chars = 0;
        foreach (var m in conversation)
        {
            chars += m.Content.Length + (m.Reasoning?.Length ?? 0);
            foreach (var call in m.ToolCalls ?? [])
                chars += call.Name.Length + call.ArgumentsJson.Length;
        }
        return chars;
    }

    private sealed record Entry(IReadOnlyList<LfmChatMessage> Conversation, string[] ItemIds, long Chars);
}
