using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>What <see cref="MatVec8TQ"/> needs of a ternary format: its block size, where its f16 d lies, its block sum and row dot.</summary>
internal unsafe interface ITernary8
{
    /// <summary>Bytes per GGUF block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>Offset in a block of the dword whose high half is the f16 d (d ends the block).</summary>
    static abstract int ScaleDword { get; }

    /// <summary>The exact block integer of one row's block against one Q8_K block, over 8 int32 lanes.</summary>
    static abstract Vector256<int> Sum(byte* x, byte* y);

    /// <summary>
    /// True when the kernel should inline the 8 rows' block sums side by side (TQ2_0's short one); a long one (TQ1_0)
    /// runs in a loop, as eight inlined copies exceed the JIT's budget and ran at half speed.
    /// </summary>
    static abstract bool Unroll { get; }

    /// <summary>The single-row dot whose bits the kernel reproduces (used for a group with an Inf/NaN scale).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }
}

/// <summary>
/// 8-row decode for TQ1_0 and TQ2_0 over GGUF rows (<see cref="TypeTraits.Decode8"/>): each row's block integer is
/// its row dot's (<c>BlockSum</c>), the 8 totals are gathered into one vector (<see cref="MatVec8.Totals"/>) and the
/// scalar's float step sumf += isum·(d_w·d_a) runs once per block for 8 lanes, so every output has the row dot's bits
/// (tested) while the 8 horizontal sums and scalar float chains per block are gone and the next group is prefetched.
/// </summary>
internal static unsafe class MatVec8TQ
{
    /// <summary>The decode kernel over a group's GGUF rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Group<T>(in Group8 g) where T : struct, ITernary8
    {
        byte* w = g.Rows, a = g.Act;
        long rb = g.RowBytes;
        int nb = g.Nb;
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = g.RowBytes;
        byte* next = w + 8 * rb;
        var sums = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * T.BlockBytes, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            Vector256<int> tot;
            if (T.Unroll)
            {
                tot = MatVec8.Totals(T.Sum(x, ab), T.Sum(x + rb, ab), T.Sum(x + 2 * rb, ab), T.Sum(x + 3 * rb, ab),
                    T.Sum(x + 4 * rb, ab), T.Sum(x + 5 * rb, ab), T.Sum(x + 6 * rb, ab), T.Sum(x + 7 * rb, ab));
            }
            else
            {
                for (int r = 0; r < 8; r++)
                    sums[r] = T.Sum(x + r * rb, ab);
                tot = MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            }
            var d = MatVec8.RowHalves(x + T.ScaleDword, rowStep, ref special, high: true) * Vector256.Create(*(float*)ab);
            acc += Vector256.ConvertToSingle(tot) * d;
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, g.RowBytes, nb, a, g.Y);
    }
    /// <summary>
    /// TQ2_0's kernel: with AVX-512BW the 4 activation vectors of a block are built once for the 8 rows (weight
    /// 128h + 32l + m is bits 2l of qs[32h + m], so one 64-byte load of a row's qs shifted by 2l meets a[32l..] next to
    /// a[128 + 32l..]); else <see cref="Group{T}"/> over <see cref="TQ2_0.BlockSum256"/>. The same block integers either way.
    /// </summary>
    public static void Tq2(in Group8 g)
    {
        if (Avx512BW.IsSupported)
            Tq2Wide(g);
        else
            Group<TQ2Rows>(g);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tq2Wide(in Group8 g)
    {
        byte* w = g.Rows, a = g.Act;
        long rb = g.RowBytes;
        int nb = g.Nb;
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = g.RowBytes;
        byte* next = w + 8 * rb;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * 66, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 66, b);
            sbyte* q8 = (sbyte*)(ab + 4);
            var a0 = Vector512.Create(Vector256.Load(q8), Vector256.Load(q8 + 128));
            var a1 = Vector512.Create(Vector256.Load(q8 + 32), Vector256.Load(q8 + 160));
            var a2 = Vector512.Create(Vector256.Load(q8 + 64), Vector256.Load(q8 + 192));
            var a3 = Vector512.Create(Vector256.Load(q8 + 96), Vector256.Load(q8 + 224));
            var bs = Vector256.Load((short*)(ab + 260));
            var tot = MatVec8.Totals(Tq2Sum(x, a0, a1, a2, a3, bs), Tq2Sum(x + rb, a0, a1, a2, a3, bs),
                Tq2Sum(x + 2 * rb, a0, a1, a2, a3, bs), Tq2Sum(x + 3 * rb, a0, a1, a2, a3, bs),
                Tq2Sum(x + 4 * rb, a0, a1, a2, a3, bs), Tq2Sum(x + 5 * rb, a0, a1, a2, a3, bs),
                Tq2Sum(x + 6 * rb, a0, a1, a2, a3, bs), Tq2Sum(x + 7 * rb, a0, a1, a2, a3, bs));
            var d = MatVec8.RowHalves(x + TQ2Rows.ScaleDword, rowStep, ref special, high: true) * Vector256.Create(*(float*)ab);
            acc += Vector256.ConvertToSingle(tot) * d;
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(TQ2Rows.RowDot, w, g.RowBytes, nb, a, g.Y);
    }

    /// <summary>
    /// One TQ2_0 row's block integer against the block's activation vectors (see <see cref="Tq2"/>): the 64 qs bytes
    /// (of a 66-byte block, so the load stays inside it) shifted by 0, 2, 4, 6; int16 lanes at most 4·768 before the
    /// halves are added and the bsums taken off (8192 at most), as in <see cref="TQ2_0.BlockSum256"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> Tq2Sum(byte* x, Vector512<sbyte> a0, Vector512<sbyte> a1, Vector512<sbyte> a2, Vector512<sbyte> a3, Vector256<short> bs)
    {
        var three = Vector512.Create((byte)3);
        var q = Vector512.Load(x).AsUInt16();
        var acc = Avx512BW.MultiplyAddAdjacent(q.AsByte() & three, a0) + Avx512BW.MultiplyAddAdjacent((q >> 2).AsByte() & three, a1)
            + Avx512BW.MultiplyAddAdjacent((q >> 4).AsByte() & three, a2) + Avx512BW.MultiplyAddAdjacent((q >> 6).AsByte() & three, a3);
        return Avx2.MultiplyAddAdjacent(acc.GetLower() + acc.GetUpper() - bs, Vector256.Create((short)1));
    }
}

/// <summary>TQ1_0 for <see cref="MatVec8TQ"/>: 54-byte blocks, d in bytes 52..53.</summary>
internal unsafe struct TQ1Rows : ITernary8
{
    public static int BlockBytes => 54;
    public static int ScaleDword => 50;
    public static bool Unroll => false;
    public static delegate*<byte*, byte*, int, float> RowDot => &TQ1_0.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => TQ1_0.BlockSum(x, y);
}

/// <summary>TQ2_0 for <see cref="MatVec8TQ"/>: 66-byte blocks, d in bytes 64..65.</summary>
internal unsafe struct TQ2Rows : ITernary8
{
    public static int BlockBytes => 66;
    public static int ScaleDword => 62;
    public static bool Unroll => true;
    public static delegate*<byte*, byte*, int, float> RowDot => &TQ2_0.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => TQ2_0.BlockSum256(x, y);
}
