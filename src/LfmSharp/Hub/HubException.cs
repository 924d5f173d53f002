namespace LfmSharp.Hub;

/// <summary>Why a hub operation failed, for callers that react differently (retry later, ask for a token, …).</summary>
public enum HubErrorKind
{
    /// <summary>The repository, revision or file does not exist (or is not visible without a token).</summary>
    NotFound,

    /// <summary>The hub wants a token (401/403): a gated or private repository.</summary>
    Unauthorized,

    /// <summary>Offline mode is on and the cache does not hold what was asked for.</summary>
    NotCached,

    /// <summary>The downloaded bytes do not match the hub's sha256 or size.</summary>
    Integrity,

    /// <summary>The network or the hub kept failing after the allowed retries.</summary>
    Network,

    /// <summary>The hub answered something this client cannot use.</summary>
    Protocol,
}

/// <summary>
/// A hub operation failed for a reason the user can act on; <see cref="Exception.Message"/> is one line that says what
/// and what to do. Derives from <see cref="IOException"/> so callers that report I/O failures report this one too.
/// </summary>
public sealed class HubException : IOException
{
    /// <summary>Creates the exception.</summary>
    public HubException(HubErrorKind kind, string message, Exception? inner = null) : base(message, inner) => Kind = kind;

    /// <summary>What went wrong.</summary>
    public HubErrorKind Kind { get; }

    /// <summary>The HTTP status the hub answered with, when there was one.</summary>
    public int? StatusCode { get; init; }
}

/// <summary>A download's progress, reported at most a few times a second and once at the end of each file.</summary>
/// <param name="File">The file's path in the repository.</param>
/// <param name="BytesDone">Bytes of this file on disk so far (a resumed download starts above zero).</param>
/// <param name="TotalBytes">The file's size, when the hub said.</param>
/// <param name="BytesPerSecond">Recent transfer speed.</param>
/// <param name="Completed">True on the last report of the file.</param>
public readonly record struct DownloadProgress(string File, long BytesDone, long? TotalBytes, double BytesPerSecond, bool Completed)
{
    /// <summary>Fraction done in [0, 1], or null when the size is unknown.</summary>
    public double? Fraction => TotalBytes is > 0 ? Math.Min(1.0, (double)BytesDone / TotalBytes.Value) : null;

    /// <summary>Estimated time left at the current speed, or null when unknown.</summary>
    public TimeSpan? Remaining => TotalBytes is { } t && BytesPerSecond > 0 ? TimeSpan.FromSeconds(Math.Max(0, t - BytesDone) / BytesPerSecond) : null;
}
