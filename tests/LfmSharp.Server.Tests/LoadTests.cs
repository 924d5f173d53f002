using LfmSharp.Server;

namespace LfmSharp.Server.Tests;

/// <summary>A bounded load test on loopback: 16 streaming clients for a few seconds (the 60 s soak is
/// <c>lfm serve --soak</c>, run by hand).</summary>
[Collection("server")]
public sealed class LoadTests(ServerFixture fx)
{
    [Fact]
    public async Task Sixteen_streaming_clients_all_complete_without_errors()
    {
        await using var server = await fx.StartAsync(new LfmServerOptions { Slots = 4, QueueCapacity = 64, ContextLength = 512 });
        var report = await LoadTest.RunAsync(server.BaseAddress!, clients: 16, TimeSpan.FromSeconds(3), maxTokens: 16, model: fx.ModelId);

        Assert.True(report.Failed == 0, report + "\n" + string.Join("\n", report.FailureSamples));
        Assert.Equal(0, report.Rejected);   // 16 clients fit in 4 slots + 64 queued
        Assert.True(report.Completed >= 16, report.ToString());
        Assert.True(report.CompletionTokens > 0);
        Assert.Equal(report.Completed, server.Metrics.RequestsCompleted);
        Assert.Equal(0, server.Scheduler!.Active);
        Assert.Equal(0, server.Scheduler.Waiting);
    }
}
