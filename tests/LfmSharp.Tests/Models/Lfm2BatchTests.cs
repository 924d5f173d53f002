using LfmSharp.Kernels;
using LfmSharp.Models;

namespace LfmSharp.Tests.Models;

/// <summary>
/// <see cref="Lfm2Model.ForwardBatch(ReadOnlySpan{int}, ReadOnlySpan{Lfm2State}, Span{float})"/> (one token for each of several sequences, the weights shared) must give each
/// sequence exactly what its own single-token <see cref="Lfm2Model.Forward"/> gives, and leave every state as that would.
/// </summary>
public sealed class Lfm2BatchTests
{
    public static TheoryData<string, KvCacheType, int> Models => new()
    {
        { "tiny-f32", KvCacheType.F32, 1 },
        { "tiny-q4_0", KvCacheType.F16, 3 },      // below the GEMM threshold: one matvec per token
        { "tiny-q4_0", KvCacheType.F16, 6 },      // GEMM tiles of 4 plus a ragged pair
        { "tiny-q8_0", KvCacheType.F32, 5 },
        { "tiny-q4_k_m", KvCacheType.F16, 9 },
        { "small-q4_k_m", KvCacheType.F16, 4 },
    };

    private static int[] Ids(int n, int vocab, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(i => i == 0 ? 1 : r.Next(vocab)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void BatchedDecodeEqualsEachSequenceAlone(string model, KvCacheType kv, int sequences)
    {
        using var lm = Lfm2GoldenTests.Load(model, MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        // Sequences of different lengths (so different positions and cache sizes), each prefilled on its own.
        var prompts = Enumerable.Range(0, sequences).Select(i => Ids(3 + 5 * i, 472, 100 + i)).ToArray();
        var batched = prompts.Select(_ => lm.CreateState(96, kv)).ToArray();
        var alone = prompts.Select(_ => lm.CreateState(96, kv)).ToArray();
        var scratch = new float[vocab];
        for (int i = 0; i < sequences; i++)
        {
            lm.Forward(prompts[i], batched[i], scratch);
            lm.Forward(prompts[i], alone[i], scratch);
        }

        var r = new Random(5);
        var logits = new float[sequences * vocab];
        var expected = new float[vocab];
        for (int step = 0; step < 6; step++)
        {
            var tokens = Enumerable.Range(0, sequences).Select(_ => r.Next(472)).ToArray();
            lm.ForwardBatch(tokens, batched, logits);
            for (int i = 0; i < sequences; i++)
            {
                lm.Forward(tokens.AsSpan(i, 1), alone[i], expected);
                float diff = Lfm2GoldenTests.MaxAbsDiff(expected, logits.AsSpan(i * vocab, vocab).ToArray());
                Assert.True(diff <= 1e-5f, $"step {step}, sequence {i}: max |Δ| = {diff}");
                Assert.Equal(alone[i].Position, batched[i].Position);
            }
        }
    }

    [Theory]
    [InlineData("tiny-q8_0", KvCacheType.F16)]
    [InlineData("tiny-q4_k_m", KvCacheType.F32)]
    public void A_pass_mixing_prefill_chunks_and_decode_tokens_equals_each_sequence_alone(string model, KvCacheType kv)
    {
        using var lm = Lfm2GoldenTests.Load(model, MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        // Two running sequences (one token each), a new one (a whole prompt) and one in the middle of its prefill.
        int[] history = [9, 0, 0, 33];
        int[] counts = [1, 17, 1, 40];
        var batched = history.Select(_ => lm.CreateState(128, kv)).ToArray();
        var alone = history.Select(_ => lm.CreateState(128, kv)).ToArray();
        var scratch = new float[vocab];
        for (int i = 0; i < history.Length; i++)
        {
            if (history[i] == 0)
                continue;
            var ids = Ids(history[i], 472, 10 + i);
            lm.Forward(ids, batched[i], scratch);
            lm.Forward(ids, alone[i], scratch);
        }
        var inputs = counts.Select((n, i) => Ids(n, 472, 50 + i)).ToArray();
        var logits = new float[history.Length * vocab];
        lm.Model.ForwardBatch(inputs.SelectMany(x => x).ToArray(), counts, batched, logits);
        var expected = new float[vocab];
        for (int i = 0; i < history.Length; i++)
        {
            lm.Forward(inputs[i], alone[i], expected);
            float diff = Lfm2GoldenTests.MaxAbsDiff(expected, logits.AsSpan(i * vocab, vocab).ToArray());
            Assert.True(diff <= 1e-4f, $"sequence {i}: max |Δ| = {diff}");
            Assert.Equal(alone[i].Position, batched[i].Position);
        }
    }

    [Fact]
    public void A_mixed_pass_with_bad_counts_is_refused_before_any_state_changes()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-q8_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var a = lm.CreateState(16, KvCacheType.F16);
        var b = lm.CreateState(16, KvCacheType.F16);
        var logits = new float[2 * vocab];
        var sum = Assert.Throws<ArgumentException>(() => lm.Model.ForwardBatch([1, 2, 3], [1, 1], [a, b], logits));
        Assert.Contains("add up to 2", sum.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => lm.Model.ForwardBatch([1, 2], [2, 0], [a, b], logits));
        var full = Assert.Throws<ArgumentException>(() => lm.Model.ForwardBatch(new int[18], [1, 17], [a, b], logits));
        Assert.Contains("context full", full.Message);
        Assert.Throws<ArgumentException>(() => lm.Model.ForwardBatch([1, 2, 3], [1, 2], [a], logits));
        Assert.Equal(0, a.Position);
        Assert.Equal(0, b.Position);
    }

    [Fact]
    public void SequencesInABatchDoNotSeeEachOther()
    {
        // The same history in two states gives the same logits, whatever the third sequence in the batch holds.
        using var lm = Lfm2GoldenTests.Load("tiny-q8_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var a = lm.CreateState(64, KvCacheType.F16);
        var b = lm.CreateState(64, KvCacheType.F16);
        var other = lm.CreateState(64, KvCacheType.F16);
        var scratch = new float[vocab];
        lm.Forward(Ids(10, 472, 1), a, scratch);
        lm.Forward(Ids(10, 472, 1), b, scratch);
        lm.Forward(Ids(30, 472, 2), other, scratch);
        var logits = new float[3 * vocab];
        lm.ForwardBatch([7, 99, 7], [a, other, b], logits);
        Assert.Equal(logits.AsSpan(0, vocab).ToArray(), logits.AsSpan(2 * vocab, vocab).ToArray());
        Assert.NotEqual(logits.AsSpan(0, vocab).ToArray(), logits.AsSpan(vocab, vocab).ToArray());
    }

    [Fact]
    public void BadBatchesAreRefusedBeforeAnyStateChanges()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-f32", MatMulPrecision.LlamaCpp);
        using var other = Lfm2GoldenTests.Load("tiny-q8_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var a = lm.CreateState(8, KvCacheType.F32);
        var b = lm.CreateState(8, KvCacheType.F32);
        var full = lm.CreateState(2, KvCacheType.F32);
        lm.Forward([1, 2], full, new float[vocab]);
        var logits = new float[2 * vocab];

        void Refused<T>(Action call, string words) where T : Exception
        {
            var e = Assert.Throws<T>(call);
            Assert.Contains(words, e.Message);
            Assert.Equal(0, a.Position);
            Assert.Equal(0, b.Position);
        }
        Refused<ArgumentException>(() => lm.ForwardBatch([1, 2], [a], logits), "one token per state");
        Refused<ArgumentException>(() => lm.ForwardBatch([1, 2], [a, a], logits), "same state");
        Refused<ArgumentException>(() => lm.ForwardBatch([1, 2], [a, full], logits), "context full");
        Refused<ArgumentException>(() => lm.ForwardBatch([1, 2], [a, other.CreateState(8)], logits), "another model");
        Refused<ArgumentOutOfRangeException>(() => lm.ForwardBatch([1, vocab], [a, b], logits), "outside the vocabulary");
        Refused<ArgumentException>(() => lm.ForwardBatch([1, 2], [a, b], new float[vocab]), "logits buffer");
        Refused<ArgumentException>(() => lm.ForwardBatch([], [], logits), "No tokens");
    }

    [Fact]
    public void SteadyBatchedDecodeDoesNotAllocate()
    {
        using var lm = Lfm2GoldenTests.Load("tiny-q4_0", MatMulPrecision.LlamaCpp);
        int vocab = lm.Config.VocabSize;
        var states = Enumerable.Range(0, 5).Select(_ => lm.CreateState(128, KvCacheType.F16)).ToArray();
        var logits = new float[states.Length * vocab];
        int[] tokens = [5, 6, 7, 8, 9];
        // Warm-up: the model's batch scratch, per-thread job objects, and enough calls for tiered JIT to settle.
        for (int i = 0; i < 20; i++)
        {
            lm.ForwardBatch(tokens, states, logits);
            lm.ForwardBatch(tokens.AsSpan(0, 3), states.AsSpan(0, 3), logits);
        }
        long allocated = SteadyAllocations.Measure(() =>
        {
            for (int i = 0; i < 10; i++)
                lm.ForwardBatch(tokens, states, logits);
            lm.ForwardBatch(tokens.AsSpan(0, 2), states.AsSpan(0, 2), logits);
        });
        Assert.True(allocated == 0, $"batched decode steps allocated {allocated} bytes");
    }
}
