using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf.Tests;

/// <summary><see cref="GgufFile.ReadTensorData"/>: tensor bytes by file reads (for load-time copies), not through the map.</summary>
public class GgufReadTensorDataTests
{
    [Fact]
    public void Reads_the_same_bytes_as_the_map_from_files_and_memory()
    {
        var rng = new Random(11);
        var w = new GgufWriter();
        w.AddString("general.architecture", "test");
        var a = Synthetic.AddRandomTensor(w, rng, "a", GgmlType.Q4_0, [64, 40]);
        var b = Synthetic.AddRandomTensor(w, rng, "b", GgmlType.F32, [333]);
        var bytes = w.ToBytes();
        string path = Path.Combine(Path.GetTempPath(), $"lfmsharp-read-{Guid.NewGuid():N}.gguf");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var mapped = GgufFile.Open(path);
            using var inMemory = GgufFile.Load(bytes);
            foreach (var f in new[] { mapped, inMemory })
            {
                foreach (var (name, want) in new[] { ("a", a), ("b", b) })
                {
                    var t = f.GetTensor(name);
                    var all = new byte[t.ByteSize];
                    f.ReadTensorData(t, 0, all);
                    Assert.Equal(want, all);
                    var part = new byte[50];
                    f.ReadTensorData(t, 17, part);
                    Assert.Equal(want.AsSpan(17, 50).ToArray(), part);
                    f.ReadTensorData(t, t.ByteSize, Span<byte>.Empty);   // an empty read at the end is fine
                }
                var ta = f.GetTensor("a");
                var ex = Assert.Throws<ArgumentOutOfRangeException>(() => f.ReadTensorData(ta, ta.ByteSize - 3, new byte[4]));
                Assert.Contains("tensor 'a'", ex.Message);
                Assert.Throws<ArgumentOutOfRangeException>(() => f.ReadTensorData(ta, -1, new byte[1]));
                Assert.Throws<ArgumentException>(() => f.ReadTensorData(mapped == f ? inMemory.GetTensor("a") : mapped.GetTensor("a"), 0, new byte[1]));
            }
            var t2 = mapped.GetTensor("b");
            mapped.Dispose();
            Assert.Throws<ObjectDisposedException>(() => mapped.ReadTensorData(t2, 0, new byte[4]));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
