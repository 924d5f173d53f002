namespace LfmSharp.Generation;

/// <summary>
/// Streams text through while watching for stop strings. Text that could still be the start of a stop string is
/// held back, so no part of a stop string ever reaches the caller; when a stop string completes, everything from
/// its first character on is dropped.
/// </summary>
internal sealed class StopSequenceMatcher
{
    private readonly string[] _stops;
    private readonly int _maxLength;
    private string _pending = "";

    public StopSequenceMatcher(IEnumerable<string>? stops)
    {
        _stops = (stops ?? []).Where(s => !string.IsNullOrEmpty(s)).Distinct(StringComparer.Ordinal).ToArray();
        _maxLength = _stops.Length == 0 ? 0 : _stops.Max(s => s.Length);
    }

    public bool Stopped { get; private set; }

    /// <summary>Feeds new text; returns the text that is now safe to emit (possibly empty).</summary>
    public string Push(string text)
    {
        if (Stopped)
            return "";
        if (_stops.Length == 0)
            return text;
        string buf = _pending + text;
        int stopAt = -1;
        foreach (var s in _stops)
        {
            int i = buf.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (stopAt < 0 || i < stopAt))
                stopAt = i;
        }
        if (stopAt >= 0)
        {
            Stopped = true;
            _pending = "";
            return buf[..stopAt];
        }
        // Hold back the longest suffix that is a proper prefix of some stop string.
        int hold = 0;
        for (int len = Math.Min(_maxLength - 1, buf.Length); len > 0; len--)
        {
            var tail = buf.AsSpan(buf.Length - len);
            foreach (var s in _stops)
            {
                if (s.Length > len && s.AsSpan(0, len).SequenceEqual(tail))
                {
                    hold = len;
                    break;
                }
            }
            if (hold > 0)
                break;
        }
        _pending = buf[(buf.Length - hold)..];
        return buf[..(buf.Length - hold)];
    }

    /// <summary>At the end of generation (no stop string came), releases the held text.</summary>
    public string Flush()
    {
        string p = Stopped ? "" : _pending;
        _pending = "";
        return p;
    }
}
