using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The centered tiles: the small-weight tile's int16 sums for weights up to ±64 (IQ2's 8, 25, 43; IQ3_XXS's 4..62 as
/// halves 2..31 with doubled scales). With the activations as a + 128, a lane's int16 sum would be Σ q·a + 128·Σq and
/// overflow; started at −128·Σq instead (one vector per row and block, made at decode time), the wrapping int16 adds
/// end at Σ q·a mod 2^16, which is Σ q·a itself wherever |Σ q·a| ≤ 128·Σ|q| fits int16, i.e. Σ|q| ≤ 255 over the lane's
/// weights. Each vpmaddubsw pair sum stays exact on the way (≤ 2·255·64 = 32640). An interleaved lane covers a run of
/// 8 weights over the 4 steps (<see cref="Interleave"/>): IQ2_XXS's grid points sum to at most 203 and IQ3_XXS's
/// halved runs to at most 248, so their groups take <see cref="Tile512Centered"/> (80 multiplies per block instead of
/// 128); IQ2_XS/IQ2_S points reach 344 (and real rows hold such points in most blocks), so their groups take 2 steps
/// per sum (runs of 4 ≤ 172, <see cref="Tile512CenteredPairs"/>, 96 multiplies). The bounds are the formats', so the
/// type table names each type's layout (<see cref="BlockDecoder.Centered"/>) and no group is checked.
/// </summary>
internal static unsafe partial class IQDecoded
{
    /// <summary>Largest Σ|q| of a lane's weights for which Σ q·a (|a| ≤ 128) fits int16: 128·255 = 32640.</summary>
    public const int LaneMagnitude = 255;

    /// <summary>True when all 256 weights are within ±16 (AVX-512 only).</summary>
    private static bool SmallWeights(sbyte* q)
    {
        var max = Vector512<byte>.Zero;
        for (int v = 0; v < 256; v += 64)
            max = Vector512.Max(max, Vector512.Abs(Vector512.Load(q + v)).AsByte());
        return Vector512.LessThanOrEqualAll(max, Vector512.Create((byte)16));
    }

    /// <summary>
    /// Lays a <see cref="GroupKind.Small"/>, <see cref="GroupKind.Centered"/> or <see cref="GroupKind.CenteredPairs"/>
    /// group out: each row block's weights interleaved in place (and shifted right by <paramref name="shift"/>), the
    /// first 64 bytes of its scale area rewritten as the 32 int16 scales of the interleaved lanes (lane i: group i / 2,
    /// shifted left by <paramref name="shift"/>), and for the centered kinds the lanes' −128·Σq after them: one vector
    /// (steps 0..3) or two (steps 0, 1 and 2, 3).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayOutGroup(byte* dst, int nb, GroupKind kind, int shift)
    {
        var ones = Vector512.Create((byte)1);
        // Lanes 0..15 take groups 0..7 (the spread scales' words 8·(i / 2) of their first 64), lanes 16..31 groups 8..15.
        var pick = Vector512.Create((short)0, 0, 8, 8, 16, 16, 24, 24, 32, 32, 40, 40, 48, 48, 56, 56,
            0, 0, 8, 8, 16, 16, 24, 24, 32, 32, 40, 40, 48, 48, 56, 56);
        for (int b = 0; b < nb; b++)
            for (int r = 0; r < Rows; r++)
            {
                byte* g = dst + (long)GroupBlockBytes * b;
                sbyte* q = (sbyte*)(g + 256 * r);
                Interleave((byte*)q, (byte*)q, flip: false);
                short* sc = (short*)(g + ScalesAt + 256 * r);
                var first = Avx512BW.PermuteVar32x16x2(Vector512.Load(sc), pick, Vector512.Load(sc + 32)).AsInt64();
                var second = Avx512BW.PermuteVar32x16x2(Vector512.Load(sc + 64), pick, Vector512.Load(sc + 96)).AsInt64();
                (Avx512F.Shuffle4x128(first, second, 0x44).AsInt16() << shift).Store(sc);
                if (kind == GroupKind.Small)
                    continue;
                // Halves of even weights are exact (an arithmetic shift of each byte).
                var s0 = Vector512.ShiftRightArithmetic(Vector512.Load(q), shift);
                var s1 = Vector512.ShiftRightArithmetic(Vector512.Load(q + 64), shift);
                var s2 = Vector512.ShiftRightArithmetic(Vector512.Load(q + 128), shift);
                var s3 = Vector512.ShiftRightArithmetic(Vector512.Load(q + 192), shift);
                s0.Store(q);
                s1.Store(q + 64);
                s2.Store(q + 128);
                s3.Store(q + 192);
                // Lane e of each step's pair sums is that step's share of run e: ≤ 255 in magnitude, so ·(−128) fits int16.
                var low = Avx512BW.MultiplyAddAdjacent(ones, s0) + Avx512BW.MultiplyAddAdjacent(ones, s1);
                var high = Avx512BW.MultiplyAddAdjacent(ones, s2) + Avx512BW.MultiplyAddAdjacent(ones, s3);
                var m = Vector512.Create((short)-128);
                if (kind == GroupKind.Centered)
                    ((low + high) * m).Store(sc + 32);
                else
                {
                    (low * m).Store(sc + 32);
                    (high * m).Store(sc + 64);
                }
            }
    }

    /// <summary>
    /// <see cref="Tile512"/> for a <see cref="GroupKind.CenteredPairs"/> group against interleaved activations: steps 0
    /// and 1 add up in int16 from the lanes' first −128·Σq (runs of 4, ≤ 172·128 in magnitude) and meet the scales,
    /// then steps 2 and 3 the same from the second; two vpmaddwd per (row, token) and block instead of four. Same exact
    /// integers, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile512CenteredPairs(byte* g, int blocks, byte* x0, byte* x1, byte* x2, byte* x3, float* da, float post, float* sumf)
    {
        var vpost = Vector512.Create(post);
        var s = Vector512.Load(sumf);
        for (int b = 0; b < blocks; b++, g += GroupBlockBytes, da += 16)
        {
            long ab = 256L * b;
            var a0 = Vector512.Load(x0 + ab);
            var a1 = Vector512.Load(x1 + ab);
            var a2 = Vector512.Load(x2 + ab);
            var a3 = Vector512.Load(x3 + ab);
            var b0 = Vector512.Load(x0 + ab + 64);
            var b1 = Vector512.Load(x1 + ab + 64);
            var b2 = Vector512.Load(x2 + ab + 64);
            var b3 = Vector512.Load(x3 + ab + 64);
            // p{row}{token}; lane 4·token + row.
            Half(g, 0, a0, a1, a2, a3, b0, b1, b2, b3, out var p00, out var p01, out var p02, out var p03);
            Half(g + 256, 0, a0, a1, a2, a3, b0, b1, b2, b3, out var p10, out var p11, out var p12, out var p13);
            Half(g + 512, 0, a0, a1, a2, a3, b0, b1, b2, b3, out var p20, out var p21, out var p22, out var p23);
            Half(g + 768, 0, a0, a1, a2, a3, b0, b1, b2, b3, out var p30, out var p31, out var p32, out var p33);
            a0 = Vector512.Load(x0 + ab + 128);
            a1 = Vector512.Load(x1 + ab + 128);
            a2 = Vector512.Load(x2 + ab + 128);
            a3 = Vector512.Load(x3 + ab + 128);
            b0 = Vector512.Load(x0 + ab + 192);
            b1 = Vector512.Load(x1 + ab + 192);
            b2 = Vector512.Load(x2 + ab + 192);
            b3 = Vector512.Load(x3 + ab + 192);
            Half(g, 1, a0, a1, a2, a3, b0, b1, b2, b3, out var q00, out var q01, out var q02, out var q03);
            p00 += q00;
            p01 += q01;
            p02 += q02;
            p03 += q03;
            Half(g + 256, 1, a0, a1, a2, a3, b0, b1, b2, b3, out var q10, out var q11, out var q12, out var q13);
            p10 += q10;
            p11 += q11;
            p12 += q12;
            p13 += q13;
            Half(g + 512, 1, a0, a1, a2, a3, b0, b1, b2, b3, out var q20, out var q21, out var q22, out var q23);
            p20 += q20;
            p21 += q21;
            p22 += q22;
            p23 += q23;
            Half(g + 768, 1, a0, a1, a2, a3, b0, b1, b2, b3, out var q30, out var q31, out var q32, out var q33);
            p30 += q30;
            p31 += q31;
            p32 += q32;
            p33 += q33;
            var isum = Sum16(Sum4(p00, p10, p20, p30), Sum4(p01, p11, p21, p31), Sum4(p02, p12, p22, p32), Sum4(p03, p13, p23, p33));
            var d = Vector512.Load((float*)(g + ScaleAt)) * Vector512.Load(da);
            s += d * (Vector512.ConvertToSingle(isum) * vpost);
        }
        s.Store(sumf);
    }

    /// <summary>
    /// One row's half block (<paramref name="h"/> 0: steps 0, 1; 1: steps 2, 3) against 4 tokens' activations of those
    /// steps (a·, b·): each token's int16 sums from the half's −128·Σq, times the lane scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Half(byte* row, int h, Vector512<byte> a0, Vector512<byte> a1, Vector512<byte> a2, Vector512<byte> a3,
        Vector512<byte> b0, Vector512<byte> b1, Vector512<byte> b2, Vector512<byte> b3,
        out Vector512<int> p0, out Vector512<int> p1, out Vector512<int> p2, out Vector512<int> p3)
    {
        var wa = Vector512.Load((sbyte*)(row + 128 * h));
        var wb = Vector512.Load((sbyte*)(row + 128 * h + 64));
        var init = Vector512.Load((short*)(row + ScalesAt + 64 + 64 * h));
        var sc = Vector512.Load((short*)(row + ScalesAt));
        p0 = Avx512BW.MultiplyAddAdjacent(init + Avx512BW.MultiplyAddAdjacent(a0, wa) + Avx512BW.MultiplyAddAdjacent(b0, wb), sc);
        p1 = Avx512BW.MultiplyAddAdjacent(init + Avx512BW.MultiplyAddAdjacent(a1, wa) + Avx512BW.MultiplyAddAdjacent(b1, wb), sc);
        p2 = Avx512BW.MultiplyAddAdjacent(init + Avx512BW.MultiplyAddAdjacent(a2, wa) + Avx512BW.MultiplyAddAdjacent(b2, wb), sc);
        p3 = Avx512BW.MultiplyAddAdjacent(init + Avx512BW.MultiplyAddAdjacent(a3, wa) + Avx512BW.MultiplyAddAdjacent(b3, wb), sc);
    }
}
