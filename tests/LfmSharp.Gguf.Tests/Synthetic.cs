using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf.Tests;

/// <summary>Small GGUF files built with <see cref="GgufWriter"/> for round-trip and fuzz tests.</summary>
internal static class Synthetic
{
    public static byte[] ToBytes(this GgufWriter w)
    {
        var ms = new MemoryStream();
        w.WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>Every scalar and array value type, nested and empty arrays, unicode, and tensors of several types.</summary>
    public static GgufWriter AllTypes(int alignment = 64, Dictionary<string, byte[]>? tensorBytes = null)
    {
        var w = new GgufWriter { Alignment = alignment };
        w.AddString("general.architecture", "lfm2");
        w.AddString("general.name", "synthétique ✓ 𝄞 中文 \u0000 nul and \n newline");
        w.AddString("empty.string", "");
        w.Add("s.u8", GgufValue.From((byte)250));
        w.Add("s.i8", GgufValue.From((sbyte)-120));
        w.Add("s.u16", GgufValue.From((ushort)65535));
        w.Add("s.i16", GgufValue.From((short)-32768));
        w.AddUInt32("s.u32", uint.MaxValue);
        w.AddInt32("s.i32", int.MinValue);
        w.AddFloat32("s.f32", 1e-5f);
        w.Add("s.f32.nan", GgufValue.From(BitConverter.Int32BitsToSingle(0x7FC00123))); // NaN with a payload
        w.Add("s.f32.negzero", GgufValue.From(-0.0f));
        w.AddBool("s.bool.true", true);
        w.AddBool("s.bool.false", false);
        w.AddUInt64("s.u64", ulong.MaxValue);
        w.Add("s.i64", GgufValue.From(long.MinValue));
        w.Add("s.f64", GgufValue.From(Math.PI));
        w.Add("s.f64.inf", GgufValue.From(double.NegativeInfinity));

        w.Add("a.u8", GgufValue.Array(new byte[] { 0, 1, 255 }));
        w.Add("a.i8", GgufValue.Array(new sbyte[] { -128, 0, 127 }));
        w.Add("a.u16", GgufValue.Array(new ushort[] { 0, 65535 }));
        w.Add("a.i16", GgufValue.Array(new short[] { -1, 2, -3 }));
        w.AddArray("a.u32", new uint[] { 0, 1, uint.MaxValue });
        w.AddArray("a.i32", new[] { 0, 0, 8, 0, 0, 8 });
        w.AddArray("a.f32", new[] { 1.5f, float.NaN, float.PositiveInfinity, -0.0f });
        w.Add("a.bool", GgufValue.Array(new[] { true, false, true }));
        w.AddArray("a.string", new[] { "<|pad|>", "Ġhello", "héllo", "", "😀 emoji", "\t\r\n" });
        w.Add("a.u64", GgufValue.Array(new ulong[] { ulong.MaxValue, 0 }));
        w.Add("a.i64", GgufValue.Array(new long[] { long.MinValue, long.MaxValue }));
        w.Add("a.f64", GgufValue.Array(new[] { double.Epsilon, -1e300 }));
        w.AddArray("a.empty.i32", Array.Empty<int>());
        w.AddArray("a.empty.string", Array.Empty<string>());
        w.Add("a.empty.nested", GgufValue.Array(Array.Empty<GgufValue>()));
        w.Add("a.nested", GgufValue.Array(new[]
        {
            GgufValue.Array(new[] { 1, 2, 3 }),
            GgufValue.Array(new[] { "x", "yz" }),
            GgufValue.Array(Array.Empty<float>()),
            GgufValue.Array(new[] { GgufValue.Array(new[] { true }), GgufValue.Array(new ulong[] { 7 }) }),
        }));

        var rng = new Random(1);
        void Add(string name, GgmlType type, long[] ne)
        {
            byte[] data = AddRandomTensor(w, rng, name, type, ne);
            tensorBytes?.Add(name, data);
        }
        Add("t.f32", GgmlType.F32, [5]);
        Add("t.f16", GgmlType.F16, [8, 3]);
        Add("t.bf16", GgmlType.BF16, [2, 2, 2, 2]);
        Add("t.q8_0", GgmlType.Q8_0, [64, 2]);
        Add("t.q4_0", GgmlType.Q4_0, [32]);
        Add("t.q4_k", GgmlType.Q4_K, [256, 2, 1]);
        Add("t.q6_k", GgmlType.Q6_K, [256, 3]);
        Add("t.i8", GgmlType.I8, [3]);
        Add("t.empty", GgmlType.F32, [0, 4]);
        return w;
    }

    /// <summary>A vocabulary-sized file: many short strings, the shape real tokenizer metadata has.</summary>
    public static GgufWriter VocabLike(int tokens, int merges, int seed = 2)
    {
        var rng = new Random(seed);
        var w = new GgufWriter();
        w.AddString("general.architecture", "lfm2");
        w.AddUInt32("lfm2.block_count", 4);
        w.AddArray("lfm2.attention.head_count_kv", new[] { 0, 2, 0, 2 });
        w.AddArray("tokenizer.ggml.tokens", Enumerable.Range(0, tokens).Select(i => RandomToken(rng, i)).ToArray());
        w.AddArray("tokenizer.ggml.token_type", Enumerable.Range(0, tokens).Select(i => i < 14 ? 3 : 1).ToArray());
        w.AddArray("tokenizer.ggml.merges", Enumerable.Range(0, merges).Select(i => RandomToken(rng, i) + " " + RandomToken(rng, i + 1)).ToArray());
        w.AddString("tokenizer.chat_template", string.Concat(Enumerable.Repeat("{% for m in messages %}{{ m.content }}{% endfor %}\n", 20)));
        AddRandomTensor(w, rng, "token_embd.weight", GgmlType.Q8_0, [32, 8]);
        AddRandomTensor(w, rng, "token_embd_norm.weight", GgmlType.F32, [32]);
        return w;
    }

    /// <summary>Many small tensors: a long directory.</summary>
    public static GgufWriter ManyTensors(int count, int seed = 3)
    {
        var rng = new Random(seed);
        var w = new GgufWriter();
        w.AddString("general.architecture", "test");
        for (int i = 0; i < count; i++)
            AddRandomTensor(w, rng, $"blk.{i}.w", i % 3 == 0 ? GgmlType.Q4_0 : GgmlType.F32, i % 3 == 0 ? [32, 1 + i % 4] : [1 + i % 7]);
        return w;
    }

    public static byte[] AddRandomTensor(GgufWriter w, Random rng, string name, GgmlType type, long[] ne)
    {
        long n = ne.Aggregate(1L, (a, d) => a * d);
        var data = new byte[GgmlTypes.RowBytes(type, n)];
        rng.NextBytes(data);
        w.AddTensor(name, type, ne, data);
        return data;
    }

    private static string RandomToken(Random rng, int i)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzĠĊéß中😀";
        int len = 1 + (i * 7 + rng.Next(6)) % 9;
        var chars = new System.Text.StringBuilder();
        for (int k = 0; k < len; k++)
        {
            int idx = rng.Next(alphabet.Length);
            // Keep surrogate pairs whole.
            if (char.IsHighSurrogate(alphabet[idx]))
                chars.Append(alphabet, idx, 2);
            else if (char.IsLowSurrogate(alphabet[idx]))
                chars.Append(alphabet, idx - 1, 2);
            else
                chars.Append(alphabet[idx]);
        }
        return chars.ToString();
    }
}
