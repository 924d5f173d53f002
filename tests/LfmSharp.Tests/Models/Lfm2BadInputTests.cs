using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Models;

/// <summary>Bad files and bad inputs fail with an exception that names the problem, and leave the state unchanged.</summary>
public sealed class Lfm2BadInputTests
{
    /// <summary>Rewrites tiny-f32 with edits: metadata overrides, a dropped tensor, a tensor with another shape.</summary>
    private static string Rewrite(Func<GgufMetadataEntry, GgufMetadataEntry?>? meta = null, string? dropTensor = null, string? reshapeTensor = null)
    {
        using var src = GgufFile.Open(TestData.Model("tiny-f32"));
        var w = new GgufWriter();
        foreach (var e in src.Metadata)
        {
            var entry = meta is null ? e : meta(e);
            if (entry is { } kept)
                w.Add(kept.Key, kept.Value);
        }
        foreach (var t in src.Tensors)
        {
            if (t.Name == dropTensor)
                continue;
            var data = src.GetTensorData(t).ToArray();
            var ne = t.Dimensions;
            if (t.Name == reshapeTensor)
                ne = [ne[1], ne[0]];   // transposed shape, same byte count
            w.AddTensor(t.Name, t.Type, ne, data);
        }
        string path = Path.Combine(TestData.NewTempDir(), "edited.gguf");
        w.WriteTo(path);
        return path;
    }

    private static LanguageModel Load(string path) => LanguageModel.Load(path, new ModelLoadOptions { Threads = 1 });

    [Fact]
    public void OtherArchitectureIsRejected()
    {
        var path = Rewrite(meta: e => e.Key == "general.architecture" ? new GgufMetadataEntry(e.Key, GgufValue.From("llama")) : e);
        var ex = Assert.Throws<NotSupportedException>(() => Load(path));
        Assert.Contains("unsupported architecture 'llama' (supported: lfm2)", ex.Message);
    }

    [Fact]
    public void ScalarHeadCountKvIsRejected()
    {
        var path = Rewrite(meta: e => e.Key == "lfm2.attention.head_count_kv" ? new GgufMetadataEntry(e.Key, GgufValue.From(2u)) : e);
        var ex = Assert.Throws<InvalidDataException>(() => Load(path));
        Assert.Contains("head_count_kv", ex.Message);
    }

    [Fact]
    public void HeadCountKvOfWrongLengthIsRejected()
    {
        var path = Rewrite(meta: e => e.Key == "lfm2.attention.head_count_kv" ? new GgufMetadataEntry(e.Key, GgufValue.Array(new uint[] { 0, 0, 2 })) : e);
        var ex = Assert.Throws<InvalidDataException>(() => Load(path));
        Assert.Contains("3 entries", ex.Message);
    }

    [Fact]
    public void UInt32HeadCountKvArrayIsAccepted()
    {
        var path = Rewrite(meta: e => e.Key == "lfm2.attention.head_count_kv" ? new GgufMetadataEntry(e.Key, GgufValue.Array(new uint[] { 0, 0, 2, 0, 2, 0 })) : e);
        using var lm = Load(path);
        Assert.True(lm.Config.IsAttentionLayer(2));
        Assert.False(lm.Config.IsAttentionLayer(3));
    }

    [Fact]
    public void MissingMetadataKeyIsNamed()
    {
        var path = Rewrite(meta: e => e.Key == "lfm2.shortconv.l_cache" ? null : e);
        var ex = Assert.Throws<InvalidDataException>(() => Load(path));
        Assert.Contains("lfm2.shortconv.l_cache", ex.Message);
    }

    [Fact]
    public void MissingTensorIsNamed()
    {
        var path = Rewrite(dropTensor: "blk.4.attn_k.weight");
        var ex = Assert.Throws<InvalidDataException>(() => Load(path));
        Assert.Contains("'blk.4.attn_k.weight' not found", ex.Message);
    }

    [Fact]
    public void ShapeMismatchIsNamed()
    {
        var path = Rewrite(reshapeTensor: "blk.0.shortconv.in_proj.weight");
        var ex = Assert.Throws<InvalidDataException>(() => Load(path));
        Assert.Contains("'blk.0.shortconv.in_proj.weight' has shape [192, 64], expected [64, 192]", ex.Message);
    }

    [Fact]
    public void OutputNormNameFromOllamaIsAccepted()
    {
        using var src = GgufFile.Open(TestData.Model("tiny-f32"));
        var w = new GgufWriter();
        foreach (var e in src.Metadata)
            w.Add(e.Key, e.Value);
        foreach (var t in src.Tensors)
            w.AddTensor(t.Name == "token_embd_norm.weight" ? "output_norm.weight" : t.Name, t.Type, t.Dimensions, src.GetTensorData(t).ToArray());
        string path = Path.Combine(TestData.NewTempDir(), "ollama.gguf");
        w.WriteTo(path);

        using var renamed = Load(path);
        using var original = Load(TestData.Model("tiny-f32"));
        int[] ids = [1, 6, 332, 280];
        Assert.Equal(Lfm2GoldenTests.Run(original, ids), Lfm2GoldenTests.Run(renamed, ids));
    }

    [Fact]
    public void TokenOutOfRangeIsRejectedBeforeTheStateChanges()
    {
        using var lm = Load(TestData.Model("tiny-f32"));
        var state = lm.CreateState(16, KvCacheType.F32);
        var logits = new float[lm.Config.VocabSize];
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => lm.Forward([1, 2, 512], state, logits));
        Assert.Contains("token id 512 at index 2", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => lm.Forward([-1], state, logits));
        Assert.Equal(0, state.Position);
    }

    [Fact]
    public void MoreTokensThanContextIsRejected()
    {
        using var lm = Load(TestData.Model("tiny-f32"));
        var state = lm.CreateState(8, KvCacheType.F32);
        var logits = new float[lm.Config.VocabSize];
        lm.Forward([1, 2, 3, 4, 5, 6], state, logits);
        var ex = Assert.Throws<ArgumentException>(() => lm.Forward([7, 8, 9], state, logits));
        Assert.Contains("context full", ex.Message);
        Assert.Equal(6, state.Position);
        lm.Forward([7, 8], state, logits);   // exactly fills the context
        Assert.Equal(8, state.Position);
    }

    [Fact]
    public void EmptyInputTooSmallLogitsAndForeignStateAreRejected()
    {
        using var lm = Load(TestData.Model("tiny-f32"));
        using var other = Load(TestData.Model("tiny-f32"));
        var state = lm.CreateState(8);
        Assert.Throws<ArgumentException>(() => lm.Forward([], state, new float[512]));
        Assert.Throws<ArgumentException>(() => lm.Forward([1, 2], state, new float[512], LogitPositions.All));
        Assert.Throws<ArgumentException>(() => other.Forward([1], state, new float[512]));
        Assert.Equal(0, state.Position);
    }

    [Fact]
    public void ForwardAfterDisposeThrows()
    {
        var lm = Load(TestData.Model("tiny-f32"));
        var state = lm.CreateState(8);
        lm.Dispose();
        Assert.Throws<ObjectDisposedException>(() => lm.Forward([1], state, new float[512]));
    }
}
