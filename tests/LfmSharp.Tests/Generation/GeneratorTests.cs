using LfmSharp.Generation;
using LfmSharp.Kernels;
using LfmSharp.Testing;
using LfmSharp.Tests.Models;

namespace LfmSharp.Tests.Generation;

/// <summary>End-to-end generation on the tiny fixture model: goldens, limits, stop strings, cancellation.</summary>
public sealed class GeneratorTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1 });

    public void Dispose() => _model.Dispose();

    /// <summary>Records every token the generator emits.</summary>
    private sealed class Recorder(Action<int>? onToken = null) : GenerationController
    {
        public List<int> Ids { get; } = [];

        public override void OnToken(int tokenId, bool forced)
        {
            Ids.Add(tokenId);
            onToken?.Invoke(Ids.Count);
        }
    }

    private (List<GenerationEvent> Events, List<int> Ids) Run(int[] prompt, GenerationOptions options, CancellationToken ct = default, Action<int>? onToken = null)
    {
        var rec = new Recorder(onToken);
        var state = _model.CreateState(1024, KvCacheType.F32);
        var events = new Generator(_model).Generate(state, prompt, options, rec, ct).ToList();
        return (events, rec.Ids);
    }

    [Theory]
    [InlineData("tiny-f32")]
    [InlineData("tiny-q8_0")]
    [InlineData("small-q4_0")]
    public void Greedy_generation_reproduces_the_llama_cpp_greedy_continuation(string modelName)
    {
        using var model = LanguageModel.Load(TestData.Model(modelName), new ModelLoadOptions { Threads = 1 });
        var goldens = Goldens.For(modelName);
        foreach (var seq in goldens.Sequences)
        {
            var rec = new Recorder();
            var state = model.CreateState(1024, KvCacheType.F32);
            var events = new Generator(model).Generate(state, seq.Ids,
                new GenerationOptions { MaxTokens = seq.GreedyIds.Length, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false }, rec).ToList();
            Assert.Equal(FinishReason.Length, Assert.IsType<Done>(events[^1]).Reason);
            // Positions where llama.cpp's own top-2 margin is tiny may legitimately flip; stop comparing there.
            for (int i = 0; i < seq.GreedyIds.Length; i++)
            {
                if (seq.GreedyMargins[i] < 0.35f && modelName != "tiny-f32")
                    break;
                Assert.True(seq.GreedyIds[i] == rec.Ids[i], $"{modelName}/{seq.Name}: step {i}: golden {seq.GreedyIds[i]}, got {rec.Ids[i]}");
            }
        }
    }

    [Fact]
    public void Max_tokens_ends_with_length_and_text_matches_the_decoded_ids()
    {
        var (events, ids) = Run([1, 6, 332, 280, 26], new GenerationOptions { MaxTokens = 7, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false });
        var done = Assert.IsType<Done>(events[^1]);
        Assert.Equal(FinishReason.Length, done.Reason);
        Assert.Equal(7, done.Usage.CompletionTokens);
        Assert.Equal(5, done.Usage.PromptTokens);
        Assert.Equal(7, ids.Count);
        string text = string.Concat(events.OfType<TextDelta>().Select(t => t.Text));
        Assert.Equal(_model.Tokenizer.Decode(ids.ToArray()), text);
    }

    [Fact]
    public void Stop_string_ends_generation_and_never_leaks()
    {
        var opts = new GenerationOptions { MaxTokens = 24, Sampling = new SamplingOptions { Temperature = 1.5f, Seed = 3 }, StopAtEndOfGeneration = false };
        var (events, _) = Run([1, 6, 332], opts);
        string full = string.Concat(events.OfType<TextDelta>().Select(t => t.Text));
        Assert.True(full.Length > 6, $"need some text to cut, got '{full}'");
        string stop = full.Substring(full.Length / 2, 3);
        int cut = full.IndexOf(stop, StringComparison.Ordinal);
        var (stopped, _) = Run([1, 6, 332], opts with { StopStrings = [stop] });
        string text = string.Concat(stopped.OfType<TextDelta>().Select(t => t.Text));
        Assert.Equal(full[..cut], text);
        Assert.Equal(FinishReason.Stop, Assert.IsType<Done>(stopped[^1]).Reason);
    }

    [Fact]
    public void End_of_generation_token_stops_with_stop_and_is_not_emitted()
    {
        // Bias <|im_end|> (7) to always win: the first token ends the turn.
        var opts = new GenerationOptions { MaxTokens = 10, Sampling = SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [7] = 1000f } } };
        var (events, ids) = Run([1, 6, 332], opts);
        Assert.Equal([7], ids);
        Assert.Empty(events.OfType<TextDelta>());
        Assert.Equal(FinishReason.Stop, Assert.IsType<Done>(events[^1]).Reason);
    }

    [Fact]
    public void Cancellation_stops_within_one_token()
    {
        using var cts = new CancellationTokenSource();
        var opts = new GenerationOptions { MaxTokens = 50, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false };
        var (events, ids) = Run([1, 6, 332], opts, cts.Token, onToken: n => { if (n == 5) cts.Cancel(); });
        Assert.Equal(5, ids.Count);
        var done = Assert.IsType<Done>(events[^1]);
        Assert.Equal(FinishReason.Cancelled, done.Reason);
        Assert.Equal(5, done.Usage.CompletionTokens);
    }

    [Fact]
    public void Seeded_sampling_is_reproducible()
    {
        var opts = new GenerationOptions { MaxTokens = 16, Sampling = new SamplingOptions { Temperature = 1f, TopK = 40, Seed = 11 }, StopAtEndOfGeneration = false };
        Assert.Equal(Run([1, 6], opts).Ids, Run([1, 6], opts).Ids);
        Assert.NotEqual(Run([1, 6], opts).Ids, Run([1, 6], opts with { Sampling = opts.Sampling! with { Seed = 12 } }).Ids);
    }

    [Fact]
    public void A_prompt_that_fills_the_context_is_rejected_before_generating()
    {
        var state = _model.CreateState(8, KvCacheType.F32);
        var ex = Assert.Throws<ContextOverflowException>(() => new Generator(_model).Generate(state, new int[8], new GenerationOptions()));
        Assert.Equal(8, ex.PromptTokens);
        Assert.Equal(8, ex.ContextLength);
        Assert.Equal(0, state.Position);
    }

    [Fact]
    public void A_full_context_ends_with_length()
    {
        var state = _model.CreateState(10, KvCacheType.F32);
        var events = new Generator(_model).Generate(state, [1, 6, 332], new GenerationOptions { MaxTokens = 100, Sampling = SamplingOptions.Greedy, StopAtEndOfGeneration = false }).ToList();
        var done = Assert.IsType<Done>(events[^1]);
        Assert.Equal(FinishReason.Length, done.Reason);
        Assert.Equal(7, done.Usage.CompletionTokens);
    }
}
