using System.Security.Cryptography;
using System.Text;

namespace LfmSharp.Constraints;

/// <summary>
/// The grammar of a chat turn's structured output (JSON mode, a JSON schema, a required tool call), compiled once per
/// distinct schema and kept in a process-wide cache keyed by the SHA-256 of its inputs. The cache bounds its memory
/// (least recently used entries go first), so many distinct schemas cannot grow the process without limit. A server
/// calls <see cref="For"/> on a worker thread before queueing a request: the compile (bounded by
/// <see cref="GrammarLimits"/>) then never runs on the decode thread, which finds the grammar here.
/// </summary>
internal static class GrammarCache
{
    /// <summary>Most bytes (by <see cref="Grammar"/>'s own estimate) the cache keeps.</summary>
    public const long MaxBytes = 64L * 1024 * 1024;

    /// <summary>Most grammars the cache keeps.</summary>
    public const int MaxEntries = 256;

    private static readonly object s_lock = new();
    private static readonly Dictionary<string, LinkedListNode<Entry>> s_map = new(StringComparer.Ordinal);
    private static readonly LinkedList<Entry> s_lru = new();   // most recent first
    private static long s_bytes;
    private static readonly Lazy<Grammar> s_anyObject = new(() => Grammar.AnyJsonObject());

    private sealed record Entry(string Key, Grammar Grammar, long Bytes);

    /// <summary>Grammars held now.</summary>
    public static int Count { get { lock (s_lock) return s_map.Count; } }

    /// <summary>Estimated bytes held now.</summary>
    public static long Bytes { get { lock (s_lock) return s_bytes; } }

    /// <summary>
    /// The grammar <paramref name="options"/> ask for, or null for free text (tool choice auto/none, no JSON format).
    /// </summary>
    /// <exception cref="GrammarLimitException">The schema or tool list is past a <see cref="GrammarLimits"/> bound.</exception>
    /// <exception cref="ArgumentException">A malformed schema, or one no document can satisfy.</exception>
    /// <exception cref="NotSupportedException">A schema keyword constrained decoding cannot enforce.</exception>
    public static Grammar? For(ChatRequestOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ToolChoice.Mode is ToolChoiceMode.Required or ToolChoiceMode.Function)
        {
            if (options.Tools is not { Count: > 0 } tools)
                throw new ArgumentException("tool choice required/function needs at least one tool");
            string? forced = options.ToolChoice.Mode == ToolChoiceMode.Function ? options.ToolChoice.FunctionName : null;
            var key = new StringBuilder("tools\n").Append(forced).Append('\n').Append(options.ParallelToolCalls).Append('\n');
            foreach (var t in tools)
                key.Append(t.Name).Append('\0').Append(t.ParametersJsonSchema).Append('\0');
            return GetOrAdd(key.ToString(), () => Grammar.ForToolCalls([.. tools.Select(t => new ToolFunction(t.Name, t.ParametersJsonSchema))],
                new ToolCallGrammarOptions { ForcedToolName = forced, AllowParallelCalls = options.ParallelToolCalls }));
        }
        return options.ResponseFormat switch
        {
            ResponseFormat.JsonObjectFormat => s_anyObject.Value,
            ResponseFormat.JsonSchemaFormat s => GetOrAdd("schema\n" + s.SchemaJson, () => Grammar.FromJsonSchema(s.SchemaJson)),
            _ => null,
        };
    }

    /// <summary>Runs before each compile (tests hold a compile open with it to show it stalls no other request).</summary>
    internal static Action<string>? BeforeCompile { get; set; }

    /// <summary>Empties the cache (tests).</summary>
    internal static void Clear()
    {
        lock (s_lock)
        {
            s_map.Clear();
            s_lru.Clear();
            s_bytes = 0;
        }
    }

    private static Grammar GetOrAdd(string input, Func<Grammar> compile)
    {
        // The hash keys the map, so a large schema is not kept twice (as text and as grammar).
        string key = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(input)));
        lock (s_lock)
        {
            if (s_map.TryGetValue(key, out var hit))
            {
                s_lru.Remove(hit);
                s_lru.AddFirst(hit);
                return hit.Value.Grammar;
            }
        }
        // Compiled outside the lock: one slow schema must not hold up the others' lookups. Two requests with the same
        // new schema may both compile it; the second result simply replaces nothing.
        BeforeCompile?.Invoke(input);
        var grammar = compile();
        long bytes = grammar.EstimatedBytes;
        if (bytes > MaxBytes / 4)
            return grammar;   // too large to keep: it would push out everything else
        lock (s_lock)
        {
            if (s_map.ContainsKey(key))
                return grammar;
            var node = s_lru.AddFirst(new Entry(key, grammar, bytes));
            s_map[key] = node;
            s_bytes += bytes;
            while ((s_bytes > MaxBytes || s_map.Count > MaxEntries) && s_lru.Last is { } last)
            {
                s_lru.RemoveLast();
                s_map.Remove(last.Value.Key);
                s_bytes -= last.Value.Bytes;
            }
        }
        return grammar;
    }
}
