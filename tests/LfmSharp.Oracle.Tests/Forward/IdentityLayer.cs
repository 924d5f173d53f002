using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Oracle.Tests.Forward;

/// <summary>
/// llama.cpp cannot evaluate an LFM2 model whose layers are all short-conv or all attention: its hybrid memory then
/// holds an empty KV cache or an empty recurrent state, and creating the context aborts the process with
/// <c>ggml-backend.cpp:194: GGML_ASSERT(buffer) failed</c> (LLamaSharp 0.30.0's build). For such a model the oracle
/// gets a copy with one extra layer of the missing kind appended whose projections are all zero: that layer adds
/// exactly 0 to the residual stream (zero in_proj/q/k/v and zero out_proj/attn_output/ffn_down), so the copy
/// computes the same function as the original, and llama.cpp can evaluate it.
/// </summary>
internal static class IdentityLayer
{
    /// <summary>Writes <paramref name="dst"/>: <paramref name="src"/> plus one zero layer of the kind it lacks.</summary>
    public static void AppendMissingKind(string src, string dst)
    {
        bool allConv;
        using (var f = GgufFile.Open(src))
            allConv = f.Metadata.GetInt32Array("lfm2.attention.head_count_kv").All(k => k == 0);
        Append(src, dst, attention: allConv);
    }

    /// <summary>Writes <paramref name="dst"/>: <paramref name="src"/> plus one zero layer (attention or short-conv) at the end.</summary>
    public static void Append(string src, string dst, bool attention)
    {
        using var f = GgufFile.Open(src);
        var md = f.Metadata;
        int layers = checked((int)md.GetUInt32("lfm2.block_count"));
        int[] kv = md.GetInt32Array("lfm2.attention.head_count_kv");
        long n = md.GetUInt32("lfm2.embedding_length");
        long ff = md.GetUInt32("lfm2.feed_forward_length");
        int heads = checked((int)md.GetUInt32("lfm2.attention.head_count"));
        long lCache = md.GetUInt32("lfm2.shortconv.l_cache");
        long hd = n / heads;
        bool addAttention = attention;

        var w = new GgufWriter();
        foreach (var e in md)
        {
            if (e.Key == "lfm2.block_count")
                w.AddUInt32(e.Key, (uint)(layers + 1));
            else if (e.Key == "lfm2.attention.head_count_kv")
                w.AddArray(e.Key, [.. kv, addAttention ? 1 : 0]);
            else
                w.Add(e.Key, e.Value);
        }
        foreach (var t in f.Tensors)
            w.AddTensor(t.Name, t.Type, t.Dimensions, f.GetTensorData(t).ToArray());

        string p = $"blk.{layers}.";
        void Add(string name, long[] ne, float value)
        {
            long count = ne.Aggregate(1L, (a, b) => a * b);
            var data = new float[count];
            Array.Fill(data, value);
            w.AddTensor(p + name, GgmlType.F32, ne, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
        }
        Add("attn_norm.weight", [n], 1f);
        if (addAttention)
        {
            Add("attn_q.weight", [n, heads * hd], 0f);
            Add("attn_k.weight", [n, hd], 0f);
            Add("attn_v.weight", [n, hd], 0f);
            Add("attn_output.weight", [heads * hd, n], 0f);
            Add("attn_q_norm.weight", [hd], 1f);
            Add("attn_k_norm.weight", [hd], 1f);
        }
        else
        {
            Add("shortconv.conv.weight", [lCache, n], 0f);
            Add("shortconv.in_proj.weight", [n, 3 * n], 0f);
            Add("shortconv.out_proj.weight", [n, n], 0f);
        }
        Add("ffn_norm.weight", [n], 1f);
        Add("ffn_gate.weight", [n, ff], 0f);
        Add("ffn_up.weight", [n, ff], 0f);
        Add("ffn_down.weight", [ff, n], 0f);
        w.WriteTo(dst);
    }
}
