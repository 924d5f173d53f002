using LfmSharp.Testing;

namespace LfmSharp.Hub.Tests;

/// <summary>A fake hub serving two fixture repositories, and a fresh cache per test.</summary>
public abstract class HubTestBase : IAsyncLifetime
{
    internal FakeHub Hub { get; private set; } = null!;
    internal string CacheDir { get; } = TestData.NewTempDir();

    internal static byte[] Q4_0 { get; } = File.ReadAllBytes(TestData.Model("tiny-q4_0"));
    internal static byte[] Q4_K_M { get; } = File.ReadAllBytes(TestData.Model("tiny-q4_k_m"));
    internal static byte[] Q8_0 { get; } = File.ReadAllBytes(TestData.Model("tiny-q8_0"));

    public async Task InitializeAsync()
    {
        Hub = await FakeHub.StartAsync();
        Hub.AddRepo("Org/Tiny-GGUF",
            ("README.md", "# tiny"u8.ToArray()),
            ("Tiny-Q4_0.gguf", Q4_0),
            ("Tiny-Q4_K_M.gguf", Q4_K_M),
            ("Tiny-Q8_0.gguf", Q8_0),
            ("config.json", "{}"u8.ToArray()));
    }

    public async Task DisposeAsync()
    {
        await Hub.DisposeAsync();
        try
        {
            Directory.Delete(CacheDir, recursive: true);
        }
        catch (IOException) { }
    }

    internal HubOptions Options(string? token = null, bool offline = false) => new()
    {
        Endpoint = Hub.Url,
        CacheDirectory = CacheDir,
        Token = token,
        Offline = offline,
        RetryDelay = TimeSpan.FromMilliseconds(20),
        MaxRetryDelay = TimeSpan.FromMilliseconds(300),
        ReadTimeout = TimeSpan.FromSeconds(10),
    };

    internal async Task<PullResult> PullAsync(string name, HubOptions? options = null, IProgress<DownloadProgress>? progress = null)
    {
        options ??= Options();
        using var client = new HubClient(options);
        return await client.PullAsync(ModelReference.Parse(name, options.Endpoint), progress);
    }

    internal string RepoFolder(string repo) => Path.Combine(CacheDir, "models--" + repo.Replace("/", "--", StringComparison.Ordinal));

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    internal sealed class Recorder : IProgress<DownloadProgress>
    {
        public List<DownloadProgress> Reports { get; } = [];
        public void Report(DownloadProgress value)
        {
            lock (Reports)
                Reports.Add(value);
        }
    }
}
