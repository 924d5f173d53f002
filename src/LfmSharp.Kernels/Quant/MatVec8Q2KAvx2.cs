using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX2 (+FMA, no AVX-512) 8-row decode of Q2_K, over GGUF rows or over the <see cref="InterleaveLayout.Blocks"/>
/// copy; on AVX-512BW machines <see cref="MatVec8Q2K"/> runs instead.
/// </summary>
/// <remarks>
/// In the arrangement of <see cref="MatVec8Q3KAvx2"/>: a row's scale/min bytes are put in the order [even sub-blocks |
/// odd sub-blocks] by one vpshufb, so run k of chunk c finds its scales (8c + 2k low 128 bits, 8c + 2k + 1 high) in
/// word 4c + k of both lanes and one constant vpshufb picks them (the generic <see cref="MatVec8K"/> path built its
/// shuffle controls and lane permutes per row and spilled); the bsums are put in the same order once per block for the
/// 8 rows. The block integers Σ sc·q·a and Σ m·bsum are those of <see cref="Q2K.BlockSum"/>, and the float step per
/// block that of <see cref="Q2K8"/> (acc + (d·isum − dmin·msum)): the outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8Q2KAvx2
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
    /// <remarks>The rows run in a loop over one inlined <see cref="Row"/> (see <see cref="MatVec8Q3KAvx2.Decode"/>).</remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowStride;
        long rs = rowStride;
        var sums = stackalloc Vector256<int>[8];
        var mins = stackalloc Vector256<int>[8];
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 84, b);
            sbyte* q8 = (sbyte*)(ab + 4);
            var bs = MatVec8Q3KAvx2.EvenOddWords(Vector256.Load((short*)(ab + 260)));
            for (int r = 0; r < 8; r++)
                sums[r] = Row(x + r * rs, q8, bs, out mins[r]);
            var ad = Vector256.Create(*(float*)ab);
            var d = MatVec8.RowHalfPair(x + 80, rowStep, ref special, out var dmin) * ad;
            dmin *= ad;
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var mtot = Vector256.ConvertToSingle(MatVec8.Totals(mins[0], mins[1], mins[2], mins[3], mins[4], mins[5], mins[6], mins[7]));
            acc += d * tot - dmin * mtot;
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q2K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One row's block (x: the Q2_K block; q8: the activations; bs: the bsums in order [even | odd]): the exact Σ sc·q·a
    /// in 8 int32 lanes (returned) and Σ m·bsum in 8 more (<paramref name="msum"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(byte* x, sbyte* q8, Vector256<short> bs, out Vector256<int> msum)
    {
        var nib = Vector128.Create((byte)0x0F);
        // Sub-block j's scale (low nibble) and min (high nibble) in byte j; reordered to [0, 2, .., 14 | 1, 3, .., 15].
        var sm = Ssse3.Shuffle(Vector128.Load(x), Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        msum = Avx2.MultiplyAddAdjacent(bs, Avx2.ConvertToVector256Int16(Sse2.ShiftRightLogical(sm.AsUInt16(), 4).AsByte() & nib).AsInt16());
        var sc = Avx2.ConvertToVector256Int16(sm & nib).AsInt16();
        var q0 = Vector256.Load(x + 16).AsUInt16();
        var q1 = Vector256.Load(x + 48).AsUInt16();
        var s0 = Run(q0, q8, sc, 0) + Run(Vector256.ShiftRightLogical(q0, 2), q8 + 32, sc, 1);
        var s1 = Run(Vector256.ShiftRightLogical(q0, 4), q8 + 64, sc, 2) + Run(Vector256.ShiftRightLogical(q0, 6), q8 + 96, sc, 3);
        var s2 = Run(q1, q8 + 128, sc, 4) + Run(Vector256.ShiftRightLogical(q1, 2), q8 + 160, sc, 5);
        var s3 = Run(Vector256.ShiftRightLogical(q1, 4), q8 + 192, sc, 6) + Run(Vector256.ShiftRightLogical(q1, 6), q8 + 224, sc, 7);
        return (s0 + s1) + (s2 + s3);
    }

    /// <summary>One 32-weight run: the 2-bit quants in the low bits of <paramref name="q"/>'s bytes · a, times the scale in word <paramref name="word"/> of each lane of <paramref name="sc"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Run(Vector256<ushort> q, sbyte* a, Vector256<short> sc, int word)
    {
        var p = Avx2.MultiplyAddAdjacent(q.AsByte() & Vector256.Create((byte)3), Vector256.Load(a));
        return Avx2.MultiplyAddAdjacent(p, Avx2.Shuffle(sc.AsByte(), MatVec8Q3KAvx2.WordControl(word)).AsInt16());
    }
}
