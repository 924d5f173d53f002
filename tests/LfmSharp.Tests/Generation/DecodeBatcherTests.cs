using LfmSharp.Generation;
using LfmSharp.Models;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Generation;

/// <summary>
/// Generations driven through a <see cref="DecodeBatcher"/> (each step's inputs — prefill chunks and decode tokens —
/// run as one batched forward) must produce exactly what each produces on its own.
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

    private static int[] Prompt(int i, int length = 0) =>
        Enumerable.Range(0, length > 0 ? length : 4 + 3 * i).Select(j => j == 0 ? 1 : 30 + (j * 37 + i * 11) % 400).ToArray();

    private static string Text(IEnumerable<GenerationEvent> e) => string.Concat(e.OfType<TextDelta>().Select(t => t.Text));

    /// <summary>One step the way the server's scheduler runs it: decode inputs first, then prefill chunks.</summary>
    private static (int Sequences, int Tokens) Step(DecodeBatcher batcher, IReadOnlyList<GenerationSequence?> seqs, List<GenerationEvent>[] events)
    {
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < seqs.Count; i++)
            {
                if (seqs[i] is { IsFinished: false } s && s.IsPrefilling == (pass == 1))
                    batcher.TryAdd(s, events[i]);
            }
        }
        var size = (batcher.Pending, batcher.PendingTokens);
        int n = batcher.RunPending();
        for (int k = 0; k < n; k++)
        {
            int i = seqs.ToList().IndexOf(batcher.SequenceAt(k));
            batcher.Accept(k, events[i]);
        }
        batcher.Clear();
        return size;
    }

    [Fact]
    public void Batched_generations_equal_the_same_generations_run_alone()
    {
        const int sequences = 6;
        // Different lengths: sequences leave the batch at different rounds, so batch sizes shrink as they go.
        int[] maxTokens = [12, 30, 5, 30, 21, 1];
        var alone = new string[sequences];
        for (int i = 0; i < sequences; i++)
            alone[i] = Text(new Generator(_model).Generate(_model.CreateState(256), Prompt(i), Options(i, maxTokens[i])).ToList());

        var batcher = new DecodeBatcher(_model, sequences);
        var seqs = Enumerable.Range(0, sequences)
            .Select(i => new Generator(_model).Generate(_model.CreateState(256), Prompt(i), Options(i, maxTokens[i])))
            .ToList();
        var events = seqs.Select(_ => new List<GenerationEvent>()).ToArray();
        int rounds = 0, largest = 0;
        while (seqs.Any(s => !s.IsFinished))
        {
            var (n, _) = Step(batcher, seqs, events);
            if (rounds > 0)
                largest = Math.Max(largest, n);   // the first step prefills them all together
            Assert.Equal(0, batcher.Pending);
            rounds++;
        }

        // The first decode steps ran every sequence together (but the 1-token one, whose only token comes from its prefill).
        Assert.Equal(maxTokens.Count(m => m > 1), largest);
        Assert.Equal(maxTokens.Max(), rounds);            // one step per token of the longest generation
        for (int i = 0; i < sequences; i++)
        {
            Assert.Equal(maxTokens[i], Assert.IsType<Done>(events[i][^1]).Usage.CompletionTokens);
            Assert.Equal(alone[i], Text(events[i]));
        }
    }

    [Fact]
    public void A_sequence_cannot_queue_two_inputs_and_a_full_batcher_refuses_more()
    {
        var batcher = new DecodeBatcher(_model, 1);
        var state = _model.CreateState(64);
        var a = new Generator(_model).Generate(state, [1, 2, 3], Options(0, 8));
        var events = new List<GenerationEvent>();
        Assert.True(batcher.TryAdd(a, events));
        Assert.Equal(1, batcher.Pending);
        Assert.Contains("already", Assert.Throws<InvalidOperationException>(() => batcher.TryAdd(a, events)).Message);
        var b = new Generator(_model).Generate(_model.CreateState(64), [1, 2, 3], Options(1, 8));
        var e = Assert.Throws<InvalidOperationException>(() => batcher.TryAdd(b, events));
        Assert.Contains("full", e.Message);
        Assert.Equal(1, batcher.RunPending());
        batcher.Accept(0, events);
        batcher.Clear();
        Assert.True(batcher.TryAdd(a, events));
        Assert.Equal(1, batcher.RunPending());
        Assert.Equal(4, state.Position);                  // prompt + the one batched decode step
    }

    [Fact]
    public void A_long_prompt_is_prefilled_in_chunks_of_the_budget_with_the_same_result()
    {
        const int budget = 128;
        var prompt = Enumerable.Range(0, 2 * budget + 40).Select(j => j == 0 ? 1 : 30 + (j * 53) % 400).ToArray();
        var options = Options(3, 6);
        var alone = new Generator(_model).Generate(_model.CreateState(512), prompt, options).ToList();

        var batcher = new DecodeBatcher(_model, 2, budget);
        var state = _model.CreateState(512);
        var seq = new Generator(_model).Generate(state, prompt, options);
        var events = new[] { new List<GenerationEvent>() };
        var positions = new List<int>();
        while (!seq.IsFinished)
        {
            Step(batcher, [seq], events);
            positions.Add(state.Position);
        }
        // Two chunks of the budget, then the rest of the prompt (and the first token), then one per decode step.
        Assert.Equal(budget, positions[0]);
        Assert.Equal(2 * budget, positions[1]);
        Assert.Equal(prompt.Length, positions[2]);
        Assert.Equal(prompt.Length + 1, positions[3]);
        Assert.Equal(Text(alone), Text(events[0]));
        Assert.Equal(6, Assert.IsType<Done>(events[0][^1]).Usage.CompletionTokens);
    }

    [Fact]
    public void New_requests_prefilled_inside_the_decode_batch_give_the_same_text_as_solo_runs_and_no_step_exceeds_the_budget()
    {
        const int budget = 48;
        // Greedy, prompts of very different lengths (one shorter than a step's leftover budget, some several steps
        // long); requests join at different steps while the earlier ones decode.
        int[] lengths = [6, 120, 17, 75, 3, 200];
        int[] joinAt = [0, 0, 4, 9, 10, 15];
        var options = new GenerationOptions { MaxTokens = 24, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false };
        var alone = lengths.Select((n, i) => Text(new Generator(_model).Generate(_model.CreateState(512), Prompt(i, n), options).ToList())).ToArray();

        var batcher = new DecodeBatcher(_model, lengths.Length, budget);
        var seqs = new GenerationSequence?[lengths.Length];
        var events = lengths.Select(_ => new List<GenerationEvent>()).ToArray();
        int step = 0, largestTokens = 0, mixed = 0;
        while (step <= joinAt.Max() || seqs.Any(s => s is { IsFinished: false }))
        {
            for (int i = 0; i < lengths.Length; i++)
            {
                if (joinAt[i] == step)
                    seqs[i] = new Generator(_model).Generate(_model.CreateState(512), Prompt(i, lengths[i]), options);
            }
            bool decoding = seqs.Any(s => s is { IsFinished: false, IsPrefilling: false });
            bool prefilling = seqs.Any(s => s is { IsPrefilling: true });
            var (_, tokens) = Step(batcher, seqs, events);
            Assert.True(tokens <= budget, $"step {step} fed {tokens} tokens");
            largestTokens = Math.Max(largestTokens, tokens);
            if (decoding && prefilling)
                mixed++;
            step++;
        }
        Assert.Equal(budget, largestTokens);
        Assert.True(mixed >= 5, $"{mixed} steps mixed prefill and decode");
        for (int i = 0; i < lengths.Length; i++)
        {
            Assert.Equal(24, Assert.IsType<Done>(events[i][^1]).Usage.CompletionTokens);
            Assert.Equal(alone[i], Text(events[i]));
        }
    }

    /// <summary>Records the state position at every checkpoint and at the end of the prefill.</summary>
    private sealed class CheckpointRecorder : GenerationController
    {
        public List<int> Positions { get; } = [];
        public int PrefillEnd { get; private set; } = -1;

        public override void OnCheckpoint(Lfm2State state, int position) => Positions.Add(position);

        public override void OnPrefillComplete(Lfm2State state) => PrefillEnd = state.Position;
    }

    [Fact]
    public void Prefill_checkpoints_at_exactly_the_requested_positions_alone_and_in_a_batch_without_extra_passes()
    {
        var prompt = Prompt(2, 150);
        // From a state that already holds 10 tokens: 4 and 10 are behind it, 999 is past the prompt's end (150).
        int[] checkpoints = [4, 10, 11, 40, 41, 100, 150, 999];
        int[] expected = [11, 40, 41, 100, 150];
        var options = new GenerationOptions { MaxTokens = 5, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false, Checkpoints = checkpoints };

        Lfm2State Primed()
        {
            var st = _model.CreateState(256);
            _model.Forward(prompt.AsSpan(0, 10), st, new float[_model.Config.VocabSize]);
            return st;
        }
        var soloHooks = new CheckpointRecorder();
        var solo = new Generator(_model).Generate(Primed(), prompt[10..], options, soloHooks).ToList();
        Assert.Equal(expected, soloHooks.Positions);
        Assert.Equal(150, soloHooks.PrefillEnd);

        // Batched, next to a decoding sequence, with a budget that cuts chunks between the checkpoints too.
        var batcher = new DecodeBatcher(_model, 2, 32);
        var batchHooks = new CheckpointRecorder();
        var other = new Generator(_model).Generate(_model.CreateState(256), Prompt(5), Options(5, 30));
        var seq = new Generator(_model).Generate(Primed(), prompt[10..], options, batchHooks);
        var events = new[] { new List<GenerationEvent>(), new List<GenerationEvent>() };
        int prefillSteps = 0;
        while (!seq.IsFinished)
        {
            prefillSteps += seq.IsPrefilling ? 1 : 0;
            Step(batcher, [other, seq], events);
        }
        Assert.Equal(expected, batchHooks.Positions);
        // The checkpoints cut no chunk (they are captured inside the pass), so only the budget does: 13 tokens next
        // to the other's 19-token prompt, then 31 a step next to its decode token (5 more steps for the other 127).
        Assert.Equal(6, prefillSteps);
        Assert.Equal(150, batchHooks.PrefillEnd);
        Assert.Equal(Text(solo), Text(events[1]));
        Assert.Equal(140, Assert.IsType<Done>(events[1][^1]).Usage.PrefilledTokens);
    }
}
