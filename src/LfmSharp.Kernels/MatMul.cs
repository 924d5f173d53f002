using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>How a matmul treats quantized (and F16/BF16) weights.</summary>
public enum MatMulPrecision
{
    /// <summary>
    /// As llama.cpp's CPU backend: each activation row is converted ONCE to the weight type's vec-dot format
    /// (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants, F16 for F16, BF16 for BF16), then every
    /// weight row is dotted against it with integer (or half) arithmetic. Fast, and what the llama.cpp goldens show.
    /// </summary>
    LlamaCpp,

    /// <summary>
    /// Reference math: dequantize each weight row exactly and dot it with the f32 activations in f32.
    /// Slower; matches an exact-math forward pass (the fixtures' <c>.exact.f32</c>) to float rounding.
    /// </summary>
    Float,
}

/// <summary>
/// Preallocated buffers and job objects for <see cref="MatMul"/>: one per model (or per caller), used by one
/// matmul at a time. Sized for the largest batch and row length it will see, so matmuls never allocate.
/// </summary>
public sealed unsafe class MatMulWorkspace
{
    // Worst case bytes per activation element over all vec-dot formats: F16/BF16 take 2
    // (Q8_0 34/32, Q8_1 36/32, Q8_K 292/256 are smaller).
    private const int MaxActivationBytesPerElement = 2;

    public MatMulWorkspace(KernelThreadPool pool, int maxTokens, int maxColumns, MatMulPrecision precision = MatMulPrecision.LlamaCpp)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxTokens, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxColumns, 1);
        Pool = pool;
        MaxTokens = maxTokens;
        MaxColumns = maxColumns;
        Precision = precision;
        Activations = GC.AllocateArray<byte>(checked(maxTokens * maxColumns * MaxActivationBytesPerElement), pinned: true);
        RowScratch = GC.AllocateArray<float>(checked(pool.ThreadCount * maxColumns), pinned: true);
    }

    public KernelThreadPool Pool { get; }
    public int MaxTokens { get; }
    public int MaxColumns { get; }
    public MatMulPrecision Precision { get; }

    // [MaxTokens, activation row bytes]: the batch's activation rows in the weight's vec-dot format.
    internal byte[] Activations { get; }

    // [ThreadCount, MaxColumns]: one dequantized weight row per thread (Float precision).
    internal float[] RowScratch { get; }

    internal readonly MatMul.DotJob DotJob = new();
    internal readonly MatMul.QuantizeJob QuantizeJob = new();
}

/// <summary>
/// Matrix times a batch of vectors: effectively computes y[t, r] = Σ_c W[r, c] · x[t, c].
/// Shapes: W [Rows, Columns] (a <see cref="WeightMatrix"/>, any supported ggml type), x [tokens, Columns],
/// y [tokens, Rows]. Work is split by output rows over the workspace's thread pool; each weight row is read
/// once and dotted against every token of the batch.
/// </summary>
public static unsafe class MatMul
{
    public static void Compute(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, MatMulWorkspace ws)
    {
        ArgumentNullException.ThrowIfNull(ws);
        int tokens = CheckShapes(w, x.Length, y.Length);
        if (tokens > ws.MaxTokens || w.Columns > ws.MaxColumns)
            throw new ArgumentException($"MatMul: batch {tokens} x {w.Columns} exceeds the workspace ({ws.MaxTokens} x {ws.MaxColumns}).");
        if (tokens == 0)
            return;

        var mode = w.Type == GgmlType.F32 ? DotMode.F32 : ws.Precision == MatMulPrecision.Float ? DotMode.Dequantized : DotMode.Quantized;
        GgmlType actType = GgmlType.F32;
        int actRowBytes = 0;
        fixed (float* px = x, py = y)
        fixed (byte* pa = ws.Activations)
        fixed (float* ps = ws.RowScratch)
        {
            if (mode == DotMode.Quantized)
            {
                actType = RowOps.VecDotType(w.Type);
                actRowBytes = (int)GgmlTypes.RowBytes(actType, w.Columns);
                var q = ws.QuantizeJob;
                (q.X, q.Dst, q.Columns, q.RowBytes, q.Type) = ((nint)px, (nint)pa, w.Columns, actRowBytes, actType);
                // Converting a row is cheap next to the matmul; only spread it over threads for real batches.
                if (tokens < 4)
                    q.Execute(0, tokens, 0);
                else
                    ws.Pool.For(tokens, 1, q);
            }

            var job = ws.DotJob;
            job.W = w;
            (job.X, job.Y, job.Act, job.Scratch) = ((nint)px, (nint)py, (nint)pa, (nint)ps);
            (job.Tokens, job.Mode, job.ActRowBytes, job.ScratchStride) = (tokens, mode, actRowBytes, ws.MaxColumns);
            // At least ~16K multiply-adds per chunk so the atomic hand-out stays negligible.
            int grain = Math.Max(1, 16384 / Math.Max(1, w.Columns * tokens));
            ws.Pool.For(w.Rows, grain, job);
        }
    }

    /// <summary>
    /// Single-threaded reference with the same per-row math as <see cref="Compute"/> (the definition the
    /// parallel path is tested against): no batching tricks, one dot per (token, row).
    /// </summary>
    public static void Reference(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, MatMulPrecision precision)
    {
        int tokens = CheckShapes(w, x.Length, y.Length);
        int n = w.Columns;
        var rowF = new float[n];
        for (int t = 0; t < tokens; t++)
        {
            var xt = x.Slice(t * n, n);
            byte[]? act = null;
            if (w.Type != GgmlType.F32 && precision == MatMulPrecision.LlamaCpp)
            {
                var at = RowOps.VecDotType(w.Type);
                act = new byte[GgmlTypes.RowBytes(at, n)];
                RowOps.QuantizeActivations(at, xt, act);
            }
            for (int r = 0; r < w.Rows; r++)
            {
                if (act is not null)
                {
                    y[t * w.Rows + r] = RowOps.Dot(w.Type, w.Row(r), act, n);
                }
                else
                {
                    RowOps.DequantizeRow(w.Type, w.Row(r), rowF);
                    y[t * w.Rows + r] = VectorMath.DotScalar(rowF, xt);
                }
            }
        }
    }

    private static int CheckShapes(in WeightMatrix w, int xLength, int yLength)
    {
        if (w.Data == null)
            throw new ArgumentException("MatMul: weight matrix is not initialised.", nameof(w));
        if (xLength % w.Columns != 0)
            throw new ArgumentException($"MatMul: input length {xLength} is not whole rows of {w.Columns} ({w}).");
        int tokens = xLength / w.Columns;
        if (yLength != (long)tokens * w.Rows)
            throw new ArgumentException($"MatMul: output length {yLength} != tokens·rows = {(long)tokens * w.Rows} ({w}).");
        return tokens;
    }

    internal enum DotMode { F32, Quantized, Dequantized }

    internal sealed class QuantizeJob : IParallelWork
    {
        public nint X, Dst;
        public int Columns, RowBytes;
        public GgmlType Type;

        public void Execute(int start, int end, int thread)
        {
            for (int t = start; t < end; t++)
            {
                var src = new ReadOnlySpan<float>((float*)X + (long)t * Columns, Columns);
                var dst = new Span<byte>((byte*)Dst + (long)t * RowBytes, RowBytes);
                RowOps.QuantizeActivations(Type, src, dst);
            }
        }
    }

    internal sealed class DotJob : IParallelWork
    {
        public WeightMatrix W;
        public nint X, Y, Act, Scratch;
        public int Tokens, ActRowBytes, ScratchStride;
        public DotMode Mode;

        public void Execute(int start, int end, int thread)
        {
            var w = W;
            int n = w.Columns, rows = w.Rows, tokens = Tokens;
            float* x = (float*)X, y = (float*)Y;
            switch (Mode)
            {
                case DotMode.F32:
                    for (int r = start; r < end; r++)
                    {
                        var wr = MemoryMarshal.Cast<byte, float>(new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes));
                        for (int t = 0; t < tokens; t++)
                            y[(long)t * rows + r] = VectorMath.Dot(wr, new ReadOnlySpan<float>(x + (long)t * n, n));
                    }
                    break;

                case DotMode.Quantized:
                    for (int r = start; r < end; r++)
                    {
                        var wr = new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes);
                        for (int t = 0; t < tokens; t++)
                        {
                            var a = new ReadOnlySpan<byte>((byte*)Act + (long)t * ActRowBytes, ActRowBytes);
                            y[(long)t * rows + r] = RowOps.Dot(w.Type, wr, a, n);
                        }
                    }
                    break;

                case DotMode.Dequantized:
                    var rowF = new Span<float>((float*)Scratch + (long)thread * ScratchStride, n);
                    for (int r = start; r < end; r++)
                    {
                        RowOps.DequantizeRow(w.Type, new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes), rowF);
                        for (int t = 0; t < tokens; t++)
                            y[(long)t * rows + r] = VectorMath.Dot(rowF, new ReadOnlySpan<float>(x + (long)t * n, n));
                    }
                    break;
            }
        }
    }
}
