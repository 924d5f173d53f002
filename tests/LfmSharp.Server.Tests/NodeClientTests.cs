using System.Diagnostics;
using System.Text.Json;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>The npm <c>openai</c> package (v4) streaming from the server, as a JavaScript app would.</summary>
[Collection("server")]
public sealed class NodeClientTests(ServerFixture fx)
{
    private static readonly Lazy<(string? Dir, string? Why)> s_package = new(Install);

    /// <summary>Installs openai@4 once per machine into a temp folder; the reason when it cannot.</summary>
    private static (string? Dir, string? Why) Install()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lfmsharp-tests-npm-openai4");
        if (File.Exists(Path.Combine(dir, "node_modules", "openai", "package.json")))
            return (dir, null);
        if (Run("node", "--version", Path.GetTempPath(), 20) is not (0, _))
            return (null, "node is not installed");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "package.json"), "{\"name\":\"lfmsharp-node-client-test\",\"private\":true,\"type\":\"module\"}");
        var (code, output) = Run("npm", "install openai@4 --no-audit --no-fund --loglevel=error", dir, 180);
        if (code != 0)
            return (null, $"npm install openai@4 failed (exit {code}); the registry may be unreachable: {Tail(output)}");
        return (dir, null);
    }

    private static (int Code, string Output) Run(string file, string args, string dir, int timeoutSeconds)
    {
        try
        {
            var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutSeconds * 1000))
            {
                p.Kill(entireProcessTree: true);
                return (-1, "timed out");
            }
            return (p.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, e.Message);
        }
    }

    private static string Tail(string s) => s.Length > 400 ? s[^400..] : s;

    [SkippableFact]
    public void Npm_openai_client_streams_reasoning_and_content()
    {
        var (dir, why) = s_package.Value;
        Skip.If(dir is null, why);

        var steer = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd);
        string script = """
            import OpenAI from 'openai';
            const [baseURL, model, bias, window] = process.argv.slice(2);
            const client = new OpenAI({ baseURL, apiKey: 'unused' });
            const stream = await client.chat.completions.create({
              model, stream: true, stream_options: { include_usage: true },
              messages: [{ role: 'user', content: 'Hello' }],
              temperature: 0, max_tokens: 32, logit_bias: JSON.parse(bias),
              repetition_penalty: 100, repeat_last_n: Number(window),
            });
            let content = '', reasoning = '', finish = null, usage = null, chunks = 0;
            for await (const chunk of stream) {
              chunks++;
              const choice = chunk.choices[0];
              if (choice) {
                content += choice.delta.content ?? '';
                reasoning += choice.delta.reasoning_content ?? '';
                finish = choice.finish_reason ?? finish;
              }
              if (chunk.usage) usage = chunk.usage;
            }
            console.log(JSON.stringify({ content, reasoning, finish, usage, chunks }));
            """;
        File.WriteAllText(Path.Combine(dir!, "stream.mjs"), script);
        string bias = JsonSerializer.Serialize(steer.Bias.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value));
        var psi = new ProcessStartInfo("node") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "stream.mjs", new Uri(fx.BaseAddress, "v1").ToString(), fx.ModelId, bias, steer.Window.ToString() })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(60_000), "node did not finish");
        Assert.True(p.ExitCode == 0, "node failed: " + stderr.Result + stdout.Result);

        using var result = JsonDocument.Parse(stdout.Result.Trim().Split('\n')[^1]);
        var r = result.RootElement;
        Assert.Equal("Paris", r.GetProperty("content").GetString());
        Assert.Equal("hm", r.GetProperty("reasoning").GetString());
        Assert.Equal("stop", r.GetProperty("finish").GetString());
        Assert.True(r.GetProperty("usage").GetProperty("completion_tokens_details").GetProperty("reasoning_tokens").GetInt32() >= 2);
        Assert.True(r.GetProperty("chunks").GetInt32() >= 4);
    }
}
