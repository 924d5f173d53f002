using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LfmSharp.Gguf;
using LfmSharp.Models;
using LfmSharp.Synthetic;

namespace LfmSharp.Cli.Commands;

/// <summary>Options of <c>lfm bench</c>. Either <see cref="Model"/> or <see cref="Shape"/> (synthesized, cached).</summary>
internal sealed record BenchOptions
{
    /// <summary>GGUF file to measure.</summary>
    public string? Model { get; init; }

    /// <summary>Synthetic shape preset to measure instead of <see cref="Model"/> (written to the cache once).</summary>
    public string? Shape { get; init; }

    /// <summary>File type of the synthetic model (with <see cref="Shape"/>).</summary>
    public string Type { get; init; } = "q4_0";

    /// <summary>Prompt lengths: one "pp" row each (0 entries or a 0 skips prompt processing).</summary>
    public IReadOnlyList<int> Prompt { get; init; } = [512];

    /// <summary>Generated tokens of the "tg" row (0 = no tg row).</summary>
    public int Generate { get; init; } = 128;

    /// <summary>Kernel threads, the calling thread included (null = one per logical processor).</summary>
    public int? Threads { get; init; }

    /// <summary>Timed repetitions per row (after one untimed warm-up).</summary>
    public int Repetitions { get; init; } = 5;

    /// <summary>Tokens per forward step during prompt processing (llama.cpp's n_ubatch).</summary>
    public int BatchSize { get; init; } = 512;

    public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

    /// <summary>One JSON object per line instead of the table.</summary>
    public bool Json { get; init; }

    /// <summary>Copy the weights of types with an 8-row layout (Q4_0, Q8_0, Q2_K..Q6_K) into the kernels' interleaved layout, TQ1_0 ones into TQ2_0 blocks, at load (<see cref="ModelLoadOptions.RepackWeights"/>).</summary>
    public bool Repack { get; init; } = true;
}

/// <summary>One measured row: tokens per second over the repetitions.</summary>
internal sealed record BenchResult(string Test, int Tokens, double[] Seconds)
{
    public double[] TokensPerSecond => Seconds.Select(s => Tokens / s).ToArray();
    public double Mean => TokensPerSecond.Average();

    /// <summary>Sample standard deviation (n − 1), 0 for a single repetition, as llama-bench prints it.</summary>
    public double StdDev
    {
        get
        {
            var t = TokensPerSecond;
            if (t.Length < 2)
                return 0;
            double m = t.Average();
            return Math.Sqrt(t.Sum(v => (v - m) * (v - m)) / (t.Length - 1));
        }
    }
}

/// <summary>
/// <c>lfm bench</c>: prompt-processing (ppN) and generation (tgN) throughput in llama-bench's shape, so the numbers
/// line up with <c>llama-bench -m FILE -p N -n N -t T</c>.
/// </summary>
/// <remarks>
/// As llama-bench: random token ids; each repetition starts from an empty sequence; ppN feeds N tokens in steps of
/// <see cref="BenchOptions.BatchSize"/> and computes the last token's logits; tgN feeds N single tokens one after another,
/// each with its logits (no sampling). One untimed warm-up run precedes each row. The peak resident set (VmHWM) covers
/// the whole process, memory-mapped weights included.
/// </remarks>
internal static class BenchCommand
{
    public static int Run(BenchOptions o, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        try
        {
            Validate(o);
            string path = o.Model ?? SyntheticModel.GetOrCreateCached(o.Shape!, SyntheticFileTypes.Parse(o.Type));
            int threads = o.Threads ?? Environment.ProcessorCount;
            using var lm = LanguageModel.Load(path, new ModelLoadOptions { Threads = threads, RepackWeights = o.Repack });

            var results = new List<BenchResult>();
            var bench = new Runner(lm.Model, o);
            if (!o.Json)
            {
                stdout.WriteLine($"| model                          |       size |     params | threads |  test |             t/s |");
                stdout.WriteLine($"| ------------------------------ | ---------: | ---------: | ------: | ----: | --------------: |");
            }
            string modelName = Describe(lm, path);
            long size = new FileInfo(path).Length;
            long parameters = CountParameters(lm);
            foreach (int p in o.Prompt.Where(p => p > 0))
                Report(bench.PromptProcessing(p));
            if (o.Generate > 0)
                Report(bench.Generation(o.Generate));

            double rss = CliConsole.PeakRssMiB();
            if (o.Json)
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{{\"peak_rss_mib\":{rss:F1}}}"));
            else
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak RSS {rss:F1} MiB (VmHWM, memory-mapped weights included)"));
            return 0;

            void Report(BenchResult r)
            {
                results.Add(r);
                if (o.Json)
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{{\"test\":\"{r.Test}\",\"tps_mean\":{r.Mean:F3},\"tps_sd\":{r.StdDev:F3},\"threads\":{threads},\"reps\":{r.Seconds.Length}}}"));
                }
                else
                {
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {modelName,-30} | {size / (double)(1 << 20),6:F1} MiB | {parameters / 1e9,8:F2} B | {threads,7} | {r.Test,5} | {r.Mean,8:F2} ± {r.StdDev,4:F2} |"));
                }
                stdout.Flush();
            }
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or InvalidDataException or NotSupportedException
            or GgufFormatException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm bench: {CliConsole.Describe(ex)}");
            return 1;
        }
    }

    private static void Validate(BenchOptions o)
    {
        if ((o.Model is null) == (o.Shape is null))
            throw new ArgumentException("give either -m FILE or --shape PRESET (with --type)");
        if (o.Threads is < 1)
            throw new ArgumentException($"-t must be at least 1 (got {o.Threads})");
        if (o.Repetitions < 1)
            throw new ArgumentException($"-r must be at least 1 (got {o.Repetitions})");
        if (o.BatchSize < 1)
            throw new ArgumentException($"-b must be at least 1 (got {o.BatchSize})");
        if (o.Generate < 0 || o.Prompt.Any(p => p < 0))
            throw new ArgumentException("token counts must not be negative");
        if (o.Generate == 0 && !o.Prompt.Any(p => p > 0))
            throw new ArgumentException("nothing to measure (-p and -n are both 0)");
        if (o.Model is not null && !File.Exists(o.Model))
            throw new FileNotFoundException($"file not found: {o.Model}", o.Model);
    }

    private static string Describe(LanguageModel lm, string path)
    {
        string type = lm.Metadata.TryGetValue("general.file_type", out _) ? FileTypeName(lm.Metadata.GetInt64("general.file_type")) : "?";
        string name = $"{lm.Config.LayerCount}L {lm.Config.HiddenSize}d {type}";
        return name.Length <= 30 ? name : name[..30];
        static string FileTypeName(long ftype) => ftype switch
        {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            15 => "Q4_K_M",
            17 => "Q5_K_M",
            18 => "Q6_K",
            32 => "BF16",
            _ => $"ftype {ftype}",
        };
    }

    private static long CountParameters(LanguageModel lm)
    {
        long n = 0;
        using var f = GgufFile.Open(lm.Path!);
        foreach (var t in f.Tensors)
            n += t.ElementCount;
        return n;
    }

    /// <summary>Parses "512,1024" (also spaces) into prompt lengths.</summary>
    public static int[] ParseList(string text)
    {
        var parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        var values = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]))
                throw new ArgumentException($"'{parts[i]}' is not a token count (expected a list like 512,1024)");
        }
        return values;
    }

    /// <summary>The measuring loops, allocation-free between the clock reads.</summary>
    private sealed class Runner
    {
        private readonly Lfm2Model _model;
        private readonly BenchOptions _o;
        private readonly Random _rng = new(1234);
        private readonly float[] _logits;
        private Lfm2State? _state;

        public Runner(Lfm2Model model, BenchOptions o)
        {
            _model = model;
            _o = o;
            _logits = new float[model.Config.VocabSize];
        }

        private Lfm2State State(int context)
        {
            if (_state is null || _state.ContextLength < context)
                _state = _model.CreateState(context, _o.KvCacheType, Math.Min(_o.BatchSize, context));
            return _state;
        }

        private int[] RandomTokens(int n)
        {
            var t = new int[n];
            for (int i = 0; i < n; i++)
                t[i] = _rng.Next(_model.Config.VocabSize);
            return t;
        }

        public BenchResult PromptProcessing(int n)
        {
            var state = State(n);
            var tokens = RandomTokens(n);
            // Warm-up: one batch, as llama-bench does (pages the weights in, JITs every kernel).
            state.Reset();
            _model.Forward(tokens.AsSpan(0, Math.Min(n, _o.BatchSize)), state, _logits);
            var seconds = new double[_o.Repetitions];
            for (int r = 0; r < seconds.Length; r++)
            {
                state.Reset();
                long t0 = Stopwatch.GetTimestamp();
                _model.Forward(tokens, state, _logits);
                seconds[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            return new BenchResult($"pp{n}", n, seconds);
        }

        public BenchResult Generation(int n)
        {
            var state = State(n);
            var tokens = RandomTokens(n);
            state.Reset();
            _model.Forward(tokens.AsSpan(0, 1), state, _logits);
            var seconds = new double[_o.Repetitions];
            for (int r = 0; r < seconds.Length; r++)
            {
                state.Reset();
                long t0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < n; i++)
                    _model.Forward(tokens.AsSpan(i, 1), state, _logits);
                seconds[r] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            }
            return new BenchResult($"tg{n}", n, seconds);
        }
    }

    /// <summary>The <c>bench</c> command for System.CommandLine, bound to <see cref="Run"/>.</summary>
    public static Command CreateCommand(TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var model = new Option<string?>("--model", "-m") { Description = "GGUF model file" };
        var shape = new Option<string?>("--shape") { Description = $"Synthesize (cached) a model of this shape instead: {string.Join(", ", ModelShape.PresetNames)}" };
        var type = new Option<string>("--type") { Description = "File type of the synthetic model", DefaultValueFactory = _ => "q4_0" };
        var prompt = new Option<string>("--n-prompt", "-p") { Description = "Prompt lengths, comma-separated (0 = none)", DefaultValueFactory = _ => "512" };
        var gen = new Option<int>("--n-gen", "-n") { Description = "Tokens to generate (0 = none)", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads", "-t") { Description = "Threads (default: one per logical processor)" };
        var reps = new Option<int>("--repetitions", "-r") { Description = "Timed repetitions per test", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--ubatch-size", "-ub") { Description = "Tokens per forward step in prompt processing", DefaultValueFactory = _ => 512 };
        var kv = new Option<string>("--kv") { Description = "KV cache type: f16, f32 or q8_0", DefaultValueFactory = _ => "f16" };
        var json = new Option<bool>("--json") { Description = "One JSON object per line: {\"test\",\"tps_mean\",\"tps_sd\"}, then {\"peak_rss_mib\"}" };
        var noRepack = new Option<bool>("--no-repack") { Description = "Keep Q4_0/Q8_0/Q2_K..Q6_K and TQ1_0 weights in the memory map instead of copying them into the interleaved layout (TQ1_0: TQ2_0 blocks) at load" };
        var cmd = new Command("bench", "Measure prompt processing (ppN) and generation (tgN) speed, as llama-bench does")
        {
            model, shape, type, prompt, gen, threads, reps, batch, kv, json, noRepack,
        };
        cmd.SetAction(r =>
        {
            var err = stderr ?? Console.Error;
            int[] p;
            KvCacheType kvType;
            try
            {
                p = ParseList(r.GetValue(prompt)!);
                kvType = KvCacheTypes.Parse(r.GetValue(kv));
            }
            catch (ArgumentException e)
            {
                err.WriteLine($"lfm bench: {e.Message}");
                return 1;
            }
            return Run(new BenchOptions
            {
                Model = r.GetValue(model),
                Shape = r.GetValue(shape),
                Type = r.GetValue(type)!,
                Prompt = p,
                Generate = r.GetValue(gen),
                Threads = r.GetValue(threads),
                Repetitions = r.GetValue(reps),
                BatchSize = r.GetValue(batch),
                KvCacheType = kvType,
                Json = r.GetValue(json),
                Repack = !r.GetValue(noRepack),
            }, stdout ?? Console.Out, err);
        });
        return cmd;
    }
}
