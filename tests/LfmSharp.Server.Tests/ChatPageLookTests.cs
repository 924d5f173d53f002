using System.Globalization;
using System.Text.Json.Nodes;
using LfmSharp.Chat;
using LfmSharp.Testing;
using OpenQA.Selenium;

namespace LfmSharp.Server.Tests;

/// <summary>
/// The chat page's rendering in a real Chromium: Markdown through text nodes only (hostile HTML stays text), light and
/// dark modes, phone width, and the API-key prompt. Screenshots for a person to look at land in
/// <see cref="Browser.ArtifactDirectory"/>.
/// </summary>
[Collection("server")]
public sealed class ChatPageLookTests(ServerFixture fx)
{
    private const string Answer = """
        Here is a **short** answer with `inline code`, ~~no~~ *emphasis* and a [link](https://example.com).

        # Steps
        1. Load the model
        2. Start the server
           - bound to loopback
        3. Open the page

        ```csharp
        var model = LanguageModel.Load("model.gguf");
        Console.WriteLine(model.Name);
        ```

        | Option | Default |
        |---|---:|
        | temperature | 0.7 |
        | max tokens | 512 |

        > Quoted text.

        Hostile: <img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [bad](javascript:window.__xss=3)
        """;

    /// <summary>A stored conversation, as the page itself writes it (see app.js), with every kind of part.</summary>
    private static string SeedConversation() => new JsonArray(new JsonObject
    {
        ["id"] = "seed",
        ["title"] = "How do I run LfmSharp?",
        ["updated"] = 1,
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "user", ["content"] = "How do I run LfmSharp?" },
            new JsonObject
            {
                ["role"] = "assistant", ["content"] = "",
                ["reasoning"] = "The user wants the steps. Check the weather tool first.",
                ["reasoningTokens"] = 14, ["reasoningMs"] = 420,
                ["toolCalls"] = new JsonArray(new JsonObject { ["id"] = "call_1", ["name"] = "get_weather", ["arguments"] = "{\"city\":\"Paris\",\"unit\":\"C\"}" }),
                ["stats"] = new JsonObject { ["tokens"] = 31, ["tps"] = 88.4, ["ms"] = 600, ["finish"] = "tool_calls" },
            },
            new JsonObject { ["role"] = "user", ["content"] = "Thanks. And the full steps?" },
            new JsonObject
            {
                ["role"] = "assistant", ["content"] = Answer, ["reasoning"] = "List the steps, then show code.",
                ["reasoningTokens"] = 9, ["reasoningMs"] = 1300,
                ["stats"] = new JsonObject { ["tokens"] = 142, ["tps"] = 61.7, ["ms"] = 2600, ["finish"] = "stop" },
            }),
    }).ToJsonString();

    [SkippableFact]
    public async Task Markdown_renders_as_text_nodes_and_the_page_looks_right_light_dark_and_at_phone_width()
    {
        Skip.If(Browser.Missing is not null, Browser.Missing);
        using var browser = Browser.Start();
        browser.Emulate("light");
        browser.GoTo(fx.BaseAddress);
        browser.Js("localStorage.clear(); localStorage.setItem('lfm.conversations', arguments[0]); localStorage.setItem('lfm.current', '\"seed\"');", SeedConversation());
        browser.Driver.Navigate().Refresh();
        browser.Until(() => browser.FindAll("article.msg").Count == 4, "the stored conversation");
        await Task.Yield();

        var answer = browser.FindAll("article.msg.assistant")[1];
        var content = answer.FindElement(By.CssSelector(".content"));
        // Hostile HTML is shown as text and never becomes elements; a javascript: link stays text.
        Assert.Empty(browser.FindAll("#messages img, #messages script, #messages [onerror]"));
        Assert.Null(browser.Js("return window.__xss ?? null"));
        Assert.Contains("<img src=x onerror=\"window.__xss=1\">", content.Text);
        Assert.Contains("[bad](javascript:window.__xss=3)", content.Text);
        var links = content.FindElements(By.TagName("a"));
        Assert.Single(links);
        Assert.Equal("https://example.com/", links[0].GetDomProperty("href"));
        Assert.Equal("noopener noreferrer nofollow", links[0].GetDomAttribute("rel"));
        // Blocks and inline parts.
        Assert.Equal("short", content.FindElement(By.CssSelector("p strong")).Text);
        Assert.Equal("inline code", content.FindElement(By.CssSelector("p code")).Text);
        Assert.Equal("Steps", content.FindElement(By.CssSelector("h3")).Text);
        Assert.Equal(3, content.FindElements(By.CssSelector("ol > li")).Count);
        Assert.Equal("bound to loopback", content.FindElement(By.CssSelector("ol > li > ul > li")).Text);
        Assert.Equal("csharp", content.FindElement(By.CssSelector(".code .code-lang")).Text);
        Assert.Equal("var model = LanguageModel.Load(\"model.gguf\");\nConsole.WriteLine(model.Name);",
            browser.Js("return arguments[0].querySelector('pre code').textContent", content));
        Assert.Equal(2, content.FindElements(By.CssSelector("table tbody tr")).Count);
        Assert.Equal("align-right", content.FindElement(By.CssSelector("tbody td:nth-child(2)")).GetDomAttribute("class"));
        Assert.Equal("Quoted text.", content.FindElement(By.CssSelector("blockquote")).Text);
        // Stored parts: tool card, folded thinking with its count and time, tokens/s.
        Assert.Equal("get_weather", browser.Find(".tool-card .tool-name").Text);
        Assert.Equal("Thought for 1.3 s · 9 tokens", answer.FindElement(By.CssSelector("details.thinking summary")).Text);
        Assert.Equal("142 tokens · 61.7 tokens/s · 2.6 s", answer.FindElement(By.CssSelector(".meta")).Text);
        Assert.Equal("light", Theme(browser));
        browser.Screenshot("10-markdown-light-desktop");

        // Dark: followed from the system setting, then the toggle overrides it and is remembered.
        browser.Emulate("dark");
        browser.Driver.Navigate().Refresh();
        browser.Until(() => Theme(browser) == "dark", "dark mode from prefers-color-scheme");
        Assert.True(Luminance(browser, "body") < 0.1, "the dark page background is dark");
        browser.Screenshot("11-markdown-dark-desktop");
        browser.Find("#theme").Click();
        Assert.Equal("light", Theme(browser));
        Assert.True(Luminance(browser, "body") > 0.9, "the light page background is light");
        browser.Driver.Navigate().Refresh();
        browser.Until(() => browser.FindAll("article.msg").Count == 4, "the page after reload");
        Assert.Equal("light", Theme(browser));   // the toggle's choice outlives a reload
        browser.Find("#theme").Click();
        Assert.Equal("dark", Theme(browser));

        // Phone width: no sideways scrolling; the sidebar slides in from the menu button.
        browser.Viewport(390, 844, mobile: true);
        browser.Until(() => browser.Find("#menu").Displayed, "the menu button at phone width");
        Assert.True(Convert.ToDouble(browser.Js("return document.documentElement.scrollWidth"), CultureInfo.InvariantCulture) <= 390);
        browser.Until(() => Convert.ToDouble(browser.Js("return document.getElementById('sidebar').getBoundingClientRect().right"), CultureInfo.InvariantCulture) <= 0,
            "the sidebar to slide out of view");
        browser.Screenshot("12-phone-dark");
        browser.Find("#menu").Click();
        browser.Until(() => Convert.ToDouble(browser.Js("return document.getElementById('sidebar').getBoundingClientRect().left"), CultureInfo.InvariantCulture) >= 0, "the sidebar to slide in");
        Thread.Sleep(300);   // let the slide finish before the picture
        browser.Screenshot("13-phone-sidebar-dark");
        browser.Js("document.getElementById('scrim').click()");   // the sidebar covers the scrim's centre
        browser.Until(() => !browser.Find("#scrim").Displayed, "the sidebar to close");
        browser.Find("#theme").Click();
        browser.Screenshot("14-phone-light");
        browser.Find("#open-settings").Click();
        browser.Screenshot("15-phone-settings-light");
    }

    [SkippableFact]
    public async Task Asks_for_the_api_key_when_the_server_answers_401_and_sends_it_as_bearer()
    {
        Skip.If(Browser.Missing is not null, Browser.Missing);
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1, ApiKey = "open-sesame" });
        using var browser = Browser.Start();
        browser.GoTo(server.BaseAddress!);   // the page itself needs no key
        browser.Until(() => browser.Js("return document.getElementById('key-dialog').open") is true, "the API-key prompt");
        browser.Screenshot("16-api-key-prompt-light");
        browser.Find("#key-input").SendKeys("open-sesame");
        browser.Find("#key-save").Click();
        browser.Until(() => browser.Find("#model-name").Text == Path.GetFileName(fx.ModelPath), "the model name, fetched with the key");
        Assert.Equal("\"open-sesame\"", browser.Js("return localStorage.getItem('lfm.apiKey')"));

        // The settings reach the request: system prompt, max tokens, reasoning effort; extra fields merged last.
        var steer = Steer.Chain("OK", Steer.ImEnd);
        steer.AssertPromptAllows(fx.Model, [LfmChatMessage.System("Be brief."), LfmChatMessage.User("Hello")]);
        ChatPageTests.Settings(browser, new Dictionary<string, string>
        {
            ["#set-system"] = "Be brief.", ["#set-temperature"] = "0.7", ["#set-max-tokens"] = "1", ["#set-effort"] = "low",
            ["#set-extra"] = steer.Apply(new JsonObject()).ToJsonString(),
        });
        // Record what the page sends (WebDriver scripts are not bound by the page's CSP).
        browser.Js("window.sent = []; const f = window.fetch; window.fetch = (u, o) => { window.sent.push({ url: String(u), auth: o.headers.Authorization, body: o.body }); return f(u, o); };");
        ChatPageTests.Send(browser, "Hello");
        var answer = ChatPageTests.WaitForAnswer(browser, "done");
        Assert.Equal("O", answer.FindElement(By.CssSelector(".content")).Text);   // max tokens 1
        Assert.EndsWith("cut at max tokens", answer.FindElement(By.CssSelector(".meta")).Text);
        Assert.Equal(1, server.Metrics.RequestsCompleted);

        Assert.Equal("Bearer open-sesame", browser.Js("return window.sent[0].auth"));
        var body = JsonNode.Parse((string)browser.Js("return window.sent[0].body")!)!;
        Assert.Equal("system", (string?)body["messages"]![0]!["role"]);
        Assert.Equal("Be brief.", (string?)body["messages"]![0]!["content"]);
        Assert.Equal("Hello", (string?)body["messages"]![1]!["content"]);
        Assert.Equal(1, (int)body["max_tokens"]!);
        Assert.Equal("low", (string?)body["reasoning_effort"]);
        Assert.Equal(0, (double)body["temperature"]!);   // the extra fields' steering wins over the 0.7 field
        Assert.True((bool)body["stream"]!);
        Assert.True((bool)body["stream_options"]!["include_usage"]!);
        Assert.Equal(Path.GetFileName(fx.ModelPath), (string?)body["model"]);
    }

    private static string? Theme(Browser browser) => browser.Js("return document.documentElement.dataset.theme") as string;

    /// <summary>Relative luminance (0..1) of an element's computed background colour.</summary>
    private static double Luminance(Browser browser, string css)
    {
        string rgb = (string)browser.Js("return getComputedStyle(document.querySelector(arguments[0])).backgroundColor", css)!;
        var parts = rgb[(rgb.IndexOf('(') + 1)..rgb.IndexOf(')')].Split(',').Select(p => double.Parse(p.Trim(), CultureInfo.InvariantCulture) / 255).ToArray();
        return 0.2126 * parts[0] + 0.7152 * parts[1] + 0.0722 * parts[2];
    }
}
