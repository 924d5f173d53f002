using LfmSharp.Server;

namespace LfmSharp.Cli.Commands;

/// <summary>The <c>lfm serve</c> settings for what existing apps expect: further model names, strict names, CORS origins.</summary>
/// <param name="Aliases">Names besides the first <c>--alias</c>.</param>
/// <param name="StrictModel">404 for unknown model names.</param>
/// <param name="CorsOrigins">Browser origins allowed besides loopback ones.</param>
public sealed record ServeCompatOptions(IReadOnlyList<string>? Aliases, bool StrictModel, IReadOnlyList<string>? CorsOrigins);

/// <summary>
/// <c>lfm serve -m FILE [--host 127.0.0.1] [--port 8080] [--api-key KEY] [--slots N] [--queue N] [--ctx N] [--threads N] [--kv f16|f32|q8_0]
/// [--cache-ram MIB] [--cache-checkpoint-interval N] [--batch-size N] [--alias NAME]… [--strict-model] [--cors-origin ORIGIN]… [--verbose]</c>: the OpenAI-compatible server until Ctrl+C; and <c>lfm serve -m FILE --soak SECONDS
/// [--clients N]</c>: start it on a free loopback port, drive it with streaming clients, print the figures.
/// </summary>
internal static class ServeCommand
{
    /// <summary>Serves until Ctrl+C (or <paramref name="ct"/>). Returns 0, or 1 with one error line.</summary>
    public static int Run(string modelPath, TextWriter stdout, TextWriter stderr, string host = "127.0.0.1", int port = 8080,
        string? apiKey = null, int slots = 4, int queue = 64, int contextLength = 4096, int? threads = null, string? alias = null,
        bool verbose = false, string? kvCacheType = null, IReadOnlyList<string>? allowedHosts = null,
        double shutdownGraceSeconds = 10, ServeCompatOptions? compat = null, string? chatTemplateFile = null,
        int cacheRamMiB = 1024, int cacheCheckpointInterval = 256, int batchSize = 256, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        LfmServer server;
        try
        {
            var kv = kvCacheType is null ? KvCacheType.F16 : KvCacheTypes.Parse(kvCacheType);
            server = LfmServer.Create(new LfmServerOptions
            {
                KvCacheType = kv,
                ModelPath = modelPath,
                Host = host,
                Port = port,
                ApiKey = apiKey,
                Slots = slots,
                QueueCapacity = queue,
                ContextLength = contextLength,
                Threads = threads,
                ModelAlias = alias,
                Aliases = compat?.Aliases,
                StrictModel = compat?.StrictModel ?? false,
                CorsOrigins = compat?.CorsOrigins,
                Verbose = verbose,
                AllowedHosts = allowedHosts ?? [],
                ShutdownGracePeriod = double.IsFinite(shutdownGraceSeconds) && shutdownGraceSeconds is >= 0 and <= 3600
                    ? TimeSpan.FromSeconds(shutdownGraceSeconds)
                    : throw new ArgumentException($"--shutdown-grace must be between 0 and 3600 seconds (got {shutdownGraceSeconds})."),
                ChatTemplate = GenerationSettings.ReadChatTemplate(chatTemplateFile),
                CacheRamMiB = cacheRamMiB,
                CacheCheckpointInterval = cacheCheckpointInterval,
                BatchSize = batchSize,
            });
        }
        catch (Exception e) when (e is ArgumentException or IOException or ChatTemplateFileException)
        {
            stderr.WriteLine("lfm serve: " + e.Message);
            return 1;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // SIGTERM (docker stop, systemd, Kubernetes) and SIGINT (Ctrl+C, kill -INT) drain and exit 0.
        using var signals = ShutdownSignals.Register(stop);
        return RunAsync(server, modelPath, stdout, stderr, stop.Token).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(LfmServer server, string modelPath, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        await using (server.ConfigureAwait(false))
        {
            try
            {
                await server.StartAsync(ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                stderr.WriteLine($"lfm serve: cannot listen on {server.Options.Host}:{server.Options.Port}: {e.Message}");
                return 1;
            }
            stdout.WriteLine($"lfm serve: listening on {server.BaseAddress} (model {Path.GetFileName(modelPath)} loading; GET /health says when it is ready)");
            try
            {
                await server.ModelLoaded.WaitAsync(ct).ConfigureAwait(false);
                stdout.WriteLine($"lfm serve: model ready; {server.Options.Slots} slots x {server.Options.ContextLength} tokens, queue {server.Options.QueueCapacity}; chat page at {server.BaseAddress}; Ctrl+C stops.");
                if (server.ChatTemplateWarning is { } w)
                    stderr.WriteLine($"lfm serve: note: {w}");
            }
            catch (OperationCanceledException)
            {
                await server.StopAsync().ConfigureAwait(false);
                return 0;
            }
            catch (Exception e)
            {
                stderr.WriteLine("lfm serve: the model failed to load: " + e.Message);
                return 1;
            }
            try
            {
                await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                stdout.WriteLine($"lfm serve: stopping (running requests get up to {server.Options.ShutdownGracePeriod.TotalSeconds:0.#} s to finish)");
                stdout.Flush();
            }
            bool drained = await server.ShutdownAsync().ConfigureAwait(false);
            stdout.WriteLine(drained ? "lfm serve: stopped" : "lfm serve: stopped (requests still running after the grace period were cancelled)");
        }
        return 0;
    }

    /// <summary>
    /// The manual soak: serves <paramref name="modelPath"/> on a free loopback port and runs <paramref name="clients"/>
    /// streaming clients for <paramref name="seconds"/>, then prints the <see cref="LoadTestReport"/> and the server's
    /// metrics. Returns 0 when no request failed (429s are allowed: they are the queue doing its job).
    /// </summary>
    public static int RunSoak(string modelPath, TextWriter stdout, TextWriter stderr, int seconds = 60, int clients = 16,
        int slots = 4, int queue = 64, int maxTokens = 64, int contextLength = 2048, int? threads = null)
    {
        try
        {
            return SoakAsync(modelPath, stdout, seconds, clients, slots, queue, maxTokens, contextLength, threads).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is ArgumentException or FileNotFoundException or IOException or InvalidDataException or NotSupportedException)
        {
            stderr.WriteLine("lfm serve --soak: " + e.Message);
            return 1;
        }
    }

    private static async Task<int> SoakAsync(string modelPath, TextWriter stdout, int seconds, int clients, int slots, int queue,
        int maxTokens, int contextLength, int? threads)
    {
        await using var server = LfmServer.Create(new LfmServerOptions
        {
            ModelPath = modelPath,
            Host = "127.0.0.1",
            Port = 0,
            Slots = slots,
            QueueCapacity = queue,
            ContextLength = contextLength,
            Threads = threads,
        });
        await server.StartAsync().ConfigureAwait(false);
        await server.ModelLoaded.ConfigureAwait(false);
        stdout.WriteLine($"soak: {clients} streaming clients for {seconds} s against {server.BaseAddress} ({slots} slots, queue {queue}, max_tokens {maxTokens})");
        // Memory over the run (a leak shows as a rising resident set or managed heap between the first and last samples).
        var samples = new List<(double Seconds, long Rss, long Heap)>();
        using var stopSampling = new CancellationTokenSource();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sampler = Task.Run(async () =>
        {
            while (!stopSampling.IsCancellationRequested)
            {
                // The live heap after a full collection: garbage not yet collected is not growth.
                long heap = GC.GetTotalMemory(forceFullCollection: true);
                using (var self = System.Diagnostics.Process.GetCurrentProcess())
                    lock (samples)
                        samples.Add((clock.Elapsed.TotalSeconds, self.WorkingSet64, heap));
                try { await Task.Delay(TimeSpan.FromSeconds(2), stopSampling.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }
        });
        var report = await LoadTest.RunAsync(server.BaseAddress!, clients, TimeSpan.FromSeconds(seconds), maxTokens: maxTokens).ConfigureAwait(false);
        stopSampling.Cancel();
        await sampler.ConfigureAwait(false);
        stdout.WriteLine("soak: " + report);
        if (samples.Count >= 2)
        {
            static double Mib(long b) => b / (1024.0 * 1024.0);
            // Skip the first tenth (slots' states are allocated as the first requests arrive).
            var steady = samples.Skip(samples.Count / 10).ToList();
            var quarters = new[] { 0, steady.Count / 4, steady.Count / 2, 3 * steady.Count / 4, steady.Count - 1 }.Select(i => steady[i]).ToList();
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            stdout.WriteLine("soak: memory: RSS " + string.Join(" -> ", quarters.Select(q => string.Create(inv, $"{Mib(q.Rss):F0} MiB at {q.Seconds:F0} s")))
                + string.Create(inv, $" (peak {Mib(samples.Max(x => x.Rss)):F0}); live managed heap ") + string.Join(" -> ", quarters.Select(q => string.Create(inv, $"{Mib(q.Heap):F1}")))
                + string.Create(inv, $" MiB (max {Mib(samples.Max(x => x.Heap)):F1})"));
        }
        foreach (string failure in report.FailureSamples)
            stdout.WriteLine("soak: failure: " + failure);
        stdout.WriteLine(server.Metrics.Render(server.Scheduler));
        return report.Failed == 0 ? 0 : 1;
    }
}
