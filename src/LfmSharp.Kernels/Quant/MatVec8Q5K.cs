using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX-512 (BW + VBMI) 8-row decode of Q5_K (token generation), over GGUF rows or over the
/// <see cref="InterleaveLayout.Blocks"/> copy; without them the generic <see cref="MatVec8K"/> over
/// <see cref="Q5K.BlockSum"/> runs instead.
/// </summary>
/// <remarks>
/// <see cref="Q5K.BlockSum512"/> spends about 75 zmm and scalar operations per row and super-block (the scalar scale
/// and min unpacking, two variable shifts and a vpermw per chunk, the activations loaded again for every row), which
/// made the decode compute-bound at under half of one core's memory bandwidth. Here a row's 128 quant bytes are two
/// zmm (chunks 0, 1 and chunks 2, 3): their low nibbles are sub-blocks 0 | 2 and 4 | 6 (the two 256-bit halves), their
/// high nibbles 1 | 3 and 5 | 7, and the activations are put in that order once per super-block for all 8 rows. The
/// fifth bits come from qh broadcast to both halves, the upper half shifted right by 2 so that one immediate shift
/// puts the bit of either half's sub-block at bit 4 (masked to bits 0, 4 or 1, 5 first, so a vpternlogd merges it with
/// the nibble and nothing else). The 8 rows' 6-bit scales and mins come from two qword loads per row and four
/// vpmultishiftqb; the mins' sums Σ m_j·(bsum_2j + bsum_2j+1) for 8 rows are two vpmaddwd. A row then costs per
/// half-block a nibble shift, two vpternlogd, two vpmaddubsw (q ≤ 31: pair sums ≤ 2·31·128, exact) and two vpmaddwd
/// against its scales (one vpshufb each from the row's lane of scale words). The block integers are the same exact sums
/// and the float steps per block those of <see cref="Q5K8"/> (acc = fma(isum, d, acc), then fma(−msum, dmin, acc)),
/// so the outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8Q5K
{
    /// <summary>True where this kernel runs (AVX-512BW and VBMI: vpmultishiftqb).</summary>
    public static bool IsSupported => Avx512BW.IsSupported && Avx512Vbmi.IsSupported && Avx2.IsSupported && Fma.IsSupported;

    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 176, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes, interleaved: false);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 176, 8 * 176, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes, interleaved: true);

    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row <paramref name="a"/> → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's
    /// GGUF rows, read only to recompute a group with an Inf/NaN scale exactly; <paramref name="interleaved"/>: w is a
    /// group of the interleaved copy (one stream, prefetched 8 KiB ahead in itself), else GGUF rows (the next group prefetched).
    /// </summary>
    /// <remarks>Not inlined: a tier-1 <c>Group</c> that inlined it could run out of inlining budget and call the per-row helpers.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes, bool interleaved)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var nib = Vector512.Create((byte)0x0F);
        // qh in both halves, the upper one shifted right by 2: its bits 0, 1, 4, 5 are then those of sub-blocks 2, 3, 6, 7.
        var qhShift = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
        // vpshufb controls: the scale word of sub-block j (lanes 0, 1) and j + 2 (lanes 2, 3), for j = 0, 1, 4, 5.
        var c0 = ScaleIndex(0); var c1 = ScaleIndex(1); var c2 = ScaleIndex(4); var c3 = ScaleIndex(5);
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            if (interleaved)
                PrefetchLead(x);
            else
                MatVec8.PrefetchNext(next, 8 * 176, b);
            // The activations in the order of a row's nibbles: sub-blocks 0 | 2, 1 | 3, 4 | 6, 5 | 7.
            long* q8 = (long*)(ab + 4);
            var v0 = Vector512.Load(q8); var v1 = Vector512.Load(q8 + 8);
            var v2 = Vector512.Load(q8 + 16); var v3 = Vector512.Load(q8 + 24);
            var a0 = Avx512F.Shuffle4x128(v0, v1, 0x44).AsSByte();
            var a1 = Avx512F.Shuffle4x128(v0, v1, 0xEE).AsSByte();
            var a2 = Avx512F.Shuffle4x128(v2, v3, 0x44).AsSByte();
            var a3 = Avx512F.Shuffle4x128(v2, v3, 0xEE).AsSByte();
            // The 8 rows' first qwords (d, dmin, scale bytes 0..3) and second (scale bytes 4..11), by plain loads.
            var p = Vector512.Create(*(ulong*)x, *(ulong*)(x + rs), *(ulong*)(x + 2 * rs), *(ulong*)(x + 3 * rs),
                *(ulong*)(x + 4 * rs), *(ulong*)(x + 5 * rs), *(ulong*)(x + 6 * rs), *(ulong*)(x + 7 * rs));
            var q = Vector512.Create(*(ulong*)(x + 8), *(ulong*)(x + rs + 8), *(ulong*)(x + 2 * rs + 8), *(ulong*)(x + 3 * rs + 8),
                *(ulong*)(x + 4 * rs + 8), *(ulong*)(x + 5 * rs + 8), *(ulong*)(x + 6 * rs + 8), *(ulong*)(x + 7 * rs + 8));
            ScalesMins(p, q, out var sc, out var mn);
            var sc03 = Avx512BW.ConvertToVector512Int16(sc.GetLower()).AsInt32();
            var sc47 = Avx512BW.ConvertToVector512Int16(sc.GetUpper()).AsInt32();
            var s0 = Row(x, Avx512F.Shuffle4x128(sc03, sc03, 0x00), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s1 = Row(x + rs, Avx512F.Shuffle4x128(sc03, sc03, 0x55), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s2 = Row(x + 2 * rs, Avx512F.Shuffle4x128(sc03, sc03, 0xAA), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s3 = Row(x + 3 * rs, Avx512F.Shuffle4x128(sc03, sc03, 0xFF), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s4 = Row(x + 4 * rs, Avx512F.Shuffle4x128(sc47, sc47, 0x00), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s5 = Row(x + 5 * rs, Avx512F.Shuffle4x128(sc47, sc47, 0x55), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s6 = Row(x + 6 * rs, Avx512F.Shuffle4x128(sc47, sc47, 0xAA), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var s7 = Row(x + 7 * rs, Avx512F.Shuffle4x128(sc47, sc47, 0xFF), a0, a1, a2, a3, nib, qhShift, c0, c1, c2, c3);
            var msum = MinSums(mn, (short*)(ab + 260));
            // Dword r of t: row r's d | dmin « 16.
            var t = Avx512F.ConvertToVector256Int32(p);
            var ad = Vector256.Create(*(float*)ab);
            var d = MatVec8.Halves(t << 16, ref special) * ad;
            var dmin = MatVec8.Halves(t & Vector256.Create(unchecked((int)0xFFFF0000)), ref special) * ad;
            var tot = Vector256.ConvertToSingle(MatVec8IQ4XS.Totals(s0, s1, s2, s3, s4, s5, s6, s7));
            acc = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(msum), dmin, Fma.MultiplyAdd(tot, d, acc));
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q5K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One row's super-block (x: the Q5_K block; sr: the row's 8 scales as words 0..7 of every 128-bit lane; a0..a3:
    /// the activations of sub-blocks 0 | 2, 1 | 3, 4 | 6, 5 | 7; c0..c3: the matching vpshufb scale controls): the
    /// exact Σ sc_j·q·a in 16 int32 lanes (|lane| ≤ 4·2·2·31·128·63).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Row(byte* x, Vector512<int> sr, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<byte> nib, Vector512<ushort> qhShift, Vector512<byte> c0, Vector512<byte> c1, Vector512<byte> c2, Vector512<byte> c3)
    {
        // Byte l of the lower half: qh[l]; of the upper half: qh[l] » 2 (16-bit shifts: bits 0, 1, 4, 5 stay in their byte).
        // Not Avx512F.BroadcastVector256ToVector512(x + 16): .NET 10.0.12 loaded that from x + 32 (its displacement
        // seems compressed by the 32-byte broadcast size). Nor Vector512.Create(qh, qh): two vinsertf32x8 into a
        // register that was spilled per row. A ymm load and one vinserti64x4 instead.
        var qh = Vector256.Load(x + 16).AsUInt16();
        var g = Avx512BW.ShiftRightLogicalVariable(Avx512F.InsertVector256(qh.ToVector512Unsafe(), qh, 1), qhShift);
        var g04 = g & Vector512.Create((ushort)0x1111);   // fifth bits of the low-nibble sub-blocks (0 | 2 at bit 0, 4 | 6 at bit 4)
        var g15 = g & Vector512.Create((ushort)0x2222);   // of the high-nibble ones (1 | 3 at bit 1, 5 | 7 at bit 5)
        var q0 = Vector512.Load(x + 48);
        var q1 = Vector512.Load(x + 112);
        // 0xCA = A ? B : C bitwise (A = 0x0F: the nibble from B, bits 4..7 from C, whose bits 5..7 are clear).
        var lo0 = Avx512F.TernaryLogic(nib, q0, (g04 << 4).AsByte(), 0xCA);
        var hi0 = Avx512F.TernaryLogic(nib, (q0.AsUInt16() >> 4).AsByte(), (g15 << 3).AsByte(), 0xCA);
        var lo1 = Avx512F.TernaryLogic(nib, q1, g04.AsByte(), 0xCA);
        var hi1 = Avx512F.TernaryLogic(nib, (q1.AsUInt16() >> 4).AsByte(), (g15 >> 1).AsByte(), 0xCA);
        var s = sr.AsByte();
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo0, a0), Avx512BW.Shuffle(s, c0).AsInt16())
             + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi0, a1), Avx512BW.Shuffle(s, c1).AsInt16())
             + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(lo1, a2), Avx512BW.Shuffle(s, c2).AsInt16())
             + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(hi1, a3), Avx512BW.Shuffle(s, c3).AsInt16());
    }

    /// <summary>
    /// The 8 rows' 6-bit scales (<paramref name="sc"/>) and mins (<paramref name="mn"/>): byte 8r + j is row r's
    /// sub-block j, from qword r of <paramref name="p"/> (d, dmin, scale bytes 0..3) and of <paramref name="q"/> (scale
    /// bytes 4..11), unpacked as <see cref="Q4K.UnpackScaleMin"/> does.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScalesMins(Vector512<ulong> p, Vector512<ulong> q, out Vector512<byte> sc, out Vector512<byte> mn)
    {
        // Bytes j ≥ 4 take their low nibble from the second vpmultishiftqb, bits 4, 5 from the first; bytes j < 4 all from the first.
        var sel = Vector512.Create(0x0F0F0F0F00000000ul).AsByte();
        var six = Vector512.Create((byte)0x3F);
        // sc_j: j < 4: p bits 32 + 8j; j ≥ 4 (k = j − 4): q bits 32 + 8k (low nibble), p bits 32 + 8k + 6, 7 (at 4, 5).
        var s1 = Avx512Vbmi.MultiShift(Vector512.Create(0x3A322A2238302820ul).AsByte(), p);
        var s2 = Avx512Vbmi.MultiShift(Vector512.Create(0x3830282000000000ul).AsByte(), q);
        sc = Avx512F.TernaryLogic(sel, s2, s1, 0xCA) & six;
        // m_j: j < 4: q bits 8j; j ≥ 4: q bits 32 + 8k + 4 (low nibble), q bits 8k + 6, 7 (at 4, 5).
        var m1 = Avx512Vbmi.MultiShift(Vector512.Create(0x1A120A0218100800ul).AsByte(), q);
        var m2 = Avx512Vbmi.MultiShift(Vector512.Create(0x3C342C2400000000ul).AsByte(), q);
        mn = Avx512F.TernaryLogic(sel, m2, m1, 0xCA) & six;
    }

    /// <summary>Lane r = row r's Σ_j m_j·(bsum_2j + bsum_2j+1) (exact; |pair| ≤ 4096) from <paramref name="mn"/> (see <see cref="ScalesMins"/>) and the 16 bsums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> MinSums(Vector512<byte> mn, short* bsums)
    {
        var pairs = Avx2.MultiplyAddAdjacent(Vector256.Load(bsums), Vector256.Create((short)1));
        var p16 = Avx512F.ConvertToVector256Int16(pairs.ToVector512Unsafe()).AsInt32().ToVector512Unsafe();
        var bp = Avx512F.Shuffle4x128(p16, p16, 0x00).AsInt16();   // the 8 pair sums in every 128-bit lane
        var m03 = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(mn.GetLower()), bp);   // lane r: row r's four partials
        var m47 = Avx512BW.MultiplyAddAdjacent(Avx512BW.ConvertToVector512Int16(mn.GetUpper()), bp);
        // Lane k: [k: 0+2, 1+3, k+4: 0+2, 1+3], then dword 0 = row k, dword 2 = row k + 4.
        // Added as dwords (as qwords a low dword's carry would reach its neighbour).
        var u = Avx512F.UnpackLow(m03.AsInt64(), m47.AsInt64()).AsInt32() + Avx512F.UnpackHigh(m03.AsInt64(), m47.AsInt64()).AsInt32();
        var v = u + Avx512F.Shuffle(u, 0xB1);
        return Avx512F.PermuteVar16x32(v, Vector512.Create(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower();
    }

    /// <summary>
    /// Prefetches the 22 lines 8 KiB past <paramref name="x"/> in the interleaved stream (one 8-row super-block is
    /// 1408 B = 22 lines; successive blocks cover the stream), written out as the JIT does not unroll loops.
    /// </summary>
    /// <remarks>
    /// 8 KiB (about six blocks) ahead: in-process, 1 thread, 2048 × 8192 rows, the lead of 4 KiB that
    /// <see cref="MatVec8IQ4XS"/> takes ran ~10 % slower (this kernel eats a block sooner), 12 KiB ~10 % and 16 KiB
    /// ~30 % slower (lines evicted before use), no software prefetch ~40 % slower. That was Zen 5; where
    /// <see cref="CpuTuning.StreamPrefetch"/> is false (Zen 4, others) the hardware prefetchers alone follow the stream.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLead(byte* x)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
        byte* p = x + 8192;
        Sse.Prefetch0(p); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); Sse.Prefetch0(p + 320);
        Sse.Prefetch0(p + 384); Sse.Prefetch0(p + 448); Sse.Prefetch0(p + 512); Sse.Prefetch0(p + 576); Sse.Prefetch0(p + 640); Sse.Prefetch0(p + 704);
        Sse.Prefetch0(p + 768); Sse.Prefetch0(p + 832); Sse.Prefetch0(p + 896); Sse.Prefetch0(p + 960); Sse.Prefetch0(p + 1024); Sse.Prefetch0(p + 1088);
        Sse.Prefetch0(p + 1152); Sse.Prefetch0(p + 1216); Sse.Prefetch0(p + 1280); Sse.Prefetch0(p + 1344);
    }

    /// <summary>vpshufb control: 128-bit lanes 0, 1 take word <paramref name="j"/> of their lane, lanes 2, 3 word j + 2.</summary>
    private static Vector512<byte> ScaleIndex(int j)
    {
        var lo = Vector128.Create((ushort)(2 * j | (2 * j + 1) << 8)).AsByte();
        var hi = Vector128.Create((ushort)(2 * (j + 2) | (2 * (j + 2) + 1) << 8)).AsByte();
        return Vector512.Create(Vector256.Create(lo, lo), Vector256.Create(hi, hi));
    }
}
