using System.Runtime.CompilerServices;
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
internal sealed unsafe class MatMulWorkspace
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
        if (precision == MatMulPrecision.LlamaCpp && PackedGemm.IsSupported)
        {
            int blocks = maxColumns / 32 + 1;
            ActivationScales = GC.AllocateArray<float>(checked(maxTokens * blocks), pinned: true);
            ActivationSums = GC.AllocateArray<int>(checked(maxTokens * blocks), pinned: true);
            if (maxTokens >= PackedGemm.Tokens)
                Packed = GC.AllocateArray<byte>(checked(pool.ThreadCount * maxColumns * PackedGemm.MaxPackedBytesPerColumn + 64), pinned: true);
            Stream = GC.AllocateArray<byte>(checked(Math.Min(maxTokens, PackedGemm.Tokens - 1) * maxColumns), pinned: true);
        }
        if (precision == MatMulPrecision.LlamaCpp && maxTokens >= IQDecoded.SmallestMinTokens && maxColumns >= 256)
            Decoded = GC.AllocateArray<byte>(checked((int)IQDecoded.WorkspaceBytes(pool.ThreadCount, maxColumns, maxTokens)), pinned: true);
    }

    public KernelThreadPool Pool { get; }
    public int MaxTokens { get; }
    public int MaxColumns { get; }
    public MatMulPrecision Precision { get; }

    // [MaxTokens, activation row bytes]: the batch's activation rows in the weight's vec-dot format.
    internal byte[] Activations { get; }

    // [ThreadCount, MaxColumns]: one dequantized weight row per thread (Float precision).
    internal float[] RowScratch { get; }

    // AVX2 scratch (empty otherwise):
    // [ThreadCount, MaxColumns · MaxPackedBytesPerColumn] one packed 8-row group per thread (batches of ≥ 4 tokens),
    // [MaxTokens, MaxColumns/32 + 1] f32 scales and 8·Σq of Q8_0 activation blocks.
    internal byte[] Packed { get; } = [];
    internal float[] ActivationScales { get; } = [];

    // [min(MaxTokens, 3), MaxColumns] the quants of Q8_K activation rows in KStream order (one byte per column), for
    // the decode kernels of interleaved Q4_K / Q6_K matrices.
    internal byte[] Stream { get; } = [];

    // Row stride of ActivationScales / ActivationSums: one entry per 32-column block, plus one.
    internal int SideStride => MaxColumns / 32 + 1;
    internal int[] ActivationSums { get; } = [];

    // The grid/ternary batch path (IQDecoded.WorkspaceBytes): Q8_K scale table, then one decoded 4-row group and its
    // tile sums per thread (LlamaCpp precision, batches of ≥ IQDecoded.SmallestMinTokens; empty otherwise).
    internal byte[] Decoded { get; } = [];

    internal readonly MatMul.DotJob DotJob = new();
    internal readonly MatMul.GemmJob GemmJob = new();
    internal readonly MatMul.MatVecJob MatVecJob = new();
    internal readonly MatMul.GatedMatVecJob GatedJob = new();
    internal readonly MatMul.QuantizeJob QuantizeJob = new();
    internal readonly IQDecoded.Job DecodedJob = new();   // scratch: Decoded
}

/// <summary>
/// Matrix times a batch of vectors: effectively computes y[t, r] = Σ_c W[r, c] · x[t, c].
/// Shapes: W [Rows, Columns] (a <see cref="WeightMatrix"/>, any supported ggml type), x [tokens, Columns],
/// y [tokens, Rows]. Work is split by output rows over the workspace's thread pool; each weight row is read
/// once and dotted against every token of the batch.
/// </summary>
internal static unsafe partial class MatMul
{
    public static void Compute(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, MatMulWorkspace ws)
    {
        ArgumentNullException.ThrowIfNull(ws);
        int tokens = CheckShapes(w, x.Length, y.Length);
        if (tokens > ws.MaxTokens || w.Columns > ws.MaxColumns)
            throw new ArgumentException($"MatMul: batch {tokens} x {w.Columns} exceeds the workspace ({ws.MaxTokens} x {ws.MaxColumns}).");
        if (tokens == 0)
            return;

        var k = Kernels(w);
        var mode = w.Type == GgmlType.F32 ? DotMode.F32 : ws.Precision == MatMulPrecision.Float ? DotMode.Dequantized : DotMode.Quantized;
        // The type's 8-row kernels where the table has them for this machine: packed 8×4 tiles for batches, one
        // token at a time otherwise; both (and the single-row dots of ragged rows) compute every output in the same
        // order. The workspace holds their scratch whenever it was made for LlamaCpp precision on such a machine.
        bool gemm = mode == DotMode.Quantized && k.HasGemm && tokens > k.MaxMatVecTokens && w.Rows >= PackedGemm.Rows;
        // Types with a batch decoder (IQDecoded) take their 8-row kernels below the decoder's MinTokens, the decoder from there.
        bool grouped = gemm || (mode == DotMode.Quantized && k.Grouped && (k.Decoder == null || tokens < k.Decoder.MinTokens));
        int actRowBytes = 0;
        fixed (float* px = x, py = y)
        fixed (byte* pa = ws.Activations, pp = ws.Packed, pst = ws.Stream)
        fixed (float* ps = ws.RowScratch, pas = ws.ActivationScales)
        fixed (int* pasum = ws.ActivationSums)
        {
            if (mode == DotMode.Quantized)
                actRowBytes = QuantizeActivations(w, px, tokens, grouped, ws, pa, pas, pasum);
            if (grouped && !gemm)
                StreamActivations(w, tokens, pa, actRowBytes, pst, ws.MaxColumns);

            if (gemm)
            {
                var g = ws.GemmJob;
                g.W = w;
                (g.Y, g.Act, g.Packed, g.Scales, g.Sums) = ((nint)py, (nint)pa, (nint)pp, (nint)pas, (nint)pasum);
                (g.Tokens, g.ActRowBytes, g.PackedStride, g.SideStride) = (tokens, actRowBytes, ws.MaxColumns * PackedGemm.MaxPackedBytesPerColumn, ws.SideStride);
                // Types with a 16-row kernel take work items of two groups (a ragged pair runs as single groups).
                g.Sixteen = k.Gemm16 != null || k.Gemm16x4 != null;
                int rowsPerItem = g.Sixteen ? 2 * PackedGemm.Rows : PackedGemm.Rows;
                ws.Pool.For((w.Rows + rowsPerItem - 1) / rowsPerItem, 1, g);
                return;
            }

            if (grouped)
            {
                var v = ws.MatVecJob;
                v.W = w;
                (v.Y, v.Act, v.Scales, v.Sums, v.Stream) = ((nint)py, (nint)pa, (nint)pas, (nint)pasum, (nint)pst);
                (v.Tokens, v.ActRowBytes, v.SideStride, v.StreamStride) = (tokens, actRowBytes, ws.SideStride, ws.MaxColumns);
                v.RowKernel = k.DotSimd;
                int groups = (w.Rows + PackedGemm.Rows - 1) / PackedGemm.Rows;
                // At least ~32K multiply-adds per chunk so the atomic hand-out stays negligible.
                ws.Pool.For(groups, Math.Max(1, 4096 / (w.Columns * tokens)), v);
                return;
            }

            // Grid/ternary types: a batch decodes each panel of 16 weight rows once and runs 4-row × 4-token tiles
            // over it (IQDecoded).
            if (mode == DotMode.Quantized && k.Decoder != null && tokens >= k.Decoder.MinTokens)
            {
                var d = ws.DecodedJob;
                (d.W, d.Y, d.Act, d.Tokens, d.ActRowBytes) = (w, (nint)py, (nint)pa, tokens, actRowBytes);
                fixed (byte* pd = ws.Decoded)
                    d.Prepare(pd, ws.MaxColumns, ws.MaxTokens);
                ws.Pool.For((w.Rows + IQDecoded.PanelRows - 1) / IQDecoded.PanelRows, 1, d);
                return;
            }

            var job = ws.DotJob;
            job.W = w;
            (job.X, job.Y, job.Act, job.Scratch) = ((nint)px, (nint)py, (nint)pa, (nint)ps);
            (job.Tokens, job.Mode, job.ActRowBytes, job.ScratchStride) = (tokens, mode, actRowBytes, ws.MaxColumns);
            job.RowKernel = mode == DotMode.Quantized ? k.DotSimd : null;
            // At least ~16K multiply-adds per chunk so the atomic hand-out stays negligible.
            int grain = Math.Max(1, 16384 / Math.Max(1, w.Columns * tokens));
            ws.Pool.For(w.Rows, grain, job);
        }
    }

    /// <summary>
    /// Converts the batch's activation rows to <paramref name="w"/>'s vec-dot format in the workspace; for the grouped
    /// (8-row) kernels a Q8_0 row also gets its blocks' f32 scales and, where the type's side asks for it, 8·Σq (the
    /// offset of Q4_0's q − 8) or 128·Σq (IQ4_NL's v + 128 on VNNI). Returns the bytes per converted row.
    /// </summary>
    private static int QuantizeActivations(in WeightMatrix w, float* x, int tokens, bool grouped, MatMulWorkspace ws, byte* act, float* scales, int* sums)
    {
        var k = Kernels(w);
        var actType = k.VecDotType;
        int actRowBytes = (int)GgmlTypes.RowBytes(actType, w.Columns);
        var q = ws.QuantizeJob;
        (q.X, q.Dst, q.Columns, q.RowBytes, q.Type) = ((nint)x, (nint)act, w.Columns, actRowBytes, actType);
        (q.Scales, q.Sums, q.SideStride) = grouped && k.Side != ActivationSide.None ? ((nint)scales, (nint)sums, ws.SideStride) : (0, 0, 0);
        q.SumScale = k.Side switch { ActivationSide.Q8_0ScalesAndSums => 8, ActivationSide.Q8_0ScalesAndSums128 => 128, _ => 0 };
        // Converting a row is cheap next to the matmul; only spread it over threads for real batches.
        if (tokens < 4)
            q.Execute(0, tokens, 0);
        else
            ws.Pool.For(tokens, 1, q);
        return actRowBytes;
    }

    /// <summary>
    /// For the decode kernels of an interleaved matrix whose type asks for it (Q4_K / Q6_K), each token's activation
    /// quants in the order of the interleaved weights as well (1 byte per column, a few hundred ns per row).
    /// </summary>
    private static void StreamActivations(in WeightMatrix w, int tokens, byte* act, int actRowBytes, byte* stream, int streamStride)
    {
        var toStream = Kernels(w).StreamActivations;
        if (w.Interleaved == null || toStream == null)
            return;
        int nb = w.Columns / GgmlTypes.BlockSize(w.Type);
        // Interleaved matrices have whole groups of 8 rows, so batches of 4+ tokens take the packed GEMM instead
        // (the buffer holds 3 rows); checked because a violation would write past it.
        if (tokens >= PackedGemm.Tokens)
            throw new InvalidOperationException($"MatMul: {tokens} tokens reached the decode kernels of {w}.");
        for (int t = 0; t < tokens; t++)
            toStream(act + (long)t * actRowBytes, nb, stream + (long)t * streamStride);
    }

    /// <summary>The kernel record bound to <paramref name="w"/>; <see cref="NotSupportedException"/> naming the type when it has none.</summary>
    private static TypeTraits Kernels(in WeightMatrix w) => w.Kernels is { IsWeight: true } k ? k : throw QuantTraits.Unsupported(w.Type, "as a matmul weight");

    /// <summary>Largest batch the 8-row matvec kernels of <paramref name="t"/> take before the packed GEMM (see <see cref="TypeTraits.MaxMatVecTokens"/>).</summary>
    internal static int MaxMatVecTokens(GgmlType t) => TypeTraits.TryFor(t)?.MaxMatVecTokens ?? PackedGemm.Tokens - 1;

    /// <summary>
    /// The first half of a SwiGLU feed-forward: y = silu(gate·x) ⊙ (up·x), shapes gate/up [Rows, Columns] (each of any
    /// supported type), x [tokens, Columns], y and <paramref name="upScratch"/> [tokens, Rows]. Equal to two
    /// <see cref="Compute"/> calls and <see cref="SwiGlu.Apply"/> up to the SIMD/scalar split of the SwiGLU; for
    /// decode (fewer than 4 tokens, AVX2 kernels, gate and up of one type) the activations are quantized once and both
    /// projections and the SwiGLU run in one parallel region, 8 rows at a time. Gate and up of different types take
    /// the two separate matmuls (each quantizes the input to its own activation format).
    /// </summary>
    public static void ComputeSwiGlu(in WeightMatrix gate, in WeightMatrix up, ReadOnlySpan<float> x, Span<float> y, Span<float> upScratch, MatMulWorkspace ws)
    {
        ArgumentNullException.ThrowIfNull(ws);
        int tokens = CheckShapes(gate, x.Length, y.Length);
        if (up.Rows != gate.Rows || up.Columns != gate.Columns)
            throw new ArgumentException($"MatMul: gate {gate} and up {up} must have the same shape.");
        if (upScratch.Length != y.Length)
            throw new ArgumentException($"MatMul: up scratch length {upScratch.Length} != output length {y.Length}.");
        if (tokens > ws.MaxTokens || gate.Columns > ws.MaxColumns)
            throw new ArgumentException($"MatMul: batch {tokens} x {gate.Columns} exceeds the workspace ({ws.MaxTokens} x {ws.MaxColumns}).");
        var k = gate.Kernels;
        bool fused = tokens is > 0 and < PackedGemm.Tokens && ws.Precision == MatMulPrecision.LlamaCpp && up.Type == gate.Type
            && gate.Type != GgmlType.F32 && k is { Grouped: true } && k.DotSimd != null;
        if (!fused)
        {
            Compute(gate, x, y, ws);
            Compute(up, x, upScratch, ws);
            SwiGlu.Apply(y, upScratch, y);
            return;
        }
        fixed (float* px = x, py = y, pu = upScratch, pas = ws.ActivationScales)
        fixed (byte* pa = ws.Activations, pst = ws.Stream)
        fixed (int* pasum = ws.ActivationSums)
        {
            int actRowBytes = QuantizeActivations(gate, px, tokens, grouped: true, ws, pa, pas, pasum);
            // Gate and up share one stream copy (same type and shape) when either is interleaved.
            StreamActivations(gate.Interleaved != null ? gate : up, tokens, pa, actRowBytes, pst, ws.MaxColumns);
            var j = ws.GatedJob;
            (j.Gate, j.Up) = (gate, up);
            (j.Y, j.UpY, j.Act, j.Scales, j.Sums, j.Stream) = ((nint)py, (nint)pu, (nint)pa, (nint)pas, (nint)pasum, (nint)pst);
            (j.Tokens, j.ActRowBytes, j.SideStride, j.StreamStride) = (tokens, actRowBytes, ws.SideStride, ws.MaxColumns);
            j.RowKernel = k!.DotSimd;
            int groups = (gate.Rows + PackedGemm.Rows - 1) / PackedGemm.Rows;
            ws.Pool.For(groups, Math.Max(1, 2048 / (gate.Columns * tokens)), j);
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
                var at = QuantTraits.VecDotType(w.Type);
                act = new byte[GgmlTypes.RowBytes(at, n)];
                Quantize.Row(at, xt, act);
            }
            for (int r = 0; r < w.Rows; r++)
            {
                if (act is not null)
                {
                    y[t * w.Rows + r] = VecDot.Row(w.Type, w.Row(r), act, n);
                }
                else
                {
                    Dequantize.Row(w.Type, w.Row(r), rowF);
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
        public nint Scales, Sums;       // optional Q8_0 side arrays [tokens, SideStride]
        public int SideStride;
        public int SumScale;            // the sums are SumScale·Σq; 0: none

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            for (int t = start; t < end; t++)
            {
                var src = new ReadOnlySpan<float>((float*)X + (long)t * Columns, Columns);
                var dst = new Span<byte>((byte*)Dst + (long)t * RowBytes, RowBytes);
                Quantize.Row(Type, src, dst);
                if (Scales != 0)
                    Q8_0Side((byte*)Dst + (long)t * RowBytes, Columns / 32, (float*)Scales + (long)t * SideStride, SumScale != 0 ? (int*)Sums + (long)t * SideStride : null, SumScale);
            }
        }

        /// <summary>
        /// Each Q8_0 block's scale as f32 and, when asked, <paramref name="sumScale"/>·Σq: 8 for the offset of Q4_0's
        /// q − 8, 128 for the bias of IQ4_NL's unsigned levels v + 128.
        /// </summary>
        private static void Q8_0Side(byte* row, int nb, float* scales, int* sums, int sumScale)
        {
            for (int b = 0; b < nb; b++)
            {
                byte* blk = row + b * 34;
                scales[b] = QuantMath.HalfToSingle(*(ushort*)blk);
                if (sums != null)
                {
                    var q = System.Runtime.Intrinsics.Vector256.Load((sbyte*)(blk + 2));
                    // Σq via maddubs against ones (u8 1 × s8 q) then madd: exact.
                    var s16 = System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(System.Runtime.Intrinsics.Vector256.Create((byte)1), q);
                    var s32 = System.Runtime.Intrinsics.X86.Avx2.MultiplyAddAdjacent(s16, System.Runtime.Intrinsics.Vector256.Create((short)1));
                    sums[b] = sumScale * Simd.HorizontalSum(s32);
                }
            }
        }
    }

    /// <summary>Quantized matmul of 1–3 tokens over 8-row groups with the AVX2 <see cref="MatVec8"/> kernels.</summary>
    internal sealed class MatVecJob : IParallelWork
    {
        public WeightMatrix W;
        public nint Y, Act, Scales, Sums, Stream;
        public int Tokens, ActRowBytes, SideStride, StreamStride;
        public delegate*<byte*, byte*, int, float> RowKernel;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            for (int g = start; g < end; g++)
                Group(W, g, (float*)Y, Tokens, (byte*)Act, ActRowBytes, (float*)Scales, (int*)Sums, SideStride, (byte*)Stream, StreamStride, RowKernel);
        }

        /// <summary>Rows 8g..8g+7 (fewer at a ragged end) of y = W·x for every token.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public static void Group(in WeightMatrix w, int g, float* y, int tokens, byte* act, int actRowBytes, float* scales, int* sums, int sideStride,
            byte* stream, int streamStride, delegate*<byte*, byte*, int, float> rowKernel)
        {
            int rows = w.Rows, nb = w.Columns / GgmlTypes.BlockSize(w.Type);
            int r0 = g * PackedGemm.Rows;
            if (r0 + PackedGemm.Rows > rows)
            {
                for (int r = r0; r < rows; r++)
                    for (int t = 0; t < tokens; t++)
                        y[(long)t * rows + r] = rowKernel(w.Data + (long)r * w.RowBytes, act + (long)t * actRowBytes, nb);
                return;
            }
            // The group in GGUF order, and in the matrix's interleaved copy when it has one (see Interleaved8); the
            // interleaved kernels read the GGUF rows only to recompute a group with an Inf/NaN scale.
            var k = w.Kernels!;
            bool il = w.Interleaved != null;
            var g8 = new Group8
            {
                Rows = w.Data + (long)r0 * w.RowBytes, RowBytes = w.RowBytes, Nb = nb,
                Interleaved = il ? w.Interleaved + (long)r0 * w.RowBytes : null,
            };
            var multi = il ? k.Decode8TokensInterleaved : k.Decode8Tokens;
            if (multi != null && tokens > 1)
            {
                // Several tokens per pass over the group's blocks (the group stays in cache between passes).
                for (int t = 0; t < tokens; t += MatVec8.MultiTokens)
                {
                    g8.Act = act + (long)t * actRowBytes;
                    g8.Scales = scales + (long)t * sideStride;
                    g8.Sums = sums + (long)t * sideStride;
                    g8.Y = y + (long)t * rows + r0;
                    multi(g8, actRowBytes, sideStride, rows, Math.Min(MatVec8.MultiTokens, tokens - t));
                }
                return;
            }
            var kernel = il ? k.Decode8Interleaved : k.Decode8;
            for (int t = 0; t < tokens; t++)
            {
                g8.Act = act + (long)t * actRowBytes;
                g8.Scales = scales + (long)t * sideStride;
                g8.Sums = sums + (long)t * sideStride;
                g8.Y = y + (long)t * rows + r0;
                g8.Stream = stream + (long)t * streamStride;
                kernel(g8);
            }
        }
    }

    /// <summary>
    /// The gate and up projections of a SwiGLU feed-forward for 1–3 tokens in one region: each work item computes
    /// 8 rows of both, then the SwiGLU of those rows, while they are still in cache.
    /// </summary>
    internal sealed class GatedMatVecJob : IParallelWork
    {
        public WeightMatrix Gate, Up;
        public nint Y, UpY, Act, Scales, Sums, Stream;
        public int Tokens, ActRowBytes, SideStride, StreamStride;
        public delegate*<byte*, byte*, int, float> RowKernel;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            int rows = Gate.Rows;
            float* y = (float*)Y, u = (float*)UpY;
            for (int g = start; g < end; g++)
            {
                MatVecJob.Group(Gate, g, y, Tokens, (byte*)Act, ActRowBytes, (float*)Scales, (int*)Sums, SideStride, (byte*)Stream, StreamStride, RowKernel);
                MatVecJob.Group(Up, g, u, Tokens, (byte*)Act, ActRowBytes, (float*)Scales, (int*)Sums, SideStride, (byte*)Stream, StreamStride, RowKernel);
                int r0 = g * PackedGemm.Rows, n = Math.Min(PackedGemm.Rows, rows - r0);
                for (int t = 0; t < Tokens; t++)
                {
                    var yt = new Span<float>(y + (long)t * rows + r0, n);
                    SwiGlu.Apply(yt, new ReadOnlySpan<float>(u + (long)t * rows + r0, n), yt);
                }
            }
        }
    }

    internal sealed class DotJob : IParallelWork
    {
        public WeightMatrix W;
        public nint X, Y, Act, Scratch;
        public int Tokens, ActRowBytes, ScratchStride;
        public DotMode Mode;
        public delegate*<byte*, byte*, int, float> RowKernel;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
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

                case DotMode.Quantized when RowKernel != null:
                {
                    var kernel = RowKernel;
                    int nb = n / GgmlTypes.BlockSize(w.Type);
                    for (int r = start; r < end; r++)
                    {
                        byte* wr = w.Data + (long)r * w.RowBytes;
                        for (int t = 0; t < tokens; t++)
                            y[(long)t * rows + r] = kernel(wr, (byte*)Act + (long)t * ActRowBytes, nb);
                    }
                    break;
                }

                case DotMode.Quantized:
                    for (int r = start; r < end; r++)
                    {
                        var wr = new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes);
                        for (int t = 0; t < tokens; t++)
                        {
                            var a = new ReadOnlySpan<byte>((byte*)Act + (long)t * ActRowBytes, ActRowBytes);
                            y[(long)t * rows + r] = VecDot.Row(w.Type, wr, a, n);
                        }
                    }
                    break;

                case DotMode.Dequantized:
                    var rowF = new Span<float>((float*)Scratch + (long)thread * ScratchStride, n);
                    for (int r = start; r < end; r++)
                    {
                        Dequantize.Row(w.Type, new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes), rowF);
                        for (int t = 0; t < tokens; t++)
                            y[(long)t * rows + r] = VectorMath.Dot(rowF, new ReadOnlySpan<float>(x + (long)t * n, n));
                    }
                    break;
            }
        }
    }
}
