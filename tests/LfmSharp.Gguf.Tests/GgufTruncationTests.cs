using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;

namespace LfmSharp.Gguf.Tests;

/// <summary>
/// Cuts files at every byte and checks the error names the field the cut fell in, at that field's offset.
/// </summary>
public class GgufTruncationTests
{
    /// <summary>Expected error for a cut anywhere before <see cref="End"/> (and after the previous rule's end).</summary>
    private readonly record struct Rule(long End, string Field, long Offset);

    /// <summary>
    /// A file with every kind of section (header, scalar/string/array KVs, tensor infos, padding, two tensors), and
    /// for each byte range the error a cut there must produce. Counts are checked against the smallest possible
    /// encodings before the sections are read (13 bytes per KV, 24 per tensor info, the element size per array), so
    /// cuts inside the first bytes after a count report that count.
    /// </summary>
    private static (byte[] Bytes, List<Rule> Rules, long ValidFrom) BuildAnnotated()
    {
        var rules = new List<Rule>();
        var b = new RawGguf();
        b.U32(GgufFile.Magic); rules.Add(new(4, "magic", 0));
        b.U32(3); rules.Add(new(8, "version", 4));
        b.U64(2); rules.Add(new(16, "tensor_count", 8));
        b.U64(4); rules.Add(new(24, "metadata_kv_count", 16));
        rules.Add(new(24 + 4 * 13, "metadata_kv_count", 16));
        rules.Add(new(24 + 2 * 24, "tensor_count", 8));

        void Str(string field, string s)
        {
            long at = b.Position;
            b.Str(s);
            rules.Add(new(at + 8, field + " (string length)", at));
            rules.Add(new(b.Position, field, at));
        }
        void Fixed(string field, int size, Action write)
        {
            long at = b.Position;
            write();
            rules.Add(new(at + size, field, at));
        }

        // KV 0: a string. Its first bytes fall under the count rules above; the ranges still end in order.
        Str("metadata[0].key", "general.architecture");
        Fixed("metadata['general.architecture'].type", 4, () => b.U32((uint)GgufValueType.String));
        Str("metadata['general.architecture']", "lfm2");
        // KV 1: u32
        Str("metadata[1].key", "lfm2.block_count");
        Fixed("metadata['lfm2.block_count'].type", 4, () => b.U32((uint)GgufValueType.UInt32));
        Fixed("metadata['lfm2.block_count']", 4, () => b.U32(6));
        // KV 2: i32 array
        Str("metadata[2].key", "lfm2.attention.head_count_kv");
        const string kv = "metadata['lfm2.attention.head_count_kv']";
        Fixed(kv + ".type", 4, () => b.U32((uint)GgufValueType.Array));
        Fixed(kv + ".element_type", 4, () => b.U32((uint)GgufValueType.Int32));
        long countAt = b.Position;
        b.U64(3);
        rules.Add(new(countAt + 8 + 3 * 4, kv + ".count", countAt));
        b.I32(0).I32(2).I32(0);
        // KV 3: string array
        Str("metadata[3].key", "tokenizer.ggml.tokens");
        const string tok = "metadata['tokenizer.ggml.tokens']";
        Fixed(tok + ".type", 4, () => b.U32((uint)GgufValueType.Array));
        Fixed(tok + ".element_type", 4, () => b.U32((uint)GgufValueType.String));
        countAt = b.Position;
        b.U64(3);
        rules.Add(new(countAt + 8 + 3 * 8, tok + ".count", countAt));
        Str(tok + "[0]", "<|pad|>");
        Str(tok + "[1]", "héllo");
        Str(tok + "[2]", "Ġworld");

        long metadataEnd = b.Position;
        rules.Add(new(metadataEnd + 2 * 24, "tensor_count", 8));

        // Tensor infos.
        Str("tensor[0].name", "token_embd.weight");
        const string t0 = "tensor[0] 'token_embd.weight'";
        Fixed(t0 + ".n_dims", 4, () => b.U32(2));
        Fixed(t0 + ".ne[0]", 8, () => b.U64(32));
        Fixed(t0 + ".ne[1]", 8, () => b.U64(2));
        Fixed(t0 + ".type", 4, () => b.U32((uint)GgmlType.Q8_0));
        Fixed(t0 + ".offset", 8, () => b.U64(0));
        Str("tensor[1].name", "token_embd_norm.weight");
        const string t1 = "tensor[1] 'token_embd_norm.weight'";
        Fixed(t1 + ".n_dims", 4, () => b.U32(1));
        Fixed(t1 + ".ne[0]", 8, () => b.U64(5));
        Fixed(t1 + ".type", 4, () => b.U32((uint)GgmlType.F32));
        Fixed(t1 + ".offset", 8, () => b.U64(96));
        long infoEnd = b.Position;
        b.PadTo(32);
        long data = b.Position;
        rules.Add(new(data, "tensor data", infoEnd));
        // Q8_0 [32, 2]: 2 blocks of 34 bytes, then padding to 96, then F32 [5]: 20 bytes, then padding.
        b.Zeros(96 + 20);
        rules.Add(new(data + 68, "tensor 'token_embd.weight' data", data));
        rules.Add(new(data + 96 + 20, "tensor 'token_embd_norm.weight' data", data + 96));
        long validFrom = b.Position;
        b.PadTo(32);
        return (b.ToArray(), rules, validFrom);
    }

    [Fact]
    public void Every_cut_of_a_synthetic_file_names_the_field_and_offset()
    {
        var (bytes, rules, validFrom) = BuildAnnotated();
        using (var whole = GgufFile.Load(bytes))
        {
            Assert.Equal(4, whole.Metadata.Count);
            Assert.Equal(["<|pad|>", "héllo", "Ġworld"], whole.Metadata.GetStringArray("tokenizer.ggml.tokens"));
        }
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            byte[] prefix = bytes[..cut];
            if (cut >= validFrom)
            {
                // Trailing padding after the last tensor may be cut: nothing is missing.
                using var f = GgufFile.Load(prefix);
                Assert.Equal(2, f.Tensors.Count);
                continue;
            }
            var expected = rules.First(r => cut < r.End);
            var e = GgufMalformedTests.Fails(prefix);
            Assert.True(expected.Field == e.Field && expected.Offset == e.Offset,
                $"cut at {cut}: expected {expected.Field} at {expected.Offset}, got {e.Message}");
        }
    }

    [Theory]
    [InlineData("tiny-f32")]
    [InlineData("tiny-q4_k_m")]
    public void Every_cut_of_a_fixture_header_fails_at_or_before_the_cut(string model)
    {
        byte[] bytes = File.ReadAllBytes(TestData.Model(model));
        long dataOffset;
        long lastEnd;
        using (var f = GgufFile.Load(bytes))
        {
            dataOffset = f.DataOffset;
            lastEnd = f.Tensors.Max(t => f.DataOffset + t.Offset + t.ByteSize);
        }
        // Each parse of a prefix re-reads the metadata before it, so every byte would cost O(n^2): take every byte of
        // the first 1 KB and of the tensor directory's last 1 KB (about 20 tensor infos), 300 seeded random cuts
        // elsewhere in the header, and a stride through the tensor data.
        var rng = new Random(model.Length);
        var cuts = Enumerable.Range(0, 1024)
            .Concat(Enumerable.Range((int)dataOffset - 1024, 1024))
            .Concat(Enumerable.Range(0, 300).Select(_ => rng.Next((int)dataOffset)))
            .Concat(Enumerable.Range(0, 100).Select(i => (int)(dataOffset + (lastEnd - dataOffset) * i / 100)));
        foreach (int cut in cuts)
        {
            var e = GgufMalformedTests.Fails(bytes.AsSpan(0, cut).ToArray());
            // A cut in the padding between two tensors is reported at the next tensor, less than one alignment unit on.
            long limit = e.Field.EndsWith(" data", StringComparison.Ordinal) ? cut + GgufFile.DefaultAlignment - 1 : cut;
            Assert.True(e.Offset <= limit, $"cut at {cut}: error offset {e.Offset} is after the cut ({e.Message})");
            if (cut >= 24)
            {
                Assert.True(e.Problem.Contains("truncated", StringComparison.Ordinal) || e.Problem.Contains("cannot fit", StringComparison.Ordinal)
                    || e.Problem.Contains("exceeds the remaining", StringComparison.Ordinal), $"cut at {cut}: {e.Message}");
            }
        }
    }
}
