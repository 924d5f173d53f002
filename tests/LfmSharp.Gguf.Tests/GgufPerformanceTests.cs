using System.Diagnostics;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Gguf.Tests;

/// <summary>
/// Opening reads the header only. These tests print timings (no timing assertions: CI machines vary) and check what
/// can be checked deterministically: memory, not time.
/// </summary>
public class GgufPerformanceTests(ITestOutputHelper output)
{
    [Fact]
    public void Opening_fixture_models_reports_open_time()
    {
        foreach (string path in Directory.GetFiles(Path.Combine(TestData.Fixtures, "models"), "*.gguf").Order(StringComparer.Ordinal))
        {
            double first = 0, best = double.MaxValue;
            for (int i = 0; i < 5; i++)
            {
                long t0 = Stopwatch.GetTimestamp();
                using var f = GgufFile.Open(path);
                double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                if (i == 0)
                    first = ms;
                best = Math.Min(best, ms);
                Assert.True(f.Tensors.Count > 0);
            }
            output.WriteLine($"{Path.GetFileName(path),-26} {new FileInfo(path).Length,10:N0} bytes: open {first,7:F2} ms first, {best,6:F2} ms best of 5");
        }
    }

    [Fact]
    public void Opening_a_2_GiB_sparse_model_does_not_touch_tensor_pages()
    {
        // One 2 GiB F32 tensor in a sparse file: the data section is a hole that costs no disk. If Open (or the
        // directory checks) read tensor bytes, the mapped pages would be faulted in and the working set would grow
        // by up to 2 GiB.
        const long rows = 1 << 15, cols = 1 << 14; // 2^29 floats = 2 GiB
        var b = new RawGguf().Header(1, 1).KvString("general.architecture", "sparse");
        b.TensorInfo("huge", GgmlType.F32, [cols, rows], 0).PadTo(32);
        byte[] header = b.ToArray();
        string path = Path.Combine(TestData.NewTempDir(), "sparse.gguf");
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.Write(header);
            fs.SetLength(header.Length + rows * cols * 4);
        }
        try
        {
            using var self = Process.GetCurrentProcess();
            long before = self.WorkingSet64;
            long t0 = Stopwatch.GetTimestamp();
            using var f = GgufFile.Open(path);
            var t = f.GetTensor("huge");
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            self.Refresh();
            long grown = self.WorkingSet64 - before;
            output.WriteLine($"opened a {f.FileSize:N0} byte file in {ms:F2} ms; working set grew by {grown / 1024.0 / 1024.0:F1} MiB");

            Assert.Equal(rows * cols * 4, t.ByteSize);
            Assert.Equal(rows, t.RowCount);
            Assert.Equal(cols, t.RowLength);
            Assert.InRange(grown, long.MinValue, 256L << 20);
            // Spans stop at 2 GiB; the pointer is the way to larger tensors.
            Assert.Throws<NotSupportedException>(() => f.GetTensorData(t));
            unsafe
            {
                byte* p = f.GetTensorPointer(t);
                Assert.Equal(0, p[t.ByteSize - 1]); // the last byte is mapped (and reads as the hole's zero)
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_65536_token_vocabulary_loads_fast()
    {
        // The real LFM2 vocabulary: 65,536 tokens, their types, and 63,683 merges.
        var rng = new Random(7);
        string[] tokens = new string[65536];
        for (int i = 0; i < tokens.Length; i++)
            tokens[i] = i < 256 ? ((char)(0x100 + i)).ToString() : "Ġ" + RandomWord(rng, 2 + i % 9);
        string[] merges = Enumerable.Range(0, 63683).Select(i => tokens[256 + i % 60000] + " " + tokens[300 + i % 50000]).ToArray();
        int[] types = Enumerable.Range(0, tokens.Length).Select(i => i < 14 ? 3 : 1).ToArray();
        var w = new GgufWriter();
        w.AddString("general.architecture", "lfm2");
        w.AddArray("tokenizer.ggml.tokens", tokens);
        w.AddArray("tokenizer.ggml.token_type", types);
        w.AddArray("tokenizer.ggml.merges", merges);
        w.AddTensor("token_embd.weight", GgmlType.F32, [4, 4], new byte[64]);

        long tw = Stopwatch.GetTimestamp();
        byte[] bytes = w.ToBytes();
        double writeMs = Stopwatch.GetElapsedTime(tw).TotalMilliseconds;

        double best = double.MaxValue;
        long allocated = 0;
        for (int i = 0; i < 5; i++)
        {
            long a0 = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            using var f = GgufFile.Load(bytes);
            best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            allocated = GC.GetAllocatedBytesForCurrentThread() - a0;
            Assert.Equal(tokens, f.Metadata.GetStringArray("tokenizer.ggml.tokens"));
            Assert.Equal(merges, f.Metadata.GetStringArray("tokenizer.ggml.merges"));
            Assert.Equal(types, f.Metadata.GetInt32Array("tokenizer.ggml.token_type"));
        }
        output.WriteLine($"{bytes.Length:N0} byte header with 65,536 tokens and 63,683 merges: write {writeMs:F1} ms, load {best:F2} ms best of 5, {allocated / 1024.0 / 1024.0:F1} MiB allocated per load");
        // What a load allocates is the strings themselves plus small change, not a multiple of the file.
        Assert.InRange(allocated, 0, 4L * bytes.Length + (1 << 20));
    }

    private static string RandomWord(Random rng, int length)
    {
        var c = new char[length];
        for (int i = 0; i < length; i++)
            c[i] = (char)('a' + rng.Next(26));
        return new string(c);
    }
}
