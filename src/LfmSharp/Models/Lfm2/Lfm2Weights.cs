// How an LFM2 / LFM2.5 GGUF's tensors bind to the fields below (the architecture: Lfm2Model.cs).
//
// Field            GGUF tensor                          ne (ggml order)        type
// TokenEmbedding   token_embd.weight                    [dim, vocab]           any
// FinalNorm        token_embd_norm.weight (or           [dim]                  F32 (any float)
//                  output_norm.weight, Ollama's name)
// Output           output.weight (optional; absent =    [dim, vocab]           any
//                  tied to token_embd)
// per layer i:
// OperatorNorm     blk.i.attn_norm.weight               [dim]
// FfnNorm          blk.i.ffn_norm.weight                [dim]
// W1 / W3 / W2     blk.i.ffn_gate / ffn_up / ffn_down   [dim, ff] [dim, ff] [ff, dim]
// conv layers:
// InProj           blk.i.shortconv.in_proj.weight       [dim, 3·dim]           rows: B | C | X
// Conv             blk.i.shortconv.conv.weight          [k, dim]               F32, taps oldest first
// OutProj          blk.i.shortconv.out_proj.weight      [dim, dim]
// attention layers:
// QProj/KProj/VProj blk.i.attn_q / attn_k / attn_v      [dim, heads·hd] [dim, kv·hd] [dim, kv·hd]
// OutProj          blk.i.attn_output.weight             [heads·hd, dim]
// QLayerNorm       blk.i.attn_q_norm.weight             [hd]
// KLayerNorm       blk.i.attn_k_norm.weight             [hd]

using LfmSharp.Gguf;
using LfmSharp.Kernels;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Models;

/// <summary>
/// All weights, bound by exact GGUF names to views over the memory map (nothing is copied but 1-D tensors), and, when
/// asked, Q4_0/Q8_0/Q4_K/Q6_K matrices also copied into the kernels' interleaved layout and TQ1_0 ones converted to
/// TQ2_0 (TypeTraits.LoadAs; <see cref="InterleavedCopies"/>).
/// </summary>
internal sealed unsafe class Lfm2Weights
{
    /// <summary>Native memory of the interleaved copies (freed by <see cref="Lfm2Model.Dispose"/>).</summary>
    public required InterleavedCopies Copies { get; init; }

    public required WeightMatrix TokenEmbedding { get; init; }   // [vocab, dim]
    public required float[] FinalNorm { get; init; }             // [dim]
    public required WeightMatrix Output { get; init; }           // [vocab, dim], = TokenEmbedding when tied
    public required Lfm2Layer[] Layers { get; init; }

    /// <param name="threads">Threads for filling the interleaved copies.</param>
    public static Lfm2Weights Bind(GgufFile file, Lfm2Config c, bool interleave, int threads)
    {
        var copies = new InterleavedCopies();
        try
        {
            return Bind(file, c, interleave ? copies : null, threads);
        }
        catch
        {
            copies.Free();
            throw;
        }
    }

    private static Lfm2Weights Bind(GgufFile file, Lfm2Config c, InterleavedCopies? copies, int threads)
    {
        int dim = c.HiddenSize, hd = c.HeadSize;
        WeightMatrix Matrix(string name, int cols, int rows)
        {
            var t = Find(file, name);
            var m = ToMatrix(file, t, cols, rows);
            if (copies is not null && m.Kernels?.LoadAs is { } to)
                return copies.AddConverted(t, m, to);
            return copies is not null && WeightMatrix.CanInterleave(m.Type, m.Rows) ? copies.Add(t, m) : m;
        }
        float[] Vector(string name, int n) => ToFloats(file, Find(file, name), n);

        var embedding = Matrix("token_embd.weight", dim, c.VocabSize);
        string finalNorm = file.TryGetTensor("token_embd_norm.weight", out _) ? "token_embd_norm.weight"
            : file.TryGetTensor("output_norm.weight", out _) ? "output_norm.weight"
            : throw new InvalidDataException("lfm2: final norm tensor 'token_embd_norm.weight' (or 'output_norm.weight') not found in the GGUF file.");
        var output = file.TryGetTensor("output.weight", out _) ? Matrix("output.weight", dim, c.VocabSize) : embedding;

        var layers = new Lfm2Layer[c.LayerCount];
        int attnIndex = 0, convIndex = 0;
        for (int i = 0; i < c.LayerCount; i++)
        {
            string p = $"blk.{i}.";
            int kv = c.KvHeadCount(i);
            layers[i] = new Lfm2Layer
            {
                OperatorNorm = Vector(p + "attn_norm.weight", dim),
                FfnNorm = Vector(p + "ffn_norm.weight", dim),
                W1 = Matrix(p + "ffn_gate.weight", dim, c.FeedForwardSize),
                W3 = Matrix(p + "ffn_up.weight", dim, c.FeedForwardSize),
                W2 = Matrix(p + "ffn_down.weight", c.FeedForwardSize, dim),
                Attention = kv == 0 ? null : new Lfm2Attention
                {
                    QProj = Matrix(p + "attn_q.weight", dim, c.HeadCount * hd),
                    KProj = Matrix(p + "attn_k.weight", dim, kv * hd),
                    VProj = Matrix(p + "attn_v.weight", dim, kv * hd),
                    OutProj = Matrix(p + "attn_output.weight", c.HeadCount * hd, dim),
                    QLayerNorm = Vector(p + "attn_q_norm.weight", hd),
                    KLayerNorm = Vector(p + "attn_k_norm.weight", hd),
                    KvHeads = kv,
                    Index = attnIndex++,
                },
                ShortConv = kv != 0 ? null : new Lfm2ShortConv
                {
                    InProj = Matrix(p + "shortconv.in_proj.weight", dim, 3 * dim),
                    Conv = ToFloats(file, Find(file, p + "shortconv.conv.weight"), c.ConvKernelSize * dim, [c.ConvKernelSize, dim]),
                    OutProj = Matrix(p + "shortconv.out_proj.weight", dim, dim),
                    Index = convIndex++,
                },
            };
        }
        copies?.Fill(file, threads);
        return new Lfm2Weights { TokenEmbedding = embedding, FinalNorm = Vector(finalNorm, dim), Output = output, Layers = layers, Copies = copies ?? new InterleavedCopies() };
    }

    private static GgufTensorInfo Find(GgufFile file, string name) =>
        file.TryGetTensor(name, out var t) ? t : throw new InvalidDataException($"lfm2: tensor '{name}' not found in the GGUF file.");

    private static WeightMatrix ToMatrix(GgufFile file, GgufTensorInfo t, int cols, int rows)
    {
        CheckShape(t, [cols, rows]);
        if (!GgmlTypes.IsComputeSupported(t.Type))
            throw new NotSupportedException($"lfm2: tensor '{t.Name}' has unsupported type {GgmlTypes.Name(t.Type)}.");
        return new WeightMatrix(t.Type, rows, cols, file.GetTensorPointer(t));
    }

    private static float[] ToFloats(GgufFile file, GgufTensorInfo t, int n, long[]? shape = null)
    {
        CheckShape(t, shape ?? [n]);
        if (t.Type is not (GgmlType.F32 or GgmlType.F16 or GgmlType.BF16))
            throw new NotSupportedException($"lfm2: tensor '{t.Name}' has type {GgmlTypes.Name(t.Type)}; expected a float type (F32/F16/BF16).");
        var dst = new float[n];
        var table = new WeightMatrix(t.Type, 1, n, file.GetTensorPointer(t));
        Embedding.Lookup(table, 0, dst);
        return dst;
    }

    private static void CheckShape(GgufTensorInfo t, long[] expected)
    {
        var d = t.Dimensions;
        // A trailing 1 (e.g. [n, 1]) is the same tensor to ggml.
        int rank = d.Length;
        while (rank > expected.Length && d[rank - 1] == 1)
            rank--;
        bool ok = rank == expected.Length;
        for (int i = 0; ok && i < rank; i++)
            ok = d[i] == expected[i];
        if (!ok)
            throw new InvalidDataException($"lfm2: tensor '{t.Name}' has shape {t.ShapeString}, expected [{string.Join(", ", expected)}].");
    }
}
