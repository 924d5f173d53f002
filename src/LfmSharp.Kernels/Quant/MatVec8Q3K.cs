using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX-512 8-row decode of Q3_K, over GGUF rows or over the <see cref="InterleaveLayout.Blocks"/> copy, in the
/// arrangement of <see cref="MatVec8Q2K"/> (a zmm holds run k of both 128-weight chunks; the activations are put in
/// that order once per block for 8 rows); without AVX-512BW <see cref="MatVec8Q3KAvx2"/> runs instead.
/// </summary>
/// <remarks>
/// A row's 3-bit value is (lo | 4h) with lo the 2-bit quant and h bit 4c + k of its hmask byte (chunk c, run k); the
/// hmask is read as [hmask « 4 | hmask] so one shift by 2 + k brings run k's bit of both chunks to bit 2. The block
/// integer is Σ (sc − 32)·(lo | 4h)·a − 4·Σ (sc − 32)·bsum, the exact sum of <see cref="Q3K.BlockSum"/>, and the float
/// step per block that of <see cref="Q3K8"/> (fma(isum, d·d_a, acc)): the outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8Q3K
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 110, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 110, 8 * 110, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

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
        var i0 = MatVec8Q2K.ScaleIndex(0);
        var i1 = MatVec8Q2K.ScaleIndex(2);
        var i2 = MatVec8Q2K.ScaleIndex(4);
        var i3 = MatVec8Q2K.ScaleIndex(6);
        long rs = rowStride;
        byte* next = w + 8L * rowBytes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 110, b);
            sbyte* q8 = (sbyte*)(ab + 4);
            var a0 = Vector512.Create(Vector256.Load(q8), Vector256.Load(q8 + 128));
            var a1 = Vector512.Create(Vector256.Load(q8 + 32), Vector256.Load(q8 + 160));
            var a2 = Vector512.Create(Vector256.Load(q8 + 64), Vector256.Load(q8 + 192));
            var a3 = Vector512.Create(Vector256.Load(q8 + 96), Vector256.Load(q8 + 224));
            var bs = Vector256.Load((short*)(ab + 260));
            var s0 = Row(x, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s1 = Row(x + rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s2 = Row(x + 2 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s3 = Row(x + 3 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s4 = Row(x + 4 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s5 = Row(x + 5 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s6 = Row(x + 6 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            var s7 = Row(x + 7 * rs, bs, a0, a1, a2, a3, i0, i1, i2, i3);
            // d ends the block: the high half of the dword at 106.
            var d = MatVec8.RowHalves(x + 106, offs, ref special, high: true) * Vector256.Create(*(float*)ab);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(MatVec8.Totals(s0, s1, s2, s3, s4, s5, s6, s7)), d, acc);
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q3K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One row's block (x: the Q3_K block; bs: the activations' 16 bsums; a0..a3, i0..i3: see <see cref="Decode"/>):
    /// exact Σ (sc − 32)·(lo | 4h)·a − 4·Σ (sc − 32)·bsum in 8 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(byte* x, Vector256<short> bs, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3,
        Vector512<short> i0, Vector512<short> i1, Vector512<short> i2, Vector512<short> i3)
    {
        var sc16 = Avx2.ConvertToVector256Int16(Q3K.ScaleDwords(x + 96).AsSByte() - Vector128.Create((sbyte)32));
        var offset = Avx2.MultiplyAddAdjacent(bs, sc16);
        var scales = sc16.ToVector512Unsafe();   // words 0..15, all vpermw reads
        var hm = Vector256.Load(x).AsUInt16();
        var h = Vector512.Create(Vector256.ShiftLeft(hm, 4), hm);
        var q = Vector512.Load(x + 32).AsUInt16();
        var s = Run(q, Vector512.ShiftRightLogical(h, 2), a0, scales, i0)
            + Run(Vector512.ShiftRightLogical(q, 2), Vector512.ShiftRightLogical(h, 3), a1, scales, i1)
            + Run(Vector512.ShiftRightLogical(q, 4), Vector512.ShiftRightLogical(h, 4), a2, scales, i2)
            + Run(Vector512.ShiftRightLogical(q, 6), Vector512.ShiftRightLogical(h, 5), a3, scales, i3);
        return s.GetLower() + s.GetUpper() - Avx2.ShiftLeftLogical(offset, 2);
    }

    /// <summary>One run of both chunks: (lo | 4h) from the low bits of <paramref name="q"/> and bit 2 of <paramref name="h"/>, · a, scaled by the words <paramref name="idx"/> picks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Run(Vector512<ushort> q, Vector512<ushort> h, Vector512<sbyte> a, Vector512<short> scales, Vector512<short> idx)
    {
        var v = (q.AsByte() & Vector512.Create((byte)3)) | (h.AsByte() & Vector512.Create((byte)4));
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(v, a), Avx512BW.PermuteVar32x16(scales, idx));
    }
}
