using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using LfmSharp.Testing;

namespace LfmSharp.Cli.Tests;

/// <summary>Bad settings give one clear line (never a stack trace); the real server process stops cleanly on signals.</summary>
public sealed class ReliabilityCommandTests
{
    private static (int Code, string Out, string Err) Lfm(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = Program.Run(args, o, e, new StringReader(""));
        return (code, o.ToString(), e.ToString());
    }

    private static void AssertOneLineError((int Code, string Out, string Err) r, string contains)
    {
        Assert.True(r.Code == 1, $"exit {r.Code}: {r.Err}");
        string err = r.Err.Trim();
        Assert.DoesNotContain('\n', err);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.Contains(contains, err, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> BadSettings
    {
        get
        {
            var data = new TheoryData<string, string, string>();
            foreach (string command in new[] { "run", "chat", "demo" })
            {
                data.Add(command, "--ctx=0", "--ctx");
                data.Add(command, "--ctx=-5", "--ctx");
                data.Add(command, "--ctx=100000000", "does not fit");
                data.Add(command, "--ctx=2147483647", "does not fit");
                data.Add(command, "-t=0", "--threads");
                data.Add(command, "-t=100000", "--threads");
                data.Add(command, "-n=0", "--max-tokens");
            }
            return data;
        }
    }

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void Bad_context_threads_and_token_limits_are_one_line_errors(string command, string option, string contains)
    {
        var args = new List<string> { command, "-m", TestData.Model("tiny-f32"), option };
        if (command == "run")
            args.Add("hi");   // demo takes --prompt, chat reads stdin
        AssertOneLineError(Lfm([.. args]), contains);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("100000")]
    public void Serve_with_a_batch_size_out_of_range_exits_1_with_one_line(string size)
    {
        var (code, _, err) = Lfm("serve", "-m", TestData.Model("tiny-f32"), "--port", "0", "--batch-size", size);
        Assert.Equal(1, code);
        Assert.Contains($"--batch-size, tokens per forward pass) must be in 1..8192; got {size}.", err, StringComparison.Ordinal);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Serve_with_a_context_that_cannot_fit_exits_1_with_one_line()
    {
        var (code, _, err) = Lfm("serve", "-m", TestData.Model("tiny-f32"), "--port", "0", "--ctx", "100000000");
        Assert.Equal(1, code);
        Assert.Contains("does not fit", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_directory_or_a_fifo_as_model_is_refused_at_once()
    {
        string dir = TestData.NewTempDir();
        AssertOneLineError(Lfm("run", "-m", dir, "hi"), "is a directory");
        if (OperatingSystem.IsWindows())
            return;
        string fifo = Path.Combine(dir, "m.gguf");
        using (var mk = Process.Start("mkfifo", fifo))
            mk.WaitForExit();
        AssertOneLineError(Lfm("run", "-m", fifo, "hi"), "not a regular file");
    }

    [Theory]
    [InlineData("TERM", false)]
    [InlineData("INT", true)]   // started from a script in the background: SIGINT inherited as ignored
    public async Task Serve_process_drains_a_running_stream_and_exits_0_on_signal(string signal, bool sigintIgnored)
    {
        if (OperatingSystem.IsWindows())
            return;
        int port = FreePort();
        string lfm = Path.Combine(AppContext.BaseDirectory, "lfm.dll");
        string serve = $"exec dotnet \"{lfm}\" serve -m \"{TestData.Model("small-q4_0")}\" --port {port} -t 1 --slots 1 --ctx 4096 --shutdown-grace 60";
        var psi = new ProcessStartInfo("bash", ["-c", (sigintIgnored ? "trap '' INT; " : "") + serve])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var server = Process.Start(psi)!;
        var stdout = server.StandardOutput.ReadToEndAsync();
        var stderr = server.StandardError.ReadToEndAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromMinutes(2) };
            await WaitHealthyAsync(http, server);
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = new StringContent("{\"messages\":[{\"role\":\"user\",\"content\":\"count\"}],\"max_tokens\":400,\"stream\":true,\"logit_bias\":{\"7\":-100}}", Encoding.UTF8, "application/json"),
            };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // Signal once the first token is out, so the stream is running when the signal arrives.
            string? line;
            while ((line = await reader.ReadLineAsync()) is not null && !line.Contains("\"finish_reason\":null", StringComparison.Ordinal))
            {
            }
            using (var kill = Process.Start("kill", ["-" + signal, server.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await kill.WaitForExitAsync();
            string rest = await reader.ReadToEndAsync();
            Assert.Contains("data: [DONE]", rest, StringComparison.Ordinal);
            Assert.Contains("\"finish_reason\":\"", rest, StringComparison.Ordinal);
            using var exitTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await server.WaitForExitAsync(exitTimeout.Token);
            Assert.True(server.ExitCode == 0, $"exit {server.ExitCode}: {await stdout} {await stderr}");
            Assert.Contains("lfm serve: stopped", await stdout, StringComparison.Ordinal);
        }
        finally
        {
            if (!server.HasExited)
                server.Kill(entireProcessTree: true);
        }
    }

    private static async Task WaitHealthyAsync(HttpClient http, Process server)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromMinutes(2))
        {
            Assert.False(server.HasExited, "the server exited before it was ready");
            try
            {
                using var r = await http.GetAsync("health");
                if (r.StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(200);
        }
        Assert.Fail("the server did not become healthy");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
