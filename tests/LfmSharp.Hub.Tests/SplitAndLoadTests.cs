using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Hub.Tests;

/// <summary>Split GGUFs download as one set and load as one model; LanguageModel.LoadAsync takes a name.</summary>
public sealed class SplitAndLoadTests : HubTestBase
{
    /// <summary>Writes <paramref name="source"/> as <paramref name="count"/> parts the way gguf-split does.</summary>
    private static List<(string Name, byte[] Bytes)> Split(string source, string prefix, int count)
    {
        using var f = GgufFile.Open(source);
        var parts = new List<(string, byte[])>();
        int per = (f.Tensors.Count + count - 1) / count;
        for (int i = 0; i < count; i++)
        {
            var w = new GgufWriter();
            if (i == 0)
            {
                foreach (var e in f.Metadata)
                    w.Add(e.Key, e.Value);
            }
            w.Add(GgufFile.SplitIndexKey, GgufValue.From((ushort)i));
            w.Add(GgufFile.SplitCountKey, GgufValue.From((ushort)count));
            w.Add(GgufFile.SplitTensorCountKey, GgufValue.From(f.Tensors.Count));
            foreach (var t in f.Tensors.Skip(i * per).Take(per))
                w.AddTensor(t.Name, t.Type, t.Dimensions, f.GetTensorData(t).ToArray());
            using var ms = new MemoryStream();
            w.WriteTo(ms);
            parts.Add(($"{prefix}-{i + 1:D5}-of-{count:D5}.gguf", ms.ToArray()));
        }
        return parts;
    }

    private static float[] Logits(LanguageModel m)
    {
        int[] tokens = [1, 6, 7, 8, 9];
        var logits = new float[m.Config.VocabSize];
        var state = m.CreateState(16);
        m.Forward(tokens, state, logits);
        return logits;
    }

    [Fact]
    public async Task A_split_gguf_downloads_as_a_set_and_loads_like_the_whole_file()
    {
        var parts = Split(TestData.Model("tiny-q4_0"), "Big-Q4_0", 3);
        var repo = Hub.AddRepo("Org/Split-GGUF", [.. parts, ("Big-Q8_0.gguf", Q8_0)]);

        var result = await PullAsync("Org/Split-GGUF:Q4_0");
        Assert.Equal(3, result.Files.Count);
        Assert.EndsWith("Big-Q4_0-00001-of-00003.gguf", result.Path, StringComparison.Ordinal);
        for (int i = 0; i < 3; i++)
            Assert.Equal(parts[i].Bytes, File.ReadAllBytes(result.Files[i]));
        Assert.Equal(3, Hub.Count("CDN GET /blobs/"));
        var listed = Assert.Single(new HubCache(CacheDir).List());
        Assert.Equal((3, parts.Sum(p => (long)p.Bytes.Length)), (listed.FileCount, listed.SizeBytes));

        using (var gguf = GgufFile.Open(result.Path))
        {
            Assert.Equal(3, gguf.SplitCount);
            using var whole = GgufFile.Open(TestData.Model("tiny-q4_0"));
            Assert.Equal(whole.Tensors.Select(t => t.Name), gguf.Tensors.Select(t => t.Name));
            foreach (var t in gguf.Tensors)
                Assert.True(whole.GetTensorData(whole.GetTensor(t.Name)).SequenceEqual(gguf.GetTensorData(t)), t.Name);
        }
        using var split = LanguageModel.Load(result.Path, new ModelLoadOptions { Threads = 1 });
        using var single = LanguageModel.Load(TestData.Model("tiny-q4_0"), new ModelLoadOptions { Threads = 1 });
        Assert.Equal(Logits(single), Logits(split));

        // A missing part is named, not a crash.
        File.Delete(result.Files[2]);
        var e = Assert.Throws<FileNotFoundException>(() => GgufFile.Open(result.Path));
        Assert.Contains("part 3 of 3", e.Message, StringComparison.Ordinal);
        var notFirst = Assert.Throws<GgufFormatException>(() => GgufFile.Open(result.Files[1]));
        Assert.Contains("open the first part", notFirst.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LoadAsync_takes_a_name_reports_progress_and_Load_reuses_the_cache()
    {
        var progress = new Recorder();
        using (var model = await LanguageModel.LoadAsync("hf.co/Org/Tiny-GGUF:Q8_0", progress, new ModelLoadOptions { Threads = 1 }, Options()))
        {
            Assert.EndsWith("Tiny-Q8_0.gguf", model.Path, StringComparison.Ordinal);
            Assert.StartsWith(CacheDir, model.Path!, StringComparison.Ordinal);
        }
        var last = progress.Reports[^1];
        Assert.True(last.Completed);
        Assert.Equal(Q8_0.Length, last.BytesDone);
        Assert.Equal(1.0, last.Fraction);

        int before = Hub.Log.Count;
        string path = ModelLocator.Resolve("Org/Tiny-GGUF:Q8_0", Options(offline: true));
        using var again = LanguageModel.Load(path, new ModelLoadOptions { Threads = 1 });
        Assert.Equal(before, Hub.Log.Count);
    }
}
