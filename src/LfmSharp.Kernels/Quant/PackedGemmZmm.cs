using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The Q4_0 <see cref="PackedGemm"/> kernel for AVX-512BW: 16 rows × 4 tokens in zmm registers with vpmaddubsw.
/// </summary>
/// <remarks>
/// <para>
/// .NET has no 512-bit vpdpbusd, but vpmaddubsw zmm does 64 u8 × s8 products per instruction (twice a ymm vpdpbusd)
/// into int16 pairs. A u4 weight times an s8 activation pair sums to at most 2·15·128 = 3,840 in magnitude, so the 8
/// steps of a block (4 quants each) add in int16 without overflow (8·3,840 = 30,720 &lt; 32,767), and one vpmaddwd by
/// ones then gives each row's exact block total in its own dword — no horizontal add. Each step's activation is one
/// dword broadcast that feeds a full zmm of 16 rows.
/// </para>
/// <para>
/// Packed layout per block of 32 for 16 rows (576 B, two 8-row groups' worth of <see cref="PackedGemm.PackQ4_0Pairs"/>):
/// for step s = 0..7 a zmm at 64s holding quants 4s..4s+3 (u4 as bytes) of rows 0..15, dword r for row r; then the 16
/// row scales as f32. The block totals are exact and the float epilogue per row and token is the other kernels'
/// (convert(total − 8·Σa) · (dw·da) fused into the accumulator in block order), so the bits are theirs.
/// </para>
/// </remarks>
internal static unsafe partial class PackedGemm
{
    /// <summary>Bytes per block of 16 rows in the zmm layout.</summary>
    public const int Zmm16BlockBytes = 576;

    /// <summary>
    /// Stores one block of the zmm layout from the raw Q4_0 quant bytes of 16 rows (<paramref name="q"/>[r], 16 packed
    /// bytes each, whose dword j holds quants 4j..4j+3 in the low nibbles and 16+4j..16+4j+3 in the high ones): a 4×4
    /// dword transpose in each 128-bit lane of zmm registers holding rows (k, k+4, k+8, k+12).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreZmm16(byte** q, byte* dst)
    {
        var z0 = Lanes(q[0], q[4], q[8], q[12]);
        var z1 = Lanes(q[1], q[5], q[9], q[13]);
        var z2 = Lanes(q[2], q[6], q[10], q[14]);
        var z3 = Lanes(q[3], q[7], q[11], q[15]);
        var t0 = Avx512F.UnpackLow(z0, z1);
        var t1 = Avx512F.UnpackHigh(z0, z1);
        var t2 = Avx512F.UnpackLow(z2, z3);
        var t3 = Avx512F.UnpackHigh(z2, z3);
        StoreStep(Avx512F.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsByte(), dst, 0);
        StoreStep(Avx512F.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsByte(), dst, 1);
        StoreStep(Avx512F.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsByte(), dst, 2);
        StoreStep(Avx512F.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsByte(), dst, 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Lanes(byte* a, byte* b, byte* c, byte* d) => Vector512.Create(
        Vector256.Create(Vector128.Load((int*)a), Vector128.Load((int*)b)), Vector256.Create(Vector128.Load((int*)c), Vector128.Load((int*)d)));

    /// <summary>Dword j of 16 rows: its low nibbles are step j, its high nibbles step 4 + j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreStep(Vector512<byte> v, byte* dst, int j)
    {
        var mask = Vector512.Create((byte)0x0F);
        (v & mask).Store(dst + 64 * j);
        (Avx512BW.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask).Store(dst + 64 * (4 + j));
    }

    /// <summary>Packs rows r0..r0+15 of a Q4_0 matrix (rowBytes apart) in the zmm layout (see <see cref="KernelQ4_0Zmm16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0Zmm16(byte* w, int rowBytes, int nb, byte* dst)
    {
        byte** q = stackalloc byte*[16];
        for (int b = 0; b < nb; b++, dst += Zmm16BlockBytes)
        {
            byte* x = w + b * 18;
            for (int r = 0; r < 16; r++)
                q[r] = x + r * rowBytes + 2;
            StoreZmm16(q, dst);
            StoreScales16(Vector256.Create(
                *(ushort*)x, *(ushort*)(x + rowBytes), *(ushort*)(x + 2 * rowBytes), *(ushort*)(x + 3 * rowBytes),
                *(ushort*)(x + 4 * rowBytes), *(ushort*)(x + 5 * rowBytes), *(ushort*)(x + 6 * rowBytes), *(ushort*)(x + 7 * rowBytes),
                *(ushort*)(x + 8 * rowBytes), *(ushort*)(x + 9 * rowBytes), *(ushort*)(x + 10 * rowBytes), *(ushort*)(x + 11 * rowBytes),
                *(ushort*)(x + 12 * rowBytes), *(ushort*)(x + 13 * rowBytes), *(ushort*)(x + 14 * rowBytes), *(ushort*)(x + 15 * rowBytes)),
                (float*)(dst + 512));
        }
    }

    /// <summary>
    /// <see cref="PackQ4_0Zmm16"/> from two consecutive interleaved groups (<see cref="Interleaved8"/>, the second
    /// <paramref name="groupBytes"/> after the first): the same packed bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0x8Zmm16(byte* g, int groupBytes, int nb, byte* dst)
    {
        // Row r's 16 quant bytes in a 144-byte block: the low half of slot r (rows 0..3), the high half of slot r−4
        // (rows 4..7); see PackQ4_0x8Pairs.
        byte** q = stackalloc byte*[16];
        for (int b = 0; b < nb; b++, dst += Zmm16BlockBytes)
        {
            byte* x = g + b * 144;
            for (int r = 0; r < 8; r++)
            {
                q[r] = x + (r < 4 ? 16 + 32 * r : 32 + 32 * (r - 4));
                q[8 + r] = q[r] + groupBytes;
            }
            StoreZmm16(q, dst);
            StoreScales16(Vector256.Create(Vector128.Load((ushort*)x), Vector128.Load((ushort*)(x + groupBytes))), (float*)(dst + 512));
        }
    }

    /// <summary>
    /// The 16 row scales (f16 bits) as f32 at <paramref name="d"/>: <see cref="QuantMath.HalfToSingle"/>'s exact multiply
    /// in one vector, or that function per lane where a scale is Inf or NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreScales16(Vector256<ushort> h, float* d)
    {
        var bits = Avx512F.ConvertToVector512UInt32(h);
        var em = bits & Vector512.Create(0x7fffu);
        if (Vector512.GreaterThanOrEqualAny(em, Vector512.Create(0x7c00u)))
        {
            for (int r = 0; r < 16; r++)
                d[r] = HalfToSingle(h.GetElement(r));
            return;
        }
        var factor = Vector512.Create(0x77800000u) | Avx512F.ShiftLeftLogical(bits & Vector512.Create(0x8000u), 16);
        (Avx512F.ShiftLeftLogical(em, 13).AsSingle() * factor.AsSingle()).Store(d);
    }

    /// <summary>One token's block total for 16 rows: 8 vpmaddubsw summed in int16, then pairs summed by vpmaddwd.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> BlockTotals16(Vector512<byte> w0, Vector512<byte> w1, Vector512<byte> w2, Vector512<byte> w3,
        Vector512<byte> w4, Vector512<byte> w5, Vector512<byte> w6, Vector512<byte> w7, byte* a)
    {
        var s = Avx512BW.MultiplyAddAdjacent(w0, Vector512.Create(*(int*)a).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w1, Vector512.Create(*(int*)(a + 4)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w2, Vector512.Create(*(int*)(a + 8)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w3, Vector512.Create(*(int*)(a + 12)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w4, Vector512.Create(*(int*)(a + 16)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w5, Vector512.Create(*(int*)(a + 20)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w6, Vector512.Create(*(int*)(a + 24)).AsSByte());
        s += Avx512BW.MultiplyAddAdjacent(w7, Vector512.Create(*(int*)(a + 28)).AsSByte());
        return Avx512BW.MultiplyAddAdjacent(s, Vector512.Create((short)1));
    }

    /// <summary>
    /// Q4_0 weights (zmm layout) × Q8_0 activations, 16 rows × 4 tokens: outputs <c>Y0</c>..<c>Y3</c> are the 16 rows of
    /// tokens 0..3. Per row and token the operations are those of <see cref="KernelQ4_0Pairs16{TDot}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4_0Zmm16(byte* pk, int nb, in TokenTile t)
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        float* d0 = t.D0, d1 = t.D1, d2 = t.D2, d3 = t.D3;
        int* s0 = t.S0, s1 = t.S1, s2 = t.S2, s3 = t.S3;
        for (int b = 0; b < nb; b++, pk += Zmm16BlockBytes, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            var w0 = Vector512.Load(pk);
            var w1 = Vector512.Load(pk + 64);
            var w2 = Vector512.Load(pk + 128);
            var w3 = Vector512.Load(pk + 192);
            var w4 = Vector512.Load(pk + 256);
            var w5 = Vector512.Load(pk + 320);
            var w6 = Vector512.Load(pk + 384);
            var w7 = Vector512.Load(pk + 448);
            var dw = Vector512.Load((float*)(pk + 512));
            var i0 = BlockTotals16(w0, w1, w2, w3, w4, w5, w6, w7, a0) - Vector512.Create(s0[b]);
            acc0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), dw * Vector512.Create(d0[b]), acc0);
            var i1 = BlockTotals16(w0, w1, w2, w3, w4, w5, w6, w7, a1) - Vector512.Create(s1[b]);
            acc1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), dw * Vector512.Create(d1[b]), acc1);
            var i2 = BlockTotals16(w0, w1, w2, w3, w4, w5, w6, w7, a2) - Vector512.Create(s2[b]);
            acc2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), dw * Vector512.Create(d2[b]), acc2);
            var i3 = BlockTotals16(w0, w1, w2, w3, w4, w5, w6, w7, a3) - Vector512.Create(s3[b]);
            acc3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i3), dw * Vector512.Create(d3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }
}
