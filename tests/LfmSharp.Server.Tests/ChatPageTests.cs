using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using LfmSharp.Chat;
using LfmSharp.Testing;
using OpenQA.Selenium;
using Xunit.Abstractions;

namespace LfmSharp.Server.Tests;

/// <summary>
/// The chat page at <c>/</c> in a real headless Chromium, against a server on the tiny fixture model. The model is
/// steered (<see cref="Steer"/>) through the page's "extra request fields" setting, so its answers are exact.
/// Screenshots land in <see cref="Browser.ArtifactDirectory"/>.
/// </summary>
[Collection("server")]
public sealed partial class ChatPageTests(ServerFixture fx, ITestOutputHelper output)
{
    [GeneratedRegex(@"^Thought for \d+(\.\d)? m?s · (\d+) tokens$")]
    private static partial Regex ThoughtSummary();

    [GeneratedRegex(@"^(\d+) tokens · (\d+\.\d) tokens/s · \d+(\.\d)? m?s$")]
    private static partial Regex AnswerMeta();

    [SkippableFact]
    public async Task Streams_an_answer_with_thinking_edits_regenerates_and_shows_tool_calls()
    {
        Skip.If(Browser.Missing is not null, Browser.Missing);
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1 });
        using var browser = Browser.Start();
        browser.GoTo(server.BaseAddress!);
        browser.Until(() => browser.Find("#model-name").Text == Path.GetFileName(fx.ModelPath), "the model name from /v1/models");
        browser.Screenshot("01-empty-light");

        // A streamed answer that thinks first: "<think>hm</think># Hey".
        var thinking = Steer.Chain(Steer.Think, "hm", Steer.EndThink, "# Hey", Steer.ImEnd);
        thinking.AssertPromptAllows(fx.Model, [LfmChatMessage.User("Hello")]);
        thinking.AssertPromptAllows(fx.Model, [LfmChatMessage.User("Hello again")]);
        SetExtra(browser, thinking.Apply(new JsonObject { ["max_tokens"] = 32 }));
        Send(browser, "Hello");
        var answer = WaitForAnswer(browser, "done");
        Assert.Equal("Hey", answer.FindElement(By.CssSelector(".content h3")).Text);   // "# Hey" rendered as a heading

        // The thinking: folded once the answer came, with its token count and time; opens and closes on click.
        var details = answer.FindElement(By.CssSelector("details.thinking"));
        var summary = details.FindElement(By.TagName("summary"));
        Assert.False(IsOpen(browser, details));
        var match = ThoughtSummary().Match(summary.Text);
        Assert.True(match.Success, $"thinking summary '{summary.Text}'");
        Assert.InRange(int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), 2, 4);   // 'h', 'm' (+ the tags)
        Assert.False(details.FindElement(By.CssSelector(".thinking-body")).Displayed);
        summary.Click();
        browser.Until(() => IsOpen(browser, details), "the thinking block to open");
        Assert.Equal("hm", details.FindElement(By.CssSelector(".thinking-body")).Text);
        browser.Screenshot("02-thinking-open-light");
        summary.Click();
        browser.Until(() => !IsOpen(browser, details), "the thinking block to close");

        // Tokens/s after the answer, from the server's timings.
        var meta = AnswerMeta().Match(answer.FindElement(By.CssSelector(".meta")).Text);
        Assert.True(meta.Success, $"answer meta '{answer.FindElement(By.CssSelector(".meta")).Text}'");
        Assert.True(double.Parse(meta.Groups[2].Value, CultureInfo.InvariantCulture) > 0);

        // Edit and resend: the old answer goes, the edited question is asked again.
        long completed = server.Metrics.RequestsCompleted;
        browser.Find("article.msg.user .edit").Click();
        browser.SetValue("article.msg.user .edit-box", "Hello again");
        browser.Find("article.msg.user .save-edit").Click();
        answer = WaitForAnswer(browser, "done");
        Assert.Equal("Hello again", browser.Find("article.msg.user .bubble").Text);
        Assert.Equal(2, browser.FindAll("article.msg").Count);
        Assert.Equal(completed + 1, server.Metrics.RequestsCompleted);
        Assert.Equal("Hey", answer.FindElement(By.CssSelector(".content h3")).Text);

        // Regenerate: the last answer is replaced by a new one.
        answer.FindElement(By.CssSelector(".regenerate")).Click();
        browser.Until(() => server.Metrics.RequestsCompleted == completed + 2, "the regenerated answer's request");
        answer = WaitForAnswer(browser, "done");
        Assert.Equal(2, browser.FindAll("article.msg").Count);
        Assert.Equal("Hey", answer.FindElement(By.CssSelector(".content h3")).Text);

        // A tool call, in a new conversation, shown as a card.
        browser.Find("#new-chat").Click();
        var call = Steer.Chain(Steer.ToolCallStart, "[echo(x=1)]", Steer.ToolCallEnd, Steer.ImEnd);
        var tools = new[] { ToolDefinition.FromJson(ChatEndpointTests.EchoTool) };
        call.AssertPromptAllows(fx.Model, [LfmChatMessage.User(Steer.DigitTailUser)], tools);
        SetExtra(browser, call.Apply(new JsonObject { ["max_tokens"] = 32, ["tools"] = JsonNode.Parse("[" + ChatEndpointTests.EchoTool + "]") }));
        Send(browser, Steer.DigitTailUser);
        answer = WaitForAnswer(browser, "done");
        var card = answer.FindElement(By.CssSelector(".tool-card"));
        Assert.Equal("echo", card.FindElement(By.CssSelector(".tool-name")).Text);
        using (var args = JsonDocument.Parse(card.FindElement(By.CssSelector(".tool-args")).Text))
            Assert.Equal(1, args.RootElement.GetProperty("x").GetInt32());
        Assert.Equal("", answer.FindElement(By.CssSelector(".content")).Text);   // no tool markup leaks into the text
        browser.Screenshot("03-tool-call-light");
        Assert.Equal(2, browser.FindAll("#conversations li").Count);
    }

    private const int StepMs = 100;

    [SkippableFact]
    public async Task Stop_aborts_the_request_and_the_server_cancels_the_generation_then_reload_keeps_it()
    {
        Skip.If(Browser.Missing is not null, Browser.Missing);
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 1 });
        // Slow the steps down so the answer is long in time, and a late cancellation shows as extra steps.
        server.Scheduler!.StepDelay = TimeSpan.FromMilliseconds(StepMs);
        using var browser = Browser.Start();
        browser.GoTo(server.BaseAddress!);
        browser.Until(() => browser.Find("#model-name").Text.Length > 0, "the model name");

        // The end tokens are banned, so only the 1500-token limit would end this answer.
        SetExtra(browser, new JsonObject
        {
            ["max_tokens"] = 1500, ["temperature"] = 1.0, ["seed"] = 7,
            ["logit_bias"] = new JsonObject { [Steer.EndOfText.ToString(CultureInfo.InvariantCulture)] = -100, [Steer.ImEnd.ToString(CultureInfo.InvariantCulture)] = -100 },
        });
        Send(browser, "Talk");
        var answer = WaitForAnswer(browser, "streaming");
        browser.Until(() => answer.FindElement(By.CssSelector(".content")).Text.Length > 20, "some streamed text");
        Assert.True(browser.Find("#stop").Displayed);
        Assert.False(browser.Find("#send").Displayed);

        // Clicked from a script, so the fetch is aborted by the time the call returns (a WebDriver click returns later).
        long stepsBeforeClick = server.Scheduler.Steps;
        browser.Js("document.getElementById('stop').click()");
        long stepsAtAbort = server.Scheduler.Steps;
        answer = WaitForAnswer(browser, "stopped");
        await ServiceEndpointTests.WaitUntilAsync(() => server.Scheduler.Active == 0);
        long stepsAtEnd = server.Scheduler.Steps;
        output.WriteLine($"decode steps ({StepMs} ms each): {stepsAtAbort - stepsBeforeClick} during the click call, {stepsAtEnd - stepsAtAbort} after the abort");
        await ServiceEndpointTests.WaitUntilAsync(() => server.Metrics.RequestsCancelled == 1);
        Assert.Equal(0, server.Metrics.RequestsCompleted);
        // The disconnect reaches the scheduler, which checks before every step, within a token or so (one step may
        // be under way when the abort lands), far short of the 1500 tokens asked for; nothing runs for it afterwards.
        Assert.True(stepsAtEnd - stepsAtAbort <= 2, $"{stepsAtEnd - stepsAtAbort} steps of {StepMs} ms ran after the fetch was aborted");
        Assert.True(stepsAtEnd < 1500);
        await Task.Delay(200);
        Assert.Equal(stepsAtEnd, server.Scheduler.Steps);
        Assert.EndsWith("stopped", answer.FindElement(By.CssSelector(".meta")).Text);
        Assert.True(browser.Find("#send").Displayed);
        Assert.False(browser.Find("#stop").Displayed);
        string partial = answer.FindElement(By.CssSelector(".content")).Text;
        Assert.NotEmpty(partial);
        browser.Screenshot("04-stopped-light");

        // Reload: the conversation and its partial answer come back from localStorage.
        browser.Driver.Navigate().Refresh();
        browser.Until(() => browser.FindAll("#conversations li").Count == 1, "the stored conversation in the sidebar");
        Assert.Equal("Talk", browser.Find("#conversations li.active .conv-title").Text);
        Assert.Equal("Talk", browser.Find("article.msg.user .bubble").Text);
        answer = WaitForAnswer(browser, "stopped");
        Assert.Equal(partial, answer.FindElement(By.CssSelector(".content")).Text);

        // New chat empties the view; the stored one is a click away; delete removes it.
        browser.Find("#new-chat").Click();
        Assert.Empty(browser.FindAll("article.msg"));
        browser.Find("#conversations li .conv-title").Click();
        browser.Until(() => browser.FindAll("article.msg").Count == 2, "the conversation to open again");
        browser.Js("document.querySelector('#conversations li .conv-delete').click()");
        browser.Until(() => browser.FindAll("#conversations li").Count == 0, "the conversation to be deleted");
        Assert.Equal("[]", browser.Js("return localStorage.getItem('lfm.conversations')"));
    }

    internal static void SetExtra(Browser browser, JsonObject fields) =>
        Settings(browser, new Dictionary<string, string> { ["#set-extra"] = fields.ToJsonString() });

    /// <summary>Fills settings fields (CSS selector → value) in the settings dialog and saves.</summary>
    internal static void Settings(Browser browser, IReadOnlyDictionary<string, string> values)
    {
        browser.Find("#open-settings").Click();
        foreach (var (css, value) in values)
            browser.SetValue(css, value);
        browser.Find("#save-settings").Click();
        browser.Until(() => browser.Js("return document.getElementById('settings').open") is false, "the settings dialog to close");
    }

    internal static void Send(Browser browser, string text)
    {
        var input = browser.Find("#input");
        input.Clear();
        input.SendKeys(text);
        input.SendKeys(Keys.Enter);
    }

    /// <summary>The last assistant message once its data-state is <paramref name="state"/>.</summary>
    internal static IWebElement WaitForAnswer(Browser browser, string state) =>
        browser.Until(() =>
        {
            var answers = browser.FindAll("article.msg.assistant");
            return answers.Count > 0 && answers[^1].GetDomAttribute("data-state") == state ? answers[^1] : null;
        }, $"an answer in state '{state}'");

    private static bool IsOpen(Browser browser, IWebElement details) => browser.Js("return arguments[0].open", details) is true;
}
