using System.Globalization;
using System.Text;
using LfmSharp.Generation;

namespace LfmSharp.Server;

/// <summary>
/// Counters behind <c>GET /metrics</c>, in Prometheus text format. The main names are llama-server's
/// (<c>llamacpp:*</c>), so dashboards built for it work unchanged; <c>lfmsharp_*</c> adds what it lacks.
/// </summary>
public sealed class ServerMetrics
{
    private long _promptTokens, _prefilledTokens, _predictedTokens, _reasoningTokens;
    private long _prefillTicks, _decodeTicks;
    private long _firstTokenTicks;
    private long _requests, _rejected, _cancelled, _failed, _badRequests;

    internal void Completed(GenerationUsage usage)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _promptTokens, usage.PromptTokens);
        Interlocked.Add(ref _prefilledTokens, usage.PrefilledTokens);
        Interlocked.Add(ref _predictedTokens, usage.CompletionTokens);
        Interlocked.Add(ref _reasoningTokens, usage.ReasoningTokens);
        Interlocked.Add(ref _prefillTicks, usage.PrefillTime.Ticks);
        Interlocked.Add(ref _decodeTicks, usage.DecodeTime.Ticks);
        Interlocked.Add(ref _firstTokenTicks, usage.TimeToFirstToken.Ticks);
    }

    internal void Rejected() => Interlocked.Increment(ref _rejected);

    internal void Cancelled() => Interlocked.Increment(ref _cancelled);

    internal void Failed() => Interlocked.Increment(ref _failed);

    internal void BadRequest() => Interlocked.Increment(ref _badRequests);

    /// <summary>Requests answered in full.</summary>
    public long RequestsCompleted => Interlocked.Read(ref _requests);

    /// <summary>Requests the client abandoned.</summary>
    public long RequestsCancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Requests turned away (queue full: HTTP 429).</summary>
    public long RequestsRejected => Interlocked.Read(ref _rejected);

    /// <summary>Tokens generated over all requests.</summary>
    public long PredictedTokens => Interlocked.Read(ref _predictedTokens);

    internal string Render(GenerationScheduler? scheduler)
    {
        var sb = new StringBuilder();
        double prefillSeconds = TimeSpan.FromTicks(Interlocked.Read(ref _prefillTicks)).TotalSeconds;
        double decodeSeconds = TimeSpan.FromTicks(Interlocked.Read(ref _decodeTicks)).TotalSeconds;
        long prefilled = Interlocked.Read(ref _prefilledTokens);
        long predicted = Interlocked.Read(ref _predictedTokens);

        Metric(sb, "llamacpp:prompt_tokens_total", "counter", "Prompt tokens processed (cached prefix included).", Interlocked.Read(ref _promptTokens));
        Metric(sb, "llamacpp:prompt_seconds_total", "counter", "Prompt processing time.", prefillSeconds);
        Metric(sb, "llamacpp:tokens_predicted_total", "counter", "Generated tokens (reasoning included).", predicted);
        Metric(sb, "llamacpp:tokens_predicted_seconds_total", "counter", "Generation time.", decodeSeconds);
        Metric(sb, "llamacpp:prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", prefillSeconds > 0 ? prefilled / prefillSeconds : 0);
        Metric(sb, "llamacpp:predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s (per sequence).", decodeSeconds > 0 ? predicted / decodeSeconds : 0);
        Metric(sb, "llamacpp:requests_processing", "gauge", "Requests generating now.", scheduler?.Active ?? 0);
        Metric(sb, "llamacpp:requests_deferred", "gauge", "Requests waiting for a slot.", scheduler?.Waiting ?? 0);

        Metric(sb, "lfmsharp_prompt_tokens_prefilled_total", "counter", "Prompt tokens actually run through the model (not from a cached prefix).", prefilled);
        Metric(sb, "lfmsharp_reasoning_tokens_total", "counter", "Generated tokens inside <think>.", Interlocked.Read(ref _reasoningTokens));
        Metric(sb, "lfmsharp_time_to_first_token_seconds_total", "counter",
            "Time from a generation's start (after any wait for a slot) to its first generated token, summed over completed requests (÷ lfmsharp_requests_completed_total: the mean).",
            TimeSpan.FromTicks(Interlocked.Read(ref _firstTokenTicks)).TotalSeconds);
        Metric(sb, "lfmsharp_requests_completed_total", "counter", "Generations that ran to the end.", Interlocked.Read(ref _requests));
        Metric(sb, "lfmsharp_requests_cancelled_total", "counter", "Generations stopped by a client disconnect.", Interlocked.Read(ref _cancelled));
        Metric(sb, "lfmsharp_requests_rejected_total", "counter", "Requests refused with 429 (queue full).", Interlocked.Read(ref _rejected));
        Metric(sb, "lfmsharp_requests_failed_total", "counter", "Generations that ended with a server error.", Interlocked.Read(ref _failed));
        Metric(sb, "lfmsharp_requests_invalid_total", "counter", "Requests refused with a 4xx for bad input.", Interlocked.Read(ref _badRequests));
        Metric(sb, "lfmsharp_queue_length", "gauge", "Requests waiting for a slot.", scheduler?.Waiting ?? 0);
        Metric(sb, "lfmsharp_queue_capacity", "gauge", "Most requests that may wait.", scheduler?.QueueCapacity ?? 0);
        Metric(sb, "lfmsharp_slots_total", "gauge", "Sequences generated at once.", scheduler?.SlotCount ?? 0);
        Metric(sb, "lfmsharp_scheduler_steps_total", "counter", "Decode steps run (about one token each; a prefill is one step).", scheduler?.Steps ?? 0);
        Metric(sb, "process_resident_memory_bytes", "gauge", "Resident memory of the server process (VmRSS).", ResidentBytes());
        Metric(sb, "lfmsharp_managed_heap_bytes", "gauge", "Bytes the .NET heap holds (live and not yet collected).", GC.GetTotalMemory(forceFullCollection: false));
        Metric(sb, "lfmsharp_grammar_cache_bytes", "gauge", "Estimated bytes of the compiled structured-output grammars kept for reuse.", LfmSharp.Constraints.GrammarCache.Bytes);
        Metric(sb, "lfmsharp_grammar_cache_entries", "gauge", "Compiled structured-output grammars kept for reuse.", LfmSharp.Constraints.GrammarCache.Count);
        PrefixCacheMetrics(sb, scheduler?.Cache);
        return sb.ToString();
    }

    private static void PrefixCacheMetrics(StringBuilder sb, Generation.PrefixCache? cache)
    {
        long lookups = cache?.Lookups ?? 0, hits = cache?.Hits ?? 0;
        Metric(sb, "lfmsharp_prefix_cache_lookups_total", "counter", "Prompts looked up in the prefix cache.", lookups);
        Metric(sb, "lfmsharp_prefix_cache_hits_total", "counter", "Lookups that restored a cached prefix.", hits);
        Metric(sb, "lfmsharp_prefix_cache_hit_rate", "gauge", "Hits per lookup so far.", lookups > 0 ? (double)hits / lookups : 0);
        Metric(sb, "lfmsharp_prefix_cache_cached_tokens_total", "counter", "Prompt tokens restored from the prefix cache instead of prefilled.", cache?.CachedTokens ?? 0);
        Metric(sb, "lfmsharp_prefix_cache_stores_total", "counter", "State checkpoints stored.", cache?.Stores ?? 0);
        Metric(sb, "lfmsharp_prefix_cache_evictions_total", "counter", "Checkpoints dropped (least recently used) to stay under the memory bound.", cache?.Evictions ?? 0);
        Metric(sb, "lfmsharp_prefix_cache_entries", "gauge", "Checkpoints held.", cache?.Count ?? 0);
        Metric(sb, "lfmsharp_prefix_cache_bytes", "gauge", "Bytes the checkpoints hold.", cache?.Bytes ?? 0);
        Metric(sb, "lfmsharp_prefix_cache_max_bytes", "gauge", "Memory bound of the prefix cache (--cache-ram); 0: off.", cache?.MaxBytes ?? 0);
    }

    /// <summary>Resident set size: VmRSS on Linux (counts the mapped weights that are paged in), else the working set.</summary>
    public static long ResidentBytes()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
            // Not Linux: fall through.
        }
        catch (UnauthorizedAccessException)
        {
            // Restricted /proc: fall through.
        }
        using var self = System.Diagnostics.Process.GetCurrentProcess();
        return self.WorkingSet64;
    }

    private static void Metric(StringBuilder sb, string name, string type, string help, double value)
    {
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        sb.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
        sb.Append(name).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
    }
}
