using LLama;
using LLama.Common;
using LLama.Native;

namespace LfmSharp.Oracle.Tests;

/// <summary>
/// llama.cpp (through LLamaSharp) as a live oracle: evaluates a GGUF in the fixtures' reference configuration
/// (F32 KV cache, flash attention off, 2 threads, the whole sequence in one ubatch, fresh context per run) and
/// quantizes files like <c>llama-quantize</c>.
/// </summary>
internal static class LlamaCpp
{
    private static readonly object s_gate = new();
    private static bool s_configured;

    /// <summary>
    /// Runs <paramref name="ids"/> through the model in one <c>llama_decode</c> and returns the logits of every
    /// position: [ids.Length, vocab] row-major, row i = logits after ids[0..i] (the fixtures' <c>.batch.f32</c> layout).
    /// </summary>
    public static float[] Logits(string path, ReadOnlySpan<int> ids, out int vocab)
    {
        Configure();
        var p = new ModelParams(path)
        {
            ContextSize = 1024,
            BatchSize = 1024,
            UBatchSize = 1024,
            Threads = 2,
            BatchThreads = 2,
            GpuLayerCount = 0,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
        };
        using var weights = LLamaWeights.LoadFromFile(p);
        using var ctx = weights.CreateContext(p);
        vocab = weights.Vocab.Count;
        var batch = new LLamaBatch();
        for (int i = 0; i < ids.Length; i++)
            batch.Add(ids[i], i, LLamaSeqId.Zero, logits: true);
        DecodeResult rc = ctx.Decode(batch);
        if (rc != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode failed on {Path.GetFileName(path)}: {rc}");
        var logits = new float[ids.Length * vocab]; // [n_tokens, n_vocab]
        for (int i = 0; i < ids.Length; i++)
            ctx.NativeHandle.GetLogitsIth(i).CopyTo(logits.AsSpan(i * vocab, vocab));
        return logits;
    }

    /// <summary>
    /// <c>llama-quantize src dst ftype 2</c>: no imatrix, the output tensor quantized (the tool's defaults). Calls
    /// <c>llama_model_quantize</c> directly because LLamaSharp's <c>LLamaQuantizer</c> refuses BF16 as a target.
    /// </summary>
    public static void Quantize(string src, string dst, LLamaFtype ftype)
    {
        Configure();
        var p = LLamaModelQuantizeParams.Default();
        p.ftype = ftype;
        p.nthread = 2;
        p.allow_requantize = true;
        p.quantize_output_tensor = true;
        uint rc = NativeApi.llama_model_quantize(src, dst, ref p);
        if (rc != 0)
            throw new InvalidOperationException($"llama_model_quantize({Path.GetFileName(src)} → {ftype}) returned {rc}");
    }

    private static void Configure()
    {
        lock (s_gate)
        {
            if (s_configured)
                return;
            s_configured = true;
            // llama.cpp logs every tensor while loading and quantizing; only errors matter to a test run.
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    if (level == LLamaLogLevel.Error)
                        Console.Error.Write(message);
                });
            // Selects and loads the native library (LLamaQuantizer calls into it without doing so itself).
            NativeApi.llama_empty_call();
        }
    }

    /// <summary>Which libllama this process loaded (LLamaSharp picks the best build for the CPU: avx512, avx2, avx, noavx).</summary>
    public static string LibraryPath
    {
        get
        {
            Configure();
            if (!OperatingSystem.IsLinux())
                return "(unknown on this OS)";
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int i = line.IndexOf('/');
                if (i >= 0 && line.EndsWith("libllama.so", StringComparison.Ordinal))
                    return line[i..];
            }
            return "(not found in /proc/self/maps)";
        }
    }
}
