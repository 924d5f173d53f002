using System.Text.Json;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Forward;

/// <summary>The harness itself: llama.cpp driven through <see cref="LlamaCpp"/> reproduces the fixture goldens.</summary>
public sealed class LlamaCppHarnessTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("tiny-f32", 1e-4)]
    [InlineData("tiny-q4_k_m", 0.05)]
    public void ReproducesTheFixtureGoldens(string model, double tolerance)
    {
        output.WriteLine($"llama.cpp: {LlamaCpp.LibraryPath}");
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Golden($"lfm2-{model}.json")));
        int vocab = doc.RootElement.GetProperty("n_vocab").GetInt32();
        byte[] golden = File.ReadAllBytes(TestData.Golden($"lfm2-{model}.batch.f32"));
        foreach (var seq in doc.RootElement.GetProperty("sequences").EnumerateArray())
        {
            int[] ids = seq.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            long offset = seq.GetProperty("byte_offset").GetInt64();
            float[] theirs = LlamaCpp.Logits(TestData.Model(model), ids, out int n);
            Assert.Equal(vocab, n);
            double max = 0;
            for (int i = 0; i < theirs.Length; i++)
                max = Math.Max(max, Math.Abs(theirs[i] - BitConverter.ToSingle(golden, (int)offset + 4 * i)));
            output.WriteLine($"{model} {seq.GetProperty("name").GetString()}: max |Δ| vs golden {max:E2}");
            Assert.True(max <= tolerance, $"{model} {seq.GetProperty("name").GetString()}: llama.cpp here differs from the golden by {max:E2}");
        }
    }

    /// <summary>
    /// The zero layer <see cref="IdentityLayer"/> appends for all-conv / all-attention models is an identity in both
    /// engines: llama.cpp gives the fixture model's logits with it appended (either kind), and so do we.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AppendedZeroLayerIsAnIdentity(bool attention)
    {
        string dir = TestData.NewTempDir();
        try
        {
            string padded = Path.Combine(dir, "padded.gguf");
            IdentityLayer.Append(TestData.Model("tiny-q4_k_m"), padded, attention);
            int[] ids = [1, 6, 332, 280, 26, 88, 121, 7, 300, 5, 499, 17];

            float[] plain = LlamaCpp.Logits(TestData.Model("tiny-q4_k_m"), ids, out _);
            float[] withLayer = LlamaCpp.Logits(padded, ids, out _);
            Assert.Equal(plain, withLayer);

            float[] ours = Ours(TestData.Model("tiny-q4_k_m"), ids);
            float[] oursWithLayer = Ours(padded, ids);
            Assert.Equal(ours, oursWithLayer);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static float[] Ours(string path, int[] ids)
    {
        using var model = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2 });
        var logits = new float[ids.Length * model.Config.VocabSize];
        model.Forward(ids, model.CreateState(ids.Length, KvCacheType.F32), logits, LogitPositions.All);
        return logits;
    }
}
