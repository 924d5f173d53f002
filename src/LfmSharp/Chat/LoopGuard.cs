using LfmSharp.Generation;

namespace LfmSharp.Chat;

/// <summary>What to do when a loop is found.</summary>
public enum LoopPolicy
{
    /// <summary>In the reasoning: force <c>&lt;/think&gt;</c> and let the model answer. In the answer: stop.</summary>
    ForceEndThinking,

    /// <summary>Stop generating (finish reason <see cref="FinishReason.Loop"/>).</summary>
    Stop,
}

/// <summary>What the caller should do about a detected loop.</summary>
public enum LoopAction
{
    /// <summary>Append the <c>&lt;/think&gt;</c> token (by id) and continue in answer mode.</summary>
    ForceEndThinking,

    /// <summary>End the generation with <see cref="FinishReason.Loop"/>.</summary>
    Stop,
}

/// <summary>Which detector fired.</summary>
public enum LoopKind
{
    /// <summary>The last tokens repeat with a period of <see cref="LoopDetection.Period"/> tokens.</summary>
    Tokens,

    /// <summary>The last characters repeat a block of <see cref="LoopDetection.Period"/> characters.</summary>
    Text,
}

/// <summary>Thresholds of a <see cref="LoopGuard"/>. The defaults aim at no false alarms on natural text, lists
/// and code while catching a doom loop within a few repeats.</summary>
public sealed record LoopGuardOptions
{
    /// <summary>What to do when a loop is detected.</summary>
    public LoopPolicy Policy { get; init; } = LoopPolicy.ForceEndThinking;

    /// <summary>Both detectors need at least this many consecutive copies of the repeating unit.</summary>
    public int MinRepeats { get; init; } = 3;

    /// <summary>Longest token period looked for (cost per token is proportional to it). 0 turns the token detector off.</summary>
    public int MaxPeriodTokens { get; init; } = 256;

    /// <summary>The repeating token run must also be this long, so short legit repetition (<c>0, 0, 0, 0</c>,
    /// <c>|---|---|</c>) does not count.</summary>
    public int MinRunTokens { get; init; } = 64;

    /// <summary>Shortest repeating block of characters. A run whose own period is shorter is left to the token detector.</summary>
    public int MinBlockChars { get; init; } = 10;

    /// <summary>Longest repeating block of characters. 0 turns the text detector off.</summary>
    public int MaxBlockChars { get; init; } = 2000;

    /// <summary>The repeating text run must also be this long.</summary>
    public int MinRunChars { get; init; } = 100;

    /// <summary>The text detector runs after this many new characters (it costs about 3 × MaxBlockChars steps).</summary>
    public int CheckIntervalChars { get; init; } = 128;
}

/// <summary>A loop found by <see cref="LoopGuard"/>.</summary>
/// <param name="Pattern">One period of the repeating text (as much of it as the guard still holds).</param>
/// <param name="Repeats">Consecutive copies seen.</param>
/// <param name="InReasoning">The loop is inside the thinking.</param>
/// <param name="Action">What the caller should do.</param>
/// <param name="Kind">Which detector fired.</param>
/// <param name="Period">Length of one copy, in tokens or characters (see <paramref name="Kind"/>).</param>
public sealed record LoopDetection(string Pattern, int Repeats, bool InReasoning, LoopAction Action, LoopKind Kind, int Period)
{
    internal LoopDetectedEvent ToEvent() => new(Pattern, Repeats, InReasoning, Action.ToString());
}

/// <summary>
/// Watches generated tokens for repetition loops, separately inside the thinking and inside the answer (the state
/// restarts whenever the side changes). Two detectors:
/// <list type="bullet">
/// <item>tokens: the last tokens are periodic with period p ≤ <see cref="LoopGuardOptions.MaxPeriodTokens"/>, at least
/// <see cref="LoopGuardOptions.MinRepeats"/> copies and <see cref="LoopGuardOptions.MinRunTokens"/> tokens long. One
/// match counter per period, updated per token: O(MaxPeriodTokens) per token, no rescans.</item>
/// <item>text: the last characters are a block of <see cref="LoopGuardOptions.MinBlockChars"/>..<see cref="LoopGuardOptions.MaxBlockChars"/>
/// characters repeated at least MinRepeats times (run ≥ <see cref="LoopGuardOptions.MinRunChars"/>), catching loops
/// whose tokens differ. Checked every <see cref="LoopGuardOptions.CheckIntervalChars"/> characters with one
/// Z-function pass over the reversed tail (Z[p] ≥ (k−1)·p means the tail is k copies of a p-block): linear in the
/// window, amortized a few hundred steps per character.</item>
/// </list>
/// Only consecutive repetition counts: a phrase that merely recurs ("Wait, let me check") is natural.
/// </summary>
internal sealed class LoopGuard
{
    private readonly LoopGuardOptions _o;

    // Token detector: ring of the last MaxPeriodTokens ids and their text lengths; _match[p] = how many tokens in a
    // row equal the token p places before them.
    private readonly int[] _ring;        // (MaxPeriodTokens)
    private readonly int[] _ringChars;   // (MaxPeriodTokens) text length of each token
    private readonly int[] _match;       // (MaxPeriodTokens + 1)
    private int _head;                   // ring slot of the next token
    private long _tokens;

    // Text detector: the last Window characters (kept in a buffer of 2 × Window, compacted when full).
    private readonly int _window;        // MinRepeats × MaxBlockChars
    private readonly char[] _text;       // (2 × window)
    private int _textLength;
    private readonly char[] _reversed;   // (window) scratch
    private readonly int[] _z;           // (window) scratch
    private int _sinceCheck;

    private bool? _inReasoning;

    public LoopGuard(LoopGuardOptions? options = null)
    {
        _o = options ?? new LoopGuardOptions();
        if (_o.MinRepeats < 2)
            throw new ArgumentOutOfRangeException(nameof(options), _o.MinRepeats, "MinRepeats must be at least 2.");
        if (_o.MaxPeriodTokens < 0 || _o.MaxBlockChars < 0 || _o.MinBlockChars < 1 || _o.CheckIntervalChars < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "Loop guard sizes must be positive (0 turns a detector off).");
        _ring = new int[_o.MaxPeriodTokens];
        _ringChars = new int[_o.MaxPeriodTokens];
        _match = new int[_o.MaxPeriodTokens + 1];
        _window = _o.MaxBlockChars == 0 ? 0 : _o.MinRepeats * _o.MaxBlockChars;
        // The text buffer also serves the token detector's pattern text, so keep some even when it is off.
        _text = new char[Math.Max(2 * _window, 4096)];
        _reversed = new char[_window];
        _z = new int[_window];
    }

    public LoopGuardOptions Options => _o;

    /// <summary>Forgets everything seen (call after forcing <c>&lt;/think&gt;</c> is not needed: the side change resets).</summary>
    public void Reset()
    {
        Array.Clear(_match);
        _head = 0;
        _tokens = 0;
        _textLength = 0;
        _sinceCheck = 0;
        _inReasoning = null;
    }

    /// <summary>Feeds one generated token. Returns a detection, or null.</summary>
    /// <param name="tokenId">The token id, or a negative number when only text is known (token detector skipped).</param>
    /// <param name="text">The token's text (may be empty).</param>
    /// <param name="inReasoning">Whether the token is inside the thinking.</param>
    public LoopDetection? Observe(int tokenId, ReadOnlySpan<char> text, bool inReasoning)
    {
        if (_inReasoning != inReasoning)
        {
            Reset();
            _inReasoning = inReasoning;
        }
        AppendText(text);
        LoopDetection? found = null;
        if (tokenId >= 0 && _ring.Length > 0)
            found = ObserveToken(tokenId, text.Length, inReasoning);
        if (found is null && _window > 0)
        {
            _sinceCheck += text.Length;
            if (_sinceCheck >= _o.CheckIntervalChars)
            {
                _sinceCheck = 0;
                found = CheckText(inReasoning);
            }
        }
        return found;
    }

    /// <summary>Feeds text only (no token ids): just the text detector.</summary>
    public LoopDetection? Observe(ReadOnlySpan<char> text, bool inReasoning) => Observe(-1, text, inReasoning);

    private LoopAction ActionFor(bool inReasoning) =>
        inReasoning && _o.Policy == LoopPolicy.ForceEndThinking ? LoopAction.ForceEndThinking : LoopAction.Stop;

    private void AppendText(ReadOnlySpan<char> text)
    {
        if (text.Length >= _text.Length)
            text = text[^(_text.Length / 2)..];
        if (_textLength + text.Length > _text.Length)
        {
            int keep = _text.Length / 2 - text.Length;
            keep = Math.Max(0, Math.Min(keep, _textLength));
            Array.Copy(_text, _textLength - keep, _text, 0, keep);
            _textLength = keep;
        }
        text.CopyTo(_text.AsSpan(_textLength));
        _textLength += text.Length;
    }

    private LoopDetection? ObserveToken(int token, int chars, bool inReasoning)
    {
        int cap = _ring.Length;
        int maxP = (int)Math.Min(cap, _tokens);
        int found = 0;
        // j walks back from the newest stored token: the token p places before the new one.
        for (int p = 1, j = _head - 1; p <= maxP; p++, j--)
        {
            if (j < 0)
                j = cap - 1;
            int m = _ring[j] == token ? _match[p] + 1 : 0;
            _match[p] = m;
            if (found == 0 && m + p >= p * _o.MinRepeats && m + p >= _o.MinRunTokens)
                found = p;
        }
        _ring[_head] = token;
        _ringChars[_head] = chars;
        _head = _head + 1 == cap ? 0 : _head + 1;
        _tokens++;
        if (found == 0)
            return null;

        int patternChars = 0;
        for (int k = 0, j = _head - 1; k < found; k++, j--)
        {
            if (j < 0)
                j = cap - 1;
            patternChars += _ringChars[j];
        }
        patternChars = Math.Min(patternChars, _textLength);
        string pattern = new(_text, _textLength - patternChars, patternChars);
        return new LoopDetection(pattern, (_match[found] + found) / found, inReasoning, ActionFor(inReasoning), LoopKind.Tokens, found);
    }

    private LoopDetection? CheckText(bool inReasoning)
    {
        int w = Math.Min(_window, _textLength);
        int minP = _o.MinBlockChars;
        if (w < Math.Max(_o.MinRunChars, minP * _o.MinRepeats))
            return null;
        // Reverse the tail so "the tail repeats with period p" becomes "the prefix matches itself shifted by p".
        for (int i = 0; i < w; i++)
            _reversed[i] = _text[_textLength - 1 - i];
        ZFunction(_reversed.AsSpan(0, w), _z.AsSpan(0, w));

        // The longest tail run with a period shorter than MinBlockChars: inside it, longer "blocks" are just
        // multiples of a short period (a table rule, "ha ha ha"), which is the token detector's business.
        int shortRun = 0;
        for (int q = 1; q < minP && q < w; q++)
            shortRun = Math.Max(shortRun, q + _z[q]);

        int maxP = Math.Min(_o.MaxBlockChars, w / _o.MinRepeats);
        for (int p = minP; p <= maxP; p++)
        {
            int run = p + _z[p];
            if (run >= p * _o.MinRepeats && run >= _o.MinRunChars && p * _o.MinRepeats > shortRun)
            {
                string pattern = new(_text, _textLength - p, p);
                return new LoopDetection(pattern, run / p, inReasoning, ActionFor(inReasoning), LoopKind.Text, p);
            }
        }
        return null;
    }

    /// <summary>z[i] = length of the longest common prefix of s and s[i..] (z[0] = length).</summary>
    private static void ZFunction(ReadOnlySpan<char> s, Span<int> z)
    {
        int n = s.Length;
        if (n == 0)
            return;
        z[0] = n;
        int l = 0, r = 0;
        for (int i = 1; i < n; i++)
        {
            int k = i < r ? Math.Min(r - i, z[i - l]) : 0;
            while (i + k < n && s[k] == s[i + k])
                k++;
            z[i] = k;
            if (i + k > r)
            {
                l = i;
                r = i + k;
            }
        }
    }
}
