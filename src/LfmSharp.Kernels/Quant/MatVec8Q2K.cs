using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX-512 8-row decode of Q2_K (token generation), over GGUF rows or over the
/// <see cref="InterleaveLayout.Blocks"/> copy; without AVX-512BW <see cref="MatVec8Q2KAvx2"/> runs instead.
/// </summary>
/// <remarks>
/// <see cref="Q2K.BlockSum512"/> pairs runs 2j and 2j + 1 of a chunk in one zmm, which costs each row two broadcasts
/// and two variable shifts of its quants, and its constant index vectors were rebuilt for every row (the decode at
/// one thread ran at about 40 % of memory bandwidth: compute-bound). Here a zmm pairs run k of chunk 0 with run k of
/// chunk 1 instead: a row's 64 quant bytes are one load and run k one gf2p8affineqb (<see cref="Bits"/>), while the
/// activations are put in the matching order once per block for all 8 rows (4 zmm), and the index vectors live in
/// registers. Rows go in pairs whose scale bytes are widened together (<see cref="Pair"/>), and the 8 rows' d/dmin
/// dwords are read with <see cref="MatVec8.RowDwords"/> rather than two vpgatherdd (on Zen 4 the two gathers were
/// about a fifth of the kernel; these three changes made it about 1.15x faster in cache). The block integers are the
/// same exact sums (only their spread over the lanes differs) and the float steps per block those of
/// <see cref="Q2K8"/> (acc + (d·isum − dmin·msum)), so the outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8Q2K
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 84, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 84, 8 * 84, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row <paramref name="a"/> → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's
    /// GGUF rows, read only to recompute a group with an Inf/NaN scale exactly.
    /// </summary>
    /// <remarks>Not inlined: a tier-1 <c>Group</c> that inlined it ran out of inlining budget and called its per-row helpers (about half the speed).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        // Run k's scale words: its 128-bit lanes hold sub-blocks 2k, 2k + 1 (chunk 0) and 2k + 8, 2k + 9 (chunk 1), of
        // the first row of a pair (words 0..15, I) or of the second (words 16..31, J).
        var c = new Consts
        {
            I0 = ScaleIndex(0), I1 = ScaleIndex(2), I2 = ScaleIndex(4), I3 = ScaleIndex(6),
            J0 = ScaleIndex(16), J1 = ScaleIndex(18), J2 = ScaleIndex(20), J3 = ScaleIndex(22),
        };
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 84, b);
            // The activations of run k of both chunks, in the order of a row's 64 quant bytes shifted by 2k.
            sbyte* q8 = (sbyte*)(ab + 4);
            var a0 = Avx512F.InsertVector256(Vector512.Load(q8), Vector256.Load(q8 + 128), 1);
            var a1 = Avx512F.InsertVector256(Vector512.Load(q8 + 32), Vector256.Load(q8 + 160), 1);
            var a2 = Avx512F.InsertVector256(Vector512.Load(q8 + 64), Vector256.Load(q8 + 192), 1);
            var a3 = Avx512F.InsertVector256(Vector512.Load(q8 + 96), Vector256.Load(q8 + 224), 1);
            var bs = Avx512F.BroadcastVector256ToVector512((long*)(ab + 260)).AsInt16();
            var s0 = Pair(x, rs, bs, a0, a1, a2, a3, c, out var s1, out var m01);
            var s2 = Pair(x + 2 * rs, rs, bs, a0, a1, a2, a3, c, out var s3, out var m23);
            var s4 = Pair(x + 4 * rs, rs, bs, a0, a1, a2, a3, c, out var s5, out var m45);
            var s6 = Pair(x + 6 * rs, rs, bs, a0, a1, a2, a3, c, out var s7, out var m67);
            var ad = Vector256.Create(*(float*)ab);
            var d = MatVec8.RowHalfPair(x + 80, rs, ref special, out var dmin) * ad;   // d | dmin « 16
            dmin *= ad;
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(s0, s1, s2, s3, s4, s5, s6, s7));
            var mtot = Vector256.ConvertToSingle(MatVec8.Totals(m01.GetLower(), m01.GetUpper(), m23.GetLower(), m23.GetUpper(),
                m45.GetLower(), m45.GetUpper(), m67.GetLower(), m67.GetUpper()));
            acc += d * tot - dmin * mtot;
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q2K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>The vpermw controls of <see cref="Pair"/>: run k of the first row (I) and of the second (J), kept in registers over the blocks.</summary>
    private struct Consts
    {
        public Vector512<short> I0, I1, I2, I3, J0, J1, J2, J3;
    }

    /// <summary>
    /// Two rows' blocks (at x and x + rs; bs: the activations' 16 bsums in both halves; a0..a3: see <see cref="Decode"/>):
    /// exact Σ sc·q·a of each in 8 int32 lanes (returned, <paramref name="second"/>) and their Σ m·bsum in the low and
    /// high 8 lanes of <paramref name="mins"/>. The two rows' 32 scale bytes are widened to words in one zmm, so their
    /// mins take one vpmaddwd and their scales one and (vpermw picks a row's words by index).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Pair(byte* x, long rs, Vector512<short> bs, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        in Consts c, out Vector256<int> second, out Vector512<int> mins)
    {
        var w = Avx512BW.ConvertToVector512UInt16(Avx2.InsertVector128(Vector128.Load(x).ToVector256Unsafe(), Vector128.Load(x + rs), 1)).AsInt16();
        mins = Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 4), bs);
        var scales = w & Vector512.Create((short)0x0F);
        second = Row(Vector512.Load(x + rs + 16), a0, a1, a2, a3, scales, c.J0, c.J1, c.J2, c.J3);
        return Row(Vector512.Load(x + 16), a0, a1, a2, a3, scales, c.I0, c.I1, c.I2, c.I3);
    }

    /// <summary>One row's Σ sc·q·a over its 64 quant bytes <paramref name="q"/> in 8 int32 lanes (|lane| ≤ 4·2·768·15); i0..i3 pick its scale words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(Vector512<byte> q, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<short> scales, Vector512<short> i0, Vector512<short> i1, Vector512<short> i2, Vector512<short> i3)
    {
        var s = Run(q & Vector512.Create((byte)3), a0, scales, i0) + Run(Bits(q, 1), a1, scales, i1)
            + Run(Bits(q, 2), a2, scales, i2) + Run(Bits(q, 3), a3, scales, i3);
        return s.GetLower() + s.GetUpper();
    }

    /// <summary>
    /// One run of both chunks: the unsigned quant values <paramref name="q"/> (Q2_K's 2-bit ones, Q3_K's lo | 4h) · a,
    /// scaled by the words <paramref name="idx"/> picks.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<int> Run(Vector512<byte> q, Vector512<sbyte> a, Vector512<short> scales, Vector512<short> idx)
        => Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q, a), Avx512BW.PermuteVar32x16(scales, idx));

    /// <summary>
    /// Bits 2k, 2k + 1 of each byte of <paramref name="q"/> in its bits 0, 1 (k = 1..3): one gf2p8affineqb (the matrix's
    /// byte 7 − i selects output bit i's input bit) instead of a shift and an and; about 3 % of the kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<byte> Bits(Vector512<byte> q, [ConstantExpected(Min = 1, Max = 3)] int k)
    {
        if (!Gfni.V512.IsSupported)
            return Vector512.ShiftRightLogical(q.AsUInt16(), 2 * k).AsByte() & Vector512.Create((byte)3);
        return k switch
        {
            1 => Gfni.V512.GaloisFieldAffineTransform(q, Vector512.Create(0x0408ul << 48).AsByte(), 0),
            2 => Gfni.V512.GaloisFieldAffineTransform(q, Vector512.Create(0x1020ul << 48).AsByte(), 0),
            _ => Gfni.V512.GaloisFieldAffineTransform(q, Vector512.Create(0x4080ul << 48).AsByte(), 0),
        };
    }

    /// <summary>vpermw control: 128-bit lanes take words <paramref name="k"/>, k + 1, k + 8, k + 9.</summary>
    internal static Vector512<short> ScaleIndex(int k) => Vector512.Create(
        Vector256.Create(Vector128.Create((short)k), Vector128.Create((short)(k + 1))),
        Vector256.Create(Vector128.Create((short)(k + 8)), Vector128.Create((short)(k + 9))));
}
