using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LfmSharp.Synthetic;

namespace LfmSharp.Benchmarks;

/// <summary>
/// Side-by-side throughput of LfmSharp and llama.cpp (LLamaSharp + LLamaSharp.Backend.Cpu) on the same GGUF:
/// <c>dotnet run -c Release --project benchmarks/LfmSharp.Benchmarks -- --shape lfm2.5-1.2b --type q4_0 -t 2</c>
/// (or <c>-m FILE</c>). Options: <c>-p 512,1024</c> prompt rows, <c>-n 100</c> generation row, <c>-r 3</c> repetitions,
/// <c>-t 2</c> threads, <c>--log FILE</c> for llama.cpp's own log. <c>-- --templates [FILE.jinja ...]</c> measures
/// chat-template rendering instead (<see cref="TemplateBench"/>).
/// </summary>
/// <remarks>
/// Each engine runs in its own child process (this program started again with <c>--worker lfm|llama</c>), so peak RSS
/// (VmHWM) is attributable, and both stay loaded while the parent asks them for one repetition at a time, alternating
/// which engine goes first: load drifts on a shared machine hit both alike. Test definitions follow llama-bench: random
/// tokens from an empty sequence; ppN = N tokens in batches of 512 with the last token's logits; tgN = N single-token
/// steps, each with logits, no sampling. One untimed warm-up run precedes each test in each engine.
/// llama.cpp settings: n_ctx = max(p) + n rounded up to 256, n_batch = n_ubatch = 512, KV cache F16 (default),
/// flash attention disabled (as LfmSharp, which has no flash path; llama.cpp's "auto" also resolves to disabled on CPU
/// for these shapes in 0.30.0), same thread count for batch and single-token decoding, weights memory-mapped.
/// </remarks>
public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            if (args.Length > 0 && args[0] == "--templates")
                return TemplateBench.Run(args[1..]);
            var o = Options.Parse(args);
            return o.Worker switch
            {
                "lfm" => Worker.Run(new LfmEngine(o.Model!, o.Threads, o.Context, o.Batch)),
                "llama" => Worker.Run(new LlamaEngine(o.Model!, o.Threads, o.Context, o.Batch, o.Log)),
                null => Parent.Run(o),
                _ => throw new ArgumentException($"unknown worker '{o.Worker}'"),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"LfmSharp.Benchmarks: {e.Message}");
            return 2;
        }
    }
}

internal sealed record Options
{
    public string? Model { get; init; }
    public string? Shape { get; init; }
    public string Type { get; init; } = "q4_0";
    public int[] Prompt { get; init; } = [512, 1024];
    public int Generate { get; init; } = 100;
    public int Threads { get; init; } = 2;
    public int Reps { get; init; } = 3;
    public int Batch { get; init; } = 512;
    public int Context { get; init; }
    public string? Worker { get; init; }
    public string? Log { get; init; }
    public string Engines { get; init; } = "lfm,llama";

    public static Options Parse(string[] args)
    {
        var o = new Options();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int(string s) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"'{s}' is not a number");
            o = args[i] switch
            {
                "-m" or "--model" => o with { Model = Next() },
                "--shape" => o with { Shape = Next() },
                "--type" => o with { Type = Next() },
                "-p" => o with { Prompt = Next().Split(',', StringSplitOptions.RemoveEmptyEntries).Select(Int).Where(v => v > 0).ToArray() },
                "-n" => o with { Generate = Int(Next()) },
                "-t" => o with { Threads = Int(Next()) },
                "-r" => o with { Reps = Int(Next()) },
                "-b" => o with { Batch = Int(Next()) },
                "--ctx" => o with { Context = Int(Next()) },
                "--worker" => o with { Worker = Next() },
                "--log" => o with { Log = Next() },
                "--engines" => o with { Engines = Next() },
                _ => throw new ArgumentException($"unknown argument '{args[i]}'"),
            };
        }
        if (o.Threads < 1 || o.Reps < 1 || o.Batch < 1)
            throw new ArgumentException("-t, -r and -b must be at least 1");
        if (o.Worker is null && (o.Model is null) == (o.Shape is null))
            throw new ArgumentException("give either -m FILE or --shape PRESET [--type TYPE]");
        if (o.Worker is not null && o.Model is null)
            throw new ArgumentException("a worker needs -m FILE");
        return o;
    }
}

/// <summary>An engine a worker drives: one timed run of a test at a time.</summary>
internal interface IEngine : IDisposable
{
    /// <summary>Prompt processing of <paramref name="tokens"/> from an empty sequence; returns seconds.</summary>
    double Prompt(int[] tokens);

    /// <summary>Single-token steps for every token, from an empty sequence; returns seconds.</summary>
    double Generate(int[] tokens);

    int VocabSize { get; }
}

/// <summary>
/// The child process: loads the engine, then answers one line per request on stdin ("pp512", "tg100", "rss", "quit")
/// with one JSON line on stdout.
/// </summary>
internal static class Worker
{
    public static int Run(IEngine engine)
    {
        using (engine)
        {
            var rng = new Random(1234);
            var warmed = new HashSet<string>();
            Console.Out.WriteLine(JsonSerializer.Serialize(new { ready = true }));
            Console.Out.Flush();
            string? line;
            while ((line = Console.In.ReadLine()) is not null)
            {
                line = line.Trim();
                if (line == "quit")
                    break;
                if (line == "rss")
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(new { peak_rss_mib = Proc.Status("VmHWM"), rss_mib = Proc.Status("VmRSS") }));
                }
                else
                {
                    bool pp = line.StartsWith("pp", StringComparison.Ordinal);
                    int n = int.Parse(line.AsSpan(2), CultureInfo.InvariantCulture);
                    var tokens = new int[n];
                    for (int i = 0; i < n; i++)
                        tokens[i] = rng.Next(engine.VocabSize);
                    if (warmed.Add(line))
                        _ = pp ? engine.Prompt(tokens[..Math.Min(n, 512)]) : engine.Generate(tokens[..1]);
                    double s = pp ? engine.Prompt(tokens) : engine.Generate(tokens);
                    Console.Out.WriteLine(JsonSerializer.Serialize(new { test = line, seconds = s, tps = n / s }));
                }
                Console.Out.Flush();
            }
        }
        return 0;
    }
}

internal static class Proc
{
    /// <summary>A "Vm..." line of /proc/self/status in MiB (0 where there is none).</summary>
    public static double Status(string key)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                    return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        catch (IOException) { }
        return 0;
    }

    public static double LoadAverage()
    {
        try
        {
            return double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return double.NaN;
        }
    }
}

/// <summary>The parent: starts one worker per engine, interleaves the repetitions, prints the table.</summary>
internal static class Parent
{
    public static int Run(Options o)
    {
        string model = o.Model ?? SyntheticModel.GetOrCreateCached(o.Shape!, SyntheticFileTypes.Parse(o.Type));
        int maxPrompt = o.Prompt.Length == 0 ? 0 : o.Prompt.Max();
        int context = o.Context > 0 ? o.Context : (Math.Max(maxPrompt, o.Generate) + o.Generate + 255) / 256 * 256;
        var tests = o.Prompt.Select(p => $"pp{p}").Concat(o.Generate > 0 ? [$"tg{o.Generate}"] : []).ToArray();
        string[] engines = o.Engines.Split(',', StringSplitOptions.RemoveEmptyEntries);

        Console.WriteLine($"model    {model} ({new FileInfo(model).Length / (double)(1 << 20):F1} MiB)");
        Console.WriteLine($"threads  {o.Threads}, reps {o.Reps}, n_ctx {context}, n_batch = n_ubatch = {o.Batch}, KV F16, flash attention off");
        Console.WriteLine($"cpu      {Environment.ProcessorCount} logical processors, load average {Proc.LoadAverage():F2} at start");

        var workers = engines.ToDictionary(e => e, e => new WorkerProcess(e, model, o, context));
        try
        {
            var seconds = engines.ToDictionary(e => e, _ => tests.ToDictionary(t => t, _ => new List<double>()));
            var loads = new List<double>();
            for (int r = 0; r < o.Reps; r++)
            {
                foreach (string test in tests)
                {
                    var order = r % 2 == 0 ? engines : engines.Reverse().ToArray();
                    foreach (string e in order)
                    {
                        var reply = workers[e].Ask(test);
                        double s = reply.GetProperty("seconds").GetDouble();
                        seconds[e][test].Add(s);
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rep {r + 1} {e,-5} {test,-7} {int.Parse(test.AsSpan(2), CultureInfo.InvariantCulture) / s,9:F2} t/s   (load {Proc.LoadAverage():F2})"));
                        loads.Add(Proc.LoadAverage());
                    }
                }
            }
            var rss = engines.ToDictionary(e => e, e => workers[e].Ask("rss").GetProperty("peak_rss_mib").GetDouble());

            Console.WriteLine();
            // The ratio of the means is the reported figure; the per-repetition ratios (each pair ran back to back, so
            // they share the machine's state) show how much of it is this machine's drift.
            string header = "| test    |" + string.Concat(engines.Select(e => $" {Label(e),-20} |")) + (engines.Length == 2 ? " ratio lfm/llama | paired: median (min–max) |" : "");
            Console.WriteLine(header);
            Console.WriteLine("| ------- |" + string.Concat(engines.Select(_ => " -------------------: |")) + (engines.Length == 2 ? " --------------: | ----------------------: |" : ""));
            foreach (string test in tests)
            {
                int n = int.Parse(test.AsSpan(2), CultureInfo.InvariantCulture);
                var stats = engines.Select(e => Stats(seconds[e][test].Select(s => n / s).ToArray())).ToArray();
                string row = $"| {test,-7} |" + string.Concat(stats.Select(s => string.Create(CultureInfo.InvariantCulture, $" {s.Mean,9:F2} ± {s.Sd,7:F2} t/s |")));
                if (engines.Length == 2)
                {
                    var paired = seconds[engines[1]][test].Zip(seconds[engines[0]][test], (other, lfm) => other / lfm).Order().ToArray();
                    double median = paired.Length % 2 == 1 ? paired[paired.Length / 2] : (paired[paired.Length / 2 - 1] + paired[paired.Length / 2]) / 2;
                    row += string.Create(CultureInfo.InvariantCulture, $" {stats[0].Mean / stats[1].Mean,15:F3} | {median,6:F3} ({paired[0]:F2}–{paired[^1]:F2}) |");
                }
                Console.WriteLine(row);
            }
            Console.WriteLine("| peak RSS |" + string.Concat(engines.Select(e => string.Create(CultureInfo.InvariantCulture, $" {rss[e],16:F1} MiB |"))) + (engines.Length == 2 ? string.Create(CultureInfo.InvariantCulture, $" {rss[engines[0]] / rss[engines[1]],15:F3} | |") : ""));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"load average during the runs: min {loads.Min():F2}, max {loads.Max():F2} ({Environment.ProcessorCount} logical processors)"));
            return 0;
        }
        finally
        {
            foreach (var w in workers.Values)
                w.Dispose();
        }
    }

    private static string Label(string engine) => engine == "lfm" ? "LfmSharp" : engine == "llama" ? "llama.cpp" : engine;

    private static (double Mean, double Sd) Stats(double[] v)
    {
        double m = v.Average();
        double sd = v.Length < 2 ? 0 : Math.Sqrt(v.Sum(x => (x - m) * (x - m)) / (v.Length - 1));
        return (m, sd);
    }
}

/// <summary>A worker child process and its line protocol.</summary>
internal sealed class WorkerProcess : IDisposable
{
    private readonly Process _p;
    private readonly string _name;

    public WorkerProcess(string engine, string model, Options o, int context)
    {
        _name = engine;
        string self = typeof(Program).Assembly.Location;
        string host = Environment.ProcessPath ?? "dotnet";
        var psi = new ProcessStartInfo(host)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
            UseShellExecute = false,
        };
        // Under `dotnet run` (or `dotnet x.dll`) the host is dotnet itself and needs the assembly; an apphost does not.
        if (Path.GetFileNameWithoutExtension(host).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            psi.ArgumentList.Add(self);
        foreach (string a in new[] { "--worker", engine, "-m", model, "-t", o.Threads.ToString(CultureInfo.InvariantCulture),
                     "--ctx", context.ToString(CultureInfo.InvariantCulture), "-b", o.Batch.ToString(CultureInfo.InvariantCulture) })
            psi.ArgumentList.Add(a);
        if (o.Log is not null)
        {
            psi.ArgumentList.Add("--log");
            psi.ArgumentList.Add(o.Log);
        }
        _p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start the {engine} worker");
        ReadReply();   // {"ready":true} once the model is loaded
    }

    public JsonElement Ask(string request)
    {
        _p.StandardInput.WriteLine(request);
        _p.StandardInput.Flush();
        return ReadReply();
    }

    private JsonElement ReadReply()
    {
        while (true)
        {
            string? line = _p.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"the {_name} worker exited (code {(_p.HasExited ? _p.ExitCode : -1)})");
            // Native libraries may print to stdout; only our JSON lines start with '{'.
            if (line.StartsWith('{'))
                return JsonDocument.Parse(line).RootElement.Clone();
        }
    }

    public void Dispose()
    {
        try
        {
            if (!_p.HasExited)
            {
                _p.StandardInput.WriteLine("quit");
                _p.StandardInput.Flush();
                if (!_p.WaitForExit(10_000))
                    _p.Kill();
            }
        }
        catch (IOException) { }
        _p.Dispose();
    }
}
