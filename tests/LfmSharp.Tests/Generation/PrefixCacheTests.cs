using LfmSharp.Chat;
using LfmSharp.Generation;
using LfmSharp.Models;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Generation;

/// <summary>
/// The prompt-prefix cache: checkpoints stop the prefill exactly where asked, a restored prefix plus the rest gives
/// bit-identical logits to a cold prefill, the longest stored prefix wins, memory stays under the bound, and sessions
/// that share a cache reuse each other's prefixes.
/// </summary>
public sealed class PrefixCacheTests : IDisposable
{
    private readonly LanguageModel _model = LanguageModel.Load(TestData.Model("tiny-f32"), new ModelLoadOptions { Threads = 1 });

    public void Dispose() => _model.Dispose();

    private static int[] Prompt(int length, int salt = 0) =>
        Enumerable.Range(0, length).Select(j => j == 0 ? 1 : 30 + (j * 37 + salt * 11) % 400).ToArray();

    private float[] Logits(int[] prompt, int[] pieces, KvCacheType kv)
    {
        var state = _model.CreateState(512, kv);
        var logits = new float[_model.Config.VocabSize];
        int at = 0;
        foreach (int n in pieces.Append(prompt.Length - pieces.Sum()))
        {
            _model.Forward(prompt.AsSpan(at, n), state, logits);
            at += n;
        }
        return logits;
    }

    private sealed class Recorder : GenerationController
    {
        public List<int> At { get; } = [];
        public override void OnCheckpoint(Lfm2State state, int position) => At.Add(position);
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void A_prefill_split_at_checkpoints_gives_the_same_logits_as_one_pass(KvCacheType kv)
    {
        int[] prompt = Prompt(70);
        Assert.Equal(Logits(prompt, [], kv), Logits(prompt, [17, 1, 33], kv));
    }

    [Fact]
    public void The_prefill_calls_the_hook_at_each_checkpoint_after_the_start()
    {
        int[] prompt = Prompt(60);
        var state = _model.CreateState(256);
        _model.Forward(prompt.AsSpan(0, 10), state, new float[_model.Config.VocabSize]);
        var rec = new Recorder();
        var options = new GenerationOptions { MaxTokens = 1, Checkpoints = [5, 10, 11, 40, 59, 60, 80] };
        _ = new Generator(_model).Generate(state, new ArraySegment<int>(prompt, 10, 50), options, rec).ToList();
        Assert.Equal([11, 40, 59, 60], rec.At);
    }

    /// <summary>Keeps a snapshot at every checkpoint, as the prefix cache does.</summary>
    private sealed class Snapshotter : GenerationController
    {
        public List<Lfm2StateSnapshot> Snapshots { get; } = [];
        public override void OnCheckpoint(Lfm2State state, int position) => Snapshots.Add(state.Snapshot(position));
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void A_checkpoint_inside_a_chunk_is_captured_without_cutting_it_and_resumes_like_a_prefill_cut_there(KvCacheType kv)
    {
        // One pass over the whole prompt (no cut at 1, 2, 17, 18 or 69): each snapshot is the state a prefill stopped
        // at that position would hold, so resuming from it gives the same conv histories and logits as such a prefill.
        int[] prompt = Prompt(70);
        int[] at = [1, 2, 17, 18, 69];
        var state = _model.CreateState(512, kv);
        var hooks = new Snapshotter();
        var events = new Generator(_model).Generate(state, prompt, new GenerationOptions { MaxTokens = 1, Checkpoints = at }, hooks).ToList();
        Assert.Equal(at, hooks.Snapshots.Select(s => s.Position));
        for (int i = 0; i < at.Length; i++)
        {
            var cut = _model.CreateState(512, kv);
            _model.Forward(prompt.AsSpan(0, at[i]), cut, new float[_model.Config.VocabSize]);
            var resumed = _model.CreateState(512, kv);
            resumed.Restore(hooks.Snapshots[i]);
            for (int s = 0; s < cut.ConvStates.Length; s++)
                Assert.Equal(cut.ConvStates[s], resumed.ConvStates[s]);
            var logits = new float[_model.Config.VocabSize];
            _model.Forward(prompt.AsSpan(at[i]), resumed, logits);
            Assert.Equal(Logits(prompt, [at[i]], kv), logits);
        }
        Assert.IsType<Done>(events[^1]);
    }

    private static readonly SamplingOptions Seeded = new() { Temperature = 0.9f, TopK = 40, Seed = 7 };

    /// <summary>Records, with each checkpoint, how many tokens had been chosen when it was copied.</summary>
    private sealed class OrderRecorder : GenerationController
    {
        public List<int> Tokens { get; } = [];
        public List<(int Position, int TokensBefore)> At { get; } = [];
        public List<Lfm2StateSnapshot> Snapshots { get; } = [];
        public override void OnToken(int tokenId, bool forced) => Tokens.Add(tokenId);
        public override void OnCheckpoint(Lfm2State state, int position)
        {
            At.Add((position, Tokens.Count));
            Snapshots.Add(state.Snapshot(position));
        }
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void The_last_chunks_checkpoints_are_copied_after_the_first_token_and_hold_the_state_at_their_position(KvCacheType kv)
    {
        int[] prompt = Prompt(70);
        var hooks = new OrderRecorder();
        _ = new Generator(_model).Generate(_model.CreateState(512, kv), prompt, new GenerationOptions { MaxTokens = 4, Checkpoints = [17, 69], Sampling = Seeded, StopAtEndOfGeneration = false }, hooks).ToList();
        // The first token does not wait for the copies; they are made before the next pass changes the state...
        Assert.Equal([(17, 1), (69, 1)], hooks.At);
        for (int i = 0; i < hooks.Snapshots.Count; i++)
        {
            int at = hooks.At[i].Position;
            var resumed = _model.CreateState(512, kv);
            resumed.Restore(hooks.Snapshots[i]);
            var logits = new float[_model.Config.VocabSize];
            _model.Forward(prompt.AsSpan(at), resumed, logits);
            Assert.Equal(Logits(prompt, [at], kv), logits);
        }
        // ...and the answer is the one a run without checkpoints gives.
        var plain = new OrderRecorder();
        _ = new Generator(_model).Generate(_model.CreateState(512, kv), prompt, new GenerationOptions { MaxTokens = 4, Sampling = Seeded, StopAtEndOfGeneration = false }, plain).ToList();
        Assert.Equal(4, hooks.Tokens.Count);
        Assert.Equal(plain.Tokens, hooks.Tokens);
    }

    [Fact]
    public void Positions_cover_message_ends_intervals_from_each_message_start_and_the_last_but_one_token()
    {
        // 10 is only 3 tokens past the restored 7 (under MinTokensPastStart): not worth a copy.
        Assert.Equal([15, 20, 25, 30, 35, 40, 45], PromptCheckpoints.Positions([], 46, 5, 7));
        int[] ps = PromptCheckpoints.Positions([23, 61], 100, 16, 0);
        Assert.Equal([16, 23, 39, 55, 61, 77, 93, 99], ps);
        Assert.Equal([99], PromptCheckpoints.Positions([23, 61], 100, 1000, 61));
        Assert.Empty(PromptCheckpoints.Positions([], 1, 16, 0));
    }

    [Fact]
    public void An_answer_that_does_not_tokenize_back_into_its_tokens_is_not_stored()
    {
        // A re-rendered conversation can only match the answer's tokens when its text tokenizes into them again.
        var tok = _model.Tokenizer;
        int[] whole = tok.Encode(" the answer is forty two", addBos: false, parseSpecial: false);
        // The same text with one merged token spelled out character by character: it decodes the same, encodes merged.
        int merged = whole.First(id => tok.TokenBytes(id).Length > 1);
        int[] split = [.. whole.SelectMany(id => id != merged ? [id]
            : tok.Decode([id]).SelectMany(ch => tok.Encode(ch.ToString(), addBos: false, parseSpecial: false)))];
        Assert.NotEqual(whole, split);
        int[] prompt = Prompt(20);
        foreach (var (answer, stored) in new[] { (whole, true), (split, false) })
        {
            var cache = new PrefixCache(64L << 20);
            var state = _model.CreateState(256);
            int[] fed = [.. prompt, .. answer];
            _model.Forward(fed, state, new float[_model.Config.VocabSize]);
            // The last token chosen is not fed: the state holds the prompt and all of the answer but that one.
            Assert.Equal(stored, cache.StoreGeneration(state, prompt, [.. answer, 5], tok));
            Assert.Equal(stored ? 1 : 0, cache.Count);
            Assert.Equal(!stored, cache.StoreGeneration(state, prompt, [.. answer, 5]));   // without the check it is stored (once)
        }
    }

    [Fact]
    public void A_message_end_just_past_the_restored_prefix_is_no_checkpoint_but_the_last_but_one_token_always_is()
    {
        // A conversation's next turn restores the answer; that message ends 2 tokens later, the prompt 70 tokens later.
        Assert.Equal([117, 119], PromptCheckpoints.Positions([52, 117], 120, 256, 50));
        Assert.Equal([58, 117, 119], PromptCheckpoints.Positions([58, 117], 120, 256, 50));
        Assert.Equal([52], PromptCheckpoints.Positions([], 53, 256, 50));
        // Nothing restored: a short first message still ends at a checkpoint (restoring from 0 costs nothing).
        Assert.Equal([3, 19], PromptCheckpoints.Positions([3], 20, 256, 0));
    }

    [Fact]
    public void A_very_long_message_gets_at_most_a_few_checkpoints_that_shorter_and_longer_prompts_share()
    {
        // Each checkpoint copies the KV cache up to it: a long message doubles the spacing instead of copying 128 times.
        int[] longer = PromptCheckpoints.Positions([], 32_000, 256, 0), shorter = PromptCheckpoints.Positions([], 9_000, 256, 0);
        Assert.InRange(longer.Length, 2, PromptCheckpoints.MaxPerMessage + 1);
        Assert.InRange(shorter.Length, 2, PromptCheckpoints.MaxPerMessage + 1);
        Assert.All(longer[..^1], p => Assert.Equal(0, p % 256));
        // The coarser spacing is a multiple of the finer one: the longer prompt's positions within the shorter one are its too.
        Assert.All(longer[..^1].Where(p => p < 9_000 - 1), p => Assert.Contains(p, shorter));
        Assert.Equal([20, 40, 60, 80, 99], PromptCheckpoints.Positions([], 100, 5, 7));
    }

    [Theory]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.F32)]
    public void A_restored_prefix_plus_the_rest_gives_bit_identical_logits_and_text_to_a_cold_run(KvCacheType kv)
    {
        var cache = new PrefixCache(64L << 20, interval: 16);
        int[] first = Prompt(50), second = [.. Prompt(50).Take(40), .. Prompt(30, salt: 3).Skip(1)];
        var options = new GenerationOptions { MaxTokens = 12, Logprobs = 5, Sampling = new SamplingOptions { Temperature = 0.8f, Seed = 7 }, StopAtEndOfGeneration = false };

        var warm = _model.CreateState(256, kv);
        var (rest, o, c) = PrefixCacheController.Prepare(cache, warm, first, options);
        Assert.Equal(first.Length, rest.Count);
        _ = new Generator(_model).Generate(warm, rest, o, c).ToList();
        Assert.Equal(5, cache.Count);   // 16, 32, 48, 49 and the end of the generation (50 + 11 of the 12 tokens chosen)
        // The second prompt shares 40 tokens: the checkpoint at 32 is the longest stored prefix it starts with.
        (rest, o, c) = PrefixCacheController.Prepare(cache, warm, second, options);
        Assert.Equal(32, warm.Position);
        var hot = new Generator(_model).Generate(warm, rest, o, c).ToList();

        var cold = new Generator(_model).Generate(_model.CreateState(256, kv), second, options).ToList();
        Assert.Equal(Describe(cold), Describe(hot));
        Assert.Equal(second.Length, Assert.IsType<Done>(hot[^1]).Usage.PromptTokens);
        Assert.Equal(second.Length - 32, Assert.IsType<Done>(hot[^1]).Usage.PrefilledTokens);
    }

    private static List<string> Describe(List<GenerationEvent> events) => events.Select(e => e switch
    {
        TextDelta t => "text:" + t.Text,
        TokenLogprobs l => "lp:" + l.TokenId + ":" + BitConverter.SingleToInt32Bits(l.Logprob) + ":" + string.Join(',', l.Top.Select(a => a.TokenId + "=" + BitConverter.SingleToInt32Bits(a.Logprob))),
        Done d => "done:" + d.Reason + ":" + d.Usage.CompletionTokens,
        _ => e.GetType().Name,
    }).ToList();

    [Fact]
    public void An_identical_prompt_restores_all_but_its_last_token_and_the_longest_prefix_wins()
    {
        var cache = new PrefixCache(64L << 20, interval: 8);
        var state = _model.CreateState(256);
        int[] prompt = Prompt(30);
        var (rest, o, c) = PrefixCacheController.Prepare(cache, state, prompt, new GenerationOptions { MaxTokens = 1 });
        _ = new Generator(_model).Generate(state, rest, o, c).ToList();
        Assert.Equal(0, cache.Hits);

        var other = _model.CreateState(256);
        Assert.Equal(29, cache.Restore(other, prompt));
        Assert.Equal(30, cache.Restore(other, [.. prompt, 5]));
        Assert.Equal(24, cache.Restore(other, [.. prompt[..27], 9, 9]));
        Assert.Equal(0, cache.Restore(other, [2, .. prompt[1..]]));
        Assert.Equal(0, other.Position);
        Assert.Equal(4, cache.Lookups - 1);
        Assert.Equal(3, cache.Hits);
        Assert.Equal(29 + 30 + 24, cache.CachedTokens);
    }

    [Fact]
    public void Eviction_keeps_the_bytes_under_the_bound_and_drops_the_least_recently_used()
    {
        var state = _model.CreateState(256);
        int[] prompt = Prompt(40);
        _model.Forward(prompt.AsSpan(0, 20), state, new float[_model.Config.VocabSize]);
        long one = state.Snapshot().Bytes + 20 * sizeof(int);
        var cache = new PrefixCache(one * 3 + one / 2);
        var prompts = Enumerable.Range(0, 6).Select(i => Prompt(40, salt: i)).ToArray();
        for (int i = 0; i < prompts.Length; i++)
        {
            state.Reset();
            _model.Forward(prompts[i].AsSpan(0, 20), state, new float[_model.Config.VocabSize]);
            Assert.True(cache.Store(state, prompts[i]));
            Assert.True(cache.Bytes <= cache.MaxBytes, $"{cache.Bytes} > {cache.MaxBytes}");
            // A lookup makes 0 the most recently used, so 1 (then 2, then 3) goes first, not 0.
            if (i is 2 or 3)
                Assert.Equal(20, cache.Restore(_model.CreateState(256), prompts[0]));
        }
        Assert.Equal(3, cache.Count);
        Assert.Equal(3, cache.Evictions);
        Assert.Equal(3 * one, cache.Bytes);
        var probe = _model.CreateState(256);
        foreach (int gone in (int[])[1, 2, 3])
            Assert.Equal(0, cache.Restore(probe, prompts[gone]));
        foreach (int kept in (int[])[0, 4, 5])
            Assert.Equal(20, cache.Restore(probe, prompts[kept]));

        // A copy over half the bound would push out nearly everything: it is not made.
        var tiny = new PrefixCache(2 * one - 2);
        Assert.False(tiny.Store(state, prompts[5]));
        Assert.Equal(0, tiny.Bytes);
        var half = new PrefixCache(2 * one);
        Assert.True(half.Store(state, prompts[5]));
        state.Reset();
        _model.Forward(prompts[4].AsSpan(0, 21), state, new float[_model.Config.VocabSize]);
        Assert.False(half.Store(state, prompts[4]));   // one token longer: known too large before the copy
        Assert.Equal(1, half.Stores);
        var off = new PrefixCache(0);
        Assert.False(off.Store(state, prompts[5]));
        Assert.Equal(0, off.Restore(probe, prompts[5]));
    }

    [Fact]
    public void A_stored_snapshot_does_not_change_when_the_state_it_came_from_runs_on()
    {
        var cache = new PrefixCache(64L << 20);
        var state = _model.CreateState(256);
        int[] prompt = Prompt(40);
        var logits = new float[_model.Config.VocabSize];
        _model.Forward(prompt.AsSpan(0, 20), state, logits);
        cache.Store(state, prompt);
        _model.Forward(prompt.AsSpan(20, 20), state, logits);   // the live state moves on and overwrites its buffers
        var expected = Logits(prompt, [20], KvCacheType.F16);
        var again = _model.CreateState(256);
        Assert.Equal(20, cache.Restore(again, prompt));
        _model.Forward(prompt.AsSpan(20, 20), again, logits);
        Assert.Equal(expected, logits);
    }

    [Fact]
    public void Concurrent_stores_and_lookups_stay_consistent()
    {
        int[][] prompts = Enumerable.Range(0, 8).Select(i => Prompt(24, salt: i)).ToArray();
        var snapshots = prompts.Select(p =>
        {
            var s = _model.CreateState(64);
            _model.Forward(p.AsSpan(0, 12), s, new float[_model.Config.VocabSize]);
            return s;
        }).ToArray();
        long one = snapshots[0].Snapshot().Bytes + 12 * sizeof(int);
        var cache = new PrefixCache(one * 5);
        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            int k = i % prompts.Length;
            if (i % 3 == 0)
            {
                lock (snapshots[k])
                    cache.Store(snapshots[k], prompts[k]);
            }
            else
            {
                var probe = _model.CreateState(64);
                int got = cache.Restore(probe, prompts[k]);
                Assert.True(got is 0 or 12);
                Assert.Equal(got, probe.Position);
            }
            Assert.True(cache.Bytes <= cache.MaxBytes);
        });
        Assert.True(cache.Count <= 5);
        Assert.Equal(cache.Count * one, cache.Bytes);
    }
}
