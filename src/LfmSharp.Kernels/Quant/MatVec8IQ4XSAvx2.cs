using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX2 8-row decode of IQ4_XS (token generation) where AVX-512BW/VBMI are missing (<see cref="MatVec8IQ4XS"/>
/// otherwise), over GGUF rows or over the <see cref="InterleaveLayout.Blocks"/> copy.
/// </summary>
/// <remarks>
/// The generic frame (<see cref="MatVec8K"/> over <see cref="IQ4XS.BlockSum"/>) spends about 10 ymm operations per row
/// and sub-block of 32 (a 16-byte nibble split, a vpshufb, |a| and a's sign, a vpmaddubsw, a vpermd of the scale, a
/// vpmaddwd, an add), which kept AVX2-only decode compute-bound below llama.cpp. Here a row's sub-blocks 2k and 2k + 1
/// are one 32-byte load (lane 0: sub-block 2k, lane 1: 2k + 1), whose and / shift / and gives both sub-blocks' indices,
/// and the activations are put in the matching order once per super-block for all 8 rows (elements 0..15 and
/// 16..31 of both sub-blocks, and their |a|). The 8 rows' sub-block scales ls − 32 are unpacked four rows to a ymm
/// (vpshufb / mask / vpshufb, sign-extended to int16 in a small buffer), so a row costs per 64 weights two vpshufb of
/// the levels, two vpsignb, two vpmaddubsw (|a| ≤ 128 against levels in [−127, 127]: pair sums ≤ 2·128·127, exact),
/// one vpshufb for the two sub-blocks' scales and two vpmaddwd (each half widened on its own: their sum could leave
/// int16) — 14 operations instead of 20. The block integers are the exact Σ_j (ls_j − 32)·Σ kv[q]·a of
/// <see cref="IQ4XS.BlockSum"/> and the float step is that of <see cref="IQ4XS.DotAvx2"/> (acc = fma(isum, d_w·d_a,
/// acc)), so every output has its row dot's bits; a group with an Inf/NaN d is recomputed by the row dots.
/// </remarks>
internal static unsafe class MatVec8IQ4XSAvx2
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 136, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 136, 8 * 136, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row <paramref name="a"/> → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's
    /// GGUF rows, read only to recompute a group with an Inf/NaN scale exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization), SkipLocalsInit]   // the scratch is written before it is read
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var kv = IQ4XS.LevelTable();
        var act = stackalloc Vector256<sbyte>[16];
        var sc = stackalloc short[64];
        var sums = stackalloc Vector256<int>[8];
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 136, b);
            Arrange((sbyte*)(ab + 4), act);
            var q03 = Scales4(x, rs, sc);
            var q47 = Scales4(x + 4 * rs, rs, sc + 32);
            for (int r = 0; r < 8; r++)
                sums[r] = Row(x + r * rs, act, sc + Slot(r), kv);
            // Lane r: row r's first dword (d | scales_h « 16), as the gather of MatVec8.RowHalves would give it.
            var first = Avx.Shuffle(q03.AsSingle(), q47.AsSingle(), 0x88).AsUInt64();   // [r0 r1 r4 r5 | r2 r3 r6 r7]
            var t = Avx2.Permute4x64(first, 0xD8).AsInt32();
            var d = MatVec8.Halves(t << 16, ref special) * Vector256.Create(*(float*)ab);
            var tot = MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), d, acc);
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ4XS.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// Row r's slot (in shorts) in the scale buffer <see cref="Scales4"/> writes: rows r, r + 2 share one 32-byte store
    /// (the low and high lanes of an unpack), rows r + 1, r + 3 the next.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(int r) => 4 * (r & 2) + 16 * (r & 1) + 8 * (r & 4);

    /// <summary>
    /// The super-block's activations (<paramref name="q8"/>: its 256 quants) in the order of a row's 32-byte loads:
    /// for sub-block pair k, |a| and a of elements 0..15 of sub-blocks 2k, 2k + 1 (against the low nibbles) at
    /// act[4k], act[4k + 1], and of elements 16..31 (the high nibbles) at act[4k + 2], act[4k + 3].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Arrange(sbyte* q8, Vector256<sbyte>* act)
    {
        for (int k = 0; k < 4; k++)
        {
            sbyte* p = q8 + 64 * k;
            var lo = Vector256.Create(Vector128.Load(p), Vector128.Load(p + 32));
            var hi = Vector256.Create(Vector128.Load(p + 16), Vector128.Load(p + 48));
            act[4 * k] = Avx2.Abs(lo).AsSByte();
            act[4 * k + 1] = lo;
            act[4 * k + 2] = Avx2.Abs(hi).AsSByte();
            act[4 * k + 3] = hi;
        }
    }

    /// <summary>
    /// The sub-block scales ls − 32 of rows 0..3 at <paramref name="x"/> (stride <paramref name="rs"/>) as int16, 8 per
    /// row, into <paramref name="dst"/> (row r at <see cref="Slot"/>(r)); returns the rows' first qwords
    /// [row 0, row 1 | row 2, row 3] (d | scales_h « 16 | scales_l « 32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Scales4(byte* x, long rs, short* dst)
    {
        var y02 = Vector256.Create(Vector128.Load(x), Vector128.Load(x + 2 * rs)).AsUInt64();
        var y13 = Vector256.Create(Vector128.Load(x + rs), Vector128.Load(x + 3 * rs)).AsUInt64();
        var q = Avx2.UnpackLow(y02, y13);
        var qb = q.AsByte();
        // Byte j of a row: scales_l byte j / 2 (its nibble j mod 2) and scales_h byte j / 4 (its bits 2·(j mod 4)..).
        var lsp = Avx2.Shuffle(qb, Vector256.Create(0x0707060605050404ul, 0x0F0F0E0E0D0D0C0Cul, 0x0707060605050404ul, 0x0F0F0E0E0D0D0C0Cul).AsByte());
        var hsp = Avx2.Shuffle(qb, Vector256.Create(0x0303030302020202ul, 0x0B0B0B0B0A0A0A0Aul, 0x0303030302020202ul, 0x0B0B0B0B0A0A0A0Aul).AsByte());
        // Even bytes: the low nibble; odd: the high one (a word shift right by 4 puts it in the odd byte's low bits).
        var nib = (lsp & Vector256.Create(0x000F000F000F000Ful).AsByte())
                | (Avx2.ShiftRightLogical(lsp.AsUInt16(), 4).AsByte() & Vector256.Create(0x0F000F000F000F00ul).AsByte());
        // The 2-bit field of byte j mod 4 = 0, 1 (bits 0-1, 2-3) and, after the shift, 2, 3 (bits 4-5, 6-7) masked in
        // place: values 0..3 or 0, 4, 8, 12, which one vpshufb maps to the field « 4.
        var idx = (hsp & Vector256.Create(0x00000C0300000C03ul).AsByte())
                | (Avx2.ShiftRightLogical(hsp.AsUInt16(), 4).AsByte() & Vector256.Create(0x0C0300000C030000ul).AsByte());
        var high = Avx2.Shuffle(Vector256.Create(0x0000001030201000ul, 0x0000003000000020ul, 0x0000001030201000ul, 0x0000003000000020ul).AsByte(), idx);
        var s = (nib | high).AsSByte() - Vector256.Create((sbyte)32);
        var sign = Avx2.CompareGreaterThan(Vector256<sbyte>.Zero, s);
        Avx2.UnpackLow(s, sign).Store((sbyte*)dst);         // [row 0 | row 2] as int16
        Avx2.UnpackHigh(s, sign).Store((sbyte*)(dst + 16)); // [row 1 | row 3]
        return q;
    }

    /// <summary>One row's exact Σ_j (ls_j − 32)·Σ kv[q]·a over a super-block (x: its block; sc: its 8 int16 scales) in 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(byte* x, Vector256<sbyte>* act, short* sc, Vector256<sbyte> kv)
    {
        var s = Avx2.BroadcastVector128ToVector256(sc).AsByte();
        // vpshufb controls: lane 0 word 2k of s (sub-block 2k's scale), lane 1 word 2k + 1.
        var p0 = Pair(Vector256.Load(x + 8), act, s, Vector256.Create(0x0100010001000100ul, 0x0100010001000100ul, 0x0302030203020302ul, 0x0302030203020302ul).AsByte(), kv);
        var p1 = Pair(Vector256.Load(x + 40), act + 4, s, Vector256.Create(0x0504050405040504ul, 0x0504050405040504ul, 0x0706070607060706ul, 0x0706070607060706ul).AsByte(), kv);
        var p2 = Pair(Vector256.Load(x + 72), act + 8, s, Vector256.Create(0x0908090809080908ul, 0x0908090809080908ul, 0x0B0A0B0A0B0A0B0Aul, 0x0B0A0B0A0B0A0B0Aul).AsByte(), kv);
        var p3 = Pair(Vector256.Load(x + 104), act + 12, s, Vector256.Create(0x0D0C0D0C0D0C0D0Cul, 0x0D0C0D0C0D0C0D0Cul, 0x0F0E0F0E0F0E0F0Eul, 0x0F0E0F0E0F0E0F0Eul).AsByte(), kv);
        return (p0 + p1) + (p2 + p3);
    }

    /// <summary>Sub-blocks 2k, 2k + 1 of one row (<paramref name="v"/>: their 32 quant bytes) · a, each scaled by its scale from <paramref name="s"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair(Vector256<byte> v, Vector256<sbyte>* act, Vector256<byte> s, Vector256<byte> ctl, Vector256<sbyte> kv)
    {
        var m = Vector256.Create((byte)0x0F);
        var lv = Avx2.Shuffle(kv, (v & m).AsSByte());
        var hv = Avx2.Shuffle(kv, (Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & m).AsSByte());
        var pl = Avx2.MultiplyAddAdjacent(act[0].AsByte(), Avx2.Sign(lv, act[1]));
        var ph = Avx2.MultiplyAddAdjacent(act[2].AsByte(), Avx2.Sign(hv, act[3]));
        var sc = Avx2.Shuffle(s, ctl).AsInt16();
        return Avx2.MultiplyAddAdjacent(pl, sc) + Avx2.MultiplyAddAdjacent(ph, sc);
    }
}
