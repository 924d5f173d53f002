using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LfmSharp.Synthetic;

namespace LfmSharp.Cli.Commands;

/// <summary>Options of <c>lfm synth</c>. Explicit dimensions override the chosen shape preset.</summary>
internal sealed record SynthOptions
{
    /// <summary>Preset: tiny, small, lfm2-350m, lfm2-700m, lfm2.5-1.2b (alias full), lfm2-2.6b.</summary>
    public string Shape { get; init; } = "tiny";

    /// <summary>f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s/m/l, q4_k_s/m, q5_k_s/m, q6_k, iq4_nl, iq4_xs.</summary>
    public string Type { get; init; } = "f32";

    public ulong Seed { get; init; } = 42;

    /// <summary>Output file; null: <c>lfm2-&lt;shape&gt;-&lt;type&gt;.gguf</c> in the current folder (or the cache with <see cref="Cache"/>).</summary>
    public string? Output { get; init; }

    /// <summary>Write into (or reuse from) the synthetic model cache instead of <see cref="Output"/>.</summary>
    public bool Cache { get; init; }

    public int? Hidden { get; init; }
    public int? Ffn { get; init; }
    public int? Heads { get; init; }
    public int? KvHeads { get; init; }

    /// <summary>Layer pattern (<c>ccAcAc</c>) or comma-separated attention indices (needs <see cref="LayerCount"/>).</summary>
    public string? Layers { get; init; }

    public int? LayerCount { get; init; }
    public int? Vocab { get; init; }
    public int? Context { get; init; }
    public float? RopeBase { get; init; }
    public int? LCache { get; init; }
    public float? Eps { get; init; }

    /// <summary>Chat template style: lfm2 or lfm2.5 (default: the shape's).</summary>
    public string? Template { get; init; }

    /// <summary>Quantization threads (default: all cores).</summary>
    public int? Threads { get; init; }

    /// <summary>No progress bar.</summary>
    public bool Quiet { get; init; }

    /// <summary>Per-tensor overrides <c>NAME=TYPE</c> (NAME a regular expression searched in tensor names; first match wins).</summary>
    public IReadOnlyList<string> TensorTypes { get; init; } = [];

    /// <summary>Write a separate output.weight head instead of tying it to token_embd.</summary>
    public bool UntiedOutput { get; init; }
}

/// <summary><c>lfm synth</c>: writes an LFM2 GGUF with random weights of a given shape and file type.</summary>
internal static class SynthCommand
{
    public static int Run(SynthOptions o, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        ProgressBar? bar = null;
        try
        {
            SyntheticModelOptions options = BuildOptions(o);
            bar = o.Quiet ? null : new ProgressBar(stderr);
            var sw = Stopwatch.StartNew();
            string path;
            if (o.Cache)
            {
                if (o.Output is not null)
                    throw new ArgumentException("--cache and --output cannot be combined");
                path = SyntheticModel.GetOrCreateCached(options, bar);
            }
            else
            {
                path = o.Output ?? $"lfm2-{options.Shape.Name}-{options.FileType.Name()}.gguf";
                path = SyntheticModel.Write(path, options, bar).Path;
            }
            bar?.Finish();
            var shape = options.Shape;
            stdout.WriteLine($"wrote {Path.GetFullPath(path)}");
            stdout.WriteLine($"  shape   {shape.Name}: {shape.Describe()}");
            stdout.WriteLine($"  type    {options.FileType.Name()} (general.file_type {options.FileType.LlamaFileType()}), seed {options.Seed}");
            stdout.WriteLine($"  tensors {string.Join(", ", SyntheticModel.PlanTensors(options).GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{LfmSharp.Kernels.Quant.GgmlTypes.Name(g.Key)} x{g.Count()}"))}");
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  params  {shape.ParameterCount:N0}"));
            stdout.WriteLine($"  size    {FormatBytes(new FileInfo(path).Length)}");
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  time    {sw.Elapsed.TotalSeconds:F2} s"));
            return 0;
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or IOException or UnauthorizedAccessException or FormatException or OverflowException)
        {
            bar?.Abort();
            stderr.WriteLine($"lfm synth: {ex.Message}");
            return 1;
        }
    }

    /// <summary>Turns CLI options into generator options (preset first, then explicit overrides), validating everything.</summary>
    public static SyntheticModelOptions BuildOptions(SynthOptions o)
    {
        ModelShape shape = ModelShape.Preset(o.Shape);
        bool custom = false;
        T Set<T>(T? value, T current) where T : struct
        {
            if (value is { } v)
            {
                custom = true;
                return v;
            }
            return current;
        }
        shape = shape with
        {
            EmbeddingLength = Set(o.Hidden, shape.EmbeddingLength),
            FeedForwardLength = Set(o.Ffn, shape.FeedForwardLength),
            HeadCount = Set(o.Heads, shape.HeadCount),
            KvHeadCount = Set(o.KvHeads, shape.KvHeadCount),
            VocabSize = Set(o.Vocab, shape.VocabSize),
            ContextLength = Set(o.Context, shape.ContextLength),
            RopeFreqBase = Set(o.RopeBase, shape.RopeFreqBase),
            ConvCache = Set(o.LCache, shape.ConvCache),
            NormEpsilon = Set(o.Eps, shape.NormEpsilon),
        };
        if (o.Layers is not null || o.LayerCount is not null)
        {
            custom = true;
            var (n, attn) = o.Layers is null
                ? (o.LayerCount!.Value, shape.AttentionLayers.Where(i => i < o.LayerCount.Value).ToArray())
                : ModelShape.ParseLayers(o.Layers, o.LayerCount);
            shape = shape with { BlockCount = n, AttentionLayers = attn };
        }
        if (custom)
            shape = shape with { Name = shape.Name + "-custom", GeneralName = shape.GeneralName + "-custom" };
        shape.Validate();

        ChatTemplateStyle? template = o.Template?.Trim().ToLowerInvariant() switch
        {
            null => null,
            "lfm2" or "v1" => ChatTemplateStyle.Lfm2,
            "lfm2.5" or "lfm25" => ChatTemplateStyle.Lfm25,
            _ => throw new ArgumentException($"unknown chat template '{o.Template}' (known: lfm2, lfm2.5)"),
        };
        if (o.Threads is < 1)
            throw new ArgumentException($"--threads must be at least 1 (got {o.Threads})");
        return new SyntheticModelOptions
        {
            Shape = shape,
            FileType = SyntheticFileTypes.Parse(o.Type),
            Seed = o.Seed,
            ChatTemplate = template,
            MaxDegreeOfParallelism = o.Threads ?? 0,
            TensorTypes = (o.TensorTypes ?? []).Select(TensorTypeOverride.Parse).ToArray(),
            UntiedOutput = o.UntiedOutput,
        };
    }

    /// <summary>The <c>synth</c> command for System.CommandLine, bound to <see cref="Run"/>.</summary>
    public static Command CreateCommand(TextWriter? stdout = null, TextWriter? stderr = null)
    {
        var shape = new Option<string>("--shape", "-s") { Description = $"Shape preset: {string.Join(", ", ModelShape.PresetNames)}", DefaultValueFactory = _ => "tiny" };
        var type = new Option<string>("--type", "-t") { Description = $"File type: {string.Join(", ", SyntheticFileTypes.All.Select(t => t.Name()))}", DefaultValueFactory = _ => "f32" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every tensor's random stream", DefaultValueFactory = _ => 42 };
        var output = new Option<string?>("--output", "-o") { Description = "Output file (default lfm2-<shape>-<type>.gguf)" };
        var cache = new Option<bool>("--cache") { Description = "Write into / reuse from the model cache ($LFMSHARP_CACHE or ~/.cache/lfmsharp)" };
        var hidden = new Option<int?>("--hidden") { Description = "Hidden size (embedding_length)" };
        var ffn = new Option<int?>("--ffn") { Description = "Feed-forward size" };
        var heads = new Option<int?>("--heads") { Description = "Attention heads" };
        var kvHeads = new Option<int?>("--kv-heads") { Description = "Key/value heads" };
        var layers = new Option<string?>("--layers") { Description = "Layer pattern like ccAcAc, or attention indices like 2,5,8 (with --layer-count)" };
        var layerCount = new Option<int?>("--layer-count") { Description = "Number of layers" };
        var vocab = new Option<int?>("--vocab") { Description = "Vocabulary size (at least 272)" };
        var context = new Option<int?>("--context") { Description = "Context length" };
        var ropeBase = new Option<float?>("--rope-base") { Description = "RoPE frequency base" };
        var lCache = new Option<int?>("--l-cache") { Description = "Short-conv kernel length" };
        var eps = new Option<float?>("--eps") { Description = "RMSNorm epsilon" };
        var template = new Option<string?>("--template") { Description = "Chat template style: lfm2 or lfm2.5" };
        var threads = new Option<int?>("--threads") { Description = "Quantization threads (default: all cores)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress bar" };
        var tensorType = new Option<string[]>("--tensor-type") { Description = "Per-tensor type NAME=TYPE (regex on the tensor name, e.g. ffn_up=q4_1); repeatable, first match wins. IQ1/IQ2/IQ3/TQ types get random valid codes", AllowMultipleArgumentsPerToken = false };
        var untied = new Option<bool>("--untied-output") { Description = "Write a separate output.weight head (llama-quantize gives it the output type)" };
        var cmd = new Command("synth", "Write an LFM2 GGUF with synthetic (seeded random) weights")
        {
            shape, type, seed, output, cache, hidden, ffn, heads, kvHeads, layers, layerCount, vocab, context, ropeBase, lCache, eps, template, threads, quiet, tensorType, untied,
        };
        cmd.SetAction(r => Run(new SynthOptions
        {
            Shape = r.GetValue(shape)!,
            Type = r.GetValue(type)!,
            Seed = r.GetValue(seed),
            Output = r.GetValue(output),
            Cache = r.GetValue(cache),
            Hidden = r.GetValue(hidden),
            Ffn = r.GetValue(ffn),
            Heads = r.GetValue(heads),
            KvHeads = r.GetValue(kvHeads),
            Layers = r.GetValue(layers),
            LayerCount = r.GetValue(layerCount),
            Vocab = r.GetValue(vocab),
            Context = r.GetValue(context),
            RopeBase = r.GetValue(ropeBase),
            LCache = r.GetValue(lCache),
            Eps = r.GetValue(eps),
            Template = r.GetValue(template),
            Threads = r.GetValue(threads),
            Quiet = r.GetValue(quiet),
            TensorTypes = r.GetValue(tensorType) ?? [],
            UntiedOutput = r.GetValue(untied),
        }, stdout ?? Console.Out, stderr ?? Console.Error));
        return cmd;
    }

    private static string FormatBytes(long n) => n switch
    {
        >= 1L << 30 => string.Create(CultureInfo.InvariantCulture, $"{n / (double)(1L << 30):F2} GiB ({n:N0} bytes)"),
        >= 1L << 20 => string.Create(CultureInfo.InvariantCulture, $"{n / (double)(1L << 20):F1} MiB ({n:N0} bytes)"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{n / 1024.0:F1} KiB ({n:N0} bytes)"),
    };

    /// <summary>A one-line bar redrawn with carriage returns, at most once per percent and 100 ms.</summary>
    internal sealed class ProgressBar(TextWriter w) : IProgress<double>
    {
        private const int Width = 30;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private int _lastPercent = -1;
        private long _lastMs = -1000;
        private bool _drawn;

        public void Report(double value)
        {
            int percent = (int)Math.Clamp(value * 100, 0, 100);
            long ms = _clock.ElapsedMilliseconds;
            if (percent == _lastPercent || (ms - _lastMs < 100 && percent < 100))
                return;
            _lastPercent = percent;
            _lastMs = ms;
            int filled = percent * Width / 100;
            w.Write(string.Create(CultureInfo.InvariantCulture, $"\r[{new string('#', filled)}{new string('.', Width - filled)}] {percent,3}%  {ms / 1000.0:F1} s"));
            w.Flush();
            _drawn = true;
        }

        public void Finish()
        {
            if (_drawn)
                w.WriteLine();
        }

        public void Abort() => Finish();
    }
}
