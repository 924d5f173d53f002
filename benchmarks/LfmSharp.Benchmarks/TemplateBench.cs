using System.Diagnostics;
using System.Globalization;
using LfmSharp.Chat;
using LfmSharp.Generation;

namespace LfmSharp.Benchmarks;

/// <summary>
/// Chat-template rendering speed: <c>dotnet run -c Release --project benchmarks/LfmSharp.Benchmarks -- --templates
/// [FILE.jinja ...]</c>. Renders a 20-turn conversation (system prompt, 20 user turns, 20 assistant answers, some
/// with reasoning and tool calls, tool results) with 5 tools, after parsing the template once. Default templates:
/// tests/TestData/templates/own/*.jinja and the LFM ones of the corpus (.cache/templates, scripts/template-corpus.sh).
/// "fresh" builds new message objects for every render (nothing cached); "same" renders the same objects again, as
/// a chat session does for its history.
/// </summary>
internal static class TemplateBench
{
    public static int Run(string[] files)
    {
        if (files.Length == 0)
            files = DefaultTemplates();
        var tools = Tools();
        Console.WriteLine($"20-turn conversation ({Conversation().Count} messages), {tools.Count} tools; median of 9 batches");
        foreach (var file in files)
        {
            string source = File.ReadAllText(file);
            var parse = Stopwatch.StartNew();
            var template = new JinjaChatTemplate(source);
            double parseMs = parse.Elapsed.TotalMilliseconds;
            var same = Conversation();
            int chars = template.Render(same, tools).Length;
            var (freshWall, freshCpu) = Measure(() => template.Render(Conversation(), tools));
            var (sameWall, sameCpu) = Measure(() => template.Render(same, tools));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{Path.GetFileName(file),-32} parse+probe {parseMs,7:F2} ms  render fresh {freshWall,7:F1} µs wall {freshCpu,7:F1} µs cpu  same {sameWall,7:F1} / {sameCpu,7:F1} µs  ({chars:N0} chars)"));
        }
        return 0;
    }

    // Wall time and this thread's CPU time per render (on a loaded machine the CPU time is the steadier figure).
    private static (double Wall, double Cpu) Measure(Action render)
    {
        for (int i = 0; i < 200; i++)
            render();
        var wall = new double[9];
        var cpu = new double[9];
        const int perBatch = 200;
        for (int b = 0; b < wall.Length; b++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < perBatch; i++)
                render();
            wall[b] = sw.Elapsed.TotalMicroseconds / perBatch;
            cpu[b] = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds / perBatch;
        }
        Array.Sort(wall);
        Array.Sort(cpu);
        return (wall[wall.Length / 2], cpu[cpu.Length / 2]);
    }

    private static string[] DefaultTemplates()
    {
        string root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "LfmSharp.slnx")))
            root = Path.GetDirectoryName(root) ?? throw new ArgumentException("run from inside the repository, or name template files");
        var files = Directory.GetFiles(Path.Combine(root, "tests", "TestData", "templates", "own"), "*.jinja").ToList();
        string cache = Path.Combine(root, ".cache", "templates", "llama.cpp");
        if (Directory.Exists(cache))
            files.AddRange(Directory.GetFiles(cache, "LFM*.jinja").Concat(Directory.GetFiles(cache, "Qwen3.5-4B.jinja")));
        files.Sort(StringComparer.Ordinal);
        return [.. files];
    }

    private static List<ToolDefinition> Tools()
    {
        var tools = new List<ToolDefinition>();
        string[] names = ["get_weather", "search_web", "send_email", "create_event", "convert_currency"];
        foreach (var name in names)
        {
            tools.Add(ToolDefinition.FromJson("{\"type\": \"function\", \"function\": {\"name\": \"" + name + "\", \"description\": \"Does " + name
                + " for the user; returns JSON.\", \"parameters\": {\"type\": \"object\", \"properties\": {\"query\": {\"type\": \"string\", "
                + "\"description\": \"What to look up\"}, \"limit\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 50}, "
                + "\"exact\": {\"type\": \"boolean\"}}, \"required\": [\"query\"]}}}"));
        }
        return tools;
    }

    private static List<LfmChatMessage> Conversation()
    {
        var m = new List<LfmChatMessage> { LfmChatMessage.System("You are a helpful assistant. Answer briefly and use tools when they help.") };
        for (int turn = 0; turn < 20; turn++)
        {
            m.Add(LfmChatMessage.User($"Question number {turn}: what is the weather like in city {turn}, and should I take an umbrella?"));
            if (turn % 4 == 1)
            {
                m.Add(LfmChatMessage.Assistant("", $"I need the forecast for city {turn}.",
                    [new ToolCall($"call_{turn}", "get_weather", $$"""{"query": "city {{turn}}", "limit": 3, "exact": true}""")]));
                m.Add(LfmChatMessage.Tool($$"""{"temp_c": {{10 + turn}}, "rain": 0.{{turn % 10}}}""", $"call_{turn}", "get_weather"));
            }
            m.Add(LfmChatMessage.Assistant($"It is {10 + turn} °C in city {turn}; a light jacket is enough, no umbrella needed.",
                turn % 2 == 0 ? "The forecast is dry, so no umbrella." : null));
        }
        return m;
    }
}
