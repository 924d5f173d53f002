namespace LfmSharp.Hub.Tests;

/// <summary>Pulling through the fake hub: layout, reuse, resume, integrity, tokens, errors, retries, offline, locks.</summary>
public sealed class PullTests : HubTestBase
{
    [Fact]
    public async Task Pull_lays_out_the_cache_as_huggingface_hub_does_and_a_second_resolve_uses_no_network()
    {
        var progress = new Recorder();
        var result = await PullAsync("hf.co/Org/Tiny-GGUF:q4_0", progress: progress);

        string repoDir = RepoFolder("Org/Tiny-GGUF");
        string commit = Hub.Repos["Org/Tiny-GGUF"].Commit;
        string sha = FakeHub.Sha256(Q4_0);
        Assert.Equal(commit, result.Commit);
        Assert.True(result.Downloaded);
        Assert.Equal("Q4_0", result.Quant);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main")));
        Assert.Equal(Q4_0, File.ReadAllBytes(Path.Combine(repoDir, "blobs", sha)));
        string link = Path.Combine(repoDir, "snapshots", commit, "Tiny-Q4_0.gguf");
        Assert.Equal(link, result.Path);
        Assert.Equal(Path.Combine("..", "..", "blobs", sha), new FileInfo(link).LinkTarget);
        Assert.Equal(Q4_0, File.ReadAllBytes(link));
        Assert.Single(Directory.GetFiles(Path.Combine(repoDir, "blobs")));   // only the chosen quant, no .incomplete left
        Assert.Contains(progress.Reports, p => p.Completed && p.BytesDone == Q4_0.Length && p.File == "Tiny-Q4_0.gguf");
        // The listing was paged (5 files, 3 a page) and the download went to the second host without the token.
        Assert.Equal(2, Hub.Count("HUB GET /api/models/Org/Tiny-GGUF/tree/"));
        Assert.Equal(1, Hub.Count("CDN GET /blobs/" + sha));

        int before = Hub.Log.Count;
        string again = await ModelLocator.ResolveAsync("Org/Tiny-GGUF:Q4_0", Options());
        Assert.Equal(result.Path, again);
        Assert.Equal(before, Hub.Log.Count);

        // `pull` checks the hub again, but finds the blob and downloads nothing.
        var second = await PullAsync("Org/Tiny-GGUF:Q4_0");
        Assert.False(second.Downloaded);
        Assert.Equal(1, Hub.Count("CDN GET /blobs/" + sha));

        // A blob deleted by hand leaves a dangling link: the name is pulled again instead of failing to open.
        File.Delete(Path.Combine(repoDir, "blobs", sha));
        Assert.Null(new HubClient(Options()).FindCached(ModelReference.Parse("Org/Tiny-GGUF:Q4_0")));
        Assert.Equal(result.Path, await ModelLocator.ResolveAsync("Org/Tiny-GGUF:Q4_0", Options()));
        Assert.Equal(Q4_0, File.ReadAllBytes(result.Path));
        Assert.Equal(2, Hub.Count("CDN GET /blobs/" + sha));
    }

    [Fact]
    public async Task Without_a_quant_Q4_K_M_is_taken_and_the_cache_lists_and_removes_it()
    {
        var result = await PullAsync("Org/Tiny-GGUF");
        Assert.EndsWith("Tiny-Q4_K_M.gguf", result.Path, StringComparison.Ordinal);
        await PullAsync("Org/Tiny-GGUF:Q8_0");

        var cache = new HubCache(CacheDir);
        var listed = cache.List();
        Assert.Equal(["Q4_K_M", "Q8_0"], listed.Select(m => m.Quant));
        Assert.All(listed, m => Assert.Equal("main", m.Revision));
        Assert.Equal(Q8_0.Length, listed[1].SizeBytes);

        Assert.Equal(Q8_0.Length, cache.Remove(new ModelReference("Org/Tiny-GGUF", "q8_0")));
        Assert.Equal(["Q4_K_M"], cache.List().Select(m => m.Quant));
        Assert.True(File.Exists(result.Path));
        Assert.Equal(Q4_K_M.Length, cache.Remove(new ModelReference("Org/Tiny-GGUF")));
        Assert.False(Directory.Exists(RepoFolder("Org/Tiny-GGUF")));
    }

    [Fact]
    public async Task A_connection_cut_halfway_is_resumed_with_a_range_request()
    {
        string sha = FakeHub.Sha256(Q8_0);
        Hub.CutHalfway[sha] = true;
        var result = await PullAsync("Org/Tiny-GGUF:Q8_0");

        Assert.Equal(Q8_0, File.ReadAllBytes(result.Path));
        var gets = Hub.Log.Where(l => l.StartsWith("CDN GET /blobs/" + sha, StringComparison.Ordinal)).ToList();
        Assert.Equal(2, gets.Count);
        Assert.DoesNotContain("range=", gets[0], StringComparison.Ordinal);
        // It asked only for what it lacked: from somewhere in the first half (bytes in flight at the cut are lost).
        long from = long.Parse(gets[1].Split("range=bytes=")[1].TrimEnd('-'), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(from, 1, Q8_0.Length / 2);
    }

    [Fact]
    public async Task A_partial_file_left_by_an_earlier_run_is_resumed()
    {
        string sha = FakeHub.Sha256(Q8_0);
        string blobs = Path.Combine(RepoFolder("Org/Tiny-GGUF"), "blobs");
        Directory.CreateDirectory(blobs);
        File.WriteAllBytes(Path.Combine(blobs, sha + ".incomplete"), Q8_0[..100_000]);

        var result = await PullAsync("Org/Tiny-GGUF:Q8_0");
        Assert.Equal(Q8_0, File.ReadAllBytes(result.Path));
        Assert.Contains(Hub.Log, l => l.StartsWith("CDN GET /blobs/" + sha, StringComparison.Ordinal) && l.Contains("range=bytes=100000-", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_file_whose_sha256_does_not_match_is_deleted_and_reported()
    {
        Hub.Repos["Org/Tiny-GGUF"].Corrupt.Add("Tiny-Q4_0.gguf");
        var e = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Tiny-GGUF:Q4_0"));

        Assert.Equal(HubErrorKind.Integrity, e.Kind);
        Assert.Contains("sha256 mismatch", e.Message, StringComparison.Ordinal);
        Assert.Contains("deleted", e.Message, StringComparison.Ordinal);
        string blobs = Path.Combine(RepoFolder("Org/Tiny-GGUF"), "blobs");
        Assert.Empty(Directory.GetFiles(blobs));
        Assert.Null(new HubClient(Options()).FindCached(ModelReference.Parse("Org/Tiny-GGUF:Q4_0")));
    }

    [Fact]
    public async Task A_gated_repo_answers_401_without_a_token_and_downloads_with_one_that_never_reaches_the_cdn()
    {
        Hub.Repos["Org/Gated-GGUF"] = new FakeRepo { RequiredToken = "hf_secret" };
        Hub.Repos["Org/Gated-GGUF"].Files["Gated-Q4_0.gguf"] = Q4_0;

        var e = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Gated-GGUF"));
        Assert.Equal(HubErrorKind.Unauthorized, e.Kind);
        Assert.Equal(401, e.StatusCode);
        Assert.Contains("HF_TOKEN", e.Message, StringComparison.Ordinal);

        var wrong = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Gated-GGUF", Options(token: "hf_wrong")));
        Assert.Contains("refused the token", wrong.Message, StringComparison.Ordinal);

        var result = await PullAsync("Org/Gated-GGUF", Options(token: "hf_secret"));
        Assert.Equal(Q4_0, File.ReadAllBytes(result.Path));
        Assert.Contains(Hub.Log, l => l.StartsWith("HUB HEAD /Org/Gated-GGUF/resolve/", StringComparison.Ordinal) && l.EndsWith(" auth", StringComparison.Ordinal));
        Assert.All(Hub.Log.Where(l => l.StartsWith("CDN", StringComparison.Ordinal)), l => Assert.DoesNotContain(" auth", l, StringComparison.Ordinal));
    }

    [Fact]
    public async Task An_unknown_repo_or_quant_is_a_404_that_names_the_available_quants()
    {
        var repo = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Nothing-GGUF"));
        Assert.Equal(HubErrorKind.NotFound, repo.Kind);
        Assert.Equal(404, repo.StatusCode);
        Assert.Contains("Org/Nothing-GGUF not found", repo.Message, StringComparison.Ordinal);

        var quant = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Tiny-GGUF:Q5_K_M"));
        Assert.Equal(HubErrorKind.NotFound, quant.Kind);
        Assert.Contains("quant Q5_K_M", quant.Message, StringComparison.Ordinal);
        Assert.Contains("available quants: Q4_0, Q4_K_M, Q8_0", quant.Message, StringComparison.Ordinal);

        var file = await Assert.ThrowsAsync<HubException>(() => PullAsync("https://huggingface.co/Org/Tiny-GGUF/blob/main/nope.gguf", Options()));
        Assert.Contains("Tiny-Q8_0.gguf", file.Message, StringComparison.Ordinal);
        Assert.Equal(0, Hub.Count("CDN"));
    }

    [Fact]
    public async Task Answers_429_and_503_are_retried_with_a_bounded_backoff()
    {
        Hub.RetryAfterSeconds = 3600;   // bounded by MaxRetryDelay (300 ms here), so the test stays fast
        Hub.Faults["/revision/"] = new([429, 503]);
        Hub.Faults["/blobs/"] = new([503]);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = await PullAsync("Org/Tiny-GGUF:Q4_0");

        Assert.Equal(Q4_0, File.ReadAllBytes(result.Path));
        Assert.Equal(3, Hub.Count("HUB GET /api/models/Org/Tiny-GGUF/revision/"));
        Assert.Equal(2, Hub.Count("CDN GET /blobs/"));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(600), $"waited {clock.Elapsed} for three bounded Retry-After pauses");

        // A hub that keeps failing gives up after MaxAttempts with a message, not a hang.
        Hub.Faults["/revision/"] = new([503, 503, 503, 503, 503, 503]);
        var e = await Assert.ThrowsAsync<HubException>(() => PullAsync("Org/Tiny-GGUF:Q8_0"));
        Assert.Equal(HubErrorKind.Network, e.Kind);
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Offline_mode_answers_from_the_cache_and_never_touches_the_network()
    {
        var offline = Options(offline: true);
        var e = await Assert.ThrowsAsync<HubException>(() => ModelLocator.ResolveAsync("Org/Tiny-GGUF:Q4_0", offline));
        Assert.Equal(HubErrorKind.NotCached, e.Kind);
        Assert.Contains("HF_HUB_OFFLINE", e.Message, StringComparison.Ordinal);
        Assert.Empty(Hub.Log);

        var pulled = await PullAsync("Org/Tiny-GGUF:Q4_0");
        int before = Hub.Log.Count;
        Assert.Equal(pulled.Path, await ModelLocator.ResolveAsync("hf.co/Org/Tiny-GGUF:q4_0", offline));
        Assert.Equal(pulled.Path, (await PullAsync("Org/Tiny-GGUF:Q4_0", offline)).Path);
        Assert.Equal(before, Hub.Log.Count);
    }

    [Fact]
    public async Task Two_concurrent_pulls_of_one_file_download_it_once_and_both_get_it_whole()
    {
        Hub.ChunkDelay = TimeSpan.FromMilliseconds(15);   // ~25 chunks: the pulls overlap
        var a = PullAsync("Org/Tiny-GGUF:Q8_0");
        var b = PullAsync("Org/Tiny-GGUF:Q8_0");
        var results = await Task.WhenAll(a, b);

        Assert.Equal(results[0].Path, results[1].Path);
        Assert.Equal(Q8_0, File.ReadAllBytes(results[0].Path));
        Assert.Equal(1, Hub.Count("CDN GET /blobs/"));
        Assert.Equal(1, results.Count(r => r.Downloaded));
        Assert.True(File.Exists(Path.Combine(CacheDir, ".locks", "models--Org--Tiny-GGUF", FakeHub.Sha256(Q8_0) + ".lock")));
    }
}
