using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Gguf.Tests;

public class GgufWriterRoundTripTests(ITestOutputHelper output)
{
    internal static void AssertSameValue(GgufValue expected, GgufValue actual, string path)
    {
        Assert.True(expected.Type == actual.Type, $"{path}: type {actual.Type}, expected {expected.Type}");
        Assert.True(expected.ElementType == actual.ElementType, $"{path}: element type {actual.ElementType}, expected {expected.ElementType}");
        if (!expected.IsArray)
        {
            AssertSameScalar(expected.Value, actual.Value, path);
            return;
        }
        var e = (Array)expected.Value;
        var a = (Array)actual.Value;
        Assert.True(e.GetType() == a.GetType(), $"{path}: {a.GetType().Name}, expected {e.GetType().Name}");
        Assert.True(e.Length == a.Length, $"{path}: {a.Length} items, expected {e.Length}");
        for (int i = 0; i < e.Length; i++)
        {
            if (e is GgufValue[] nested)
                AssertSameValue(nested[i], ((GgufValue[])a)[i], $"{path}[{i}]");
            else
                AssertSameScalar(e.GetValue(i)!, a.GetValue(i)!, $"{path}[{i}]");
        }
    }

    private static void AssertSameScalar(object expected, object actual, string path)
    {
        // Floats compare by bits so NaN payloads and -0 count.
        bool same = (expected, actual) switch
        {
            (float x, float y) => BitConverter.SingleToInt32Bits(x) == BitConverter.SingleToInt32Bits(y),
            (double x, double y) => BitConverter.DoubleToInt64Bits(x) == BitConverter.DoubleToInt64Bits(y),
            _ => expected.GetType() == actual.GetType() && expected.Equals(actual),
        };
        Assert.True(same, $"{path}: {actual} ({actual.GetType().Name}), expected {expected} ({expected.GetType().Name})");
    }

    /// <summary>Same metadata (keys, order, types, values) and same tensors (order, names, types, shapes, bytes).</summary>
    internal static void AssertSameContent(GgufFile expected, GgufFile actual)
    {
        Assert.Equal(expected.Metadata.Keys, actual.Metadata.Keys);
        foreach (var e in expected.Metadata)
            AssertSameValue(e.Value, actual.Metadata[e.Key], e.Key);
        Assert.Equal(expected.Alignment, actual.Alignment);
        Assert.Equal(expected.Tensors.Count, actual.Tensors.Count);
        for (int i = 0; i < expected.Tensors.Count; i++)
        {
            var te = expected.Tensors[i];
            var ta = actual.Tensors[i];
            Assert.Equal(te.Name, ta.Name);
            Assert.Equal(te.Type, ta.Type);
            Assert.Equal(te.Dimensions, ta.Dimensions);
            Assert.True(expected.GetTensorData(te).SequenceEqual(actual.GetTensorData(ta)), $"tensor '{te.Name}' bytes differ");
        }
    }

    [Fact]
    public void Every_value_type_and_tensor_survives_a_round_trip()
    {
        var expectedTensors = new Dictionary<string, byte[]>();
        var w = Synthetic.AllTypes(alignment: 64, expectedTensors);

        byte[] bytes = w.ToBytes();
        using var f = GgufFile.Load(bytes);
        Assert.Equal(3u, f.Version);
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);

        // The writer adds general.alignment first because the alignment is not the default.
        var keys = f.Metadata.Keys.ToArray();
        Assert.Equal("general.alignment", keys[0]);
        Assert.Equal(64u, f.Metadata.GetUInt32("general.alignment"));
        Assert.Equal(w.Metadata.Select(e => e.Key), keys.Skip(1));
        foreach (var e in w.Metadata)
            AssertSameValue(e.Value, f.Metadata[e.Key], e.Key);

        // Spot checks that do not go through AssertSameValue.
        Assert.Equal("synthétique ✓ 𝄞 中文 \u0000 nul and \n newline", f.Metadata.GetString("general.name"));
        Assert.Equal(new[] { 0, 0, 8, 0, 0, 8 }, f.Metadata.GetInt32Array("a.i32"));
        Assert.Equal(new[] { -1, 2, -3 }, f.Metadata.GetInt32Array("a.i16"));
        Assert.Throws<InvalidDataException>(() => f.Metadata.GetInt32Array("a.u32")); // holds uint.MaxValue
        Assert.Equal(["<|pad|>", "Ġhello", "héllo", "", "😀 emoji", "\t\r\n"], f.Metadata.GetStringArray("a.string"));
        Assert.Equal(long.MinValue, f.Metadata.GetInt64("s.i64"));
        Assert.Equal(1e-5f, f.Metadata.GetFloat32("s.f32"));
        Assert.True(f.Metadata.GetBool("s.bool.true"));

        Assert.Equal(9, expectedTensors.Count);
        Assert.Equal(expectedTensors.Keys, f.Tensors.Select(t => t.Name));
        foreach (var t in f.Tensors)
        {
            Assert.Equal(0, t.Offset % 64);
            Assert.Equal(expectedTensors[t.Name], f.GetTensorData(t).ToArray());
        }
        Assert.Equal([256L, 2, 1], f.GetTensor("t.q4_k").Dimensions);
        Assert.Equal(2 * 144, f.GetTensor("t.q4_k").ByteSize);
        Assert.Equal(0, f.GetTensor("t.empty").ByteSize);
    }

    [Theory]
    [InlineData(32)]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(4096)]
    public void Alignment_is_honoured_and_only_written_when_not_the_default(int alignment)
    {
        using var f = GgufFile.Load(Synthetic.ManyTensors(20).Apply(w => w.Alignment = alignment).ToBytes());
        Assert.Equal(alignment, f.Alignment);
        Assert.Equal(alignment != 32, f.Metadata.Contains("general.alignment"));
        Assert.Equal(0, f.DataOffset % alignment);
        Assert.All(f.Tensors, t => Assert.Equal(0, t.Offset % alignment));
    }

    [Fact]
    public void Streamed_tensors_files_on_disk_and_progress()
    {
        var w = new GgufWriter();
        w.AddString("general.architecture", "test");
        var big = new byte[3 * 1000 * 4];
        new Random(5).NextBytes(big);
        // Written in pieces by a callback, as a converter streaming a large tensor would.
        w.AddTensor("big", GgmlType.F32, [1000, 3], s =>
        {
            for (int i = 0; i < 3; i++)
                s.Write(big, i * 4000, 4000);
        });
        w.AddTensor("small", GgmlType.F16, [4], new byte[8]);

        string path = Path.Combine(TestData.NewTempDir(), "streamed.gguf");
        var reports = new List<double>();
        w.WriteTo(path, new SyncProgress(reports.Add));
        Assert.False(File.Exists(path + ".partial"));
        Assert.Equal(1.0, reports[^1], 6);
        Assert.True(reports.SequenceEqual(reports.Order()), "progress went backwards");

        using var f = GgufFile.Open(path);
        Assert.Equal(path, f.Path);
        Assert.Equal(big, f.GetTensorData(f.GetTensor("big")).ToArray());
        Assert.Equal(new FileInfo(path).Length, f.FileSize);
    }

    [Fact]
    public void Writer_rejects_inconsistent_input()
    {
        var w = new GgufWriter();
        w.AddUInt32("k", 1);
        Assert.Throws<ArgumentException>(() => w.AddUInt32("k", 2));
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [4], new byte[15]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("q", GgmlType.Q4_0, [31], new byte[18]));
        Assert.Throws<ArgumentException>(() => w.AddTensor("d", GgmlType.F32, [1, 1, 1, 1, 1], new byte[4]));
        w.AddTensor("t", GgmlType.F32, [4], new byte[16]);
        Assert.Throws<ArgumentException>(() => w.AddTensor("t", GgmlType.F32, [4], new byte[16]));

        w.AddTensor("short", GgmlType.F32, [4], s => s.Write(new byte[12]));
        var e = Assert.Throws<InvalidOperationException>(() => w.WriteTo(new MemoryStream()));
        Assert.Contains("short", e.Message, StringComparison.Ordinal);

        Assert.Throws<InvalidOperationException>(() => new GgufWriter { Alignment = 48 }.WriteTo(new MemoryStream()));

        // A copied general.alignment that disagrees with the layout would corrupt every offset.
        var copied = new GgufWriter();
        copied.AddUInt32("general.alignment", 64);
        Assert.Throws<InvalidOperationException>(() => copied.WriteTo(new MemoryStream()));
        copied.Alignment = 64;
        using var f = GgufFile.Load(copied.ToBytes());
        Assert.Equal(64, f.Alignment);
        Assert.Single(f.Metadata);
    }

    public static TheoryData<string> FixtureModels()
    {
        var data = new TheoryData<string>();
        foreach (string path in Directory.GetFiles(Path.Combine(TestData.Fixtures, "models"), "*.gguf").Order(StringComparer.Ordinal))
            data.Add(Path.GetFileName(path));
        return data;
    }

    [Theory]
    [MemberData(nameof(FixtureModels))]
    public void Fixture_rewritten_through_the_writer_is_byte_identical(string file)
    {
        byte[] original = File.ReadAllBytes(TestData.Model(file));
        using var src = GgufFile.Load(original);
        var w = new GgufWriter { Alignment = (int)src.Alignment };
        foreach (var e in src.Metadata)
            w.Add(e.Key, e.Value);
        foreach (var t in src.Tensors)
            w.AddTensor(t.Name, t.Type, t.Dimensions, src.GetTensorData(t).ToArray());
        byte[] rewritten = w.ToBytes();

        using (var back = GgufFile.Load(rewritten))
            AssertSameContent(src, back);

        int firstDiff = original.AsSpan().CommonPrefixLength(rewritten);
        output.WriteLine($"{file}: original {original.Length} bytes, rewritten {rewritten.Length} bytes, " +
            (firstDiff == original.Length && original.Length == rewritten.Length ? "identical" : $"first difference at byte {firstDiff}"));
        // Same metadata order, same tensor order, default alignment, padding after every tensor: the writer lays
        // files out exactly as gguf-py (generator files) and llama-quantize do.
        Assert.Equal(original.Length, rewritten.Length);
        Assert.Equal(original.Length, firstDiff);
    }

    private sealed class SyncProgress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}

internal static class WriterExtensions
{
    public static GgufWriter Apply(this GgufWriter w, Action<GgufWriter> change)
    {
        change(w);
        return w;
    }
}
