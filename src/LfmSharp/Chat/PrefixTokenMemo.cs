using System.Runtime.CompilerServices;
using LfmSharp.Tokenizers;

namespace LfmSharp.Chat;

/// <summary>
/// The tokens of recently seen conversation prefixes, so that finding a prompt's message ends
/// (<see cref="PromptCheckpoints.MessageBoundaries"/>) tokenizes only the prefixes it has not seen before. A
/// conversation's next turn re-sends every earlier message, and those prefixes render the same text as last turn: without
/// the memo each turn tokenized all of them again (15 prefixes of up to 2,500 tokens, 20–50 ms per request on the
/// 1.2B shape's tokenizer, against 0.1–0.4 ms for the renders). Exact: the key is the whole prefix text, so a hit is
/// what the tokenizer would return. Bounded by <see cref="Budget"/> bytes, least recently used out; thread-safe,
/// since requests prepare their prompts on their own threads.
/// </summary>
internal sealed class PrefixTokenMemo
{
    /// <summary>Bytes one tokenizer's memo may hold: some thirty 16-turn conversations of 2,500 tokens.</summary>
    public const long DefaultBudget = 8L << 20;

    private static readonly ConditionalWeakTable<BpeTokenizer, PrefixTokenMemo> s_shared = new();

    private readonly Dictionary<string, LinkedListNode<(string Text, int[] Tokens)>> _map = new(StringComparer.Ordinal);
    private readonly LinkedList<(string Text, int[] Tokens)> _recent = new();   // most recently used first
    private long _bytes, _encodes;

    /// <param name="budget">Most bytes held (texts as UTF-16, tokens as ints); a larger entry is not kept.</param>
    public PrefixTokenMemo(long budget = DefaultBudget)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budget);
        Budget = budget;
    }

    /// <summary>The memo every prompt of <paramref name="tokenizer"/> shares (a server's requests, a process's sessions).</summary>
    public static PrefixTokenMemo For(BpeTokenizer tokenizer) => s_shared.GetValue(tokenizer, static _ => new PrefixTokenMemo());

    /// <summary>Most bytes held.</summary>
    public long Budget { get; }

    /// <summary>Bytes held now.</summary>
    public long Bytes { get { lock (_map) return _bytes; } }

    /// <summary>Texts tokenized so far (the misses).</summary>
    public long Encodes => Interlocked.Read(ref _encodes);

    /// <summary>
    /// <see cref="BpeTokenizer.EncodePrompt"/> of <paramref name="text"/>, from the memo when this text was tokenized
    /// recently. The array is shared: callers must not change it.
    /// </summary>
    public int[] EncodePrompt(BpeTokenizer tokenizer, string text)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        lock (_map)
        {
            if (_map.TryGetValue(text, out var hit))
            {
                _recent.Remove(hit);
                _recent.AddFirst(hit);
                return hit.Value.Tokens;
            }
        }
        // Outside the lock: other requests' look-ups need not wait for this tokenization.
        int[] tokens = tokenizer.EncodePrompt(text);
        Interlocked.Increment(ref _encodes);
        long size = Size(text, tokens);
        if (size > Budget)
            return tokens;
        lock (_map)
        {
            if (!_map.ContainsKey(text))
            {
                _map[text] = _recent.AddFirst((text, tokens));
                _bytes += size;
                while (_bytes > Budget && _recent.Last is { } oldest)
                {
                    _recent.RemoveLast();
                    _map.Remove(oldest.Value.Text);
                    _bytes -= Size(oldest.Value.Text, oldest.Value.Tokens);
                }
            }
        }
        return tokens;
    }

    private static long Size(string text, int[] tokens) => 2L * text.Length + 4L * tokens.Length;
}
