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
internal static unsafe partial class MatVec8
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

    /// <summary>
    /// The f16 in the low half of the dword at <paramref name="p"/> in each of 8 rows <paramref name="rowStride"/> bytes
    /// apart (the high half with <paramref name="high"/>), as f32 (see <see cref="Halves"/>), read by plain loads
    /// (<see cref="RowDwords"/>) rather than a gather.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> RowHalves(byte* p, long rowStride, ref Vector256<int> special, bool high = false)
    {
        var g = RowDwords(p, rowStride);
        return Halves(high ? g & Vector256.Create(unchecked((int)0xFFFF0000)) : g << 16, ref special);
    }

    /// <summary>
    /// Both halves of the dwords of <see cref="RowHalves"/> from one read: the low f16s returned, the high ones in
    /// <paramref name="high"/> (the K-quants' d and dmin share a dword).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> RowHalfPair(byte* p, long rowStride, ref Vector256<int> special, out Vector256<float> high)
    {
        var g = RowDwords(p, rowStride);
        high = Halves(g & Vector256.Create(unchecked((int)0xFFFF0000)), ref special);
        return Halves(g << 16, ref special);
    }

    /// <summary>
    /// The dword at <paramref name="p"/> + r·<paramref name="rowStride"/> of rows r = 0..7 (a block's f16 scales), read
    /// with one load and seven vpinsrd loads: on Zen 4 this is several times cheaper than a vpgatherdd (the Q2_K decode
    /// spent about a fifth of its time in its two gathers per block), and gathers are microcoded on Zen 3 and slowed by
    /// the GDS mitigation on Intel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> RowDwords(byte* p, long rowStride) => Vector256.Create(
        *(int*)p, *(int*)(p + rowStride), *(int*)(p + 2 * rowStride), *(int*)(p + 3 * rowStride),
        *(int*)(p + 4 * rowStride), *(int*)(p + 5 * rowStride), *(int*)(p + 6 * rowStride), *(int*)(p + 7 * rowStride));

    /// <summary>
    /// 8 f16 values in the top halves of the lanes of <paramref name="t"/> as f32, exact for every finite f16 and
    /// without f32 subnormals (<see cref="HalfConversion.FromTopHalves(Vector256{int})"/>: Q6_K's d and many Q4_K dmin
    /// are f16 subnormals, and multiplying them into place cost a microcode assist per block — it halved Q4_K_M decode).
    /// Inf/NaN (exponent 31) would come out finite: their exponent field is or-ed into <paramref name="special"/>, and a
    /// group that saw one is recomputed exactly (see <see cref="HasSpecial"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Halves(Vector256<int> t, ref Vector256<int> special)
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

    /// <summary>Starts a ring of 8 slots (8 f16 each): blocks 0..<see cref="ScaleLead"/> − 1's scales into their slots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StartRing(byte* w, long rb, int nb, int blockBytes, ushort* ring)
    {
        for (int b = 0; b < ScaleLead && b < nb; b++)
            CopyScales(w, rb, b, blockBytes, 0, ring + 8 * b);
    }

    /// <summary>The ring's step at block <paramref name="b"/>: block b + <see cref="ScaleLead"/>'s scales into its slot; block b's are then in slot b &amp; 7.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StepRing(byte* w, long rb, int b, int nb, int blockBytes, ushort* ring)
    {
        if (b + ScaleLead < nb)
            CopyScales(w, rb, b + ScaleLead, blockBytes, 0, ring + 8 * ((b + ScaleLead) & 7));
    }

    /// <summary>
    /// The 8 f16 scales of a ring slot (see <see cref="CopyScales"/>) or of an interleaved block as f32, exact for
    /// finite values, with the conversion and Inf/NaN flagging of <see cref="Halves"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> SlotHalves(ushort* slot, ref Vector256<int> special)
        => Halves(Avx2.ConvertToVector256Int32(Vector128.Load(slot)) << 16, ref special);

    /// <summary>
    /// <see cref="SlotHalves"/> of the 16 f16 at <paramref name="slot"/> (two slots of 8, e.g. an interleaved Q4_K
    /// block's d and dmin) in one zmm (AVX-512F): the same exact values and Inf/NaN flags, half the instructions.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static (Vector256<float> First, Vector256<float> Second) SlotHalvesPair(ushort* slot, ref Vector256<int> special)
    {
        var t = Avx512F.ConvertToVector512Int32(Vector256.Load(slot)) << 16;
        var e = t & Vector512.Create(0x7C000000);
        special = Avx2.Max(special.AsUInt32(), Avx2.Max(e.GetLower().AsUInt32(), e.GetUpper().AsUInt32())).AsInt32();
        var f = HalfConversion.FromTopHalves(t);
        return (f.GetLower(), f.GetUpper());
    }

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
        StartRing(w, rb, nb, 18, ring);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 18;
            StepRing(w, rb, b, nb, 18, ring);
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
        StartRing(w, rb, nb, 18, ring);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 18;
            StepRing(w, rb, b, nb, 18, ring);
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

    /// <summary>
    /// How far ahead (bytes) the interleaved kernels prefetch their own stream, where they do (<see cref="CpuTuning.StreamPrefetch"/>).
    /// Zen 5's two cores pull ~30 GB/s each from DRAM (a 1 GiB read: 30 GB/s on one thread, 55–65 GB/s on two); at
    /// ~100 ns latency that needs ~3 KB in flight per core, so 1 KiB ahead left decode waiting on memory (Q4_0 / Q4_K_M /
    /// Q6_K / Q8_0 decode +7–12 % at 4 KiB).
    /// </summary>
    internal const int InterleavedLead = 4096;

    /// <summary>Prefetches the 3 lines <see cref="InterleavedLead"/> bytes past <paramref name="x"/> (covering one 144-byte interleaved Q4_0-layout block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchInterleaved3(byte* x)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
        byte* p = x + InterleavedLead;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
    }

    /// <summary>Prefetches the 5 lines <see cref="InterleavedLead"/> bytes past <paramref name="x"/> (covering two 144-byte interleaved Q4_0-layout blocks, or one 272-byte Q8_0 block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void PrefetchInterleaved5(byte* x)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
        byte* p = x + InterleavedLead;
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        Sse.Prefetch0(p + 192);
        Sse.Prefetch0(p + 256);
    }

    /// <summary>
    /// Prefetches the 18 cache lines from <paramref name="p"/> (one interleaved Q4_K super-block, 1152 B), written
    /// out: the JIT does not unroll loops, and a counted loop spent 6 instructions per line — a seventh of the Q4_K
    /// decode kernel's time with its data in cache.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch18Lines(byte* p)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
        Sse.Prefetch0(p + 0); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); Sse.Prefetch0(p + 320);
        Sse.Prefetch0(p + 384); Sse.Prefetch0(p + 448); Sse.Prefetch0(p + 512); Sse.Prefetch0(p + 576); Sse.Prefetch0(p + 640); Sse.Prefetch0(p + 704);
        Sse.Prefetch0(p + 768); Sse.Prefetch0(p + 832); Sse.Prefetch0(p + 896); Sse.Prefetch0(p + 960); Sse.Prefetch0(p + 1024); Sse.Prefetch0(p + 1088);
    }

    /// <summary>As <see cref="Prefetch18Lines"/>, the 27 lines that cover one interleaved Q6_K super-block (1680 B).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch27Lines(byte* p)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
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
            PrefetchInterleaved3(x);
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
            PrefetchInterleaved3(x);
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
            PrefetchInterleaved5(x);
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
        StartRing(w, rb, nb, 34, ring);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 34 + 2;
            StepRing(w, rb, b, nb, 34, ring);
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
}
