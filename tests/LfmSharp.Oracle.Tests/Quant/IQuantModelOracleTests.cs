using System.Runtime.InteropServices;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;
using LfmSharp.Synthetic;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Quant;

/// <summary>
/// End to end on the i-quant and ternary formats: a small LFM2 model whose weight matrices (token embedding, which is
/// also the tied output head, and every projection) llama.cpp's own quantizer (ggml_quantize_chunk, the function
/// llama-quantize calls per tensor, given a synthetic importance matrix since IQ2_XXS/IQ2_XS/IQ1_S require one) turns
/// into each type, evaluated by llama.cpp and by LfmSharp on 3 prompts. Wherever llama.cpp's top-1 logit leads its
/// top-2 by more than 0.35, the argmax must be the same. (llama_model_quantize itself takes the importance matrix as
/// a C++ std::unordered_map, which cannot be built from .NET; the per-tensor quantizer is the same code.)
/// </summary>
public sealed class IQuantModelOracleTests(IQuantModelOracleTests.SourceModel source, ITestOutputHelper output)
    : IClassFixture<IQuantModelOracleTests.SourceModel>
{
    private const float Margin = 0.35f;

    /// <summary>Hidden and ffn multiples of 256 so every projection takes the 256-block formats.</summary>
    internal static readonly ModelShape Shape = new()
    {
        Name = "oracle-iq", GeneralName = "lfm2-oracle-iq", EmbeddingLength = 256, FeedForwardLength = 512,
        HeadCount = 4, KvHeadCount = 2, BlockCount = 4, AttentionLayers = [1, 3], VocabSize = 512, ContextLength = 2048,
    };

    public static TheoryData<GgmlType> AllTypes() => [.. IQuantRows.Types];

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void ArgmaxAgreesWithLlamaCppWhereItsMarginIsClear(GgmlType type)
    {
        if (!Ggml.TryLoad(output, out var quantizeChunk))
            return;
        string dir = TestData.NewTempDir();
        try
        {
            string path = Path.Combine(dir, $"{type}.gguf");
            int quantized = QuantizeModel(source.Path, path, type, quantizeChunk);
            Assert.True(quantized >= 4 * 5, $"only {quantized} tensors were quantized to {type}");
            CompareWithLlamaCpp(path, $"{type} ({quantized} tensors)", 100 + (int)type);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// The llama-quantize file types of this family that need no importance matrix (TQ1_0 = 36, TQ2_0 = 37; llama_model_quantize
    /// refuses IQ3_XXS, IQ2_* and IQ1_* without one).
    /// </summary>
    public static TheoryData<LLama.Native.LLamaFtype> FileTypes() =>
    [
        LLama.Native.LLamaFtype.MOSTLY_IQ4_NL, LLama.Native.LLamaFtype.MOSTLY_IQ4_XS,
        LLama.Native.LLamaFtype.MOSTLY_IQ3_S, LLama.Native.LLamaFtype.MOSTLY_IQ3_M, (LLama.Native.LLamaFtype)36, (LLama.Native.LLamaFtype)37,
    ];

    /// <summary>
    /// The same through llama_model_quantize itself (llama-quantize's per-tensor rules, so the files mix these types
    /// with K-quants and Q8_0/F16 where llama.cpp chooses them).
    /// </summary>
    [Theory]
    [MemberData(nameof(FileTypes))]
    public void LlamaQuantizeFilesGiveLlamaCppsArgmax(LLama.Native.LLamaFtype ftype)
    {
        string dir = TestData.NewTempDir();
        try
        {
            string path = Path.Combine(dir, "q.gguf");
            LlamaCpp.Quantize(source.Path, path, ftype);
            string types;
            using (var f = GgufFile.Open(path))
                types = string.Join(", ", f.Tensors.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{GgmlTypes.Name(g.Key)} x{g.Count()}"));
            CompareWithLlamaCpp(path, $"ftype {(int)ftype} [{types}]", 200 + (int)ftype);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>3 random prompts through llama.cpp and LfmSharp; argmax must agree wherever llama.cpp's margin exceeds <see cref="Margin"/>.</summary>
    private void CompareWithLlamaCpp(string path, string what, int seed)
    {
        var rng = new Random(seed);
        int checkedPositions = 0, total = 0;
        double maxDiff = 0;
        using var model = LanguageModel.Load(path, new ModelLoadOptions { Threads = 2 });
        for (int prompt = 0; prompt < 3; prompt++)
        {
            int[] ids = new int[32 + 8 * prompt];
            for (int i = 0; i < ids.Length; i++)
                ids[i] = rng.Next(Shape.VocabSize);
            float[] theirs = LlamaCpp.Logits(path, ids, out int vocab);
            Assert.Equal(Shape.VocabSize, vocab);
            float[] ours = new float[ids.Length * vocab];
            var state = model.CreateState(ids.Length, KvCacheType.F32);
            model.Forward(ids, state, ours, LogitPositions.All);

            for (int p = 0; p < ids.Length; p++)
            {
                var t = theirs.AsSpan(p * vocab, vocab);
                var o = ours.AsSpan(p * vocab, vocab);
                for (int v = 0; v < vocab; v++)
                    maxDiff = Math.Max(maxDiff, Math.Abs(t[v] - o[v]));
                var (top1, margin) = Top(t);
                total++;
                if (margin <= Margin)
                    continue;
                checkedPositions++;
                int mine = Top(o).Index;
                Assert.True(mine == top1, $"{what} prompt {prompt} position {p}: argmax {mine}, llama.cpp {top1} (its margin {margin:F3})");
            }
        }
        output.WriteLine($"{what}: argmax checked at {checkedPositions}/{total} positions (llama.cpp margin > {Margin}); max |Δlogit| {maxDiff:E2}");
        Assert.True(checkedPositions >= total / 4, $"{what}: only {checkedPositions} of {total} positions had a clear margin; the check says little");
    }

    private static (int Index, float Margin) Top(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int v = 1; v < logits.Length; v++)
            if (logits[v] > logits[best])
                best = v;
        float second = float.NegativeInfinity;
        for (int v = 0; v < logits.Length; v++)
            if (v != best && logits[v] > second)
                second = logits[v];
        return (best, logits[best] - second);
    }

    /// <summary>
    /// Copies <paramref name="src"/> (all F32) to <paramref name="dst"/> with every matrix whose rows are whole blocks
    /// of <paramref name="type"/> (not the norms, not the short-conv kernels) quantized by ggml. Returns how many.
    /// </summary>
    private static int QuantizeModel(string src, string dst, GgmlType type, QuantizeChunkFn quantizeChunk)
    {
        using var f = GgufFile.Open(src);
        var w = new GgufWriter();
        foreach (var e in f.Metadata)
            w.Add(e.Key, e.Value);
        int count = 0;
        foreach (var t in f.Tensors)
        {
            var data = f.GetTensorData(t);
            long rowLength = t.Dimensions[0];
            bool matrix = t.Dimensions.Length == 2 && !t.Name.Contains("norm", StringComparison.Ordinal)
                && rowLength % GgmlTypes.BlockSize(type) == 0 && t.Type == GgmlType.F32;
            if (!matrix)
            {
                w.AddTensor(t.Name, t.Type, t.Dimensions, data.ToArray());
                continue;
            }
            long rows = t.Dimensions[1];
            float[] x = MemoryMarshal.Cast<byte, float>(data).ToArray();
            // An importance matrix as llama-imatrix makes it: a positive mean square activation per column.
            float[] imatrix = new float[rowLength];
            for (int j = 0; j < rowLength; j++)
                imatrix[j] = 0.25f + (j * 37 % 101) / 50f;
            byte[] q = new byte[GgmlTypes.RowBytes(type, rowLength) * rows];
            nuint written = quantizeChunk((int)type, x, q, 0, rows, rowLength, imatrix);
            Assert.Equal((nuint)q.Length, written);
            w.AddTensor(t.Name, type, t.Dimensions, q);
            count++;
        }
        w.WriteTo(dst);
        return count;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nuint QuantizeChunkFn(int type, float[] src, [Out] byte[] dst, long start, long nrows, long nPerRow, float[] imatrix);

    /// <summary>ggml_quantize_chunk from the noavx ggml-base that LLamaSharp.Backend.Cpu ships.</summary>
    private static class Ggml
    {
        private static readonly Lazy<QuantizeChunkFn?> s_fn = new(() =>
        {
            string? dir = null, lib = "libggml-base.so";
            if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
                dir = "linux-x64";
            else if (OperatingSystem.IsWindows() && RuntimeInformation.ProcessArchitecture == Architecture.X64)
                (dir, lib) = ("win-x64", "ggml-base.dll");
            if (dir is null)
                return null;
            nint h = NativeLibrary.Load(Path.Combine(AppContext.BaseDirectory, "runtimes", dir, "native", "noavx", lib));
            return Marshal.GetDelegateForFunctionPointer<QuantizeChunkFn>(NativeLibrary.GetExport(h, "ggml_quantize_chunk"));
        });

        public static bool TryLoad(ITestOutputHelper output, out QuantizeChunkFn fn)
        {
            fn = s_fn.Value!;
            if (fn is not null)
                return true;
            output.WriteLine($"skipped: no ggml build for {RuntimeInformation.RuntimeIdentifier}");
            return false;
        }
    }

    /// <summary>The F32 model every case quantizes, written once per test run.</summary>
    public sealed class SourceModel : IDisposable
    {
        private readonly string _dir = TestData.NewTempDir();

        public SourceModel()
        {
            Path = System.IO.Path.Combine(_dir, "f32.gguf");
            SyntheticModel.Write(Path, new SyntheticModelOptions { Shape = Shape, FileType = SyntheticFileType.F32, Seed = 1414, MaxDegreeOfParallelism = 2 });
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(_dir, recursive: true);
    }
}
