using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LfmSharp.Chat;
using LfmSharp.Synthetic;

namespace LfmSharp.Cli.Commands;

/// <summary>
/// <c>lfm demo [-m FILE]</c>: the README's main command. Without a model it synthesizes the LFM2.5-1.2B shape once
/// into the cache folder, then runs one chat turn and prints prefill and decode speed, time to first token and peak
/// memory — saying plainly that synthetic weights make the text meaningless while the figures are real.
/// </summary>
internal static class DemoCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption(required: false);
        var shape = new Option<string>("--shape") { Description = $"synthetic shape when no model is given ({string.Join(", ", ModelShape.PresetNames)})", DefaultValueFactory = _ => "lfm2.5-1.2b" };
        var type = new Option<string>("--type") { Description = "synthetic file type when no model is given", DefaultValueFactory = _ => "q4_0" };
        var prompt = new Option<string>("--prompt", "-p") { Description = "the user message", DefaultValueFactory = _ => "What is 17*23?" };
        var settings = new GenerationSettings();
        var cmd = new Command("demo", "Load a model (or synthesize the 1.2B shape), chat once, and report speed and memory.") { model, shape, type, prompt };
        settings.AddTo(cmd);
        cmd.SetAction((p, ct) => Task.FromResult(Run(p.GetValue(model), p.GetValue(shape)!, p.GetValue(type)!, p.GetValue(prompt)!, settings, p, stdout, stderr, ct)));
        return cmd;
    }

    private static int Run(string? path, string shape, string type, string prompt, GenerationSettings settings, ParseResult p, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        if (settings.Problem(p) is string problem)
        {
            stderr.WriteLine($"lfm demo: {problem}");
            return 1;
        }
        bool synthetic = path is null;
        if (synthetic && !TrySynthesize(shape, type, stdout, stderr, out path, out int failed))
            return failed;

        var load = Stopwatch.StartNew();
        LanguageModel model;
        try
        {
            model = LanguageModel.Load(path!, settings.LoadOptions(p));
        }
        catch (Exception e) when (ModelErrors.IsUserError(e))
        {
            stderr.WriteLine($"lfm demo: {ModelErrors.Describe(path!, e)}");
            return 1;
        }
        double loadMs = load.Elapsed.TotalMilliseconds;
        double rssAfterLoad = CliConsole.RssMiB();
        using (model)
        {
            int threads = p.GetValue(settings.Threads) ?? Environment.ProcessorCount;
            if (model.ChatTemplate.Warning is { } w)
                stderr.WriteLine($"lfm demo: note: {w}");
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"loaded {model.Name}: {model.Config.LayerCount} layers ({model.Config.KvHeadCounts.Count(k => k > 0)} attention), hidden {model.Config.HiddenSize}, vocab {model.Config.VocabSize} in {loadMs:F0} ms (RSS {rssAfterLoad:F0} MiB, {WeightsWhere(model)}) · {threads} threads"));
            stdout.WriteLine();
            stdout.WriteLine($"> {prompt}");
            using var session = settings.CreateSession(model, p, stderr, "lfm demo");
            if (session is null)
                return 1;
            var messages = settings.StartMessages(p);
            messages.Add(LfmChatMessage.User(prompt));
            var options = settings.RequestOptions(p, model);
            // A random model never stops by itself: keep the synthetic demo short unless -n was given.
            if (synthetic && p.GetResult(settings.MaxTokens) is null or { Implicit: true })
                options = options with { MaxTokens = 64 };
            if (synthetic)
            {
                // The synthetic vocabulary is mostly [PAD] filler that prints nothing; a trained model never picks
                // those, a random one does. Ban them so the demo shows text.
                var vocab = model.Tokenizer.Vocabulary;
                var ban = new Dictionary<int, float>();
                for (int id = 0; id < vocab.Count; id++)
                {
                    if (vocab.GetTokenType(id) == Tokenizers.TokenType.Unused)
                        ban[id] = float.NegativeInfinity;
                }
                options = options with { Sampling = (options.Sampling ?? model.DefaultSampling) with { LogitBias = ban } };
            }
            var printer = new EventPrinter(stdout, CliConsole.UseColor(stdout), !p.GetValue(settings.HideThinking));
            foreach (var e in session.Complete(messages, options, ct))
                printer.Print(e);
            stdout.WriteLine();
            if (printer.Done is not { } d)
                return 1;
            PrintReport(stdout, d, synthetic);
            return 0;
        }
    }

    /// <summary>Writes (or finds in the cache) the synthetic model of <paramref name="shape"/>; false with the exit code on failure.</summary>
    private static bool TrySynthesize(string shape, string type, TextWriter stdout, TextWriter stderr, out string? path, out int exitCode)
    {
        path = null;
        exitCode = 0;
        SyntheticFileType fileType;
        try
        {
            fileType = SyntheticFileTypes.Parse(type);
            ModelShape.Preset(shape);
        }
        catch (ArgumentException e)
        {
            stderr.WriteLine($"lfm demo: {e.Message}");
            exitCode = 2;
            return false;
        }
        stdout.WriteLine($"No model given: using a SYNTHETIC model of the {shape} shape ({type}). Its weights are random, so the");
        stdout.WriteLine("text below is meaningless; the speed and memory figures are real. Pass -m FILE.gguf to run a real model.");
        var bar = new SynthCommand.ProgressBar(stderr);
        var clock = Stopwatch.StartNew();
        string cacheDir = SyntheticModel.CacheDirectory;
        try
        {
            path = SyntheticModel.GetOrCreateCached(shape, fileType, progress: bar);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            bar.Finish();
            stderr.WriteLine($"lfm demo: cannot write the synthetic model into {cacheDir}: {e.Message} (set LFMSHARP_CACHE to another folder)");
            exitCode = 1;
            return false;
        }
        bar.Finish();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"model: {path} ({new FileInfo(path).Length / 1e6:F0} MB, ready in {clock.Elapsed.TotalSeconds:F1} s)"));
        return true;
    }

    private static void PrintReport(TextWriter stdout, Generation.Done done, bool synthetic)
    {
        var u = done.Usage;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"finish: {done.Reason.ToString().ToLowerInvariant()}"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"prefill: {u.PrefilledTokens} tokens at {u.PrefillTokensPerSecond:F1} tok/s"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"decode:  {u.CompletionTokens} tokens at {u.DecodeTokensPerSecond:F1} tok/s"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"time to first token: {u.TimeToFirstToken.TotalMilliseconds:F0} ms"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"peak memory (RSS): {CliConsole.PeakRssMiB():F0} MiB"));
        if (synthetic)
            stdout.WriteLine("(synthetic weights: the text is meaningless; the figures are real)");
    }

    /// <summary>Where the weights live: memory-mapped, or partly copied into the kernels' interleaved layout at load.</summary>
    private static string WeightsWhere(LanguageModel model)
    {
        long copied = model.Model.InterleavedBytes;
        return copied == 0 ? "weights memory-mapped" : $"{copied / (double)(1 << 20):F0} MiB of weights repacked for the SIMD kernels, the rest memory-mapped";
    }
}
