using System.Diagnostics;
using LfmSharp.Models;
using LLama;
using LLama.Common;
using LLama.Native;

namespace LfmSharp.Benchmarks;

/// <summary>LfmSharp: the same loops as <c>lfm bench</c>.</summary>
internal sealed class LfmEngine : IEngine
{
    private readonly LanguageModel _lm;
    private readonly Lfm2State _state;
    private readonly float[] _logits;

    public LfmEngine(string model, int threads, int context, int batch)
    {
        _lm = LanguageModel.Load(model, new ModelLoadOptions { Threads = threads });
        _state = _lm.Model.CreateState(context, KvCacheType.F16, Math.Min(batch, context));
        _logits = new float[_lm.Config.VocabSize];
    }

    public int VocabSize => _lm.Config.VocabSize;

    public double Prompt(int[] tokens)
    {
        _state.Reset();
        long t0 = Stopwatch.GetTimestamp();
        _lm.Model.Forward(tokens, _state, _logits);
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    public double Generate(int[] tokens)
    {
        _state.Reset();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < tokens.Length; i++)
            _lm.Model.Forward(tokens.AsSpan(i, 1), _state, _logits);
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    public void Dispose() => _lm.Dispose();
}

/// <summary>llama.cpp through LLamaSharp, with llama-bench's loops (llama_memory_clear, then decode).</summary>
internal sealed class LlamaEngine : IEngine
{
    private readonly LLamaWeights _weights;
    private readonly LLamaContext _ctx;
    private readonly LLamaBatch _batch = new();
    private readonly int _nBatch;
    private readonly StreamWriter? _log;

    public LlamaEngine(string model, int threads, int context, int batch, string? logPath)
    {
        if (logPath is not null)
        {
            _log = new StreamWriter(logPath, append: true) { AutoFlush = true };
            NativeLibraryConfig.All.WithLogCallback((level, message) => _log.Write(message));
        }
        else
        {
            NativeLibraryConfig.All.WithLogCallback((level, message) => { });
        }
        _nBatch = batch;
        var p = new ModelParams(model)
        {
            ContextSize = (uint)context,
            BatchSize = (uint)batch,
            UBatchSize = (uint)batch,
            Threads = threads,
            BatchThreads = threads,
            GpuLayerCount = 0,
            FlashAttention = false,
        };
        _weights = LLamaWeights.LoadFromFile(p);
        _ctx = _weights.CreateContext(p);
        VocabSize = _weights.Vocab.Count;
    }

    public int VocabSize { get; }

    public double Prompt(int[] tokens)
    {
        _ctx.NativeHandle.MemoryClear(true);
        long t0 = Stopwatch.GetTimestamp();
        for (int start = 0; start < tokens.Length; start += _nBatch)
        {
            int n = Math.Min(_nBatch, tokens.Length - start);
            _batch.Clear();
            for (int i = 0; i < n; i++)
                _batch.Add(tokens[start + i], start + i, LLamaSeqId.Zero, start + i == tokens.Length - 1);
            Decode();
        }
        _ctx.NativeHandle.Synchronize();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    public double Generate(int[] tokens)
    {
        _ctx.NativeHandle.MemoryClear(true);
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < tokens.Length; i++)
        {
            _batch.Clear();
            _batch.Add(tokens[i], i, LLamaSeqId.Zero, true);
            Decode();
            _ctx.NativeHandle.Synchronize();
        }
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private void Decode()
    {
        var rc = _ctx.NativeHandle.Decode(_batch);
        if (rc != DecodeResult.Ok)
            throw new InvalidOperationException($"llama_decode failed: {rc}");
    }

    public void Dispose()
    {
        _ctx.Dispose();
        _weights.Dispose();
        _log?.Dispose();
    }
}
