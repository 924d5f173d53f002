using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using LfmSharp.Server;

namespace LfmSharp.Cli.Commands;

/// <summary>
/// <c>lfm loadtest --url URL [--workload W] [--clients N] [--duration S] [--max-tokens N] [--temperature T]
/// [--ignore-eos] [--label L] [--json]</c>: streaming load against a running OpenAI-compatible server on loopback
/// (ours or llama-server), one result line; and <c>lfm loadtest --compare A.jsonl B.jsonl [--bench-tps X]</c>: the
/// markdown table of two servers' JSON lines side by side, with ratios. Used by benchmarks/server-vs-llama.sh.
/// </summary>
internal static class LoadTestCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var url = new Option<string?>("--url") { Description = "base address of the server (loopback only), e.g. http://127.0.0.1:8080/" };
        var workload = new Option<string>("--workload") { Description = "distinct, shared-system, conversation or identical", DefaultValueFactory = _ => "distinct" };
        var clients = new Option<int>("--clients") { Description = "concurrent streaming clients", DefaultValueFactory = _ => 1 };
        var duration = new Option<double>("--duration") { Description = "seconds to send requests for (started ones finish)", DefaultValueFactory = _ => 20 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "max_tokens of every request", DefaultValueFactory = _ => 64 };
        var temperature = new Option<float?>("--temperature") { Description = "temperature of every request (default: the server's)" };
        var ignoreEos = new Option<bool>("--ignore-eos") { Description = "send ignore_eos (llama-server runs every answer to max_tokens)" };
        var turns = new Option<int>("--turns") { Description = "turns per conversation (workload conversation)", DefaultValueFactory = _ => 8 };
        var label = new Option<string>("--label") { Description = "server name in the output", DefaultValueFactory = _ => "server" };
        var json = new Option<bool>("--json") { Description = "one JSON object instead of a sentence" };
        var compare = new Option<string[]>("--compare") { Description = "instead of a load: two files of --json lines (ours, then the other server's) to tabulate", Arity = new ArgumentArity(2, 2), AllowMultipleArgumentsPerToken = true };
        var benchTps = new Option<double?>("--bench-tps") { Description = "with --compare: lfm bench decode tok/s, to report one client's stream rate against it" };
        var cmd = new Command("loadtest", "Streaming load against a running server on loopback, or (--compare) the table of two servers' results.")
        { url, workload, clients, duration, maxTokens, temperature, ignoreEos, turns, label, json, compare, benchTps };
        cmd.SetAction(async (p, ct) =>
        {
            try
            {
                if (p.GetValue(compare) is [var a, var b])
                {
                    Compare(stdout, a, b, p.GetValue(benchTps));
                    return 0;
                }
                var plan = new LoadPlan
                {
                    Workload = LoadPlan.ParseWorkload(p.GetValue(workload)!),
                    Clients = p.GetValue(clients),
                    Duration = TimeSpan.FromSeconds(p.GetValue(duration)),
                    MaxTokens = p.GetValue(maxTokens),
                    Temperature = p.GetValue(temperature),
                    IgnoreEos = p.GetValue(ignoreEos),
                    Turns = p.GetValue(turns),
                    CountChunksWithoutUsage = true,
                };
                return await RunAsync(stdout, stderr, p.GetValue(url), plan, p.GetValue(label)!, p.GetValue(json), ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or IOException or JsonException or FormatException or KeyNotFoundException)
            {
                stderr.WriteLine("lfm loadtest: " + e.Message);
                return 2;
            }
        });
        return cmd;
    }

    private static async Task<int> RunAsync(TextWriter stdout, TextWriter stderr, string? url, LoadPlan plan, string label, bool json, CancellationToken ct)
    {
        if (url is null || !Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out var baseAddress))
            throw new ArgumentException("--url must be an absolute address such as http://127.0.0.1:8080/");
        // A load generator aimed at loopback only: it is a benchmark of local servers, not a tool against others'.
        if (!baseAddress.IsLoopback && !(IPAddress.TryParse(baseAddress.Host, out var ip) && IPAddress.IsLoopback(ip)))
            throw new ArgumentException($"--url must be a loopback address (got {baseAddress.Host})");
        ArgumentOutOfRangeException.ThrowIfLessThan(plan.Clients, 1, "--clients");
        ArgumentOutOfRangeException.ThrowIfLessThan(plan.MaxTokens, 1, "--max-tokens");
        var r = await LoadTest.RunAsync(baseAddress, plan, ct).ConfigureAwait(false);
        if (json)
        {
            stdout.WriteLine(JsonLine(label, r));
        }
        else
        {
            stdout.WriteLine(string.Create(Inv, $"{label} {LoadPlan.Name(r.Workload)}: {r}; stream {r.StreamTokensPerSecond:F1} tok/s, mean {r.MeanCompletionTokens:F1} tokens"));
        }
        foreach (var failure in r.FailureSamples)
            stderr.WriteLine("lfm loadtest: failure: " + failure);
        return r.Completed > 0 ? 0 : 1;
    }

    // Written with Utf8JsonWriter, not JsonSerializer: no reflection, so it runs under NativeAOT.
    private static string JsonLine(string label, LoadTestReport r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("label", label);
            w.WriteString("workload", LoadPlan.Name(r.Workload));
            w.WriteNumber("clients", r.Clients);
            w.WriteNumber("seconds", Math.Round(r.Duration.TotalSeconds, 2));
            w.WriteNumber("completed", r.Completed);
            w.WriteNumber("failed", r.Failed);
            w.WriteNumber("rejected", r.Rejected);
            w.WriteNumber("tokens", r.CompletionTokens);
            w.WriteNumber("tok_s", Math.Round(r.TokensPerSecond, 2));
            w.WriteNumber("stream_tok_s", Math.Round(r.StreamTokensPerSecond, 2));
            w.WriteNumber("mean_tokens", Math.Round(r.MeanCompletionTokens, 1));
            w.WriteNumber("ttft_p50_ms", Math.Round(r.TimeToFirstTokenP50Ms));
            w.WriteNumber("ttft_p95_ms", Math.Round(r.TimeToFirstTokenP95Ms));
            w.WriteNumber("latency_p50_ms", Math.Round(r.LatencyP50Ms));
            w.WriteNumber("latency_p95_ms", Math.Round(r.LatencyP95Ms));
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private sealed record Row(string Label, string Workload, int Clients, double TokS, double StreamTokS, double MeanTokens,
        double TtftP50, double TtftP95, double LatP50, double LatP95, int Completed, int Failed);

    private static List<Row> Read(string path)
    {
        var rows = new List<Row>();
        foreach (string line in File.ReadLines(path))
        {
            if (!line.StartsWith('{'))
                continue;
            using var doc = JsonDocument.Parse(line);
            var e = doc.RootElement;
            rows.Add(new Row(e.GetProperty("label").GetString()!, e.GetProperty("workload").GetString()!, e.GetProperty("clients").GetInt32(),
                e.GetProperty("tok_s").GetDouble(), e.GetProperty("stream_tok_s").GetDouble(), e.GetProperty("mean_tokens").GetDouble(),
                e.GetProperty("ttft_p50_ms").GetDouble(), e.GetProperty("ttft_p95_ms").GetDouble(), e.GetProperty("latency_p50_ms").GetDouble(),
                e.GetProperty("latency_p95_ms").GetDouble(), e.GetProperty("completed").GetInt32(), e.GetProperty("failed").GetInt32()));
        }
        return rows;
    }

    /// <summary>The two servers' rows matched by (workload, clients): throughput, TTFT and latency with the ratios
    /// (tok/s ours ÷ theirs: above 1 is ahead; TTFT theirs ÷ ours: above 1 is ahead).</summary>
    private static void Compare(TextWriter stdout, string oursPath, string theirsPath, double? benchTps)
    {
        var ours = Read(oursPath);
        var theirs = Read(theirsPath);
        string a = ours.Count > 0 ? ours[0].Label : "A", b = theirs.Count > 0 ? theirs[0].Label : "B";
        var sb = new StringBuilder();
        sb.AppendLine(Inv, $"| workload | clients | {a} tok/s | {b} tok/s | tok/s ratio | {a} TTFT p50 / p95 ms | {b} TTFT p50 / p95 ms | TTFT p50 ratio ({b}÷{a}) | {a} latency p50 / p95 ms | {b} latency p50 / p95 ms | mean tokens {a} / {b} | {a} stream tok/s | done/failed {a} · {b} |");
        sb.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var x in ours)
        {
            var y = theirs.Find(t => t.Workload == x.Workload && t.Clients == x.Clients);
            string Ratio(double num, double den) => den > 0 ? (num / den).ToString("F2", Inv) + "×" : "–";
            sb.AppendLine(Inv, $"| {x.Workload} | {x.Clients} | {x.TokS:F1} | {(y is null ? "–" : y.TokS.ToString("F1", Inv))} | {(y is null ? "–" : Ratio(x.TokS, y.TokS))} " +
                $"| {x.TtftP50:F0} / {x.TtftP95:F0} | {(y is null ? "–" : $"{y.TtftP50:F0} / {y.TtftP95:F0}")} | {(y is null ? "–" : Ratio(y.TtftP50, x.TtftP50))} " +
                $"| {x.LatP50:F0} / {x.LatP95:F0} | {(y is null ? "–" : $"{y.LatP50:F0} / {y.LatP95:F0}")} | {x.MeanTokens:F1} / {(y is null ? "–" : y.MeanTokens.ToString("F1", Inv))} " +
                $"| {x.StreamTokS:F1} | {x.Completed}/{x.Failed} · {(y is null ? "–" : $"{y.Completed}/{y.Failed}")} |");
        }
        if (benchTps is double bench && ours.Find(r => r.Workload == "distinct" && r.Clients == 1) is { } one)
        {
            sb.AppendLine();
            sb.AppendLine(Inv, $"One client through {a}: {one.StreamTokS:F1} tok/s per stream after the first token = {one.StreamTokS / bench:P0} of `lfm bench` decode ({bench:F1} tok/s).");
        }
        stdout.Write(sb.ToString());
    }
}
