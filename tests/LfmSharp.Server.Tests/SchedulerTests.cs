using System.Threading.Channels;
using LfmSharp.Generation;
using LfmSharp.Server;

namespace LfmSharp.Server.Tests;

/// <summary>The scheduler with scripted sequences (no model work): fairness, cancellation, queue bound, errors.</summary>
[Collection("server")]
public sealed class SchedulerTests(ServerFixture fx)
{
    /// <summary>A sequence that logs each step it takes (steps run on the decode thread, so the log is ordered).
    /// A plain stream: the scheduler advances it one event per step.</summary>
    private static IEnumerable<GenerationEvent> Script(string name, int steps, List<string> log, ManualResetEventSlim? gate = null)
    {
        for (int i = 0; i < steps; i++)
        {
            if (i == 0)
                gate?.Wait(TimeSpan.FromSeconds(30));
            lock (log)
                log.Add(name);
            yield return new ContentDelta($"{name}{i}");
        }
        yield return new Done(FinishReason.Stop, new GenerationUsage { CompletionTokens = steps });
    }

    private static async Task<List<GenerationEvent>> DrainAsync(ChannelReader<GenerationEvent> reader)
    {
        var events = new List<GenerationEvent>();
        await foreach (var ev in reader.ReadAllAsync())
            events.Add(ev);
        return events;
    }

    [Fact]
    public async Task Active_sequences_take_turns_one_step_each()
    {
        using var scheduler = new GenerationScheduler(fx.Model, slots: 3, queueCapacity: 4, contextLength: 64);
        var log = new List<string>();
        using var gate = new ManualResetEventSlim();
        // A's first step holds the decode thread until B and C are queued, so all three run from the next round on.
        var a = scheduler.Enqueue(_ => Script("A", 6, log, gate), CancellationToken.None);
        await ServiceEndpointTests.WaitUntilAsync(() => scheduler.Active == 1);
        var b = scheduler.Enqueue(_ => Script("B", 6, log), CancellationToken.None);
        var c = scheduler.Enqueue(_ => Script("C", 6, log), CancellationToken.None);
        gate.Set();
        var results = await Task.WhenAll(DrainAsync(a), DrainAsync(b), DrainAsync(c));

        Assert.All(results, r => Assert.IsType<Done>(r[^1]));
        Assert.Equal(7, results[0].Count);
        // After A's first step: strict rotation A, B, C, A, B, C, ...
        Assert.Equal("A", log[0]);
        var rest = log.Skip(1).ToList();
        string expected = string.Concat(Enumerable.Repeat("ABC", 5)) + "BC";
        Assert.Equal(expected, string.Concat(rest));
    }

    [Fact]
    public async Task A_cancelled_sequence_takes_no_further_step()
    {
        using var scheduler = new GenerationScheduler(fx.Model, slots: 1, queueCapacity: 1, contextLength: 64);
        scheduler.StepDelay = TimeSpan.FromMilliseconds(2);
        var log = new List<string>();
        using var cts = new CancellationTokenSource();
        var reader = scheduler.Enqueue(_ => Script("A", 100_000, log), cts.Token);
        var seen = 0;
        await foreach (var ev in reader.ReadAllAsync().WithCancellation(CancellationToken.None).ConfigureAwait(false))
        {
            if (++seen == 5)
                break;
        }
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader.Completion);
        int steps;
        lock (log)
            steps = log.Count;
        await Task.Delay(50);
        lock (log)
            Assert.Equal(steps, log.Count);
        Assert.True(steps < 100_000);
        Assert.Equal(0, scheduler.Active);
    }

    [Fact]
    public async Task Queue_refuses_beyond_capacity_and_waiting_requests_start_when_a_slot_frees()
    {
        using var scheduler = new GenerationScheduler(fx.Model, slots: 1, queueCapacity: 1, contextLength: 64);
        var log = new List<string>();
        using var gate = new ManualResetEventSlim();
        var a = scheduler.Enqueue(_ => Script("A", 2, log, gate), CancellationToken.None);
        await ServiceEndpointTests.WaitUntilAsync(() => scheduler.Active == 1);
        var b = scheduler.Enqueue(_ => Script("B", 2, log), CancellationToken.None);
        Assert.Equal(1, scheduler.Waiting);
        var full = Assert.Throws<QueueFullException>(() => scheduler.Enqueue(_ => Script("C", 2, log), CancellationToken.None));
        Assert.Equal(1, full.Capacity);
        gate.Set();
        await Task.WhenAll(DrainAsync(a), DrainAsync(b));
        Assert.Equal("AABB", string.Concat(log));
    }

    [Fact]
    public async Task A_failing_sequence_reports_its_exception_and_frees_its_slot()
    {
        using var scheduler = new GenerationScheduler(fx.Model, slots: 1, queueCapacity: 2, contextLength: 64);
        static IEnumerable<GenerationEvent> Fails()
        {
            yield return new ContentDelta("x");
            throw new InvalidDataException("boom");
        }
        var failed = scheduler.Enqueue(_ => Fails(), CancellationToken.None);
        var next = scheduler.Enqueue(_ => Script("B", 1, []), CancellationToken.None);
        var ex = await Assert.ThrowsAsync<InvalidDataException>(() => DrainAsync(failed));
        Assert.Equal("boom", ex.Message);
        Assert.IsType<Done>((await DrainAsync(next))[^1]);
    }

    [Fact]
    public async Task A_stream_that_never_yields_a_decode_step_still_gives_the_others_turns()
    {
        using var scheduler = new GenerationScheduler(fx.Model, slots: 2, queueCapacity: 2, contextLength: 64);
        var log = new List<string>();
        using var gate = new ManualResetEventSlim();
        static IEnumerable<GenerationEvent> Unbatched(List<string> log, ManualResetEventSlim gate)
        {
            gate.Wait(TimeSpan.FromSeconds(30));
            for (int i = 0; i < 1000; i++)
            {
                lock (log)
                    log.Add("U");
                yield return new ContentDelta("u");
            }
            yield return new Done(FinishReason.Stop, new GenerationUsage());
        }
        var u = scheduler.Enqueue(_ => Unbatched(log, gate), CancellationToken.None);
        await ServiceEndpointTests.WaitUntilAsync(() => scheduler.Active == 1);
        var b = scheduler.Enqueue(_ => Script("B", 3, log), CancellationToken.None);
        gate.Set();
        await Task.WhenAll(DrainAsync(u), DrainAsync(b));
        // B's three steps are interleaved with U's long run, not queued behind all 1000 of its events.
        int lastB = log.LastIndexOf("B");
        Assert.True(lastB < 300, $"B finished only at log entry {lastB}");
    }

    [Fact]
    public async Task New_requests_prefill_inside_the_decode_steps_within_the_token_budget_and_match_their_solo_runs()
    {
        const int budget = 24;
        using var scheduler = new GenerationScheduler(fx.Model, slots: 4, queueCapacity: 4, contextLength: 256, tokensPerStep: budget);
        var options = new GenerationOptions { MaxTokens = 16, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false };
        int[] Prompt(int i) => Enumerable.Range(0, 5 + 37 * i).Select(j => j == 0 ? 1 : 30 + (j * 41 + i * 7) % 400).ToArray();
        string Text(List<GenerationEvent> e) => string.Concat(e.OfType<TextDelta>().Select(t => t.Text));

        var solo = new string[4];
        for (int i = 0; i < 4; i++)
            solo[i] = Text(new Generator(fx.Model).Generate(fx.Model.CreateState(256), Prompt(i), options).ToList());

        // The first request decodes while the others (up to 116 prompt tokens, several steps each) join.
        scheduler.StepDelay = TimeSpan.FromMilliseconds(2);
        var readers = new ChannelReader<GenerationEvent>[4];
        for (int i = 0; i < 4; i++)
        {
            int k = i;
            readers[i] = scheduler.Enqueue(slot => new Generator(fx.Model).Generate(slot.State, Prompt(k), options), CancellationToken.None);
            await Task.Delay(10);
        }
        var results = await Task.WhenAll(readers.Select(DrainAsync));
        for (int i = 0; i < 4; i++)
            Assert.Equal(solo[i], Text(results[i]));
        Assert.Equal(budget, scheduler.TokensPerStep);
        Assert.Equal(budget, scheduler.LargestStepTokens);   // reached, never exceeded
        Assert.True(scheduler.LargestBatch >= 2, $"largest batch {scheduler.LargestBatch}");
    }
}
