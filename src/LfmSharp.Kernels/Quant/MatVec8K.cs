using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// What the generic 8-row decode kernel <see cref="MatVec8K"/> needs of a K-quant whose row dot (DotAvx2) is, per
/// super-block, exact integer sums followed by a few float operations: the block's integer part, where its f16 scales
/// lie, and those float operations in 8 lanes (lane r = row r, each lane exactly the row dot's steps).
/// </summary>
internal unsafe interface IKQuant8
{
    /// <summary>Bytes per GGUF block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>Offset in a block of the dword holding the f16 d (and dmin, when the type has mins).</summary>
    static abstract int ScaleDword { get; }

    /// <summary>True when d is the dword's high half (a type whose d ends the block); else d is low and dmin high.</summary>
    static abstract bool DHigh { get; }

    /// <summary>True when the type has mins (dmin, a second integer sum).</summary>
    static abstract bool HasMin { get; }

    /// <summary>The exact integer sums of one block of one row against one Q8_K block (8 lanes each).</summary>
    static abstract Vector256<int> Sum(byte* x, byte* y, out Vector256<int> mins);

    /// <summary>The row dot's float step for 8 rows: sums and mins as floats, d and dmin already times the activation's d.</summary>
    static abstract Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> sum, Vector256<float> mins, Vector256<float> d, Vector256<float> dmin);

    /// <summary>The single-row AVX2 dot whose bits the kernel reproduces (used for a group with an Inf/NaN scale).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }

    /// <summary>The packed-GEMM packer of 8 GGUF rows (see <see cref="TypeTraits.Pack8"/>).</summary>
    static abstract void Pack8(byte* w, int rowBytes, int nb, byte* dst);

    /// <summary>Bytes <see cref="Pack8"/> writes per block of 8 rows.</summary>
    static abstract int PackedBlockBytes { get; }
}

/// <summary>
/// 8-row decode for the K-quants that have no hand-written <see cref="MatVec8"/> kernel (Q5_K where AVX-512BW and
/// VBMI are missing, else <see cref="MatVec8Q5K"/>; Q2_K and Q3_K have <see cref="MatVec8Q2K"/> / <see cref="MatVec8Q3K"/>
/// and the AVX2 <see cref="MatVec8Q2KAvx2"/> / <see cref="MatVec8Q3KAvx2"/>; IQ4_XS has <see cref="MatVec8IQ4XS"/> /
/// <see cref="MatVec8IQ4XSAvx2"/>, its <see cref="IQ4XS8"/> only packs the interleaved copy here), over GGUF rows or
/// over the <see cref="InterleaveLayout.Blocks"/> copy (block b of rows 0..7 side by side, one stream).
/// </summary>
/// <remarks>
/// Each row's block sums come from the same function as its DotAvx2 (<c>BlockSum</c>), the 8 rows' totals are gathered
/// into one vector (<see cref="MatVec8.Totals"/>), and the float steps run once per block for 8 rows: outputs have the
/// row dots' bits (tested), while the per-row horizontal sums and scalar float work of one-row-at-a-time are gone and the
/// next group is prefetched.
/// </remarks>
internal static unsafe class MatVec8K
{
    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's GGUF rows, read
    /// only to recompute a group with an Inf/NaN scale exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode<T>(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes)
        where T : struct, IKQuant8
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowStride;
        var sums = stackalloc Vector256<int>[8];
        var mins = stackalloc Vector256<int>[8];
        byte* next = w + 8L * rowBytes;   // both layouts: the next group follows this one's 8 rows of bytes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            for (int r = 0; r < 8; r++)
                sums[r] = T.Sum(x + (long)r * rowStride, ab, out mins[r]);
            var ad = Vector256.Create(*(float*)ab);
            Vector256<float> d, dmin = default;
            if (T.HasMin)
            {
                d = MatVec8.RowHalfPair(x + T.ScaleDword, rowStep, ref special, out dmin) * ad;
                dmin *= ad;
            }
            else
            {
                d = MatVec8.RowHalves(x + T.ScaleDword, rowStep, ref special, T.DHigh) * ad;
            }
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var mtot = T.HasMin ? Vector256.ConvertToSingle(MatVec8.Totals(mins[0], mins[1], mins[2], mins[3], mins[4], mins[5], mins[6], mins[7])) : default;
            acc = T.Accumulate(acc, tot, mtot, d, dmin);
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, rows, rowBytes, nb, a, y);
    }

    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group<T>(in Group8 g) where T : struct, IKQuant8
        => Decode<T>(g.Rows, g.RowBytes, T.BlockBytes, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks<T>(in Group8 g) where T : struct, IKQuant8
        => Decode<T>(g.Interleaved, T.BlockBytes, 8 * T.BlockBytes, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>Packs one group of the <see cref="InterleaveLayout.Blocks"/> copy for the GEMM: the bytes <see cref="IKQuant8.Pack8"/> writes from the GGUF rows.</summary>
    public static void PackBlocks<T>(byte* g, int nb, byte* dst) where T : struct, IKQuant8
    {
        for (int b = 0; b < nb; b++)
            T.Pack8(g + (long)b * 8 * T.BlockBytes, T.BlockBytes, 1, dst + (long)b * T.PackedBlockBytes);
    }
}

/// <summary>Q2_K for <see cref="MatVec8K"/>: d, dmin at byte 80; sumf += d·isum − dmin·msum (<see cref="Q2K.DotAvx2"/>).</summary>
internal unsafe struct Q2K8 : IKQuant8
{
    public static int BlockBytes => 84;
    public static int ScaleDword => 80;
    public static bool DHigh => false;
    public static bool HasMin => true;
    public static int PackedBlockBytes => 2880;
    public static delegate*<byte*, byte*, int, float> RowDot => &Q2K.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y, out Vector256<int> mins) => Q2K.BlockSum(x, y, out mins);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> sum, Vector256<float> mins, Vector256<float> d, Vector256<float> dmin)
        => acc + (d * sum - dmin * mins);

    public static void Pack8(byte* w, int rowBytes, int nb, byte* dst) => PackedGemm.PackQ2K(w, rowBytes, nb, dst);
}

/// <summary>Q3_K for <see cref="MatVec8K"/>: d ends the block (high half of the dword at 106); acc = fma(isum, d, acc).</summary>
internal unsafe struct Q3K8 : IKQuant8
{
    public static int BlockBytes => 110;
    public static int ScaleDword => 106;
    public static bool DHigh => true;
    public static bool HasMin => false;
    public static int PackedBlockBytes => 2848;
    public static delegate*<byte*, byte*, int, float> RowDot => &Q3K.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y, out Vector256<int> mins)
    {
        mins = default;
        return Q3K.BlockSum(x, y);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> sum, Vector256<float> mins, Vector256<float> d, Vector256<float> dmin)
        => Fma.MultiplyAdd(sum, d, acc);

    public static void Pack8(byte* w, int rowBytes, int nb, byte* dst) => Q3K.PackAsQ6K(w, rowBytes, nb, dst);
}

/// <summary>Q5_K for <see cref="MatVec8K"/>: d, dmin at byte 0; acc = fma(isum, d, acc), then fma(−msum, dmin, acc).</summary>
internal unsafe struct Q5K8 : IKQuant8
{
    public static int BlockBytes => 176;
    public static int ScaleDword => 0;
    public static bool DHigh => false;
    public static bool HasMin => true;
    public static int PackedBlockBytes => 2624;
    public static delegate*<byte*, byte*, int, float> RowDot => &Q5K.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y, out Vector256<int> mins) => Q5K.BlockSum(x, y, out mins);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> sum, Vector256<float> mins, Vector256<float> d, Vector256<float> dmin)
        => Fma.MultiplyAddNegated(mins, dmin, Fma.MultiplyAdd(sum, d, acc));

    public static void Pack8(byte* w, int rowBytes, int nb, byte* dst) => PackedGemm.PackQ5K(w, rowBytes, nb, dst);
}
