using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Matrix × one vector (decode) on AVX2, 8 weight rows at a time read straight from the memory-mapped blocks.
/// </summary>
/// <remarks>
/// Each row's block sums are computed as in the single-row dots, then the 8 rows' exact integer totals are gathered
/// into one vector (a transpose-add), so the float scaling runs once per block for 8 rows: lane r of the accumulator is
/// row r, and each lane sees exactly the operations of <see cref="PackedGemm"/> and of the rows' DotAvx2 (the
/// engine's canonical order) — decode, batched prefill and <see cref="VecDot.Row"/> give identical bits. The 8 row
/// scales of a block come in with one gather (their f16 bits are the low half of a dword in each row).
/// Activations: the usual Q8_0 / Q8_K rows; for Q8_0 also the f32 block scales and (Q4_0) 8·Σq per block.
/// </remarks>
internal static unsafe class MatVec8
{
    /// <summary>Lane r = Σ of the 8 int32 lanes of s_r (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Totals(Vector256<int> s0, Vector256<int> s1, Vector256<int> s2, Vector256<int> s3,
        Vector256<int> s4, Vector256<int> s5, Vector256<int> s6, Vector256<int> s7)
    {
        var q0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s0, s1), Avx2.HorizontalAdd(s2, s3));   // [rows 0-3 lows | rows 0-3 highs]
        var q1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(s4, s5), Avx2.HorizontalAdd(s6, s7));   // rows 4-7
        return Avx2.Permute2x128(q0, q1, 0x20) + Avx2.Permute2x128(q0, q1, 0x31);
    }

    /// <summary>The f16 in the low half of the dword at <paramref name="p"/> in each of 8 rows (the high half with <paramref name="high"/>), as f32 (see <see cref="Halves"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> RowHalves(byte* p, Vector256<int> rowOffsets, ref Vector256<int> special, bool high = false)
    {
        var g = Avx2.GatherVector256((int*)p, rowOffsets, 1);
        return Halves(high ? g & Vector256.Create(unchecked((int)0xFFFF0000)) : g << 16, ref special);
    }

    /// <summary>
    /// 8 f16 values in the top halves of the lanes of <paramref name="t"/> as f32, exact for every finite f16 and
    /// without f32 subnormals (<see cref="HalfConversion.FromTopHalves(Vector256{int})"/>: Q6_K's d and many Q4_K dmin
    /// are f16 subnormals, and multiplying them into place cost a microcode assist per block — it halved Q4_K_M decode).
    /// Inf/NaN (exponent 31) would come out finite: their exponent field is or-ed into <paramref name="special"/>, and a
    /// group that saw one is recomputed exactly (see <see cref="HasSpecial"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Halves(Vector256<int> t, ref Vector256<int> special)
    {
        special = Avx2.Max(special.AsUInt32(), (t & Vector256.Create(0x7C000000)).AsUInt32()).AsInt32();
        return HalfConversion.FromTopHalves(t);
    }

    /// <summary>True when some scale seen by <see cref="Halves"/> was Inf or NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool HasSpecial(Vector256<int> special) => Vector256.EqualsAny(special, Vector256.Create(0x7C000000));

    /// <summary>The exact (and slow) way for a group with an Inf/NaN scale: the single-row canonical dots, same bits otherwise.</summary>
    internal static void Exact(delegate*<byte*, byte*, int, float> rowDot, byte* w, int rowBytes, int nb, byte* a, float* y)
    {
        for (int r = 0; r < 8; r++)
            y[r] = rowDot(w + (long)r * rowBytes, a, nb);
    }

    /// <summary>
    /// Prefetches the part of the next 8-row group (which starts at <paramref name="next"/>) that block iteration
    /// <paramref name="b"/> of the current group is responsible for: over the group's iterations all of it, so the
    /// next group is in cache when its 8 interleaved streams start (short rows defeat the hardware prefetcher).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchNext(byte* next, int bytesPerIteration, int b)
    {
        byte* p = next + (long)b * bytesPerIteration;
        for (int i = 0; i < bytesPerIteration + 64; i += 64)
            Sse.Prefetch0(p + i);
    }

    internal static Vector256<int> Offsets(int rowBytes) => Vector256.Create(0, rowBytes, 2 * rowBytes, 3 * rowBytes, 4 * rowBytes, 5 * rowBytes, 6 * rowBytes, 7 * rowBytes);

    /// <summary>
    /// Σ over one Q4_0 block of two rows at once: the 16 quant bytes of row <paramref name="a"/> in the low 128-bit lane
    /// and of row <paramref name="b"/> in the high lane, so one and/shift/and unpacks both, and the activations come as
    /// the block's first 16 values broadcast to both lanes (against the low nibbles) and its last 16 (high nibbles).
    /// The 8 int16 lanes of the low half hold row a's partial sums (4 products each, |·| ≤ 4·15·127 = 7620), the high
    /// half row b's.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Q4_0Pair(byte* a, byte* b, Vector256<sbyte> yLo, Vector256<sbyte> yHi)
        => Q4_0Pair(Vector256.Create(Vector128.Load(a), Vector128.Load(b)), yLo, yHi);

    /// <summary><see cref="Q4_0Pair(byte*, byte*, Vector256{sbyte}, Vector256{sbyte})"/> on the two rows' quant bytes already in one vector.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Q4_0Pair(Vector256<byte> v, Vector256<sbyte> yLo, Vector256<sbyte> yHi)
    {
        var low = Vector256.Create((byte)0x0F);
        return Avx2.MultiplyAddAdjacent(v & low, yLo) + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & low, yHi);
    }

    /// <summary>
    /// int32 lane r = the exact block sum of row r, from pairs (0,4), (1,5), (2,6), (3,7) as <c>Q4_0Pair</c> lays
    /// them out: two int16 horizontal adds (≤ 4·7620 = 30480, no overflow) put per 128-bit half two lanes of each of
    /// four rows in row order, and one madd against ones finishes them — one multiply per block instead of four.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> PairTotals(Vector256<short> p04, Vector256<short> p15, Vector256<short> p26, Vector256<short> p37)
        => Avx2.MultiplyAddAdjacent(Avx2.HorizontalAdd(Avx2.HorizontalAdd(p04, p15), Avx2.HorizontalAdd(p26, p37)), Vector256.Create((short)1));

    /// <summary>Copies block <paramref name="b"/>'s f16 scale of each of the 8 rows (at byte offset b·<paramref name="blockBytes"/> + <paramref name="offset"/>) to <paramref name="slot"/>[0..7].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyScales(byte* w, long rb, int b, int blockBytes, int offset, ushort* slot)
    {
        byte* x = w + (long)b * blockBytes + offset;
        slot[0] = *(ushort*)x;
        slot[1] = *(ushort*)(x + rb);
        slot[2] = *(ushort*)(x + 2 * rb);
        slot[3] = *(ushort*)(x + 3 * rb);
        slot[4] = *(ushort*)(x + 4 * rb);
        slot[5] = *(ushort*)(x + 5 * rb);
        slot[6] = *(ushort*)(x + 6 * rb);
        slot[7] = *(ushort*)(x + 7 * rb);
    }

    /// <summary>Scale copies run this many blocks ahead of their use (their stores have long retired when the slot is read as one vector).</summary>
    private const int ScaleLead = 4;

    /// <summary>
    /// The 8 f16 scales of a ring slot (see <see cref="CopyScales"/>) or of an interleaved block as f32, exact for
    /// finite values, with the conversion and Inf/NaN flagging of <see cref="Halves"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SlotHalves(ushort* slot, ref Vector256<int> special)
        => Halves(Avx2.ConvertToVector256Int32(Vector128.Load(slot)) << 16, ref special);

    /// <summary>Q4_0 rows r..r+7 (at <paramref name="w"/>) · one Q8_0 activation row → y[0..7].</summary>
    /// <remarks>
    /// The rows' block scales are strided (one f16 per row and block); instead of a gather per block they are copied
    /// with scalar loads and stores into a small ring a few blocks ahead, on ports the vector work leaves idle, and
    /// read back as one 16-byte vector.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rb = rowBytes;
        byte* next = w + 8 * rb;
        ushort* ring = stackalloc ushort[8 * 8];   // [8 slots][8 rows] f16 scales
        for (int b = 0; b < ScaleLead && b < nb; b++)
            CopyScales(w, rb, b, 18, 0, ring + 8 * b);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 18;
            if (b + ScaleLead < nb)
                CopyScales(w, rb, b + ScaleLead, 18, 0, ring + 8 * ((b + ScaleLead) & 7));
            // The next group, 144 bytes per iteration (three lines cover it).
            byte* pf = next + b * 144;
            Sse.Prefetch0(pf);
            Sse.Prefetch0(pf + 64);
            Sse.Prefetch0(pf + 128);
            byte* ya = a + b * 34 + 2;
            var yLo = Avx2.BroadcastVector128ToVector256((sbyte*)ya);
            var yHi = Avx2.BroadcastVector128ToVector256((sbyte*)ya + 16);
            var tot = PairTotals(
                Q4_0Pair(x + 2, x + 4 * rb + 2, yLo, yHi),
                Q4_0Pair(x + rb + 2, x + 5 * rb + 2, yLo, yHi),
                Q4_0Pair(x + 2 * rb + 2, x + 6 * rb + 2, yLo, yHi),
                Q4_0Pair(x + 3 * rb + 2, x + 7 * rb + 2, yLo, yHi));
            tot -= Vector256.Create(aSums[b]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves(ring + 8 * (b & 7), ref special) * Vector256.Create(aScales[b]), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4_0.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>One token's step of <see cref="Q4_0Tokens"/>: the operations of <see cref="Q4_0"/> on pre-unpacked nibbles.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> TokenStep(Vector256<byte> l0, Vector256<byte> h0, Vector256<byte> l1, Vector256<byte> h1,
        Vector256<byte> l2, Vector256<byte> h2, Vector256<byte> l3, Vector256<byte> h3, byte* ya, int sum, float aScale, Vector256<float> scale, Vector256<float> acc)
    {
        var yLo = Avx2.BroadcastVector128ToVector256((sbyte*)ya);
        var yHi = Avx2.BroadcastVector128ToVector256((sbyte*)ya + 16);
        var tot = PairTotals(
            Avx2.MultiplyAddAdjacent(l0, yLo) + Avx2.MultiplyAddAdjacent(h0, yHi),
            Avx2.MultiplyAddAdjacent(l1, yLo) + Avx2.MultiplyAddAdjacent(h1, yHi),
            Avx2.MultiplyAddAdjacent(l2, yLo) + Avx2.MultiplyAddAdjacent(h2, yHi),
            Avx2.MultiplyAddAdjacent(l3, yLo) + Avx2.MultiplyAddAdjacent(h3, yHi));
        tot -= Vector256.Create(sum);
        return Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), scale * Vector256.Create(aScale), acc);
    }

    /// <summary>Most tokens <see cref="Q4_0Tokens"/> takes at once (its accumulators stay in registers).</summary>
    public const int MultiTokens = 4;

    /// <summary>
    /// Q4_0 rows r..r+7 · <paramref name="tokens"/> (1..<see cref="MultiTokens"/>) Q8_0 activation rows → y[t·yStride + 0..7]:
    /// batched decode. Each block's 8 rows are unpacked once and used for every token; per token the operations are
    /// exactly those of <see cref="Q4_0"/>, so every output has the same bits as a single-token call.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0Tokens(byte* w, int rowBytes, int nb, byte* a, int actRowBytes, float* aScales, int* aSums, int sideStride,
        float* y, int yStride, int tokens)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        var acc3 = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rb = rowBytes;
        byte* next = w + 8 * rb;
        ushort* ring = stackalloc ushort[8 * 8];   // [8 slots][8 rows] f16 scales
        for (int b = 0; b < ScaleLead && b < nb; b++)
            CopyScales(w, rb, b, 18, 0, ring + 8 * b);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 18;
            if (b + ScaleLead < nb)
                CopyScales(w, rb, b + ScaleLead, 18, 0, ring + 8 * ((b + ScaleLead) & 7));
            byte* pf = next + b * 144;
            Sse.Prefetch0(pf);
            Sse.Prefetch0(pf + 64);
            Sse.Prefetch0(pf + 128);
            // Rows (0,4), (1,5), (2,6), (3,7) share a vector, as in Q4_0Pair.
            TokensBlock(
                Vector256.Create(Vector128.Load(x + 2), Vector128.Load(x + 4 * rb + 2)),
                Vector256.Create(Vector128.Load(x + rb + 2), Vector128.Load(x + 5 * rb + 2)),
                Vector256.Create(Vector128.Load(x + 2 * rb + 2), Vector128.Load(x + 6 * rb + 2)),
                Vector256.Create(Vector128.Load(x + 3 * rb + 2), Vector128.Load(x + 7 * rb + 2)),
                SlotHalves(ring + 8 * (b & 7), ref special), a, actRowBytes, aScales, aSums, sideStride, b, tokens, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        StoreTokens(acc0, acc1, acc2, acc3, y, yStride, tokens, special, w, rowBytes, nb, a, actRowBytes);
    }

    /// <summary>
    /// One block of <see cref="Q4_0Tokens"/> / <see cref="Q4_0x8Tokens"/>: the group's four two-row vectors (low nibbles =
    /// the block's first 16 quants, high = the last 16) unpacked once, then each token's step. Tokens have their
    /// accumulators named, so everything stays in the 16 vector registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void TokensBlock(Vector256<byte> v0, Vector256<byte> v1, Vector256<byte> v2, Vector256<byte> v3, Vector256<float> scale,
        byte* a, int actRowBytes, float* aScales, int* aSums, int sideStride, int b, int tokens,
        ref Vector256<float> acc0, ref Vector256<float> acc1, ref Vector256<float> acc2, ref Vector256<float> acc3)
    {
        var low = Vector256.Create((byte)0x0F);
        var l0 = v0 & low; var h0 = Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & low;
        var l1 = v1 & low; var h1 = Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & low;
        var l2 = v2 & low; var h2 = Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & low;
        var l3 = v3 & low; var h3 = Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & low;
        acc0 = TokenStep(l0, h0, l1, h1, l2, h2, l3, h3, a + b * 34 + 2, aSums[b], aScales[b], scale, acc0);
        if (tokens > 1)
            acc1 = TokenStep(l0, h0, l1, h1, l2, h2, l3, h3, a + actRowBytes + b * 34 + 2, aSums[sideStride + b], aScales[sideStride + b], scale, acc1);
        if (tokens > 2)
            acc2 = TokenStep(l0, h0, l1, h1, l2, h2, l3, h3, a + 2L * actRowBytes + b * 34 + 2, aSums[2L * sideStride + b], aScales[2L * sideStride + b], scale, acc2);
        if (tokens > 3)
            acc3 = TokenStep(l0, h0, l1, h1, l2, h2, l3, h3, a + 3L * actRowBytes + b * 34 + 2, aSums[3L * sideStride + b], aScales[3L * sideStride + b], scale, acc3);
    }

    /// <summary>The end of <see cref="Q4_0Tokens"/> / <see cref="Q4_0x8Tokens"/>: each token's 8 outputs, recomputed exactly from the GGUF rows when a scale was Inf/NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTokens(Vector256<float> acc0, Vector256<float> acc1, Vector256<float> acc2, Vector256<float> acc3, float* y, int yStride, int tokens,
        Vector256<int> special, byte* w, int rowBytes, int nb, byte* a, int actRowBytes)
    {
        acc0.Store(y);
        if (tokens > 1) acc1.Store(y + yStride);
        if (tokens > 2) acc2.Store(y + 2 * yStride);
        if (tokens > 3) acc3.Store(y + 3 * yStride);
        if (HasSpecial(special))
        {
            for (int t = 0; t < tokens; t++)
                Exact(&Quant.Q4_0.DotAvx2, w, rowBytes, nb, a + (long)t * actRowBytes, y + (long)t * yStride);
        }
    }

    /// <summary>How far ahead (bytes) the interleaved kernels prefetch their own stream.</summary>
    private const int InterleavedLead = 1024;

    /// <summary>
    /// Prefetches the 18 cache lines from <paramref name="p"/> (one interleaved Q4_K super-block, 1152 B), written
    /// out: the JIT does not unroll loops, and a counted loop spent 6 instructions per line — a seventh of the Q4_K
    /// decode kernel's time with its data in cache.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch18Lines(byte* p)
    {
        Sse.Prefetch0(p + 0); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); Sse.Prefetch0(p + 320);
        Sse.Prefetch0(p + 384); Sse.Prefetch0(p + 448); Sse.Prefetch0(p + 512); Sse.Prefetch0(p + 576); Sse.Prefetch0(p + 640); Sse.Prefetch0(p + 704);
        Sse.Prefetch0(p + 768); Sse.Prefetch0(p + 832); Sse.Prefetch0(p + 896); Sse.Prefetch0(p + 960); Sse.Prefetch0(p + 1024); Sse.Prefetch0(p + 1088);
    }

    /// <summary>As <see cref="Prefetch18Lines"/>, the 27 lines that cover one interleaved Q6_K super-block (1680 B).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch27Lines(byte* p)
    {
        Sse.Prefetch0(p + 0); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); Sse.Prefetch0(p + 320);
        Sse.Prefetch0(p + 384); Sse.Prefetch0(p + 448); Sse.Prefetch0(p + 512); Sse.Prefetch0(p + 576); Sse.Prefetch0(p + 640); Sse.Prefetch0(p + 704);
        Sse.Prefetch0(p + 768); Sse.Prefetch0(p + 832); Sse.Prefetch0(p + 896); Sse.Prefetch0(p + 960); Sse.Prefetch0(p + 1024); Sse.Prefetch0(p + 1088);
        Sse.Prefetch0(p + 1152); Sse.Prefetch0(p + 1216); Sse.Prefetch0(p + 1280); Sse.Prefetch0(p + 1344); Sse.Prefetch0(p + 1408); Sse.Prefetch0(p + 1472);
        Sse.Prefetch0(p + 1536); Sse.Prefetch0(p + 1600); Sse.Prefetch0(p + 1664);
    }

    /// <summary>
    /// <see cref="Q4_0"/> on an interleaved group (<see cref="Interleaved8"/>, at <paramref name="g"/>): the scales are
    /// one 16-byte load and each row pair one 32-byte load, so no ring and no cross-row prefetching; the same
    /// operations on the same values otherwise (identical bits). <paramref name="w"/>/<paramref name="rowBytes"/> are
    /// the GGUF-order rows, read only for a group with an Inf/NaN scale.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0x8(byte* g, int nb, byte* a, float* aScales, int* aSums, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 144;
            Sse.Prefetch0(x + InterleavedLead);
            Sse.Prefetch0(x + InterleavedLead + 64);
            Sse.Prefetch0(x + InterleavedLead + 128);
            byte* ya = a + b * 34 + 2;
            var yLo = Avx2.BroadcastVector128ToVector256((sbyte*)ya);
            var yHi = Avx2.BroadcastVector128ToVector256((sbyte*)ya + 16);
            var tot = PairTotals(
                Q4_0Pair(Vector256.Load(x + 16), yLo, yHi),
                Q4_0Pair(Vector256.Load(x + 48), yLo, yHi),
                Q4_0Pair(Vector256.Load(x + 80), yLo, yHi),
                Q4_0Pair(Vector256.Load(x + 112), yLo, yHi));
            tot -= Vector256.Create(aSums[b]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves((ushort*)x, ref special) * Vector256.Create(aScales[b]), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4_0.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary><see cref="Q4_0Tokens"/> on an interleaved group (see <see cref="Q4_0x8"/>); identical bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4_0x8Tokens(byte* g, int nb, byte* a, int actRowBytes, float* aScales, int* aSums, int sideStride,
        float* y, int yStride, int tokens, byte* w, int rowBytes)
    {
        var acc0 = Vector256<float>.Zero;
        var acc1 = Vector256<float>.Zero;
        var acc2 = Vector256<float>.Zero;
        var acc3 = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 144;
            Sse.Prefetch0(x + InterleavedLead);
            Sse.Prefetch0(x + InterleavedLead + 64);
            Sse.Prefetch0(x + InterleavedLead + 128);
            TokensBlock(Vector256.Load(x + 16), Vector256.Load(x + 48), Vector256.Load(x + 80), Vector256.Load(x + 112),
                SlotHalves((ushort*)x, ref special), a, actRowBytes, aScales, aSums, sideStride, b, tokens, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        StoreTokens(acc0, acc1, acc2, acc3, y, yStride, tokens, special, w, rowBytes, nb, a, actRowBytes);
    }

    /// <summary><see cref="Q8_0"/> on an interleaved group (see <see cref="Q4_0x8"/>); identical bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0x8(byte* g, int nb, byte* a, float* aScales, int* aSums, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 272;
            byte* pf = x + InterleavedLead;
            Sse.Prefetch0(pf);
            Sse.Prefetch0(pf + 64);
            Sse.Prefetch0(pf + 128);
            Sse.Prefetch0(pf + 192);
            Sse.Prefetch0(pf + 256);
            var q8 = Vector256.Load((sbyte*)(a + b * 34 + 2));
            var tot = Totals(
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 16)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 48)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 80)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 112)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 144)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 176)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 208)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 240)), q8));
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves((ushort*)x, ref special) * Vector256.Create(aScales[b]), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q8_0.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>Q8_0 rows r..r+7 · one Q8_0 activation row → y[0..7].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q8_0(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rb = rowBytes;
        ushort* ring = stackalloc ushort[8 * 8];   // [8 slots][8 rows] f16 scales, as in Q4_0
        for (int b = 0; b < ScaleLead && b < nb; b++)
            CopyScales(w, rb, b, 34, 0, ring + 8 * b);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 34 + 2;
            if (b + ScaleLead < nb)
                CopyScales(w, rb, b + ScaleLead, 34, 0, ring + 8 * ((b + ScaleLead) & 7));
            byte* pf = w + 8 * rb + b * 272;   // the next group, 272 bytes per iteration
            Sse.Prefetch0(pf);
            Sse.Prefetch0(pf + 64);
            Sse.Prefetch0(pf + 128);
            Sse.Prefetch0(pf + 192);
            Sse.Prefetch0(pf + 256);
            var q8 = Vector256.Load((sbyte*)(a + b * 34 + 2));
            var tot = Totals(
                Simd.DotSigned(Vector256.Load((sbyte*)x), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 2 * rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 3 * rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 4 * rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 5 * rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 6 * rb)), q8),
                Simd.DotSigned(Vector256.Load((sbyte*)(x + 7 * rb)), q8));
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves(ring + 8 * (b & 7), ref special) * Vector256.Create(aScales[b]), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q8_0.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>One Q4_K super-block of one row (GGUF order): exact Σ sc_j·q·a (8 lanes) and Σ m_j·bsum (8 lanes), as in <see cref="Q4K.DotAvx2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KBlock(byte* x, byte* y, out Vector256<int> minProd)
    {
        Quant.Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
        var scaleMin = Vector128.Create(scales, mins).AsByte();                              // [s0..s7, m0..m7]
        byte* qs = x + 16;
        minProd = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(scaleMin, scaleMin)));
        var sc16 = Avx2.ConvertToVector256Int16(scaleMin);                                   // [s0..s7 | m0..m7]
        var sc = Avx2.Permute2x128(sc16, sc16, 0x00);                                        // [s0..s7 | s0..s7]
        sbyte* q8 = (sbyte*)(y + 4);
        var low = Vector256.Create((byte)0x0F);
        // Sub-block j (32 weights): the low nibbles of qs[32·(j/2)..] for even j, the high ones for odd j.
        var v0 = Vector256.Load(qs);
        var v1 = Vector256.Load(qs + 32);
        var v2 = Vector256.Load(qs + 64);
        var v3 = Vector256.Load(qs + 96);
        var p0 = Avx2.MultiplyAddAdjacent(v0 & low, Vector256.Load(q8));
        var p1 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 32));
        var p2 = Avx2.MultiplyAddAdjacent(v1 & low, Vector256.Load(q8 + 64));
        var p3 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 96));
        var p4 = Avx2.MultiplyAddAdjacent(v2 & low, Vector256.Load(q8 + 128));
        var p5 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 160));
        var p6 = Avx2.MultiplyAddAdjacent(v3 & low, Vector256.Load(q8 + 192));
        var p7 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 224));
        // Each sub-block's 16 pair sums folded (adds, no multiplies) to 2 lanes per 128-bit half: 8 products of
        // u4·s8 ≤ 15·128 each, so |lane| ≤ 15360 fits int16. Per half the lanes are then sub-blocks [0,0,1,1,2,2,3,3]
        // (and 4..7), so one madd against [s0,s0,s1,s1,…] scales four sub-blocks: 2 multiplies instead of 8.
        var x03 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(p0, p1), Avx2.HorizontalAdd(p2, p3));
        var x47 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(p4, p5), Avx2.HorizontalAdd(p6, p7));
        return Avx2.MultiplyAddAdjacent(x03, Avx2.UnpackLow(sc, sc)) + Avx2.MultiplyAddAdjacent(x47, Avx2.UnpackHigh(sc, sc));
    }

    /// <summary>Q4_K rows r..r+7 · one Q8_K activation row → y[0..7].</summary>
    /// <remarks>Rows go one at a time through a super-block (their partial sums parked on the stack): eight rows inlined side by side spill badly.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4K(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var offs = Offsets(rowBytes);
        long rb = rowBytes;
        var sums = stackalloc Vector256<int>[16];   // [8 rows] Σ sc·q·a lanes, then [8 rows] Σ m·bsum lanes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 144, ab = a + b * 292;
            PrefetchNext(w + 8 * rb, 8 * 144, b);
            for (int r = 0; r < 8; r++)
                sums[r] = Q4KBlock(x + r * rb, ab, out sums[8 + r]);
            var ad = Vector256.Create(*(float*)ab);
            // d in the low half of the block's first dword, dmin in the high half.
            var d = RowHalves(x, offs, ref special);
            var dmin = RowHalves(x, offs, ref special, high: true);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])), d * ad, acc);
            acc = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(Totals(sums[8], sums[9], sums[10], sums[11], sums[12], sums[13], sums[14], sums[15])), dmin * ad, acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One Q4_K super-block of one interleaved row in <see cref="KStream"/> order: Σ_j s_j·Σ q·a over its sub-blocks,
    /// as 8 int32 lanes (lane d: sub-block d), from the row's 128 quant bytes <paramref name="qs"/>, its scales
    /// <paramref name="scales"/> = [s0, s0, s1, s1, …, s7, s7] (int16) and the activations in stream order
    /// <paramref name="y"/>. The 8 products of vpmaddubsw land in the same int16 lanes (|Σ| ≤ 8·2·15·128 = 30720), so
    /// they are added first and scaled by one vpmaddwd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KStreamBlock(byte* qs, Vector256<short> scales, sbyte* y)
    {
        var low = Vector256.Create((byte)0x0F);
        var v0 = Vector256.Load(qs);
        var v1 = Vector256.Load(qs + 32);
        var v2 = Vector256.Load(qs + 64);
        var v3 = Vector256.Load(qs + 96);
        var p01 = Avx2.MultiplyAddAdjacent(v0 & low, Vector256.Load(y))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 32));
        var p23 = Avx2.MultiplyAddAdjacent(v1 & low, Vector256.Load(y + 64))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 96));
        var p45 = Avx2.MultiplyAddAdjacent(v2 & low, Vector256.Load(y + 128))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 160));
        var p67 = Avx2.MultiplyAddAdjacent(v3 & low, Vector256.Load(y + 192))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 224));
        return Avx2.MultiplyAddAdjacent((p01 + p23) + (p45 + p67), scales);
    }

    /// <summary>
    /// <see cref="Q4K"/> on an interleaved group (<see cref="Interleaved8"/>) with the activations' quants also in
    /// <see cref="KStream"/> order (<paramref name="stream"/>, 256 B per super-block; <paramref name="a"/> is the
    /// Q8_K row itself, for d and the bsums): d and dmin are one 16-byte load each, the 8 rows' scales and mins one
    /// short vector sequence (<see cref="Interleaved8.PackQ4KScales"/>), each row's scaled sums take one vpmaddwd (<see cref="Q4KStreamBlock"/>), and the
    /// mins of two rows take one against the 8 sub-block sums of the activations. The integer totals per row and
    /// super-block and the float operations are those of <see cref="Q4K"/> (identical bits).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4Kx8(byte* g, int nb, byte* a, byte* stream, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var sums = stackalloc Vector256<int>[8];      // [8 rows] Σ s·q·a, per sub-block
        var scales = stackalloc Vector256<short>[8];  // [8 rows] [s0, s0, …, s7, s7]
        var mins = stackalloc Vector256<int>[4];      // [4 row pairs] Σ m·bsum, 4 lanes per row
        var minOrder = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 1152, ab = a + b * 292;
            Prefetch18Lines(x + InterleavedLead);
            // The activations' 8 sub-block sums (each ≤ 32·128), in both 128-bit lanes.
            var bs = Vector256.Load((short*)(ab + 4 + 256));
            var sub = Avx2.Permute4x64(Avx2.HorizontalAdd(bs, bs).AsInt64(), 0x88).AsInt16();
            // The 8 rows' scales and mins as bytes, rows 0-3 and 4-7 (Interleaved8.PackQ4KScales): low nibbles, then
            // the top two bits from one shared vector.
            var lo03 = Vector256.Load(x + 32);
            var lo47 = Vector256.Load(x + 64);
            var top = Vector256.Load(x + 96).AsUInt16();
            var nib = Vector256.Create((byte)0x0F);
            var bits = Vector256.Create((byte)0x30);
            var s03 = (lo03 & nib) | (Avx2.ShiftLeftLogical(top, 4).AsByte() & bits);
            var s47 = (lo47 & nib) | (Avx2.ShiftLeftLogical(top, 2).AsByte() & bits);
            var m03 = (Avx2.ShiftRightLogical(lo03.AsUInt16(), 4).AsByte() & nib) | (top.AsByte() & bits);
            var m47 = (Avx2.ShiftRightLogical(lo47.AsUInt16(), 4).AsByte() & nib) | (Avx2.ShiftRightLogical(top, 2).AsByte() & bits);
            // Row r's scales duplicated into int16 pairs [s0, s0, …, s7, s7]: unpacking a vector with itself puts rows
            // (0, 2) in the low bytes' lanes and (1, 3) in the high ones.
            var d02 = Avx2.UnpackLow(s03, s03);
            var d13 = Avx2.UnpackHigh(s03, s03);
            var d46 = Avx2.UnpackLow(s47, s47);
            var d57 = Avx2.UnpackHigh(s47, s47);
            scales[0] = Avx2.ConvertToVector256Int16(d02.GetLower()).AsInt16();
            scales[1] = Avx2.ConvertToVector256Int16(d13.GetLower()).AsInt16();
            scales[2] = Avx2.ConvertToVector256Int16(d02.GetUpper()).AsInt16();
            scales[3] = Avx2.ConvertToVector256Int16(d13.GetUpper()).AsInt16();
            scales[4] = Avx2.ConvertToVector256Int16(d46.GetLower()).AsInt16();
            scales[5] = Avx2.ConvertToVector256Int16(d57.GetLower()).AsInt16();
            scales[6] = Avx2.ConvertToVector256Int16(d46.GetUpper()).AsInt16();
            scales[7] = Avx2.ConvertToVector256Int16(d57.GetUpper()).AsInt16();
            // Rows 2p, 2p+1: their mins as int16 (one row per 128-bit lane) against the sub-block sums.
            mins[0] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m03.GetLower()).AsInt16(), sub);
            mins[1] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m03.GetUpper()).AsInt16(), sub);
            mins[2] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m47.GetLower()).AsInt16(), sub);
            mins[3] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m47.GetUpper()).AsInt16(), sub);
            sbyte* ys = (sbyte*)(stream + b * 256);
            for (int r = 0; r < 8; r++)
                sums[r] = Q4KStreamBlock(x + 128 + 128 * r, scales[r], ys);
            // Row pairs (0,1), (2,3), … → lanes [0, 2, 4, 6 | 1, 3, 5, 7] → row order.
            var minTot = Avx2.PermuteVar8x32(Avx2.HorizontalAdd(Avx2.HorizontalAdd(mins[0], mins[1]), Avx2.HorizontalAdd(mins[2], mins[3])), minOrder);
            var ad = Vector256.Create(*(float*)ab);
            var d = SlotHalves((ushort*)x, ref special);
            var dmin = SlotHalves((ushort*)(x + 16), ref special);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])), d * ad, acc);
            acc = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(minTot), dmin * ad, acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>One Q6_K super-block of one row (GGUF order): exact Σ sc·q·a − 32·Σ sc·bsum (8 lanes), as in <see cref="Q6K.DotAvx2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KBlock(byte* x, byte* y)
    {
        sbyte* scales = (sbyte*)(x + 192);
        sbyte* q8 = (sbyte*)(y + 4);
        var sc16 = Avx2.ConvertToVector256Int16(Vector128.Load(scales));   // [s0..s7 | s8..s15]
        var offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), sc16);
        var sumi = Vector256<int>.Zero;
        for (int h = 0; h < 2; h++)
        {
            // This half's 8 scales in both 128-bit lanes; a run of 32 uses scales (2k, 2k+1): low lanes get 2k, high 2k+1.
            var sh = (h == 0 ? Avx2.Permute2x128(sc16, sc16, 0x00) : Avx2.Permute2x128(sc16, sc16, 0x11)).AsByte();
            Quant.Q6K.DecodeHalf(x, h, out var v1, out var v2, out var v3, out var v4);
            var (q1, q2, q3, q4) = (v1.AsByte(), v2.AsByte(), v3.AsByte(), v4.AsByte());
            sbyte* ys = q8 + 128 * h;
            // Pair sums u6·s8 ≤ 2·63·128 each: one horizontal add (≤ 32256) still fits int16, so two runs share one
            // madd against their four scales (per half [run A's 4 lanes, run B's 4 lanes]): 2 multiplies instead of 4.
            var a = Avx2.HorizontalAdd(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(ys)), Avx2.MultiplyAddAdjacent(q2, Vector256.Load(ys + 32)));
            var b = Avx2.HorizontalAdd(Avx2.MultiplyAddAdjacent(q3, Vector256.Load(ys + 64)), Avx2.MultiplyAddAdjacent(q4, Vector256.Load(ys + 96)));
            sumi += Avx2.MultiplyAddAdjacent(a, Avx2.Shuffle(sh, QuadBroadcast(0)).AsInt16()) + Avx2.MultiplyAddAdjacent(b, Avx2.Shuffle(sh, QuadBroadcast(4)).AsInt16());
        }
        return sumi - Avx2.ShiftLeftLogical(offset, 5);
    }

    /// <summary>
    /// vpshufb control for two runs folded by one horizontal add: per 128-bit half, int16 lanes 0..3 get scale
    /// <paramref name="k"/> (low half) or k+1 (high half), lanes 4..7 scale k+2 or k+3.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> QuadBroadcast(int k) =>
        Vector256.Create(Words(k, k + 2), Words(k + 1, k + 3)).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> Words(int u, int v)
    {
        ushort a = (ushort)(2 * u | (2 * u + 1) << 8), b = (ushort)(2 * v | (2 * v + 1) << 8);
        return Vector128.Create(a, a, a, a, b, b, b, b);
    }

    /// <summary>Q6_K rows r..r+7 · one Q8_K activation row → y[0..7] (rows one at a time per super-block, as <see cref="Q4K"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6K(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var offs = Offsets(rowBytes);
        long rb = rowBytes;
        var sums = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 210, ab = a + b * 292;
            PrefetchNext(w + 8 * rb, 8 * 210, b);
            for (int r = 0; r < 8; r++)
                sums[r] = Q6KBlock(x + r * rb, ab);
            var tot = Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            // d ends the block: the high half of the dword before it, so no read leaves the block.
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), RowHalves(x + 206, offs, ref special, high: true) * Vector256.Create(*(float*)ab), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q6K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One Q6_K super-block of one interleaved row in <see cref="KStream"/> order: exact Σ sc·q·a − 32·Σ sc·bsum
    /// (8 lanes), as <see cref="Q6KBlock(byte*, byte*)"/>, from its ql/qh <paramref name="x"/>, its 16 int8
    /// scales, the activations' bsums and their quants in stream order <paramref name="y"/>. Per half, vector j's
    /// int16 lanes (2d, 2d+1) belong to sub-block 8·h + d in every vector, so two products are added (≤ 2·2·63·128 =
    /// 32256) and scaled by one vpmaddwd against [s_8h, s_8h, …, s_8h+7, s_8h+7].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KStreamBlock(byte* x, sbyte* scales, Vector256<short> bsums, sbyte* y)
    {
        var raw = Vector128.Load(scales);
        var offset = Avx2.MultiplyAddAdjacent(bsums, Avx2.ConvertToVector256Int16(raw));
        var sLo = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(raw, raw));
        var sHi = Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(raw, raw));
        Quant.Q6K.DecodeHalf(x, 0, out var q1, out var q2, out var q3, out var q4);
        var lo = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1.AsByte(), Vector256.Load(y)) + Avx2.MultiplyAddAdjacent(q2.AsByte(), Vector256.Load(y + 32)), sLo)
            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3.AsByte(), Vector256.Load(y + 64)) + Avx2.MultiplyAddAdjacent(q4.AsByte(), Vector256.Load(y + 96)), sLo);
        Quant.Q6K.DecodeHalf(x, 1, out q1, out q2, out q3, out q4);
        var hi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1.AsByte(), Vector256.Load(y + 128)) + Avx2.MultiplyAddAdjacent(q2.AsByte(), Vector256.Load(y + 160)), sHi)
            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3.AsByte(), Vector256.Load(y + 192)) + Avx2.MultiplyAddAdjacent(q4.AsByte(), Vector256.Load(y + 224)), sHi);
        return lo + hi - Avx2.ShiftLeftLogical(offset, 5);
    }

    /// <summary>
    /// <see cref="Q6K"/> on an interleaved group (<see cref="Interleaved8"/>) with the activations' quants in
    /// <see cref="KStream"/> order (<paramref name="stream"/>; <paramref name="a"/> is the Q8_K row): d is one
    /// 16-byte load, the group one stream, each row's scaled sums <see cref="Q6KStreamBlock"/>; identical bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6Kx8(byte* g, int nb, byte* a, byte* stream, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var sums = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 1680, ab = a + b * 292;
            Prefetch27Lines(x + InterleavedLead);
            var bs = Vector256.Load((short*)(ab + 4 + 256));
            sbyte* ys = (sbyte*)(stream + b * 256);
            for (int r = 0; r < 8; r++)
                sums[r] = Q6KStreamBlock(x + 144 + 192 * r, (sbyte*)(x + 16 + 16 * r), bs, ys);
            var tot = Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves((ushort*)x, ref special) * Vector256.Create(*(float*)ab), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q6K.DotAvx2, w, rowBytes, nb, a, y);
    }
}
