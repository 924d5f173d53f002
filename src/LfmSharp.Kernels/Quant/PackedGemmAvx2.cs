using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The plain-AVX2 (no VNNI) <see cref="PackedGemm"/> kernels of Q4_K and Q6_K, which keep int16 sums across steps.
/// Q8_0 without VNNI is <see cref="KernelQ8_0Dot4{TDot}"/> with <see cref="Avx2Dot"/> (maddubs + madd per step).
/// </summary>
internal static unsafe partial class PackedGemm
{
    /// <summary>Q4_K weights × Q8_K activations, 8 rows × 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4K(byte* pk, int nb, in TokenTile t)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += 2624, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            byte* v = pk;
            for (int j = 0; j < 8; j++, v += 256)
            {
                Vector256<short> p0 = default, p1 = default, p2 = default, p3 = default;
                int o = 4 + 32 * j;
                for (int s = 0; s < 8; s++)
                {
                    var w = Vector256.Load(v + 32 * s);
                    p0 += Avx2.MultiplyAddAdjacent(w, Bcast(a0 + o + 4 * s));
                    p1 += Avx2.MultiplyAddAdjacent(w, Bcast(a1 + o + 4 * s));
                    p2 += Avx2.MultiplyAddAdjacent(w, Bcast(a2 + o + 4 * s));
                    p3 += Avx2.MultiplyAddAdjacent(w, Bcast(a3 + o + 4 * s));
                }
                var sc = Vector256.Load((short*)(pk + 2048) + 16 * j);
                i0 += Avx2.MultiplyAddAdjacent(p0, sc);
                i1 += Avx2.MultiplyAddAdjacent(p1, sc);
                i2 += Avx2.MultiplyAddAdjacent(p2, sc);
                i3 += Avx2.MultiplyAddAdjacent(p3, sc);
            }
            AccumulateQ4K(pk, a0, a1, a2, a3, i0, i1, i2, i3, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>Q6_K weights × Q8_K activations, 8 rows × 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ6K(byte* pk, int nb, in TokenTile t)
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += 2848, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            byte* v = pk;
            // 16 sub-blocks of 16 = 4 steps each; u6·s8 pair sums reach 16002, so two steps fit an int16 lane.
            for (int j = 0; j < 16; j++, v += 128)
            {
                var sc = Vector256.Load((short*)(pk + 2048) + 16 * j);
                int o = 4 + 16 * j;
                for (int half = 0; half < 2; half++)
                {
                    var w0 = Vector256.Load(v + 64 * half);
                    var w1 = Vector256.Load(v + 64 * half + 32);
                    int oo = o + 8 * half;
                    i0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w0, Bcast(a0 + oo)) + Avx2.MultiplyAddAdjacent(w1, Bcast(a0 + oo + 4)), sc);
                    i1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w0, Bcast(a1 + oo)) + Avx2.MultiplyAddAdjacent(w1, Bcast(a1 + oo + 4)), sc);
                    i2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w0, Bcast(a2 + oo)) + Avx2.MultiplyAddAdjacent(w1, Bcast(a2 + oo + 4)), sc);
                    i3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(w0, Bcast(a3 + oo)) + Avx2.MultiplyAddAdjacent(w1, Bcast(a3 + oo + 4)), sc);
                }
            }
            AccumulateQ6K(pk, a0, a1, a2, a3, i0, i1, i2, i3, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }
}
