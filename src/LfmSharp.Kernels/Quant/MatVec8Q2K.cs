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
/// chunk 1 instead: a row's 64 quant bytes are one load and run k is one shift by 2k, while the activations are put in
/// the matching order once per block for all 8 rows (4 zmm), and the index vectors live in registers. The block
/// integers are the same exact sums (only their spread over the lanes differs) and the float steps per block those
/// of <see cref="Q2K8"/> (acc + (d·isum − dmin·msum)), so the outputs keep the row dots' bits.
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
        var offs = MatVec8.Offsets(rowStride);
        // Run k's scale words: its 128-bit lanes hold sub-blocks 2k, 2k + 1 (chunk 0) and 2k + 8, 2k + 9 (chunk 1).
        var i0 = ScaleIndex(0);
        var i1 = ScaleIndex(2);
        var i2 = ScaleIndex(4);
        var i3 = ScaleIndex(6);
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 84, b);
            // The activations of run k of both chunks, in the order of a row's 64 quant bytes shifted by 2k.
            sbyte* q8 = (sbyte*)(ab + 4);
            var a0 = Vector512.Create(Vector256.Load(q8), Vector256.Load(q8 + 128));
            var a1 = Vector512.Create(Vector256.Load(q8 + 32), Vector256.Load(q8 + 160));
            var a2 = Vector512.Create(Vector256.Load(q8 + 64), Vector256.Load(q8 + 192));
            var a3 = Vector512.Create(Vector256.Load(q8 + 96), Vector256.Load(q8 + 224));
            var bs = Vector256.Load((short*)(ab + 260));
            var s0 = Row(x, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m0);
            var s1 = Row(x + rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m1);
            var s2 = Row(x + 2 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m2);
            var s3 = Row(x + 3 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m3);
            var s4 = Row(x + 4 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m4);
            var s5 = Row(x + 5 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m5);
            var s6 = Row(x + 6 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m6);
            var s7 = Row(x + 7 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3, out var m7);
            var ad = Vector256.Create(*(float*)ab);
            var d = MatVec8.RowHalves(x + 80, offs, ref special) * ad;
            var dmin = MatVec8.RowHalves(x + 80, offs, ref special, high: true) * ad;
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(s0, s1, s2, s3, s4, s5, s6, s7));
            var mtot = Vector256.ConvertToSingle(MatVec8.Totals(m0, m1, m2, m3, m4, m5, m6, m7));
            acc += d * tot - dmin * mtot;
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q2K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One row's block (x: the Q2_K block; bs: the activations' 16 bsums; a0..a3: see <see cref="Decode"/>): exact
    /// Σ sc·q·a in 8 int32 lanes (returned) and Σ m·bsum in 8 more (<paramref name="mins"/>). |lane| ≤ 4·2·768·15.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(byte* x, Vector256<short> bs, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<short> i0, Vector512<short> i1, Vector512<short> i2, Vector512<short> i3, out Vector256<int> mins)
    {
        var nib = Vector128.Create((byte)0x0F);
        var sc = Vector128.Load(x);
        mins = Avx2.MultiplyAddAdjacent(bs, Avx2.ConvertToVector256Int16(Sse2.ShiftRightLogical(sc.AsUInt16(), 4).AsByte() & nib));
        // The 16 scales as words 0..15 (vpermw reads no others).
        var scales = Avx2.ConvertToVector256Int16(sc & nib).ToVector512Unsafe();
        var q = Vector512.Load(x + 16).AsUInt16();
        var s = Run(q, a0, scales, i0) + Run(Vector512.ShiftRightLogical(q, 2), a1, scales, i1)
            + Run(Vector512.ShiftRightLogical(q, 4), a2, scales, i2) + Run(Vector512.ShiftRightLogical(q, 6), a3, scales, i3);
        return s.GetLower() + s.GetUpper();
    }

    /// <summary>One run of both chunks: the 2-bit quants in the low bits of <paramref name="q"/>'s bytes · a, scaled by the words <paramref name="idx"/> picks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Run(Vector512<ushort> q, Vector512<sbyte> a, Vector512<short> scales, Vector512<short> idx)
        => Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(q.AsByte() & Vector512.Create((byte)3), a), Avx512BW.PermuteVar32x16(scales, idx));

    /// <summary>vpermw control: 128-bit lanes take words <paramref name="k"/>, k + 1, k + 8, k + 9.</summary>
    internal static Vector512<short> ScaleIndex(int k) => Vector512.Create(
        Vector256.Create(Vector128.Create((short)k), Vector128.Create((short)(k + 1))),
        Vector256.Create(Vector128.Create((short)(k + 8)), Vector128.Create((short)(k + 9))));
}
