using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX2 8-row decode kernel of IQ2_XXS (the type table's Decode8 where AVX-512 VBMI/GFNI are missing): every row
/// gets the bits of <see cref="IQ2XXS.DotAvx2"/> (the same exact block integers, the same float steps as
/// <see cref="IQ2Simd.Decode8{T}"/>).
/// </summary>
/// <remarks>
/// Why not <see cref="IQ2Simd.Decode8{T}"/> with <see cref="IQ2XXSBlock"/> (~15% slower, in-process, AVX2-only): that
/// block sum is exact for every activation byte, so it puts the signs on the grid bytes and a's sign on them too (two
/// vpsignb, |a| as maddubs' unsigned side), and each sub-block builds its scale with scalar ops and a broadcast. Here,
/// as in ggml's AVX2 dot, the signs go on the activations (one vpsignb; maddubs(g, ±a), |pair sum| ≤ 2·43·127) and the
/// 8 scales of a row come from two vector loads, one vpermd per sub-block. ±a is exact only without −128 (vpsignb
/// cannot negate it): Q8_K never writes it, and a block that has one (checked once for the 8 rows) takes the exact
/// block sum of <see cref="IQ2XXSBlock"/>; both give the same integer.
/// </remarks>
internal static unsafe class MatVec8IQ2XXSAvx2
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]   // the scratch is written before it is read
    public static void Group(in Group8 g)
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        byte* abs = stackalloc byte[IQ2Simd.ScratchBytes];
        var sums = stackalloc Vector256<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        byte* next = w + 8L * rowBytes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * 66, ab = a + 292 * b;
            sbyte* q8 = (sbyte*)(ab + 4);
            MatVec8.PrefetchNext(next, 8 * 66, b);
            var min = Vector256.Create((sbyte)-128);
            var any = Vector256.Equals(Vector256.Load(q8), min);
            for (int k = 32; k < 256; k += 32)
                any |= Vector256.Equals(Vector256.Load(q8 + k), min);
            if (any == Vector256<sbyte>.Zero)
            {
                // One inlined block sum in a loop (eight call sites would exhaust the JIT's inlining budget).
                for (int r = 0; r < 8; r++)
                    sums[r] = BlockSum(x + (long)r * rowBytes, q8);
            }
            else
            {
                IQ2Simd.Abs(q8, abs);
                for (int r = 0; r < 8; r++)
                    sums[r] = IQ2XXSBlock.BlockSum(x + (long)r * rowBytes, q8, abs);
            }
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = MatVec8.RowHalves(x, rowStep, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the row dot's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(0.125f)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ2XXS.DotAvx2, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>One row's block integer Σ_ib ls·Σ ±g·a as 8 lanes, for activations without −128.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockSum(byte* x, sbyte* q8)
    {
        // ls = 2·(a1 » 28) + 1 in the odd dwords (the a1 words) of the two 32-byte halves, as ls | ls « 16.
        var l0 = ((Vector256.Load((uint*)(x + 2)) >>> 28) << 1) + Vector256<uint>.One;
        var l1 = ((Vector256.Load((uint*)(x + 34)) >>> 28) << 1) + Vector256<uint>.One;
        l0 |= l0 << 16;
        l1 |= l1 << 16;
        var s0 = Sub(x, 0, q8, l0) + Sub(x, 2, q8, l0) + Sub(x, 4, q8, l1) + Sub(x, 6, q8, l1);
        var s1 = Sub(x, 1, q8, l0) + Sub(x, 3, q8, l0) + Sub(x, 5, q8, l1) + Sub(x, 7, q8, l1);
        return s0 + s1;
    }

    /// <summary>Sub-block ib: 4 grid points, 4 ±1 sign rows (ksigns via <see cref="IQ2Simd.SignOnes"/>) on the activations, its ls.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, Vector256<uint> ls)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XxsGrid), signs = IQ2Simd.SignOnesPointer;
        byte* a0 = x + 2 + 8 * ib;
        uint a1 = *(uint*)(x + 6 + 8 * ib);
        var g = Vector256.Create(grid[a0[0]], grid[a0[1]], grid[a0[2]], grid[a0[3]]).AsByte();
        var s = Vector256.Create(signs[a1 & 127], signs[(a1 >> 7) & 127], signs[(a1 >> 14) & 127], signs[(a1 >> 21) & 127]).AsSByte();
        var t = Avx2.Sign(Vector256.Load(q8 + 32 * ib), s);
        var sc = Avx2.PermuteVar8x32(ls, Vector256.Create((uint)(2 * (ib & 3) + 1))).AsInt16();
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(g, t), sc);
    }
}
