using System.Text;

namespace LfmSharp.Server;

/// <summary>The kinds of traffic <see cref="LoadTest"/> sends; each stresses another part of a server.</summary>
internal enum LoadWorkload
{
    /// <summary>Every request a different short prompt: batching and scheduling.</summary>
    Distinct,
    /// <summary>The same ~1,000-token system prompt, a different question each time: the prefix cache (agents, RAG).</summary>
    SharedSystem,
    /// <summary>Conversations of <see cref="LoadPlan.Turns"/> turns, each turn resending the history: per-turn reuse.</summary>
    Conversation,
    /// <summary>The very same request again and again: retries and evaluation harnesses.</summary>
    Identical,
}

/// <summary>What <see cref="LoadTest.RunAsync(Uri, LoadPlan, CancellationToken)"/> sends, with how many clients and for how long.</summary>
internal sealed record LoadPlan
{
    public LoadWorkload Workload { get; init; } = LoadWorkload.Distinct;
    public int Clients { get; init; } = 1;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public int MaxTokens { get; init; } = 32;
    /// <summary>Null: the server's default.</summary>
    public float? Temperature { get; init; }
    /// <summary>Send llama-server's <c>ignore_eos</c> so every answer runs to <see cref="MaxTokens"/> where supported.</summary>
    public bool IgnoreEos { get; init; }
    public string Model { get; init; } = "";
    public string? ApiKey { get; init; }
    /// <summary>Turns per conversation of <see cref="LoadWorkload.Conversation"/>.</summary>
    public int Turns { get; init; } = 8;
    /// <summary>A stream without a usage chunk counts its text chunks as tokens instead of failing (a server that
    /// does not honour <c>stream_options.include_usage</c>; llama-server sends one token per chunk).</summary>
    public bool CountChunksWithoutUsage { get; init; }

    /// <summary>Parses a workload name as the CLI spells it (distinct, shared-system, conversation, identical).</summary>
    public static LoadWorkload ParseWorkload(string name) => name switch
    {
        "distinct" => LoadWorkload.Distinct,
        "shared-system" => LoadWorkload.SharedSystem,
        "conversation" => LoadWorkload.Conversation,
        "identical" => LoadWorkload.Identical,
        _ => throw new ArgumentException($"unknown workload '{name}' (expected distinct, shared-system, conversation or identical)", nameof(name)),
    };

    /// <summary>The CLI spelling of <paramref name="workload"/>.</summary>
    public static string Name(LoadWorkload workload) => workload switch
    {
        LoadWorkload.SharedSystem => "shared-system",
        _ => workload.ToString().ToLowerInvariant(),
    };
}

/// <summary>One client's messages, request after request, for its plan's workload.</summary>
internal sealed class LoadScript(LoadPlan plan, int client)
{
    private static readonly string[] Words =
    [
        "river", "engine", "garden", "signal", "copper", "lantern", "harbor", "meadow", "circuit", "granite",
        "orbit", "canvas", "timber", "falcon", "quartz", "velvet", "summit", "beacon", "glacier", "compass",
    ];

    private static readonly Lazy<string> s_system = new(BuildSystemPrompt);
    private readonly List<(string Role, string Content)> _conversation = new();
    private int _request;
    private int _conversationNumber;

    /// <summary>A system prompt of about 1,000 tokens with the synthetic models' tokenizer (2,600 characters, some 550
    /// tokens with LFM2's own): a handbook, as agents send.</summary>
    public static string SharedSystemPrompt => s_system.Value;

    /// <summary>The messages of this client's next request.</summary>
    public IReadOnlyList<(string Role, string Content)> NextMessages()
    {
        int n = _request++;
        switch (plan.Workload)
        {
            case LoadWorkload.SharedSystem:
                return [("system", SharedSystemPrompt), ("user", Question(client, n))];
            case LoadWorkload.Identical:
                return [("user", "Name three uses of copper in electrical engineering and say why copper is chosen.")];
            case LoadWorkload.Conversation:
                if (_conversation.Count >= 2 * plan.Turns)
                {
                    _conversation.Clear();
                    _conversationNumber++;
                }
                _conversation.Add(("user", $"Conversation {client}.{_conversationNumber}, turn {_conversation.Count / 2 + 1}: {Sentence(client * 7919 + n, 24)}"));
                return _conversation.ToArray();
            default:
                return [("user", Question(client, n))];
        }
    }

    /// <summary>The answer to the last request (null when it failed): a conversation keeps it as the assistant's turn.</summary>
    public void Answered(string? content)
    {
        if (plan.Workload != LoadWorkload.Conversation)
            return;
        if (content is null)
        {
            // A failed turn: drop its question so the history stays well formed.
            _conversation.RemoveAt(_conversation.Count - 1);
            return;
        }
        _conversation.Add(("assistant", content));
    }

    private static string Question(int client, int n) => $"Client {client}, request {n}: {Sentence(client * 104729 + n, 40)}";

    /// <summary><paramref name="words"/> pseudo-random words from a small list, distinct per seed.</summary>
    private static string Sentence(int seed, int words)
    {
        var r = new Random(seed);
        var sb = new StringBuilder();
        for (int i = 0; i < words; i++)
        {
            if (i > 0)
                sb.Append(' ');
            sb.Append(Words[r.Next(Words.Length)]);
        }
        return sb.Append('?').ToString();
    }

    private static string BuildSystemPrompt()
    {
        var sb = new StringBuilder("You are a careful assistant for a hardware store. Follow the handbook below exactly.\n");
        for (int i = 1; i <= 16; i++)
        {
            sb.Append("Rule ").Append(i).Append(": when a customer asks about the ").Append(Words[i % Words.Length])
              .Append(" department, check the ").Append(Words[(i * 3) % Words.Length]).Append(" inventory first, answer in two sentences, and mention the ")
              .Append(Words[(i * 7) % Words.Length]).Append(" warranty.\n");
        }
        return sb.ToString();
    }
}
