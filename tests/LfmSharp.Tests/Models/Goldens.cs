using System.Text.Json;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Models;

/// <summary>The llama.cpp logit goldens of tests/TestData/fixtures (layout: fixtures README §3).</summary>
internal sealed class Goldens
{
    public sealed record Sequence(string Name, int[] Ids, int RowOffset, int[] GreedyIds, float[] GreedyMargins);

    private Goldens(string model, int vocab, Sequence[] sequences)
    {
        Model = model;
        Vocab = vocab;
        Sequences = sequences;
    }

    public string Model { get; }
    public int Vocab { get; }
    public Sequence[] Sequences { get; }

    public static Goldens For(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Golden($"lfm2-{model}.json")));
        var root = doc.RootElement;
        var seqs = root.GetProperty("sequences").EnumerateArray().Select(s => new Sequence(
            s.GetProperty("name").GetString()!,
            s.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            s.GetProperty("row_offset").GetInt32(),
            s.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            s.GetProperty("greedy_top1_margin").EnumerateArray().Select(e => e.GetSingle()).ToArray())).ToArray();
        return new Goldens(model, root.GetProperty("n_vocab").GetInt32(), seqs);
    }

    public static bool Has(string model, string kind) => File.Exists(TestData.Golden($"lfm2-{model}.{kind}.f32"));

    /// <summary>All rows of <c>lfm2-{model}.{kind}.f32</c> (kind = batch, incr or exact), [total rows, vocab].</summary>
    public float[] Logits(string kind)
    {
        var bytes = File.ReadAllBytes(TestData.Golden($"lfm2-{Model}.{kind}.f32"));
        var floats = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, floats, 0, bytes.Length);
        return floats;
    }

    public ReadOnlySpan<float> Rows(float[] all, Sequence s) => all.AsSpan(s.RowOffset * Vocab, s.Ids.Length * Vocab);

    /// <summary>Top-1 minus top-2 logit of one row.</summary>
    public static float Margin(ReadOnlySpan<float> row)
    {
        float a = float.NegativeInfinity, b = float.NegativeInfinity;
        foreach (float v in row)
        {
            if (v > a) { b = a; a = v; }
            else if (v > b) b = v;
        }
        return a - b;
    }
}
