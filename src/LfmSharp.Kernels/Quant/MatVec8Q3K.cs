using System.Diagnostics.CodeAnalysis;
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
/// hmask is broadcast to both halves of a zmm and one gf2p8affineqb with a matrix per half brings run k's bit of both
/// chunks to bit 2 (<see cref="High"/>), as another brings lo to bits 0-1 (<see cref="MatVec8Q2K.Bits"/>), and the 8
/// rows' d come from <see cref="MatVec8.RowDwords"/> rather than a vpgatherdd (about 1.2x in cache on Zen 4). The block
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
            var a0 = Avx512F.InsertVector256(Vector512.Load(q8), Vector256.Load(q8 + 128), 1);
            var a1 = Avx512F.InsertVector256(Vector512.Load(q8 + 32), Vector256.Load(q8 + 160), 1);
            var a2 = Avx512F.InsertVector256(Vector512.Load(q8 + 64), Vector256.Load(q8 + 192), 1);
            var a3 = Avx512F.InsertVector256(Vector512.Load(q8 + 96), Vector256.Load(q8 + 224), 1);
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
            var d = MatVec8.RowHalves(x + 106, rs, ref special, high: true) * Vector256.Create(*(float*)ab);
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
        var h = Avx512F.BroadcastVector256ToVector512((long*)x).AsByte();   // the hmask for both chunks
        var q = Vector512.Load(x + 32);
        var s = MatVec8Q2K.Run((q & Vector512.Create((byte)3)) | High(h, 0), a0, scales, i0)
            + MatVec8Q2K.Run(MatVec8Q2K.Bits(q, 1) | High(h, 1), a1, scales, i1)
            + MatVec8Q2K.Run(MatVec8Q2K.Bits(q, 2) | High(h, 2), a2, scales, i2)
            + MatVec8Q2K.Run(MatVec8Q2K.Bits(q, 3) | High(h, 3), a3, scales, i3);
        return s.GetLower() + s.GetUpper() - Avx2.ShiftLeftLogical(offset, 2);
    }

    /// <summary>gf2p8affineqb matrices: <paramref name="lo"/> for the low 256 bits, <paramref name="hi"/> for the high ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Matrix(ulong lo, ulong hi) => Vector512.Create(lo, lo, lo, lo, hi, hi, hi, hi).AsByte();

    /// <summary>
    /// Run k's high bit of both chunks at bit 2 of each byte (zero elsewhere), from the hmask in both halves of
    /// <paramref name="h"/>: bit k of chunk 0's bytes (low half), bit 4 + k of chunk 1's (high half). gf2p8affineqb takes
    /// its matrix per qword, so one op serves both halves; without GFNI a shift of [hmask « 4 | hmask] by 2 + k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> High(Vector512<byte> h, [ConstantExpected(Min = 0, Max = 3)] int k)
    {
        if (!Gfni.V512.IsSupported)
        {
            var hw = h.AsUInt16();
            var both = Vector512.Create(Vector256.ShiftLeft(hw.GetLower(), 4), hw.GetLower());
            return Vector512.ShiftRightLogical(both, 2 + k).AsByte() & Vector512.Create((byte)4);
        }
        // Output bit 2's row is the matrix's byte 5.
        return k switch
        {
            0 => Gfni.V512.GaloisFieldAffineTransform(h, Matrix(0x01ul << 40, 0x10ul << 40), 0),
            1 => Gfni.V512.GaloisFieldAffineTransform(h, Matrix(0x02ul << 40, 0x20ul << 40), 0),
            2 => Gfni.V512.GaloisFieldAffineTransform(h, Matrix(0x04ul << 40, 0x40ul << 40), 0),
            _ => Gfni.V512.GaloisFieldAffineTransform(h, Matrix(0x08ul << 40, 0x80ul << 40), 0),
        };
    }
}
