using System.Net;
using System.Security.Cryptography;
using System.Text;
using LfmSharp.Server.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LfmSharp.Server;

/// <summary>
/// An OpenAI-compatible HTTP server for one model (ASP.NET Core minimal API on Kestrel).
/// <list type="bullet">
/// <item><c>POST /v1/chat/completions</c> — JSON or SSE; <c>reasoning_content</c>, <c>tool_calls</c>, usage with
/// <c>reasoning_tokens</c>, llama-server extras (<c>top_k</c>, <c>min_p</c>, <c>repetition_penalty</c>,
/// <c>reasoning_format</c>, <c>thinking_budget_tokens</c> …).</item>
/// <item><c>POST /v1/completions</c> — raw text continuation.</item>
/// <item><c>POST /v1/responses</c> — OpenAI's Responses API (typed <c>response.*</c> events, <c>previous_response_id</c>).</item>
/// <item>Ollama's <c>/api/chat</c>, <c>/api/generate</c>, <c>/api/tags</c>, <c>/api/show</c>, <c>/api/version</c>, <c>/api/ps</c>.</item>
/// <item><c>logprobs</c> / <c>top_logprobs</c> and <c>n</c> (each choice a sequence of the batched decode) on chat and text completions.</item>
/// <item><c>GET /v1/models</c>, <c>GET /health</c> (503 while loading), <c>GET /metrics</c> (Prometheus),
/// <c>POST /tokenize</c>, <c>/detokenize</c>, <c>/apply-template</c>.</item>
/// </list>
/// Requests run on a <see cref="GenerationScheduler"/> (slots, bounded queue → 429, continuous batching of the
/// active sequences' decode steps, cancellation on disconnect). Every refusal uses OpenAI's error shape (Ollama's on
/// <c>/api/*</c>). Any model name is answered by the one model and echoed back (<see cref="LfmServerOptions.StrictModel"/>
/// refuses unknown ones); browser pages on loopback origins may call it (<see cref="LfmServerOptions.CorsOrigins"/> adds others).
/// </summary>
public sealed class LfmServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ModelHost _host;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ServerContext _context;
    private int _disposed;

    private LfmServer(LfmServerOptions options, Func<LanguageModel> loader, bool ownsModel, string? sourcePath)
    {
        options.Validate();
        Options = options;
        Metrics = new ServerMetrics();
        _host = new ModelHost(options, loader, ownsModel, sourcePath);
        _context = new ServerContext(options, _host, Metrics, _stopping.Token);
        _app = Build(options, _context);
    }

    /// <summary>A server for the GGUF file in <see cref="LfmServerOptions.ModelPath"/>, loaded in the background.</summary>
    public static LfmServer Create(LfmServerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string path = options.ModelPath ?? throw new ArgumentException("ModelPath is required.", nameof(options));
        RuntimeLimits.CheckModelFile(path);   // a directory or FIFO fails here, with a clear message
        return new LfmServer(options, () => LanguageModel.Load(path, new ModelLoadOptions { Threads = options.Threads, ChatTemplate = options.ChatTemplate }), ownsModel: true, path);
    }

    /// <summary>A server for an already loaded model, which the server does not dispose.</summary>
    public static LfmServer Create(LfmServerOptions options, LanguageModel model)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(model);
        return new LfmServer(options, () => model, ownsModel: false, options.ModelPath);
    }

    /// <summary>A server whose model comes from <paramref name="loader"/>, run in the background (tests use it to
    /// hold the server in its loading state).</summary>
    internal static LfmServer Create(LfmServerOptions options, Func<LanguageModel> loader, bool ownsModel) =>
        new(options, loader, ownsModel, options.ModelPath);

    /// <summary>The options the server was created with.</summary>
    public LfmServerOptions Options { get; }

    /// <summary>Request and token counters (also served as <c>/metrics</c>).</summary>
    public ServerMetrics Metrics { get; }

    /// <summary>Where the server listens, e.g. <c>http://127.0.0.1:8080/</c> (known after <see cref="StartAsync"/>).</summary>
    public Uri? BaseAddress { get; private set; }

    /// <summary>Completes when the model is loaded (faults when loading failed).</summary>
    public Task ModelLoaded => _host.Loaded;

    /// <summary>Once the model is loaded: why its chat template is a hand-written stand-in, or null (see <see cref="LfmSharp.Chat.ChatTemplate.Warning"/>).</summary>
    public string? ChatTemplateWarning => _host.Loaded.IsCompletedSuccessfully ? _host.Ready().Model.ChatTemplate.Warning : null;

    /// <summary>The scheduler, once the model is loaded.</summary>
    internal GenerationScheduler? Scheduler => _host.Scheduler;

    /// <summary>Binds and starts answering (the model may still be loading: <c>/health</c> says so).</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        await _app.StartAsync(ct).ConfigureAwait(false);
        var addresses = _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        string? address = addresses?.FirstOrDefault();
        if (address is not null)
            BaseAddress = new Uri(address.EndsWith('/') ? address : address + "/");
    }

    /// <summary>Starts, then runs until <paramref name="ct"/> fires.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        await StartAsync(ct).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Normal shutdown.
        }
        await ShutdownAsync().ConfigureAwait(false);
    }

    /// <summary>True once a graceful shutdown has begun (<c>/health</c> answers 503, new requests are refused).</summary>
    public bool Draining => _context.Drain.Draining;

    /// <summary>
    /// Graceful shutdown: new requests get 503 and <c>/health</c> says 503, running requests get up to
    /// <paramref name="grace"/> (default <see cref="LfmServerOptions.ShutdownGracePeriod"/>) to finish, then the rest
    /// are cancelled and the server stops. Returns true when every request finished within the grace period.
    /// </summary>
    public async Task<bool> ShutdownAsync(TimeSpan? grace = null)
    {
        bool drained = await _context.Drain.DrainAsync(grace ?? Options.ShutdownGracePeriod).ConfigureAwait(false);
        await StopAsync().ConfigureAwait(false);
        return drained;
    }

    /// <summary>Stops at once: running generations are cancelled.</summary>
    public async Task StopAsync()
    {
        _stopping.Cancel();   // running generations end now, so Kestrel's drain does not wait for them
        await _app.StopAsync().ConfigureAwait(false);
    }

    /// <summary>Stops the server and releases the model if the server loaded it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        _stopping.Cancel();
        try
        {
            await _app.StopAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Already stopped.
        }
        await _app.DisposeAsync().ConfigureAwait(false);
        _host.Dispose();
        _stopping.Dispose();
    }

    private static WebApplication Build(LfmServerOptions options, ServerContext server)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Services.AddSingleton<Microsoft.Extensions.Hosting.IHostLifetime, CallerOwnedLifetime>();
        builder.Logging.ClearProviders();
        if (options.Verbose)
            builder.Logging.AddSimpleConsole();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
            k.Listen(ParseHost(options.Host), options.Port);
        });
        var app = builder.Build();
        var hostCheck = new HostHeaderCheck(options);

        // First, so that every answer (a 401 included) carries the CORS headers a browser page needs to read it.
        app.Use((ctx, next) => Cors.HandleAsync(ctx, next, options));
        app.Use(async (ctx, next) =>
        {
            bool counted = false;
            try
            {
                hostCheck.Check(ctx);
                if (!IsPublic(ctx.Request.Path))
                {
                    if (server.Drain.Draining)
                    {
                        ctx.Response.Headers.Connection = "close";
                        throw new ApiException(503, "The server is shutting down.", "unavailable_error", code: "shutting_down");
                    }
                    server.Drain.Enter();
                    counted = true;
                }
                if (options.ApiKey is not null && !IsPublic(ctx.Request.Path) && !Authorized(ctx, options.ApiKey))
                    throw new ApiException(401, "Invalid API key. Send it as 'Authorization: Bearer KEY'.", "authentication_error", code: "invalid_api_key");
                await next(ctx).ConfigureAwait(false);
                // A counted response is sent to its end (a stream's last chunk included) before it stops counting, so
                // a graceful shutdown that sees no request in flight cannot stop Kestrel under a response's tail.
                if (counted && ctx.Response.HasStarted && !ctx.RequestAborted.IsCancellationRequested)
                    await ctx.Response.CompleteAsync().ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                server.Metrics.Cancelled();   // the client went away; nobody to answer
            }
            catch (OperationCanceledException) when (server.Stopping.IsCancellationRequested)
            {
                if (!ctx.Response.HasStarted)
                    await HttpJson.WriteErrorAsync(ctx, new ApiException(503, "The server is shutting down.", "unavailable_error", code: "shutting_down")).ConfigureAwait(false);
            }
            catch (ApiException e)
            {
                if (e.StatusCode is >= 400 and < 500 and not 429)
                    server.Metrics.BadRequest();
                if (!ctx.Response.HasStarted)
                    await HttpJson.WriteErrorAsync(ctx, e).ConfigureAwait(false);
            }
            catch (Exception e) when (!ctx.Response.HasStarted && !ctx.RequestAborted.IsCancellationRequested)
            {
                server.Metrics.Failed();
                app.Logger.LogError(e, "Unhandled error on {Path}", ctx.Request.Path);
                await HttpJson.WriteErrorAsync(ctx, new ApiException(500, "Internal server error: " + e.Message, "server_error", code: "internal_error")).ConfigureAwait(false);
            }
            finally
            {
                if (counted)
                    server.Drain.Exit();
            }
        });

        MapEndpoints(app, server);
        return app;
    }

    /// <summary>The routes: OpenAI-compatible, Ollama-compatible, utilities and the chat page; 404 names the known ones.</summary>
    private static void MapEndpoints(WebApplication app, ServerContext server)
    {
        // HEAD too: load balancers and `curl -I` probe with it.
        app.MapMethods("/health", ["GET", "HEAD"], ctx => UtilityEndpoints.HealthAsync(ctx, server));
        app.MapMethods("/v1/health", ["GET", "HEAD"], ctx => UtilityEndpoints.HealthAsync(ctx, server));
        app.MapGet("/metrics", ctx => UtilityEndpoints.MetricsAsync(ctx, server));
        app.MapGet("/v1/models", ctx => UtilityEndpoints.ModelsAsync(ctx, server));
        app.MapGet("/models", ctx => UtilityEndpoints.ModelsAsync(ctx, server));
        // A RequestDelegate, not a parameter-binding lambda: the latter needs reflection or the request delegate generator (NativeAOT).
        app.MapGet("/v1/models/{**id}", ctx => UtilityEndpoints.ModelAsync(ctx, server, ctx.Request.RouteValues["id"] as string ?? ""));
        app.MapPost("/v1/chat/completions", ctx => ChatCompletionsEndpoint.HandleAsync(ctx, server));
        app.MapPost("/chat/completions", ctx => ChatCompletionsEndpoint.HandleAsync(ctx, server));
        app.MapPost("/v1/completions", ctx => CompletionsEndpoint.HandleAsync(ctx, server));
        app.MapPost("/completions", ctx => CompletionsEndpoint.HandleAsync(ctx, server));
        app.MapPost("/v1/responses", ctx => Responses.ResponsesEndpoint.HandleAsync(ctx, server));
        app.MapPost("/responses", ctx => Responses.ResponsesEndpoint.HandleAsync(ctx, server));
        Ollama.OllamaEndpoints.Map(app, server);
        app.MapPost("/tokenize", ctx => UtilityEndpoints.TokenizeAsync(ctx, server));
        app.MapPost("/detokenize", ctx => UtilityEndpoints.DetokenizeAsync(ctx, server));
        app.MapPost("/apply-template", ctx => UtilityEndpoints.ApplyTemplateAsync(ctx, server));
        app.MapChatPage();
        app.MapFallback(ctx =>
        {
            var method = ctx.Request.Method;
            throw new ApiException(404, $"No endpoint {method} {ctx.Request.Path}. See GET /v1/models, POST /v1/chat/completions, /v1/completions, /v1/responses, /api/chat, /api/generate.", code: "not_found");
        });
    }

    private static bool IsPublic(PathString path) =>
        path.Equals("/health", StringComparison.OrdinalIgnoreCase) || path.Equals("/v1/health", StringComparison.OrdinalIgnoreCase)
        || ChatPage.IsPublic(path);

    private static bool Authorized(HttpContext ctx, string apiKey)
    {
        string? header = ctx.Request.Headers.Authorization;
        const string prefix = "Bearer ";
        if (header is null || !header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            return false;
        // Constant-time, so the key cannot be guessed byte by byte from response times.
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()), Encoding.UTF8.GetBytes(apiKey));
    }

    private static IPAddress ParseHost(string host)
    {
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
            return IPAddress.Loopback;
        if (host == "*")
            return IPAddress.Any;
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address))
            return address;
        throw new ArgumentException($"--host must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1) or 'localhost', not '{host}'.");
    }
}
