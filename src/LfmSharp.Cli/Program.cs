using System.CommandLine;
using LfmSharp.Cli.Commands;

namespace LfmSharp.Cli;

/// <summary>Wiring only: each command's behaviour lives in Commands/*.cs.</summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        // Before anything touches the console (see ShutdownSignals): a server started in the background still stops on SIGINT.
        if (args.Length > 0 && args[0] == "serve")
            ShutdownSignals.RestoreInterruptEarly();
        return Run(args, Console.Out, Console.Error);
    }

    /// <summary>Parses and runs; parse errors become one line on stderr and exit code 2.</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr, TextReader? stdin = null)
    {
        var root = BuildRoot(stdout, stderr, stdin ?? Console.In);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            string command = parsed.CommandResult.Command == root ? "lfm" : $"lfm {parsed.CommandResult.Command.Name}";
            stderr.WriteLine($"{command}: {parsed.Errors[0].Message} (see '{command} --help')");
            return 2;
        }
        // A model name given to -m (or inspect) becomes the cached file's path here, pulled first when missing.
        string[] given = args;
        if (ModelNames.Resolve(parsed, ref args, stderr) is int failed)
            return failed;
        if (!ReferenceEquals(given, args))
            parsed = root.Parse(args);
        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("lfm: cancelled");
            return 130;
        }
    }

    internal static RootCommand BuildRoot(TextWriter stdout, TextWriter stderr, TextReader stdin)
    {
        var root = new RootCommand("LfmSharp: run Liquid AI LFM2 / LFM2.5 GGUF models in pure .NET.");

        // lfm inspect FILE
        var inspectFile = new Argument<string>("file") { Description = "GGUF file" };
        var inspect = new Command("inspect", "Show a GGUF file's metadata, tensors, totals by type and LFM2 layer layout.") { inspectFile };
        inspect.SetAction(p => InspectCommand.Run(p.GetValue(inspectFile)!, stdout, stderr));
        root.Subcommands.Add(inspect);

        // lfm tokenize -m FILE [--no-special] [--bos] [--json] TEXT
        var tokModel = ModelOption();
        var tokText = new Argument<string>("text") { Description = "text to tokenize" };
        var noSpecial = new Option<bool>("--no-special") { Description = "treat control-token text as plain text" };
        var bos = new Option<bool>("--bos") { Description = "prepend the BOS token" };
        var json = new Option<bool>("--json") { Description = "print {\"ids\":[...],\"pieces\":[...]} with pieces as hex bytes" };
        var tokenize = new Command("tokenize", "Print the token ids and pieces of a text.") { tokModel, noSpecial, bos, json, tokText };
        tokenize.SetAction(p => TokenizeCommand.Run(p.GetValue(tokModel)!, p.GetValue(tokText)!, !p.GetValue(noSpecial), p.GetValue(bos), p.GetValue(json), stdout, stderr));
        root.Subcommands.Add(tokenize);

        // lfm logits -m FILE --ids "1 6 332 ..." [--ctx N] [--kv f32|f16] [-t N] -o out.f32
        var logModel = ModelOption();
        var logIds = new Option<string>("--ids") { Description = "token ids separated by spaces or commas (a JSON array works too)", Required = true };
        var logCtx = new Option<int?>("--ctx", "-c") { Description = "context size in tokens (default: the number of ids)" };
        var logKv = new Option<string>("--kv") { Description = "KV cache type: f16 (default, as llama.cpp), f32 (as the goldens) or q8_0", DefaultValueFactory = _ => "f16" };
        var logThreads = new Option<int?>("--threads", "-t") { Description = "kernel threads (default: one per logical processor)" };
        var logOut = new Option<string>("--output", "-o") { Description = "output file: float32 little-endian, one row of n_vocab per id", Required = true };
        var logits = new Command("logits", "Write the logits of every position of a token sequence as raw float32 (the llama.cpp golden layout).")
        {
            logModel, logIds, logCtx, logKv, logThreads, logOut,
        };
        logits.SetAction(p => LogitsCommand.Run(p.GetValue(logModel)!, p.GetValue(logIds)!, p.GetValue(logCtx), p.GetValue(logKv), p.GetValue(logOut)!, stdout, stderr, p.GetValue(logThreads)));
        root.Subcommands.Add(logits);

        // lfm synth [--shape S] [--type T] [--seed N] [-o FILE | --cache] [explicit dims]
        root.Subcommands.Add(SynthCommand.CreateCommand(stdout, stderr));

        root.Subcommands.Add(RunCommand.Create(stdout, stderr));
        root.Subcommands.Add(ChatCommand.Create(stdin, stdout, stderr));
        root.Subcommands.Add(DemoCommand.Create(stdout, stderr));

        // lfm bench (-m FILE | --shape S --type T) [-p 512,1024] [-n 128] [-t THREADS] [-r REPS] [--json]
        root.Subcommands.Add(BenchCommand.CreateCommand(stdout, stderr));

        root.Subcommands.Add(ServeCommandLine(stdout, stderr));
        root.Subcommands.Add(LoadTestCommand.Create(stdout, stderr));

        root.Subcommands.Add(PullCommand.Create(stdout, stderr));
        root.Subcommands.Add(ListCommand.Create(stdout, stderr));
        root.Subcommands.Add(RmCommand.Create(stdout, stderr));

        return root;
    }

    // lfm serve -m FILE [--host H] [--port P] [--api-key K] [--slots N] [--queue N] [--ctx N] [--soak SECONDS --clients N]
    private static Command ServeCommandLine(TextWriter stdout, TextWriter stderr)
    {
        var serveModel = ModelOption();
        var host = new Option<string>("--host") { Description = "address to bind (default loopback only)", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port", DefaultValueFactory = _ => 8080 };
        var apiKey = new Option<string?>("--api-key") { Description = "require 'Authorization: Bearer KEY'" };
        var slots = new Option<int>("--slots") { Description = "sequences generated concurrently", DefaultValueFactory = _ => 4 };
        var queue = new Option<int>("--queue") { Description = "requests waiting for a slot before 429", DefaultValueFactory = _ => 64 };
        var serveCtx = new Option<int>("--ctx", "-c") { Description = "context length per slot", DefaultValueFactory = _ => 4096 };
        var serveThreads = new Option<int?>("--threads", "-t") { Description = "worker threads (default: all cores)" };
        var serveKv = new Option<string>("--kv") { Description = "KV cache type: f16 (default), f32 or q8_0 (half the memory of f16, for long contexts)", DefaultValueFactory = _ => "f16" };
        var alias = new Option<string[]>("--alias") { Description = "a name the model answers to (repeatable; the first is the id /v1/models reports)", AllowMultipleArgumentsPerToken = false };
        var strictModel = new Option<bool>("--strict-model") { Description = "answer 404 to requests naming another model (default: the served model answers any name)" };
        var corsOrigin = new Option<string[]>("--cors-origin") { Description = "a browser origin allowed besides loopback ones (repeatable; '*' allows all)", AllowMultipleArgumentsPerToken = false };
        var verbose = new Option<bool>("--verbose") { Description = "log requests" };
        var soak = new Option<int?>("--soak") { Description = "instead of serving: run a loopback load test for SECONDS and print the figures" };
        var clients = new Option<int>("--clients") { Description = "concurrent streaming clients for --soak", DefaultValueFactory = _ => 16 };
        var allowedHost = new Option<string[]>("--allowed-host") { Description = "a further host name clients may use in the Host header (repeatable; IP addresses and localhost always work; '*' allows any)" };
        var grace = new Option<double>("--shutdown-grace") { Description = "seconds running requests get to finish on SIGTERM/SIGINT", DefaultValueFactory = _ => 10 };
        var serveTemplate = new Option<string?>("--chat-template-file") { Description = "Jinja chat template to use instead of the model's own" };
        var cacheRam = new Option<int>("--cache-ram") { Description = "MiB for the prompt-prefix cache shared by all slots (0: off)", DefaultValueFactory = _ => 1024 };
        var cacheInterval = new Option<int>("--cache-checkpoint-interval") { Description = "tokens between prefix-cache checkpoints inside a long message", DefaultValueFactory = _ => 256 };
        var batchSize = new Option<int>("--batch-size", "-b") { Description = "most tokens one forward pass feeds: running sequences' decode tokens, then prefill chunks of new ones (llama-server's logical batch)", DefaultValueFactory = _ => 256 };
        var serve = new Command("serve", "OpenAI-compatible HTTP server (POST /v1/chat/completions, /v1/completions, GET /v1/models, /health, /metrics).")
        { serveModel, host, port, apiKey, slots, queue, serveCtx, serveThreads, serveKv, alias, strictModel, corsOrigin, verbose, soak, clients, allowedHost, grace, serveTemplate, cacheRam, cacheInterval, batchSize };
        serve.SetAction((p, ct) => Task.FromResult(p.GetValue(soak) is int seconds
            ? ServeCommand.RunSoak(p.GetValue(serveModel)!, stdout, stderr, seconds, p.GetValue(clients), p.GetValue(slots), p.GetValue(queue), threads: p.GetValue(serveThreads))
            : ServeCommand.Run(p.GetValue(serveModel)!, stdout, stderr, p.GetValue(host)!, p.GetValue(port), p.GetValue(apiKey), p.GetValue(slots),
                p.GetValue(queue), p.GetValue(serveCtx), p.GetValue(serveThreads), p.GetValue(alias) is [var first, ..] ? first : null, p.GetValue(verbose), p.GetValue(serveKv),
                p.GetValue(allowedHost), p.GetValue(grace),
                new ServeCompatOptions(p.GetValue(alias) is [_, .. var more] ? more : null, p.GetValue(strictModel), p.GetValue(corsOrigin)), p.GetValue(serveTemplate),
                p.GetValue(cacheRam), p.GetValue(cacheInterval), p.GetValue(batchSize), ct)));
        return serve;
    }

    internal static Option<string> ModelOption(bool required = true) =>
        new("--model", "-m") { Description = "GGUF model file, or a model name (lfm2.5-thinking, ORG/REPO[:QUANT], hf.co/…) pulled into the cache when missing", Required = required };
}
