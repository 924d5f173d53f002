using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LfmSharp.Server;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>
/// One tiny random-weight model (tests/TestData fixtures, LFM2 v1 template) and one real server on a free loopback
/// port, shared by every test in the "server" collection (which therefore runs its classes one after another).
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ModelName = "tiny-f32";

    public LanguageModel Model { get; private set; } = null!;

    public LfmServer Server { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public string ModelPath => TestData.Model(ModelName);

    public string ModelId => Server.Options.ModelAlias ?? Path.GetFileName(ModelPath);

    public Uri BaseAddress => Server.BaseAddress!;

    public async Task InitializeAsync()
    {
        Model = LanguageModel.Load(ModelPath, new ModelLoadOptions { Threads = 1 });
        Server = await StartAsync(new LfmServerOptions { Slots = 2, QueueCapacity = 8, ContextLength = 2048 });
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromMinutes(1) };
    }

    /// <summary>A further server on a free port over the shared model (dispose it).</summary>
    public async Task<LfmServer> StartAsync(LfmServerOptions options)
    {
        var server = LfmServer.Create(options with { Host = "127.0.0.1", Port = 0, ModelPath = ModelPath }, Model);
        await server.StartAsync();
        await server.ModelLoaded;
        return server;
    }

    public async Task DisposeAsync()
    {
        Http?.Dispose();
        if (Server is not null)
            await Server.DisposeAsync();
        Model?.Dispose();
    }

    /// <summary>POSTs JSON text and returns the status and the parsed body (null when it is not JSON).</summary>
    public static async Task<(int Status, JsonElement? Body, string Text)> PostAsync(HttpClient http, string path, string json, string? apiKey = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (apiKey is not null)
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        using var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, TryParse(text), text);
    }

    public static async Task<(int Status, JsonElement? Body, string Text)> GetAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, TryParse(text), text);
    }

    public static JsonElement? TryParse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads an SSE body into its <c>data:</c> payloads (the <c>[DONE]</c> marker included).</summary>
    public static async Task<List<string>> ReadEventsAsync(HttpResponseMessage response)
    {
        var events = new List<string>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(), Encoding.UTF8);
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
                events.Add(line[6..]);
        }
        return events;
    }
}

[CollectionDefinition("server")]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
}
