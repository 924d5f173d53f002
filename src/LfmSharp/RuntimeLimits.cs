using LfmSharp.Models;

namespace LfmSharp;

/// <summary>
/// The one check of context length, thread count and model path that the library, the server and the CLI share, so
/// each gives the same clear one-line error (an <see cref="ArgumentException"/> without a parameter suffix) instead
/// of an overflow or an out-of-memory deep in state allocation.
/// </summary>
public static class RuntimeLimits
{
    /// <summary>Kernel threads allowed per logical processor: more only adds scheduling overhead (and 100,000 threads
    /// would exhaust the machine).</summary>
    public const int ThreadsPerCore = 4;

    /// <summary>Fewest tokens a context may hold.</summary>
    public const int MinContextLength = 1;

    /// <summary>Most kernel threads: <see cref="ThreadsPerCore"/> × the logical processors.</summary>
    public static int MaxThreads => ThreadsPerCore * Math.Max(1, Environment.ProcessorCount);

    /// <summary>The thread count to use (null: one per logical processor).</summary>
    /// <exception cref="ArgumentException">Not in 1..<see cref="MaxThreads"/>.</exception>
    public static int CheckThreads(int? threads)
    {
        int t = threads ?? Environment.ProcessorCount;
        if (t < 1 || t > MaxThreads)
            throw new ArgumentException($"threads must be between 1 and {MaxThreads} ({ThreadsPerCore} per logical processor, {Environment.ProcessorCount} here); got {t}");
        return t;
    }

    /// <summary>Bytes the KV cache of one sequence state of <paramref name="contextLength"/> tokens holds.</summary>
    /// <param name="threads">Not used: a state no longer holds per-thread buffers (kept so callers compile).</param>
    public static long StateBytes(Lfm2Config config, int contextLength, KvCacheType kv, int threads)
    {
        ArgumentNullException.ThrowIfNull(config);
        long perToken = 0;
        for (int i = 0; i < config.LayerCount; i++)
        {
            if (config.IsAttentionLayer(i))
                perToken += KvCacheTypes.BytesPerPosition(kv, config.KvHeadCount(i), config.HeadSize);
        }
        return perToken * contextLength;
    }

    /// <summary>
    /// Checks a context length for <paramref name="sequences"/> states of a model. The ceiling is the model's trained
    /// context; more is allowed when asked for, as long as the states fit in memory. Returns a note when the
    /// context is past the trained one (the model may degrade there), else null.
    /// </summary>
    /// <exception cref="ArgumentException">Below <see cref="MinContextLength"/>, past what an array can index, or the
    /// states do not fit in the memory available to the process.</exception>
    public static string? CheckContextLength(Lfm2Config config, int contextLength, KvCacheType kv = KvCacheType.F16, int sequences = 1, int threads = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (contextLength < MinContextLength)
            throw new ArgumentException($"the context length must be at least {MinContextLength} tokens; got {contextLength}");
        long largestKv = 0;
        for (int i = 0; i < config.LayerCount; i++)
        {
            if (config.IsAttentionLayer(i))
                largestKv = Math.Max(largestKv, (long)config.KvHeadCount(i) * config.HeadSize * contextLength);
        }
        long bytes = StateBytes(config, contextLength, kv, threads) * Math.Max(1, sequences);
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (largestKv > Array.MaxLength || bytes > available * 9 / 10)
        {
            throw new ArgumentException($"a context of {contextLength} tokens does not fit: {sequences} state(s) would need {Gib(bytes)} of the {Gib(available)} "
                + $"this process may use (the model was trained for {config.ContextLength} tokens)");
        }
        return contextLength > config.ContextLength
            ? $"the context of {contextLength} tokens is longer than the {config.ContextLength} the model was trained for; quality may drop past that"
            : null;
    }

    /// <summary>
    /// Refuses a model path that is a directory or not a regular file (a FIFO would block the open forever, a device
    /// never ends), before anything opens it.
    /// </summary>
    /// <exception cref="FileNotFoundException">Nothing at the path.</exception>
    /// <exception cref="IOException">A directory, or not a regular file.</exception>
    public static void CheckModelFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
            throw new IOException($"{path} is a directory, not a GGUF file");
        var info = new FileInfo(path);
        if (!info.Exists)
            throw new FileNotFoundException($"Model file not found: {path}", path);
        // FIFOs, character devices and sockets report no size; a GGUF file always has one (an empty regular file
        // is refused here too, for the same reason: there is nothing to read).
        if (info.Length == 0)
            throw new IOException($"{path} is not a regular file with content (a FIFO, a device or an empty file)");
    }

    private static string Gib(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):0.#} GiB"
        : $"{bytes / (double)(1L << 20):0.#} MiB";
}
