using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;

namespace LfmSharp.Server.Tests;

/// <summary>
/// A headless Chromium driven through chromedriver (Debian's <c>chromium</c> and <c>chromium-driver</c>; scripts/test.sh
/// installs them). Paths can be moved with LFMSHARP_CHROMIUM and LFMSHARP_CHROMEDRIVER; screenshots go to
/// LFMSHARP_ARTIFACTS or, by default, TestResults/chat-page under the repository root.
/// </summary>
internal sealed class Browser : IDisposable
{
    private readonly ChromeDriver _driver;

    private Browser(ChromeDriver driver) => _driver = driver;

    public IWebDriver Driver => _driver;

    private static string ChromiumPath => Environment.GetEnvironmentVariable("LFMSHARP_CHROMIUM") ?? "/usr/bin/chromium";

    private static string DriverPath => Environment.GetEnvironmentVariable("LFMSHARP_CHROMEDRIVER") ?? "/usr/bin/chromedriver";

    /// <summary>Why no browser can run here, or null when one can.</summary>
    public static string? Missing =>
        File.Exists(ChromiumPath) && File.Exists(DriverPath)
            ? null
            : $"chromium/chromedriver not found at {ChromiumPath} and {DriverPath} (apt-get install chromium chromium-driver; scripts/test.sh does)";

    public static Browser Start(int width = 1280, int height = 860)
    {
        var options = new ChromeOptions { BinaryLocation = ChromiumPath };
        // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--disable-extensions", "--no-first-run", "--force-device-scale-factor=1", $"--window-size={width},{height}");
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(DriverPath)!, Path.GetFileName(DriverPath));
        service.HideCommandPromptWindow = true;
        service.SuppressInitialDiagnosticInformation = true;
        var driver = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        driver.Manage().Timeouts().ImplicitWait = TimeSpan.Zero;
        return new Browser(driver);
    }

    public void GoTo(Uri url) => _driver.Navigate().GoToUrl(url);

    public IWebElement Find(string css) => _driver.FindElement(By.CssSelector(css));

    public IReadOnlyList<IWebElement> FindAll(string css) => _driver.FindElements(By.CssSelector(css));

    public object? Js(string script, params object[] args) => _driver.ExecuteScript(script, args);

    /// <summary>Sets a field's value the way typing would (fires input), without typing a long text key by key.</summary>
    public void SetValue(string css, string value) =>
        Js("const e = document.querySelector(arguments[0]); e.value = arguments[1]; e.dispatchEvent(new Event('input', { bubbles: true }));", css, value);

    /// <summary>Emulates the system colour scheme (prefers-color-scheme) and a viewport size.</summary>
    public void Emulate(string colorScheme)
    {
        var feature = new Dictionary<string, object> { ["name"] = "prefers-color-scheme", ["value"] = colorScheme };
        _driver.ExecuteCdpCommand("Emulation.setEmulatedMedia", new Dictionary<string, object?> { ["features"] = new object[] { feature } });
    }

    public void Viewport(int width, int height, bool mobile)
    {
        _driver.ExecuteCdpCommand("Emulation.setDeviceMetricsOverride", new Dictionary<string, object?>
        {
            ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = mobile ? 2 : 1, ["mobile"] = mobile,
        });
    }

    /// <summary>Polls until <paramref name="condition"/> holds (exceptions count as "not yet").</summary>
    public T Until<T>(Func<T?> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var value = condition();
                if (value is not null && value is not false)
                    return value;
            }
            catch (WebDriverException e)
            {
                last = e;
            }
            Thread.Sleep(25);
        }
        Screenshot("timeout");
        throw new TimeoutException($"Timed out waiting for {what}. {last?.Message}");
    }

    public void Screenshot(string name)
    {
        Directory.CreateDirectory(ArtifactDirectory);
        _driver.GetScreenshot().SaveAsFile(Path.Combine(ArtifactDirectory, name + ".png"));
    }

    public static string ArtifactDirectory { get; } = Environment.GetEnvironmentVariable("LFMSHARP_ARTIFACTS") is { Length: > 0 } dir
        ? Path.GetFullPath(dir)
        : Path.Combine(RepositoryRoot(), "TestResults", "chat-page");

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "LfmSharp.slnx")))
                return d.FullName;
        }
        return Path.GetTempPath();
    }

    public void Dispose()
    {
        try
        {
            _driver.Quit();
        }
        finally
        {
            _driver.Dispose();
        }
    }
}
