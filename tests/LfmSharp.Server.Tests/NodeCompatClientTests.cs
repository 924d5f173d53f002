using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using LfmSharp.Testing;

namespace LfmSharp.Server.Tests;

/// <summary>
/// JavaScript apps as they are configured in the wild: npm <c>openai</c> 6 with <c>responses.create</c> and with a
/// <c>gpt-4o-mini</c> chat model, and the Vercel AI SDK with <c>@ai-sdk/openai</c>'s default (Responses) model. Each
/// does a plain answer, a stream and one forced tool call against the tiny model.
/// </summary>
[Collection("server")]
public sealed class NodeCompatClientTests(ServerFixture fx)
{
    private const string Packages = "openai@6 ai@5 @ai-sdk/openai@2 zod@3";
    private static readonly Lazy<(string? Dir, string? Why)> s_packages = new(Install);

    /// <summary>Installs the packages once per machine into a temp folder; the reason when it cannot.</summary>
    private static (string? Dir, string? Why) Install()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lfmsharp-tests-npm-compat");
        if (new[] { "openai", "ai", "@ai-sdk/openai", "zod" }.All(p => File.Exists(Path.Combine(dir, "node_modules", p, "package.json"))))
            return (dir, null);
        if (Run("node", ["--version"], Path.GetTempPath(), 20) is not (0, _))
            return (null, "node is not installed");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "package.json"), "{\"name\":\"lfmsharp-compat-client-test\",\"private\":true,\"type\":\"module\"}");
        var (code, output) = Run("npm", ["install", .. Packages.Split(' '), "--no-audit", "--no-fund", "--loglevel=error"], dir, 300);
        if (code != 0)
            return (null, $"npm install {Packages} failed (exit {code}); the registry may be unreachable: {Tail(output)}");
        return (dir, null);
    }

    private static (int Code, string Output) Run(string file, string[] args, string dir, int timeoutSeconds)
    {
        try
        {
            var psi = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in args)
                psi.ArgumentList.Add(a);
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

    private static string Tail(string s) => s.Length > 600 ? s[^600..] : s;

    /// <summary>The steering of each of the three calls, as the extra body fields the scripts merge in.</summary>
    private static string Steering() => new JsonObject
    {
        ["text"] = Steer.Chain("Paris", Steer.ImEnd).Apply(new JsonObject()),
        ["stream"] = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "Paris", Steer.ImEnd).Apply(new JsonObject()),
        ["tool"] = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd).Apply(new JsonObject()),
    }.ToJsonString();

    private JsonElement RunScript(string name, string script)
    {
        var (dir, why) = s_packages.Value;
        Skip.If(dir is null, why);
        string path = Path.Combine(dir!, name);
        File.WriteAllText(path, script);
        var (code, output) = Run("node", [path, new Uri(fx.BaseAddress, "v1").ToString().TrimEnd('/'), Steering(), Steer.DigitTailUser], dir!, 120);
        Assert.True(code == 0, $"node {name} failed (exit {code}): {Tail(output)}");
        string last = output.Trim().Split('\n')[^1];
        using var doc = JsonDocument.Parse(last);
        return doc.RootElement.Clone();
    }

    private static void AssertChatStreamAndTool(JsonElement r)
    {
        Assert.Equal("Paris", r.GetProperty("text").GetString());
        Assert.Equal("Paris", r.GetProperty("streamed").GetString());
        Assert.True(r.GetProperty("deltas").GetInt32() >= 2, r.ToString());
        Assert.Equal("echo", r.GetProperty("toolName").GetString());
        using var args = JsonDocument.Parse(r.GetProperty("toolArgs").GetString()!);
        Assert.Equal(1, args.RootElement.GetProperty("x").GetInt32());
    }

    private const string EchoTool = "{ type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] }";

    [SkippableFact]
    public void Npm_openai_responses_create_plain_streamed_and_tool_call()
    {
        var r = RunScript("responses.mjs", $$"""
            import OpenAI from 'openai';
            const [baseURL, steering, toolUser] = process.argv.slice(2);
            const steer = JSON.parse(steering);
            const client = new OpenAI({ baseURL, apiKey: 'unused' });
            const plain = await client.responses.create({ model: 'gpt-4o-mini', input: 'Hello', max_output_tokens: 32, ...steer.text });
            const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'Hello', max_output_tokens: 32, stream: true, ...steer.stream });
            let streamed = '', reasoning = '', deltas = 0, usage = null, types = [];
            for await (const ev of stream) {
              types.push(ev.type);
              if (ev.type === 'response.output_text.delta') { streamed += ev.delta; deltas++; }
              if (ev.type === 'response.reasoning_text.delta') reasoning += ev.delta;
              if (ev.type === 'response.completed') usage = ev.response.usage;
            }
            const tool = await client.responses.create({
              model: 'gpt-4o-mini', input: toolUser, max_output_tokens: 32, ...steer.tool,
              tools: [{ type: 'function', name: 'echo', description: 'Echo a number', parameters: {{EchoTool}}, strict: false }],
              tool_choice: { type: 'function', name: 'echo' },
            });
            const call = tool.output.find(i => i.type === 'function_call');
            console.log(JSON.stringify({ text: plain.output_text, model: plain.model, streamed, reasoning, deltas, usage,
              last: types[types.length - 1], toolName: call?.name, toolArgs: call?.arguments }));
            """);
        AssertChatStreamAndTool(r);
        Assert.Equal("gpt-4o-mini", r.GetProperty("model").GetString());
        Assert.Equal("hm", r.GetProperty("reasoning").GetString());
        Assert.Equal("response.completed", r.GetProperty("last").GetString());
        Assert.True(r.GetProperty("usage").GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32() >= 2);
    }

    [SkippableFact]
    public void Npm_openai_chat_with_gpt_4o_mini_plain_streamed_and_tool_call()
    {
        var r = RunScript("chat-gpt4omini.mjs", $$"""
            import OpenAI from 'openai';
            const [baseURL, steering, toolUser] = process.argv.slice(2);
            const steer = JSON.parse(steering);
            const client = new OpenAI({ baseURL, apiKey: 'unused' });
            const messages = [{ role: 'user', content: 'Hello' }];
            const plain = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 32, ...steer.text });
            const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, max_tokens: 32, stream: true, ...steer.stream });
            let streamed = '', deltas = 0, model = null;
            for await (const chunk of stream) {
              model = chunk.model;
              const c = chunk.choices[0]?.delta?.content;
              if (c) { streamed += c; deltas++; }
            }
            const tool = await client.chat.completions.create({
              model: 'gpt-4o-mini', messages: [{ role: 'user', content: toolUser }], max_tokens: 32, ...steer.tool,
              tools: [{ type: 'function', function: { name: 'echo', description: 'Echo a number', parameters: {{EchoTool}} } }],
              tool_choice: { type: 'function', function: { name: 'echo' } },
            });
            const call = tool.choices[0].message.tool_calls?.[0];
            console.log(JSON.stringify({ text: plain.choices[0].message.content, model: plain.model, streamModel: model, streamed, deltas,
              toolName: call?.function.name, toolArgs: call?.function.arguments }));
            """);
        AssertChatStreamAndTool(r);
        Assert.Equal("gpt-4o-mini", r.GetProperty("model").GetString());
        Assert.Equal("gpt-4o-mini", r.GetProperty("streamModel").GetString());
    }

    [SkippableFact]
    public void Vercel_ai_sdk_default_openai_model_plain_streamed_and_tool_call()
    {
        var r = RunScript("vercel-ai.mjs", """
            import { createOpenAI } from '@ai-sdk/openai';
            import { generateText, streamText, tool } from 'ai';
            import { z } from 'zod';
            const [baseURL, steering, toolUser] = process.argv.slice(2);
            const steer = JSON.parse(steering);
            // The steering fields have no place in the SDK's options: a fetch wrapper adds them to the body it wrote.
            let extra = {};
            const openai = createOpenAI({ baseURL, apiKey: 'unused', fetch: async (url, init) => {
              const body = JSON.parse(init.body);
              return fetch(url, { ...init, body: JSON.stringify({ ...body, ...extra }) });
            } });
            const model = openai('gpt-4o-mini');   // the default: the Responses API
            extra = steer.text;
            const plain = await generateText({ model, prompt: 'Hello', maxOutputTokens: 32, temperature: 0 });
            extra = steer.stream;
            const result = streamText({ model, prompt: 'Hello', maxOutputTokens: 32, temperature: 0 });
            let streamed = '', deltas = 0;
            for await (const t of result.textStream) { streamed += t; deltas++; }
            const usage = await result.usage;
            extra = steer.tool;
            const called = await generateText({ model, prompt: toolUser, maxOutputTokens: 32, temperature: 0,
              tools: { echo: tool({ description: 'Echo a number', inputSchema: z.object({ x: z.number().int() }) }) },
              toolChoice: { type: 'tool', toolName: 'echo' } });
            const call = called.toolCalls[0];
            console.log(JSON.stringify({ text: plain.text, streamed, deltas, reasoningTokens: usage.reasoningTokens,
              toolName: call?.toolName, toolArgs: JSON.stringify(call?.input) }));
            """);
        AssertChatStreamAndTool(r);
        Assert.True(r.GetProperty("reasoningTokens").GetInt32() >= 2, r.ToString());
    }
}
