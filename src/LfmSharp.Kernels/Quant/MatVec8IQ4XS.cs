using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX-512 (BW + VBMI) 8-row decode of IQ4_XS (token generation), over GGUF rows or over the
/// <see cref="InterleaveLayout.Blocks"/> copy; without them the AVX2 <see cref="MatVec8IQ4XSAvx2"/> (the same idea in
/// ymm) runs instead.
/// </summary>
/// <remarks>
/// <see cref="IQ4XS.BlockSum"/> spends about 80 ymm operations per row and super-block (a nibble split, a vpshufb, an
/// abs and a sign of the activations and a scale permute per sub-block of 32), which made the decode compute-bound at
/// about a third of one core's memory bandwidth. Here half h of a super-block (sub-blocks 4h..4h + 3) is one zmm of a
/// row's 64 quant bytes, whose 128-bit lane k is sub-block 4h + k, and the activations are put in the matching order
/// once per super-block for all 8 rows: |a| of the low-nibble and of the high-nibble elements, and a's sign as bit 4 of
/// a lookup index. One vpermb on nibble | sign then gives the level with a's sign (the table holds kv and −kv), so a row
/// costs per half a shift, two vpternlogd, two vpermb, two vpmaddubsw (|a| ≤ 128 against levels in [−127, 127]: pair
/// sums ≤ 2·128·127, exact) and two vpmaddwd against its sub-block scales ls − 32 (one vpermw). The block integers are
/// the same exact sums and the float step per block that of <see cref="IQ4XS8"/> (acc = fma(isum, d_w·d_a, acc)), so
/// the outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8IQ4XS
{
    /// <summary>True where this kernel runs (AVX-512BW and VBMI: vpermb, vpmultishiftqb).</summary>
    public static bool IsSupported => Avx512BW.IsSupported && Avx512Vbmi.IsSupported && Avx2.IsSupported;

    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 136, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes, interleaved: false);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 136, 8 * 136, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes, interleaved: true);

    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row <paramref name="a"/> → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's
    /// GGUF rows, read only to recompute a group with an Inf/NaN scale exactly; <paramref name="interleaved"/>: w is a
    /// group of the interleaved copy (one stream, prefetched ahead in itself), else GGUF rows (the next group prefetched).
    /// </summary>
    /// <remarks>Not inlined: a tier-1 <c>Group</c> that inlined it could run out of inlining budget and call the per-row helpers.</remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes, bool interleaved)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var table = LevelTable();
        var nib = Vector512.Create((byte)0x0F);
        // vpermw controls: lane k of (row r, half h) takes word 8·(r mod 4) + 4h + k of its 4-row scale vector.
        var c00 = ScaleIndex(0, 0); var c01 = ScaleIndex(0, 1);
        var c10 = ScaleIndex(1, 0); var c11 = ScaleIndex(1, 1);
        var c20 = ScaleIndex(2, 0); var c21 = ScaleIndex(2, 1);
        var c30 = ScaleIndex(3, 0); var c31 = ScaleIndex(3, 1);
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            if (interleaved)
                PrefetchLead(x);
            else
                MatVec8.PrefetchNext(next, 8 * 136, b);
            // Lane k of lo_h / hi_h: elements 0..15 / 16..31 of sub-block 4h + k (against a row's low / high nibbles).
            sbyte* q8 = (sbyte*)(ab + 4);
            var q0 = Vector512.Load(q8).AsInt64();
            var q1 = Vector512.Load(q8 + 64).AsInt64();
            var q2 = Vector512.Load(q8 + 128).AsInt64();
            var q3 = Vector512.Load(q8 + 192).AsInt64();
            var lo0 = Avx512F.Shuffle4x128(q0, q1, 0x88).AsSByte();
            var hi0 = Avx512F.Shuffle4x128(q0, q1, 0xDD).AsSByte();
            var lo1 = Avx512F.Shuffle4x128(q2, q3, 0x88).AsSByte();
            var hi1 = Avx512F.Shuffle4x128(q2, q3, 0xDD).AsSByte();
            var uLo0 = Avx512BW.Abs(lo0); var sLo0 = SignIndex(lo0);
            var uHi0 = Avx512BW.Abs(hi0); var sHi0 = SignIndex(hi0);
            var uLo1 = Avx512BW.Abs(lo1); var sLo1 = SignIndex(lo1);
            var uHi1 = Avx512BW.Abs(hi1); var sHi1 = SignIndex(hi1);
            // The 8 rows' first qwords (d, scales_h, scales_l) by plain loads: two vpgatherdd per block cost more here.
            var q = Vector512.Create(*(ulong*)x, *(ulong*)(x + rs), *(ulong*)(x + 2 * rs), *(ulong*)(x + 3 * rs),
                *(ulong*)(x + 4 * rs), *(ulong*)(x + 5 * rs), *(ulong*)(x + 6 * rs), *(ulong*)(x + 7 * rs));
            Scales(q, out var sc03, out var sc47);
            var s0 = Row(x, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc03, c00), Avx512BW.PermuteVar32x16(sc03, c01));
            var s1 = Row(x + rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc03, c10), Avx512BW.PermuteVar32x16(sc03, c11));
            var s2 = Row(x + 2 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc03, c20), Avx512BW.PermuteVar32x16(sc03, c21));
            var s3 = Row(x + 3 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc03, c30), Avx512BW.PermuteVar32x16(sc03, c31));
            var s4 = Row(x + 4 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc47, c00), Avx512BW.PermuteVar32x16(sc47, c01));
            var s5 = Row(x + 5 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc47, c10), Avx512BW.PermuteVar32x16(sc47, c11));
            var s6 = Row(x + 6 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc47, c20), Avx512BW.PermuteVar32x16(sc47, c21));
            var s7 = Row(x + 7 * rs, uLo0, sLo0, uHi0, sHi0, uLo1, sLo1, uHi1, sHi1, table, nib, Avx512BW.PermuteVar32x16(sc47, c30), Avx512BW.PermuteVar32x16(sc47, c31));
            var d = MatVec8.Halves(Avx512F.ConvertToVector256Int32(q) << 16, ref special) * Vector256.Create(*(float*)ab);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Totals(s0, s1, s2, s3, s4, s5, s6, s7)), d, acc);
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ4XS.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One row's super-block (x: the IQ4_XS block; u/s: |a| and sign indices of the low- and high-nibble elements of
    /// halves 0 and 1; sc0/sc1: the halves' sub-block scales ls − 32, lane k for sub-block 4h + k): the exact
    /// Σ (ls − 32)·kv[q]·a in 16 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Row(byte* x, Vector512<byte> uLo0, Vector512<byte> sLo0, Vector512<byte> uHi0, Vector512<byte> sHi0,
        Vector512<byte> uLo1, Vector512<byte> sLo1, Vector512<byte> uHi1, Vector512<byte> sHi1, Vector512<byte> table, Vector512<byte> nib,
        Vector512<short> sc0, Vector512<short> sc1)
        => Half(Vector512.Load(x + 8), uLo0, sLo0, uHi0, sHi0, table, nib, sc0)
         + Half(Vector512.Load(x + 72), uLo1, sLo1, uHi1, sHi1, table, nib, sc1);

    /// <summary>Four sub-blocks of one row (<paramref name="v"/>: their 64 quant bytes) · a, each scaled by its lane of <paramref name="sc"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Half(Vector512<byte> v, Vector512<byte> uLo, Vector512<byte> sLo, Vector512<byte> uHi, Vector512<byte> sHi,
        Vector512<byte> table, Vector512<byte> nib, Vector512<short> sc)
    {
        // (v & 0x0F) | sign: 0xEA = A & B | C. The high nibbles first, so v dies in the second (no register copy).
        var iHi = Avx512F.TernaryLogic(Vector512.ShiftRightLogical(v.AsUInt16(), 4).AsByte(), nib, sHi, 0xEA);
        var iLo = Avx512F.TernaryLogic(v, nib, sLo, 0xEA);
        var pLo = Avx512BW.MultiplyAddAdjacent(uLo, Avx512Vbmi.PermuteVar64x8(table, iLo).AsSByte());
        var pHi = Avx512BW.MultiplyAddAdjacent(uHi, Avx512Vbmi.PermuteVar64x8(table, iHi).AsSByte());
        // pLo + pHi could leave int16 (4·128·127): each is widened on its own.
        return Avx512BW.MultiplyAddAdjacent(pLo, sc) + Avx512BW.MultiplyAddAdjacent(pHi, sc);
    }

    /// <summary>16 where a byte of <paramref name="a"/> is negative, else 0 (its sign bit moved to bit 4: the −kv half of <see cref="LevelTable"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> SignIndex(Vector512<sbyte> a)
        => Vector512.ShiftRightLogical(a.AsUInt16(), 3).AsByte() & Vector512.Create((byte)0x10);

    /// <summary>
    /// The 8 rows' sub-block scales ls − 32 as int16: word 8·(r mod 4) + j of <paramref name="sc03"/> (rows 0..3) or
    /// <paramref name="sc47"/> (rows 4..7) is row r's sub-block j, from qword r of <paramref name="q"/>: row r's
    /// scales_l « 32 | scales_h « 16 | d.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scales(Vector512<ulong> q, out Vector512<short> sc03, out Vector512<short> sc47)
    {
        // Byte j: nibble j of scales_l (qword bits 32 + 4j..) in bits 0..3, bits 2j, 2j + 1 of scales_h (qword bits 16 + 2j..) in bits 4, 5.
        var low = Avx512Vbmi.MultiShift(Vector512.Create(0x3C3834302C282420ul).AsByte(), q);
        var high = Avx512Vbmi.MultiShift(Vector512.Create(0x1A18161412100E0Cul).AsByte(), q);
        // 0xCA = A ? B : C bitwise (A = 0x0F: the nibble from low, the rest from high), then the 6 bits less 32.
        var ls = Avx512F.TernaryLogic(Vector512.Create((byte)0x0F), low, high, 0xCA) & Vector512.Create((byte)0x3F);
        var s = (ls.AsSByte() - Vector512.Create((sbyte)32));
        sc03 = Avx512BW.ConvertToVector512Int16(s.GetLower());
        sc47 = Avx512BW.ConvertToVector512Int16(s.GetUpper());
    }

    /// <summary>
    /// Lane r = the sum of the 16 int32 lanes of s_r (exact): 128-bit lanes are folded across row pairs and quads
    /// with vshufi64x2, then within lanes — no vphaddd (several uops each) and no per-row extract.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Totals(Vector512<int> s0, Vector512<int> s1, Vector512<int> s2, Vector512<int> s3,
        Vector512<int> s4, Vector512<int> s5, Vector512<int> s6, Vector512<int> s7)
    {
        // [r: lanes 0+2, 1+3 | r + 1: lanes 0+2, 1+3].
        var t01 = Avx512F.Shuffle4x128(s0, s1, 0x44) + Avx512F.Shuffle4x128(s0, s1, 0xEE);
        var t23 = Avx512F.Shuffle4x128(s2, s3, 0x44) + Avx512F.Shuffle4x128(s2, s3, 0xEE);
        var t45 = Avx512F.Shuffle4x128(s4, s5, 0x44) + Avx512F.Shuffle4x128(s4, s5, 0xEE);
        var t67 = Avx512F.Shuffle4x128(s6, s7, 0x44) + Avx512F.Shuffle4x128(s6, s7, 0xEE);
        // Lane k: row k's (u03) / row k + 4's (u47) four partial sums.
        var u03 = Avx512F.Shuffle4x128(t01, t23, 0x88) + Avx512F.Shuffle4x128(t01, t23, 0xDD);
        var u47 = Avx512F.Shuffle4x128(t45, t67, 0x88) + Avx512F.Shuffle4x128(t45, t67, 0xDD);
        // Lane k: [k: 0+2, k+4: 0+2, k: 1+3, k+4: 1+3], then dword 0 = row k, dword 1 = row k + 4.
        var e = Avx512F.UnpackLow(u03, u47) + Avx512F.UnpackHigh(u03, u47);
        var f = e + Avx512F.Shuffle(e, 0x4E);
        return Avx512F.PermuteVar16x32(f, Vector512.Create(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0)).GetLower();
    }

    /// <summary>
    /// Prefetches the 17 lines 4 KiB past <paramref name="x"/> in the interleaved stream (one 8-row super-block is
    /// 1088 B = 17 lines; successive blocks cover the stream), written out as the JIT does not unroll loops.
    /// <see cref="MatVec8.InterleavedLead"/> ahead: ~4 % over prefetching the next group (<see cref="MatVec8.PrefetchNext"/>) here.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchLead(byte* x)
    {
        if (!CpuTuning.StreamPrefetch)
            return;
        byte* p = x + MatVec8.InterleavedLead;
        Sse.Prefetch0(p); Sse.Prefetch0(p + 64); Sse.Prefetch0(p + 128); Sse.Prefetch0(p + 192); Sse.Prefetch0(p + 256); Sse.Prefetch0(p + 320);
        Sse.Prefetch0(p + 384); Sse.Prefetch0(p + 448); Sse.Prefetch0(p + 512); Sse.Prefetch0(p + 576); Sse.Prefetch0(p + 640); Sse.Prefetch0(p + 704);
        Sse.Prefetch0(p + 768); Sse.Prefetch0(p + 832); Sse.Prefetch0(p + 896); Sse.Prefetch0(p + 960); Sse.Prefetch0(p + 1024);
    }

    /// <summary>vpermw control for row r mod 4 = <paramref name="r"/> and half <paramref name="h"/>: 128-bit lane k takes word 8r + 4h + k.</summary>
    private static Vector512<short> ScaleIndex(int r, int h)
    {
        short w = (short)(8 * r + 4 * h);
        return Vector512.Create(
            Vector256.Create(Vector128.Create(w), Vector128.Create((short)(w + 1))),
            Vector256.Create(Vector128.Create((short)(w + 2)), Vector128.Create((short)(w + 3))));
    }

    /// <summary>vpermb table: index q (0..15) → kv[q], index 16 + q → −kv[q] (the level with a negative activation's sign); repeated in bytes 32..63.</summary>
    private static Vector512<byte> LevelTable()
    {
        var kv = Vector128.Create(IQTables.KValuesIq4Nl);
        var t = Vector256.Create(kv, -kv);
        return Vector512.Create(t, t).AsByte();
    }
}
