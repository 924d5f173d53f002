using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// How a grid or ternary type (IQ1/IQ2/IQ3, TQ1_0/TQ2_0) turns one super-block into signed bytes, and the float steps
/// of its row dot. With it, a batch decodes each weight row ONCE and dots the decoded bytes with every token
/// (<see cref="IQDecoded"/>), instead of looking the grid up again per token as the row dot does.
/// </summary>
internal sealed unsafe class BlockDecoder
{
    /// <summary>A decoder with the type's block function and float factors.</summary>
    public BlockDecoder(delegate*<byte*, sbyte*, short*, float> decode, float post = 1f, float final = 1f)
    {
        Decode = decode;
        Post = post;
        Final = final;
    }

    /// <summary>
    /// Writes the 256 weights of the super-block at arg 0 as signed bytes (|q| ≤ 64) and the 16 integer scales of its
    /// groups of 16 (≤ 31), and returns the block's float scale d_w: the block's exact integer is Σ_g ls_g·Σ q·a.
    /// </summary>
    public delegate*<byte*, sbyte*, short*, float> Decode { get; }

    /// <summary>The factor of that integer before the scales (1/8 for IQ1's 8·g ± 1 bytes, else 1).</summary>
    public float Post { get; }

    /// <summary>The factor of the whole sum (1/8 for IQ2, 1/4 for IQ3_XXS, else 1), as ggml's generic dot applies it.</summary>
    public float Final { get; }

    /// <summary>
    /// Smallest batch that takes the decoded path for this type (at least <see cref="IQDecoded.SmallestMinTokens"/>):
    /// decoding a 16-row panel costs about as much as this many row dots. Defaults to <see cref="IQDecoded.MinTokens"/>.
    /// </summary>
    public int MinTokens { get => _minTokens; init => _minTokens = Math.Max(value, IQDecoded.SmallestMinTokens); }

    /// <summary>
    /// The centered layout every group of the type fits by its format (<see cref="GroupKind.Centered"/> or
    /// <see cref="GroupKind.CenteredPairs"/>, with <see cref="Shift"/>), which spares <see cref="IQDecoded.DecodeGroup"/>
    /// its per-group check; <see cref="GroupKind.Wide"/> (the default): check each group.
    /// </summary>
    public GroupKind Centered { get; init; }

    /// <summary>The right shift of the weights that <see cref="Centered"/> takes (1: halves of even weights).</summary>
    public int Shift { get; init; }

    /// <summary>
    /// Optional SIMD twin of <see cref="Decode"/> for two rows at once (super-blocks at args 0 and 1): both rows' signed
    /// bytes (512), their 32 scales and their two d_w, the same values as two <see cref="Decode"/> calls. Null: none
    /// on this machine.
    /// </summary>
    public delegate*<byte*, byte*, sbyte*, short*, float*, void> DecodePair { get; init; }

    private readonly int _minTokens = IQDecoded.MinTokens;
}

/// <summary>
/// Batched matmul of a grid/ternary weight matrix as a register-blocked GEMM: a group of <see cref="Rows"/> weight rows
/// is decoded once (256 signed weights per super-block, their scales spread 8 per group of 16 as int16,
/// 128·Σ ls·Σq and d_w per row), then tiles of <see cref="Rows"/> rows × <see cref="Tokens"/> tokens go over the
/// blocks with 16 integer accumulators, which are reduced together once per block. The block integer is exact on
/// every path, and each (row, token) output takes the float steps of the row dot in block order,
/// sumf += (d_w·d_a)·(isum·Post), then Final·sumf, so results are bit-identical to <see cref="TypeTraits.DotScalar"/>.
/// </summary>
/// <remarks>
/// The SIMD paths take the activations as the unsigned side of vpmaddubsw, a + 128 (a ^ 0x80), against the signed
/// weights: pair sums stay within int16 because |q| ≤ 64 (255·64·2 = 32640), and the offset is removed with the
/// per-block 128·Σ ls·Σq computed at decode time, so no activation value (−128 included) is special.
/// Decoded group block (<see cref="GroupBlockBytes"/>, 64-byte aligned parts): q[4][256], int16 scales[4][128],
/// then 16 int32 offsets and 16 f32 d_w in tile lane order (lane 4·token + row, so each row's value 4 times).
/// A <see cref="GroupKind.Small"/> group has each row's q interleaved and the first 64 bytes of its scales as the
/// interleaved lanes' scales (IQDecodedSmall.cs); a centered group also the lanes' −128·Σq in the next 64 or 128
/// (IQDecodedCentered.cs).
/// </remarks>
internal static unsafe partial class IQDecoded
{
    /// <summary>Weight rows decoded together (one tile's rows).</summary>
    public const int Rows = 4;

    /// <summary>Tokens per tile: a tile holds <see cref="Rows"/>·<see cref="Tokens"/> = 16 (row, token) outputs.</summary>
    public const int Tokens = 4;

    /// <summary>Bytes of one decoded super-block of a <see cref="Rows"/>-row group (see the remarks).</summary>
    public const int GroupBlockBytes = 2176;

    /// <summary>Default smallest batch that takes the decoded path (<see cref="BlockDecoder.MinTokens"/>).</summary>
    public const int MinTokens = 4;

    /// <summary>Smallest <see cref="BlockDecoder.MinTokens"/> a type may ask for (the workspace holds the scratch from here).</summary>
    public const int SmallestMinTokens = 2;

    /// <summary>Decoded 4-row groups per panel, the rows of one work item (<see cref="PanelRows"/>).</summary>
    private const int PanelGroups = 4;

    /// <summary>Weight rows per work item: each token's outputs of a panel fill one 64-byte line.</summary>
    public const int PanelRows = PanelGroups * Rows;

    /// <summary>Most tokens per pass over a panel (<see cref="TokenBlock"/>).</summary>
    private const int MaxTokenBlock = 64;

    /// <summary>Blocks per pass over the tokens: 8 decoded group blocks (17 KB) stay in L1 while the tokens go by.</summary>
    private const int ChunkBlocks = 8;

    private const int ScalesAt = 1024, OffsetsAt = 2048, ScaleAt = 2112, Q8KBytes = 292;

    /// <summary>True when this machine runs <see cref="Tile512"/> (AVX-512 BW).</summary>
    public static bool Use512 => Avx512BW.IsSupported;

    /// <summary>
    /// Decodes <paramref name="nb"/> super-blocks of <paramref name="count"/> (1..<see cref="Rows"/>) rows,
    /// <paramref name="rowBytes"/> apart, into group blocks at <paramref name="dst"/>; missing rows repeat the last one.
    /// Returns the group's layout: on AVX-512 where <paramref name="interleave"/> allows it (the batch has interleaved
    /// activations), the decoder's <see cref="BlockDecoder.Centered"/> layout where it has one (IQDecodedCentered.cs);
    /// else on AVX-512 <see cref="GroupKind.Unit"/> where every scale is 1 and every weight within ±16, else
    /// <see cref="GroupKind.Small"/> where the weights are within ±16 and <paramref name="interleave"/> allows it; else
    /// <see cref="GroupKind.Wide"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static GroupKind DecodeGroup(BlockDecoder decoder, byte* rows, long rowBytes, int count, int blockBytes, int nb, byte* dst, bool interleave)
    {
        short* ls = stackalloc short[2 * 16];
        float* dw = stackalloc float[2];
        bool fixedKind = Use512 && interleave && decoder.Centered != GroupKind.Wide, small = Use512 && !fixedKind, unit = small;
        var pair = decoder.DecodePair;
        for (int b = 0; b < nb; b++)
        {
            byte* g = dst + (long)GroupBlockBytes * b;
            for (int r = 0; r < Rows; r += pair != null ? 2 : 1)
            {
                byte* x = rows + rowBytes * Math.Min(r, count - 1) + (long)blockBytes * b;
                if (pair != null)
                    pair(x, rows + rowBytes * Math.Min(r + 1, count - 1) + (long)blockBytes * b, (sbyte*)(g + 256 * r), ls, dw);
                else
                    dw[0] = decoder.Decode(x, (sbyte*)(g + 256 * r), ls);
                for (int i = 0; i < (pair != null ? 2 : 1); i++)
                {
                    sbyte* q = (sbyte*)(g + 256 * (r + i));
                    short* sc = (short*)(g + ScalesAt + 256 * (r + i));
                    if (small)
                    {
                        small = SmallWeights(q);
                        unit = unit && Vector256.Load(ls + 16 * i) == Vector256<short>.One;
                    }
                    for (int j = 0; j < 16; j++)
                        Vector128.Create(ls[16 * i + j]).Store(sc + 8 * j);
                    for (int t = 0; t < Tokens; t++)
                        ((float*)(g + ScaleAt))[Rows * t + r + i] = dw[i];
                }
            }
        }
        var (kind, shift) = fixedKind ? (decoder.Centered, decoder.Shift)
            : !small ? (GroupKind.Wide, 0)
            : unit ? (GroupKind.Unit, 0)
            : interleave ? (GroupKind.Small, 0)
            : (GroupKind.Wide, 0);
        // The centered tiles start their sums at −128·Σq instead and subtract no offset.
        if (kind is not (GroupKind.Centered or GroupKind.CenteredPairs))
            Offsets(dst, nb);
        if (kind is GroupKind.Small or GroupKind.Centered or GroupKind.CenteredPairs)
            LayOutGroup(dst, nb, kind, shift);
        return kind;
    }

    /// <summary>Writes each row block's 128·Σ_g ls_g·Σq (natural order, spread scales) in tile lane order at OffsetsAt.</summary>
    private static void Offsets(byte* dst, int nb)
    {
        for (int b = 0; b < nb; b++)
        {
            byte* g = dst + (long)GroupBlockBytes * b;
            for (int r = 0; r < Rows; r++)
            {
                int offset = 128 * ScaledSum((sbyte*)(g + 256 * r), (short*)(g + ScalesAt + 256 * r));
                for (int t = 0; t < Tokens; t++)
                    ((int*)(g + OffsetsAt))[Rows * t + r] = offset;
            }
        }
    }

    /// <summary>Σ_g ls_g·Σ q over a decoded row block's weights and scales (the offset term of the SIMD dots), exact.</summary>
    private static int ScaledSum(sbyte* q, short* sc)
    {
        if (Avx2.IsSupported)
        {
            var ones = Vector256.Create((byte)1);
            var acc = Vector256<int>.Zero;
            for (int v = 0; v < 8; v++)
                acc += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ones, Vector256.Load(q + 32 * v)), Vector256.Load(sc + 16 * v));
            return Simd.HorizontalSum(acc);
        }
        int sum = 0;
        for (int g = 0; g < 16; g++)
        {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += q[16 * g + j];
            sum += sc[8 * g] * s;
        }
        return sum;
    }

    /// <summary>The exact Σ_g ls_g·Σ q·a of one decoded row block (weights, spread scales) against 256 Q8_K quants.</summary>
    public static int BlockDotScalar(sbyte* q, short* sc, sbyte* a)
    {
        int isum = 0;
        for (int g = 0; g < 16; g++)
        {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += q[16 * g + j] * a[16 * g + j];
            isum += sc[8 * g] * s;
        }
        return isum;
    }

    /// <summary>
    /// Writes the Q8_K scale d_a of every block of every token in tile lane order (tile k, block b: 16 floats at
    /// 16·(k·nb + b), lane 4·token + row), the last token repeated to fill the last tile: the tiles load them next to d_w.
    /// </summary>
    public static void ScaleTable(byte* act, int actRowBytes, int tokens, int nb, float* dst)
    {
        int tiles = (tokens + Tokens - 1) / Tokens;
        for (int k = 0; k < tiles; k++)
            for (int t = 0; t < Tokens; t++)
            {
                byte* a = act + (long)Math.Min(Tokens * k + t, tokens - 1) * actRowBytes;
                for (int b = 0; b < nb; b++)
                    new Span<float>(dst + 16 * ((long)k * nb + b) + Rows * t, Rows).Fill(*(float*)(a + Q8KBytes * (long)b));
            }
    }

    /// <summary>
    /// One panel of up to <see cref="PanelRows"/> weight rows (<paramref name="rowBytes"/> apart) against
    /// <paramref name="tokens"/> Q8_K activation rows (<paramref name="actRowBytes"/> apart):
    /// y[t·yStride + r] = the row dot of row r and token t. <paramref name="da"/> is <see cref="ScaleTable"/>'s output
    /// for these activations; <paramref name="xact"/> is <see cref="InterleaveActivations"/>' output for them, or null
    /// (no <see cref="GroupKind.Small"/> groups then); <paramref name="scratch"/> holds <see cref="ScratchBytes"/> bytes,
    /// 64-byte aligned.
    /// </summary>
    /// <remarks>
    /// The panel's 4-row groups are decoded once; then, per block of tokens whose activations stay in L2, every
    /// chunk of blocks runs each group's tiles (the group's decoded chunk stays in L1 while its tiles go by), and each
    /// token's 16 outputs are written as one run (a cache line), not 4 floats per page-apart token row.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Panel(BlockDecoder decoder, byte* rows, long rowBytes, int count, int blockBytes, int nb,
        byte* act, int actRowBytes, byte* xact, int tokens, float* da, byte* scratch, float* y, long yStride)
    {
        int groups = (count + Rows - 1) / Rows;
        long groupBytes = (long)GroupBlockBytes * nb;
        var kinds = stackalloc GroupKind[PanelGroups];
        for (int gi = 0; gi < groups; gi++)
            kinds[gi] = DecodeGroup(decoder, rows + rowBytes * Rows * gi, rowBytes, Math.Min(Rows, count - Rows * gi), blockBytes, nb,
                scratch + groupBytes * gi, xact != null);
        float* sumf = (float*)(scratch + groupBytes * PanelGroups);
        int blockTokens = TokenBlock(nb);
        for (int tb = 0; tb < tokens; tb += blockTokens)
        {
            int n = Math.Min(blockTokens, tokens - tb), tiles = (n + Tokens - 1) / Tokens;
            new Span<float>(sumf, 16 * tiles * groups).Clear();
            for (int c0 = 0; c0 < nb; c0 += ChunkBlocks)
                for (int gi = 0; gi < groups; gi++)
                    Tiles(scratch + groupBytes * gi + (long)GroupBlockBytes * c0, Math.Min(ChunkBlocks, nb - c0), c0, nb,
                        act, actRowBytes, xact, tb, tokens, tiles, da, decoder.Post, kinds[gi], sumf + 16 * tiles * gi);
            var final = Vector128.Create(decoder.Final);
            for (int t = 0; t < n; t++)
            {
                float* yt = y + (tb + t) * yStride;
                float* st = sumf + 16 * (t / Tokens) + Rows * (t % Tokens);
                int r = 0;
                for (; r + Rows <= count; r += Rows)
                    (final * Vector128.Load(st + 16 * tiles * (r / Rows))).Store(yt + r);
                for (; r < count; r++)
                    yt[r] = final.ToScalar() * st[16 * tiles * (r / Rows) + r % Rows];
            }
        }
    }

    /// <summary>
    /// The tiles of one group's chunk (<paramref name="blocks"/> blocks from block <paramref name="c0"/>) for tokens
    /// [t0, t0 + 4·<paramref name="tiles"/>), missing tokens repeating the last one; tile k adds to sumf[16k..].
    /// <paramref name="kind"/>: the group's layout (<see cref="DecodeGroup"/>), which picks the tile.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tiles(byte* g, int blocks, int c0, int nb, byte* act, int actRowBytes, byte* xact, int t0, int tokens, int tiles, float* da, float post, GroupKind kind, float* sumf)
    {
        for (int k = 0; k < tiles; k++)
        {
            int t = t0 + Tokens * k, left = tokens - t;
            byte* a0 = act + (long)t * actRowBytes + (long)Q8KBytes * c0;
            byte* a1 = left > 1 ? a0 + actRowBytes : a0;
            byte* a2 = left > 2 ? a1 + actRowBytes : a1;
            byte* a3 = left > 3 ? a2 + actRowBytes : a2;
            float* dk = da + 16 * ((long)(t / Tokens) * nb + c0);
            if (kind is GroupKind.Small or GroupKind.Centered or GroupKind.CenteredPairs)
            {
                byte* x0 = xact + 256 * ((long)t * nb + c0), x1 = left > 1 ? x0 + 256L * nb : x0;
                byte* x2 = left > 2 ? x1 + 256L * nb : x1, x3 = left > 3 ? x2 + 256L * nb : x2;
                if (kind == GroupKind.Centered)
                    Tile512Centered(g, blocks, x0, x1, x2, x3, dk, post, sumf + 16 * k);
                else if (kind == GroupKind.CenteredPairs)
                    Tile512CenteredPairs(g, blocks, x0, x1, x2, x3, dk, post, sumf + 16 * k);
                else
                    Tile512Small(g, blocks, x0, x1, x2, x3, dk, post, sumf + 16 * k);
            }
            else if (kind == GroupKind.Unit)
                Tile512Unit(g, blocks, a0, a1, a2, a3, dk, post, sumf + 16 * k);
            else if (Use512)
                Tile512(g, blocks, a0, a1, a2, a3, dk, post, sumf + 16 * k);
            else if (Simd.Avx2Fma)
                TileAvx2(g, blocks, a0, a1, a2, a3, dk, post, sumf + 16 * k);
            else
                TileScalar(g, blocks, a0, a1, a2, a3, post, sumf + 16 * k);
        }
    }

    /// <summary>Tokens per pass over a panel: a multiple of 4 whose activation rows (nb·292 bytes each) fill about 256 KB, 4..64.</summary>
    private static int TokenBlock(int nb) => Math.Clamp(256 * 1024 / (Q8KBytes * Math.Max(1, nb)) & ~(Tokens - 1), Tokens, MaxTokenBlock);

    /// <summary>Bytes of a scale table (<see cref="ScaleTable"/>) for rows of <paramref name="columns"/> and a batch of <paramref name="tokens"/>, 64-byte rounded.</summary>
    public static long TableBytes(int columns, int tokens) => Align64(64L * (columns / 256) * ((tokens + Tokens - 1) / Tokens));

    /// <summary>Bytes of one thread's <see cref="Panel"/> scratch (decoded groups and the tiles' sums), 64-byte rounded.</summary>
    public static long ScratchBytes(int columns) => Align64((long)GroupBlockBytes * (columns / 256) * PanelGroups) + 64L * PanelGroups * (MaxTokenBlock / Tokens);

    /// <summary>
    /// Bytes a workspace holds for the decoded path: alignment slack, the scale table, the interleaved activations
    /// (<see cref="InterleavedBytes"/>) and one scratch per thread.
    /// </summary>
    public static long WorkspaceBytes(int threads, int columns, int tokens)
        => 64 + TableBytes(columns, tokens) + InterleavedBytes(columns, tokens) + threads * ScratchBytes(columns);

    private static long Align64(long n) => (n + 63) & ~63L;

    /// <summary>
    /// Panels [start, end) of <see cref="PanelRows"/> weight rows of a batched matmul (activations already in Q8_K, their
    /// scale table in <see cref="Table"/>), one decode per row.
    /// </summary>
    internal sealed class Job : IParallelWork
    {
        public WeightMatrix W;
        public nint Y, Act, Table, Interleaved, Scratch;
        public int Tokens, ActRowBytes;
        public long ScratchStride;

        /// <summary>
        /// Points the job at a workspace buffer of <see cref="WorkspaceBytes"/> (maxColumns, maxTokens) and fills the scale
        /// table and, with AVX-512, the interleaved activations.
        /// </summary>
        public void Prepare(byte* buffer, int maxColumns, int maxTokens)
        {
            byte* aligned = (byte*)(((nint)buffer + 63) & ~(nint)63);
            Table = (nint)aligned;
            byte* interleaved = aligned + TableBytes(maxColumns, maxTokens);
            Interleaved = Use512 ? (nint)interleaved : 0;
            Scratch = (nint)(interleaved + InterleavedBytes(maxColumns, maxTokens));
            ScratchStride = ScratchBytes(maxColumns);
            ScaleTable((byte*)Act, ActRowBytes, Tokens, W.Columns / 256, (float*)Table);
            if (Use512)
                InterleaveActivations((byte*)Act, ActRowBytes, Tokens, W.Columns / 256, interleaved);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            var w = W;
            var decoder = w.Kernels!.Decoder!;
            int nb = w.Columns / 256, blockBytes = GgmlTypes.TypeSize(w.Type);
            byte* scratch = (byte*)Scratch + thread * ScratchStride;
            for (int p = start; p < end; p++)
            {
                int r0 = PanelRows * p;
                Panel(decoder, w.Data + (long)r0 * w.RowBytes, w.RowBytes, Math.Min(PanelRows, w.Rows - r0), blockBytes, nb,
                    (byte*)Act, ActRowBytes, (byte*)Interleaved, Tokens, (float*)Table, scratch, (float*)Y + r0, w.Rows);
            }
        }
    }

    /// <summary>
    /// ulong of 8 signed bytes from 8 grid magnitudes (each in 1..127) and a byte mask (0xFF where negative):
    /// (g ^ m) + (m &amp; 1) negates the masked bytes, and no byte carries because no magnitude is 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Signed(ulong magnitudes, ulong negative) => (magnitudes ^ negative) + (negative & 0x0101010101010101ul);

    /// <summary>The 8 bits of <paramref name="bits"/> as byte masks: byte j = 0xFF where bit j is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong BitMask8(uint bits)
    {
        ulong x = ((byte)bits * 0x0101010101010101ul) & 0x8040201008040201ul;
        x = (x | ((x & 0x7F7F7F7F7F7F7F7Ful) + 0x7F7F7F7F7F7F7F7Ful)) & 0x8080808080808080ul;
        return (x >> 7) * 0xFF;
    }
}
