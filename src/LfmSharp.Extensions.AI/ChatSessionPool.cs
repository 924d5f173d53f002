namespace LfmSharp.Extensions.AI;

/// <summary>
/// Lends chat sessions to concurrent calls: at most <c>capacity</c> exist, each used by one call at a time. A
/// returned session goes on top of the idle stack, so the next call gets the session that most recently ran (which
/// holds the longest prefix of a conversation that continues).
/// </summary>
internal sealed class ChatSessionPool : IDisposable
{
    private readonly Func<ChatSession> _factory;
    private readonly SemaphoreSlim _gate;
    private readonly Stack<ChatSession> _idle = new();
    private readonly List<ChatSession> _all = new();
    private bool _disposed;

    public ChatSessionPool(int capacity, Func<ChatSession> factory)
    {
        _factory = factory;
        _gate = new SemaphoreSlim(capacity, capacity);
    }

    public async ValueTask<ChatSession> RentAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            lock (_idle)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_idle.Count > 0)
                    return _idle.Pop();
                var session = _factory();
                _all.Add(session);
                return session;
            }
        }
        catch
        {
            _gate.Release();
            throw;
        }
    }

    public void Return(ChatSession session)
    {
        lock (_idle)
        {
            if (_disposed)
                session.Dispose();
            else
                _idle.Push(session);
        }
        _gate.Release();
    }

    public void Dispose()
    {
        lock (_idle)
        {
            if (_disposed)
                return;
            _disposed = true;
            // Sessions still lent out are disposed on return.
            foreach (var s in _idle)
                s.Dispose();
            _idle.Clear();
        }
    }
}
