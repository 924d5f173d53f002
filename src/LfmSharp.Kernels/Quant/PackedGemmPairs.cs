using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The Q4_0 <see cref="PackedGemm"/> kernel for vpdpbusd with one activation broadcast per two steps ("pairs" layout).
/// </summary>
/// <remarks>
/// <para>
/// In <see cref="PackedGemm.KernelQ4_0Dot4{TDot}"/> every vpdpbusd needs its own vpbroadcastd of one activation dword,
/// and on Zen 5 those broadcasts, not the dot products, bound the kernel (a microbenchmark with the broadcasts hoisted
/// ran 2.4× faster). Here one 8-byte broadcast (two steps: quants 8p..8p+7 of a token's block) feeds two vpdpbusd,
/// each covering 4 rows × 2 steps: lane 2i holds row i's step 2p, lane 2i+1 its step 2p+1. A horizontal add at the end
/// of the block sums the step pairs, and the row order in the vectors is chosen so its lanes come out as rows 0..7.
/// </para>
/// <para>
/// Packed layout per block of 32 (288 B, the size of <see cref="PackedGemm.PackQ4_0"/>'s): for p = 0..3 two vectors,
/// at 64p the quants 8p..8p+7 (u4 as bytes) of rows 0, 1, 4, 5 and at 64p + 32 those of rows 2, 3, 6, 7; then the 8 row
/// scales as f32. The integer block totals are exact and the float epilogue is that of the other kernels (and of
/// <see cref="MatVec8"/>), so the bits are theirs.
/// </para>
/// </remarks>
internal static unsafe partial class PackedGemm
{
    /// <summary>
    /// Stores the pairs layout of one block from the 8 rows' 32 quants (one byte each, in order): for each quad-word
    /// p, rows (0, 1, 4, 5) at 64p and rows (2, 3, 6, 7) at 64p + 32 — two 4×4 quad-word transposes. Also IQ4_NL's
    /// (<see cref="IQ4Packed.PackIQ4NLPairs"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StorePairs(Vector256<byte> r0, Vector256<byte> r1, Vector256<byte> r2, Vector256<byte> r3,
        Vector256<byte> r4, Vector256<byte> r5, Vector256<byte> r6, Vector256<byte> r7, byte* dst)
    {
        StoreQuadTranspose(r0.AsUInt64(), r1.AsUInt64(), r4.AsUInt64(), r5.AsUInt64(), dst);
        StoreQuadTranspose(r2.AsUInt64(), r3.AsUInt64(), r6.AsUInt64(), r7.AsUInt64(), dst + 32);
    }

    /// <summary>Quad-word p of rows a, b, c, d (as one vector [a_p, b_p, c_p, d_p]) stored at dst + 64p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreQuadTranspose(Vector256<ulong> a, Vector256<ulong> b, Vector256<ulong> c, Vector256<ulong> d, byte* dst)
    {
        var ab02 = Avx2.UnpackLow(a, b);    // [a0 b0 | a2 b2]
        var ab13 = Avx2.UnpackHigh(a, b);   // [a1 b1 | a3 b3]
        var cd02 = Avx2.UnpackLow(c, d);
        var cd13 = Avx2.UnpackHigh(c, d);
        Avx2.Permute2x128(ab02, cd02, 0x20).Store((ulong*)dst);
        Avx2.Permute2x128(ab13, cd13, 0x20).Store((ulong*)(dst + 64));
        Avx2.Permute2x128(ab02, cd02, 0x31).Store((ulong*)(dst + 128));
        Avx2.Permute2x128(ab13, cd13, 0x31).Store((ulong*)(dst + 192));
    }

    /// <summary>Packs rows r0..r0+7 of a Q4_0 matrix in the pairs layout (see <see cref="KernelQ4_0Pairs{TDot}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0Pairs(byte* w, int rowBytes, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = w + b * 18;
            StorePairs(
                Simd.Nibbles(Vector128.Load(x + 2)), Simd.Nibbles(Vector128.Load(x + rowBytes + 2)),
                Simd.Nibbles(Vector128.Load(x + 2 * rowBytes + 2)), Simd.Nibbles(Vector128.Load(x + 3 * rowBytes + 2)),
                Simd.Nibbles(Vector128.Load(x + 4 * rowBytes + 2)), Simd.Nibbles(Vector128.Load(x + 5 * rowBytes + 2)),
                Simd.Nibbles(Vector128.Load(x + 6 * rowBytes + 2)), Simd.Nibbles(Vector128.Load(x + 7 * rowBytes + 2)),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(*(ushort*)(x + r * rowBytes));
        }
    }

    /// <summary><see cref="PackQ4_0Pairs"/> from an interleaved group (<see cref="Interleaved8"/>): the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0x8Pairs(byte* g, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = g + b * 144;
            // Row r's 16 quant bytes: the low half of slot r (rows 0..3), the high half of slot r−4 (rows 4..7).
            StorePairs(
                Simd.Nibbles(Vector128.Load(x + 16)), Simd.Nibbles(Vector128.Load(x + 48)),
                Simd.Nibbles(Vector128.Load(x + 80)), Simd.Nibbles(Vector128.Load(x + 112)),
                Simd.Nibbles(Vector128.Load(x + 32)), Simd.Nibbles(Vector128.Load(x + 64)),
                Simd.Nibbles(Vector128.Load(x + 96)), Simd.Nibbles(Vector128.Load(x + 128)),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(((ushort*)x)[r]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast8(byte* p) => Vector256.Create(*(long*)p).AsSByte();

    /// <summary>Q4_0 weights (pairs layout) × Q8_0 activations, 8 rows × 4 tokens; same bits as <see cref="KernelQ4_0"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4_0Pairs<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        float* d0 = t.D0, d1 = t.D1, d2 = t.D2, d3 = t.D3;
        int* s0 = t.S0, s1 = t.S1, s2 = t.S2, s3 = t.S3;
        for (int b = 0; b < nb; b++, pk += 288, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            // p: rows 0, 1, 4, 5; q: rows 2, 3, 6, 7 — lane pairs are (step 2p, step 2p+1) of one row.
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default;
            Vector256<int> q0 = default, q1 = default, q2 = default, q3 = default;
            for (int p = 0; p < 32; p += 8)
            {
                var wp = Vector256.Load(pk + 8 * p);
                var wq = Vector256.Load(pk + 8 * p + 32);
                var x = Bcast8(a0 + p);
                p0 = TDot.Add(p0, wp, x);
                q0 = TDot.Add(q0, wq, x);
                x = Bcast8(a1 + p);
                p1 = TDot.Add(p1, wp, x);
                q1 = TDot.Add(q1, wq, x);
                x = Bcast8(a2 + p);
                p2 = TDot.Add(p2, wp, x);
                q2 = TDot.Add(q2, wq, x);
                x = Bcast8(a3 + p);
                p3 = TDot.Add(p3, wp, x);
                q3 = TDot.Add(q3, wq, x);
            }
            var dw = Vector256.Load((float*)(pk + 256));
            // hadd per 128-bit lane: [p01 p23 q01 q23 | p45 p67 q45 q67] = rows [0 1 2 3 | 4 5 6 7].
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p0, q0) - Vector256.Create(s0[b])), dw * Vector256.Create(d0[b]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p1, q1) - Vector256.Create(s1[b])), dw * Vector256.Create(d1[b]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p2, q2) - Vector256.Create(s2[b])), dw * Vector256.Create(d2[b]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p3, q3) - Vector256.Create(s3[b])), dw * Vector256.Create(d3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }
}

/// <summary>The 16-row × 2-token form of <see cref="PackedGemm.KernelQ4_0Pairs{TDot}"/>.</summary>
internal static unsafe partial class PackedGemm
{
    /// <summary>
    /// Q4_0 weights (pairs layout) × Q8_0 activations, 16 rows × 2 tokens: two packed 8-row groups, the second
    /// <paramref name="nb"/>·288 bytes after the first, so each 8-byte activation broadcast feeds four vpdpbusd instead of
    /// two (a microbenchmark on Zen 5: 7.6 ns per 1,024 products against 9.3–10.6 for 8 × 4). Tokens are
    /// <c>A0</c>/<c>D0</c>/<c>S0</c> and <c>A1</c>/<c>D1</c>/<c>S1</c>; outputs <c>Y0</c>, <c>Y1</c> (rows 0–7 of
    /// tokens 0, 1) and <c>Y2</c>, <c>Y3</c> (rows 8–15). Per row and token the operations are those of the 8 × 4 kernel.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4_0Pairs16<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2;
        float* d0 = t.D0, d1 = t.D1;
        int* s0 = t.S0, s1 = t.S1;
        byte* pk2 = pk + (long)nb * 288;
        for (int b = 0; b < nb; b++, pk += 288, pk2 += 288, a0 += 34, a1 += 34)
        {
            // p/q: rows (0, 1, 4, 5)/(2, 3, 6, 7) of the first group; u/v the same of the second.
            Vector256<int> p0 = default, p1 = default, q0 = default, q1 = default;
            Vector256<int> u0 = default, u1 = default, v0 = default, v1 = default;
            for (int p = 0; p < 32; p += 8)
            {
                var wp = Vector256.Load(pk + 8 * p);
                var wq = Vector256.Load(pk + 8 * p + 32);
                var wu = Vector256.Load(pk2 + 8 * p);
                var wv = Vector256.Load(pk2 + 8 * p + 32);
                var x = Bcast8(a0 + p);
                p0 = TDot.Add(p0, wp, x);
                q0 = TDot.Add(q0, wq, x);
                u0 = TDot.Add(u0, wu, x);
                v0 = TDot.Add(v0, wv, x);
                x = Bcast8(a1 + p);
                p1 = TDot.Add(p1, wp, x);
                q1 = TDot.Add(q1, wq, x);
                u1 = TDot.Add(u1, wu, x);
                v1 = TDot.Add(v1, wv, x);
            }
            var dw = Vector256.Load((float*)(pk + 256));
            var dw2 = Vector256.Load((float*)(pk2 + 256));
            var da0 = Vector256.Create(d0[b]);
            var da1 = Vector256.Create(d1[b]);
            var sa0 = Vector256.Create(s0[b]);
            var sa1 = Vector256.Create(s1[b]);
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p0, q0) - sa0), dw * da0, acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(p1, q1) - sa1), dw * da1, acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(u0, v0) - sa0), dw2 * da0, acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.HorizontalAdd(u1, v1) - sa1), dw2 * da1, acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }
}
