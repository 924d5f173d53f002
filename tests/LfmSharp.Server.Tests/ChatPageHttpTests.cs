using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;

namespace LfmSharp.Server.Tests;

/// <summary>The chat page's files over plain HTTP: content types, the security headers, caching, and the API key.</summary>
[Collection("server")]
public sealed partial class ChatPageHttpTests(ServerFixture fx)
{
    [GeneratedRegex("(?:src|href)=\"(/[^\"]*)\"")]
    private static partial Regex LocalReference();

    [Fact]
    public async Task Page_and_every_file_it_references_are_served_with_their_content_type_and_a_strict_csp()
    {
        using var page = await fx.Http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync();
        string csp = string.Join(";", page.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("script-src 'self'", csp);
        Assert.Contains("default-src 'none'", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.Equal("nosniff", page.Headers.GetValues("X-Content-Type-Options").Single());
        // With script-src 'self' an inline script or handler would not run: the page must have none.
        Assert.DoesNotMatch("<script(?![^>]*\\bsrc=)", html);
        Assert.DoesNotMatch("\\son[a-z]+=", html);
        Assert.DoesNotContain(" style=", html);

        var expected = new Dictionary<string, string> { [".js"] = "text/javascript", [".css"] = "text/css", [".svg"] = "image/svg+xml" };
        var references = LocalReference().Matches(html).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Contains("/webui/app.js", references);
        Assert.Contains("/webui/markdown.js", references);
        foreach (string path in references)
        {
            using var file = await fx.Http.GetAsync(path);
            Assert.True(file.StatusCode == HttpStatusCode.OK, $"{path}: {(int)file.StatusCode}");
            Assert.Equal(expected[Path.GetExtension(path)], file.Content.Headers.ContentType?.MediaType);
            Assert.True((await file.Content.ReadAsByteArrayAsync()).Length > 0, path);
        }
        using var missing = await fx.Http.GetAsync("/webui/nope.js");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Unchanged_file_revalidates_to_304_and_head_sends_no_body()
    {
        using var first = await fx.Http.GetAsync("/webui/app.js");
        var etag = first.Headers.ETag;
        Assert.NotNull(etag);
        Assert.Equal("no-cache", first.Headers.CacheControl?.ToString());
        using var again = new HttpRequestMessage(HttpMethod.Get, "/webui/app.js");
        again.Headers.IfNoneMatch.Add(etag!);
        using var notModified = await fx.Http.SendAsync(again);
        Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        Assert.Empty(await notModified.Content.ReadAsByteArrayAsync());

        using var head = await fx.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        using var get = await fx.Http.GetAsync("/");
        Assert.Equal((await get.Content.ReadAsByteArrayAsync()).Length, head.Content.Headers.ContentLength);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task With_an_api_key_the_page_loads_without_it_but_the_api_still_needs_it()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { ApiKey = "k3y" });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var page = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        using var script = await http.GetAsync("/webui/app.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
        using var models = await http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, models.StatusCode);
        using var withKey = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        withKey.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "k3y");
        using var ok = await http.SendAsync(withKey);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }
}
