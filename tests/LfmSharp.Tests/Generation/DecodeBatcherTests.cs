using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Generation;

/// <summary>
/// Generations driven through a <see cref="DecodeBatcher"/> (each decode step queued, then all run as one batched
/// forward) must produce exactly what each produces on its own.
/// </summary>
public sealed class DecodeBatcherTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestData.Model("tiny-q8_0"), new ModelLoadOptions { Threads = 2 });

    public void Dispose() => _model.Dispose();

    private static GenerationOptions Options(int i, int maxTokens) => new()
    {
        MaxTokens = maxTokens,
        Sampling = new SamplingOptions { Temperature = 0.9f, TopK = 40, Seed = (ulong)(10 + i) },
        StopAtEndOfGeneration = false,
    };

    private static int[] Prompt(int i) => Enumerable.Range(0, 4 + 3 * i).Select(j => j == 0 ? 1 : 30 + (j * 37 + i * 11) % 400).ToArray();

    [Fact]
    public void Batched_generations_equal_the_same_generations_run_alone()
    {
        const int sequences = 6;
        // Different lengths: sequences leave the batch at different rounds, so batch sizes shrink as they go.
        int[] maxTokens = [12, 30, 5, 30, 21, 1];
        var alone = new string[sequences];
        for (int i = 0; i < sequences; i++)
        {
            var events = new Generator(_model).Generate(_model.CreateState(256), Prompt(i), Options(i, maxTokens[i])).ToList();
            Assert.DoesNotContain(events, e => e is DecodePending);
            alone[i] = string.Concat(events.OfType<TextDelta>().Select(t => t.Text));
        }

        var batcher = new DecodeBatcher(_model, sequences);
        var streams = Enumerable.Range(0, sequences)
            .Select(i => new Generator(_model).Generate(_model.CreateState(256), Prompt(i), Options(i, maxTokens[i]) with { Batcher = batcher }).GetEnumerator())
            .ToList();
        var text = new string[sequences];
        var done = new Done?[sequences];
        int rounds = 0, largest = 0;
        while (done.Any(d => d is null))
        {
            for (int i = 0; i < sequences; i++)
            {
                while (done[i] is null && streams[i].MoveNext())
                {
                    var e = streams[i].Current;
                    if (e is DecodePending)
                        break;
                    if (e is TextDelta t)
                        text[i] += t.Text;
                    if (e is Done d)
                        done[i] = d;
                }
            }
            largest = Math.Max(largest, batcher.Pending);
            batcher.RunPending();
            Assert.Equal(0, batcher.Pending);
            rounds++;
        }

        // The first rounds stepped every sequence together (but the 1-token one, whose only token comes from its prefill).
        Assert.Equal(maxTokens.Count(m => m > 1), largest);
        Assert.Equal(maxTokens.Max(), rounds);            // one round per token of the longest generation
        for (int i = 0; i < sequences; i++)
        {
            Assert.Equal(maxTokens[i], done[i]!.Usage.CompletionTokens);
            Assert.Equal(alone[i], text[i] ?? "");
        }
    }

    [Fact]
    public void A_state_cannot_queue_two_steps_and_a_full_batcher_refuses_more()
    {
        var batcher = new DecodeBatcher(_model, 1);
        var state = _model.CreateState(64);
        var a = new Generator(_model).Generate(state, [1, 2, 3], Options(0, 8) with { Batcher = batcher }).GetEnumerator();
        while (a.MoveNext() && a.Current is not DecodePending) { }
        Assert.Equal(1, batcher.Pending);
        var b = new Generator(_model).Generate(_model.CreateState(64), [1, 2, 3], Options(1, 8) with { Batcher = batcher }).GetEnumerator();
        var e = Assert.Throws<InvalidOperationException>(() => { while (b.MoveNext() && b.Current is not DecodePending) { } });
        Assert.Contains("full", e.Message);
        Assert.Equal(1, batcher.RunPending());
        Assert.Equal(4, state.Position);                  // prompt + the one batched step
    }

    [Fact]
    public void A_batched_chat_session_refuses_the_async_path_that_cannot_run_its_steps()
    {
        using var session = _model.CreateChatSession(256);
        session.Batcher = new DecodeBatcher(_model, 2);
        Assert.Throws<InvalidOperationException>(() => session.CompleteAsync([LfmChatMessage.User("hi")]));
    }

    [Fact]
    public void A_long_prompt_is_prefilled_in_chunks_with_a_round_between_them_and_the_same_result()
    {
        var prompt = Enumerable.Range(0, 2 * Generator.PrefillChunk + 40).Select(j => j == 0 ? 1 : 30 + (j * 53) % 400).ToArray();
        var options = Options(3, 6);
        var alone = new Generator(_model).Generate(_model.CreateState(512), prompt, options).ToList();
        Assert.DoesNotContain(alone, e => e is DecodePending);

        var batcher = new DecodeBatcher(_model, 2);
        var state = _model.CreateState(512);
        var events = new List<GenerationEvent>();
        var stream = new Generator(_model).Generate(state, prompt, options with { Batcher = batcher }).GetEnumerator();
        var positions = new List<int>();
        while (stream.MoveNext())
        {
            if (stream.Current is DecodePending)
            {
                positions.Add(state.Position);
                batcher.RunPending();
                continue;
            }
            events.Add(stream.Current);
        }
        // Two pauses inside the prefill (after 128 and 256 prompt tokens), then one per decode step.
        Assert.Equal(Generator.PrefillChunk, positions[0]);
        Assert.Equal(2 * Generator.PrefillChunk, positions[1]);
        Assert.Equal(prompt.Length, positions[2]);            // the first decode step, queued, not yet run
        string Text(IEnumerable<GenerationEvent> e) => string.Concat(e.OfType<TextDelta>().Select(t => t.Text));
        Assert.Equal(Text(alone), Text(events));
        Assert.Equal(6, Assert.IsType<Done>(events[^1]).Usage.CompletionTokens);
    }
}
