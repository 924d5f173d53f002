using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

// Packed 8-row GEMM for Q5_K and Q2_K (prefill as a file's main type). Both reuse the integer core of the Q4_K / Q6_K
// kernels (byte quants transposed into steps of 4 quants × 8 rows, ScaledSubBlockSums, BsumTerms):
//   Q5_K: exactly Q4_K's packed layout (2624 bytes per super-block) with 5-bit instead of 4-bit quant bytes, so the
//         Q4_K kernel's end (fma(i, d·d_a), fma(−m, dmin·d_a)) gives Q5K.DotAvx2's bits;
//   Q2_K: Q6_K's layout of 16 sub-blocks of 16 (2880 bytes: quants 0..2047, [s, s] scales 2048..2559, the min table
//         2560..2815, d 2816..2847, dmin 2848..2879), ending like ggml's generic dot (d·d_a·i − dmin·d_a·m, no fma),
//         so it has Q2K.DotScalar's bits.
internal static unsafe partial class PackedGemm
{
    /// <summary>Packs rows r0..r0+7 of a Q5_K matrix into the packed Q4_K layout (5-bit quant bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ5K(byte* w, int rowBytes, int nb, byte* dst)
    {
        var low = Vector256.Create((byte)0x0F);
        var bit0 = Vector256.Create((byte)0x01);
        var bit1 = Vector256.Create((byte)0x02);
        Vector256<byte>* lo = stackalloc Vector256<byte>[8];
        Vector256<byte>* hi = stackalloc Vector256<byte>[8];
        Vector256<byte>* qh = stackalloc Vector256<byte>[8];
        for (int b = 0; b < nb; b++, dst += 2624)
        {
            byte* x = w + b * 176;
            for (int r = 0; r < 8; r++)
                qh[r] = Vector256.Load(x + r * rowBytes + 16);
            // Chunk c of 64 = low nibbles of qs[32c..] with fifth bit 2c (sub-block 2c), high nibbles with bit 2c+1.
            for (int c = 0; c < 4; c++)
            {
                for (int r = 0; r < 8; r++)
                {
                    var q = Vector256.Load(x + r * rowBytes + 48 + 32 * c);
                    var h = qh[r];
                    lo[r] = (q & low) | Avx2.ShiftLeftLogical((h & bit0).AsUInt16(), 4).AsByte();
                    hi[r] = (Avx2.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & low) | Avx2.ShiftLeftLogical((h & bit1).AsUInt16(), 3).AsByte();
                    qh[r] = Avx2.ShiftRightLogical(h.AsUInt16(), 2).AsByte();
                }
                StoreTransposed(lo[0].AsInt32(), lo[1].AsInt32(), lo[2].AsInt32(), lo[3].AsInt32(),
                    lo[4].AsInt32(), lo[5].AsInt32(), lo[6].AsInt32(), lo[7].AsInt32(), dst + 512 * c);
                StoreTransposed(hi[0].AsInt32(), hi[1].AsInt32(), hi[2].AsInt32(), hi[3].AsInt32(),
                    hi[4].AsInt32(), hi[5].AsInt32(), hi[6].AsInt32(), hi[7].AsInt32(), dst + 512 * c + 256);
            }
            for (int r = 0; r < 8; r++)
            {
                byte* xr = x + r * rowBytes;
                PackQ4KScales(r, (ushort*)xr, (ushort*)(xr + 2), xr + 4, dst);
            }
        }
    }

    /// <summary>Q5_K × Q8_K, 8 rows × 4 tokens: the Q4_K kernel on <see cref="PackQ5K"/>'s bytes (5-bit products widen every step).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ5KDot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot => KernelQ4KDot4<TDot>(pk, nb, t);

    /// <summary>Packs rows r0..r0+7 of a Q2_K matrix (layout at the top of this file).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ2K(byte* w, int rowBytes, int nb, byte* dst)
    {
        var three = Vector256.Create((byte)3);
        Vector256<int>* v = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++, dst += 2880)
        {
            byte* x = w + b * 84;
            // Elements 128c + 32k + l are bits 2k..2k+1 of qs[32c + l]: run 4c + k of 32 values.
            for (int c = 0; c < 2; c++)
            {
                for (int k = 0; k < 4; k++)
                {
                    for (int r = 0; r < 8; r++)
                        v[r] = (Vector256.ShiftRightLogical(Vector256.Load(x + r * rowBytes + 16 + 32 * c).AsUInt16(), 2 * k).AsByte() & three).AsInt32();
                    StoreTransposed(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], dst + 256 * (4 * c + k));
                }
            }
            short* sc = (short*)(dst + 2048);     // [16 sub-blocks of 16][8 rows × 2]
            short* mc = (short*)(dst + 2560);     // [8 group pairs][8 rows × 2]: mins of groups 2p, 2p+1
            for (int r = 0; r < 8; r++)
            {
                byte* xr = x + r * rowBytes;
                ((float*)(dst + 2816))[r] = HalfToSingle(*(ushort*)(xr + 80));
                ((float*)(dst + 2848))[r] = HalfToSingle(*(ushort*)(xr + 82));
                for (int j = 0; j < 16; j++)
                    sc[16 * j + 2 * r] = sc[16 * j + 2 * r + 1] = (short)(xr[j] & 0xF);
                for (int p = 0; p < 8; p++)
                {
                    mc[16 * p + 2 * r] = (short)(xr[2 * p] >> 4);
                    mc[16 * p + 2 * r + 1] = (short)(xr[2 * p + 1] >> 4);
                }
            }
        }
    }

    /// <summary>Q2_K × Q8_K, 8 rows × 4 tokens on <see cref="PackQ2K"/>'s bytes: per super-block acc += d·d_a·i − dmin·d_a·m.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ2KDot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += 2880, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            ScaledSubBlockSums<TDot>(pk, 16, 4, a0, a1, a2, a3, out var i0, out var i1, out var i2, out var i3);
            BsumTerms((short*)(pk + 2560), a0, a1, a2, a3, out var m0, out var m1, out var m2, out var m3);
            var d = Vector256.Load((float*)(pk + 2816));
            var dmin = Vector256.Load((float*)(pk + 2848));
            acc0 = Accumulate(acc0, d, dmin, *(float*)a0, i0, m0);
            acc1 = Accumulate(acc1, d, dmin, *(float*)a1, i1, m1);
            acc2 = Accumulate(acc2, d, dmin, *(float*)a2, i2, m2);
            acc3 = Accumulate(acc3, d, dmin, *(float*)a3, i3, m3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    // sumf += dall·isum − dmin·summs with dall = d_a·d, as ggml_vec_dot_q2_K_q8_K_generic (separate roundings, no fma).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> d, Vector256<float> dmin, float da, Vector256<int> i, Vector256<int> m)
    {
        var dy = Vector256.Create(da);
        var t = Avx.Multiply(Avx.Multiply(dy, d), Vector256.ConvertToSingle(i));
        var u = Avx.Multiply(Avx.Multiply(dy, dmin), Vector256.ConvertToSingle(m));
        return Avx.Add(acc, Avx.Subtract(t, u));
    }
}
