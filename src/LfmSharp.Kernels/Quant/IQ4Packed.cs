using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The packed 8-row × 4-token prefill GEMM (<see cref="PackedGemm"/>) for IQ4_NL and IQ4_XS. Packing looks each
/// nibble up in kvalues_iq4nl once per 8-row group, so the GEMM's inner loop sees plain byte weights:
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>IQ4_NL without AVX-VNNI: exactly <see cref="PackedGemm.PackQ8_0"/>'s layout (per block of 32: 8 steps × 32 B of s8 levels, then
/// the 8 rows' d_w as f32 → 288 B), so it runs the Q8_0 kernels, whose per-block fma(sum, d_w·d_a, acc) is
/// <see cref="IQ4NL.DotAvx2"/>'s. On AVX-512BW the 16-row batches take <see cref="KernelIQ4NLZmm16"/> instead (its own
/// layout, IQ4NLPackedZmm.cs); ragged 8-row ends stay here.</item>
/// <item>IQ4_NL with AVX-VNNI: Q4_0's pairs layout (<see cref="PackedGemm.KernelQ4_0Pairs{TDot}"/>, also 288 B) with
/// the levels stored as unsigned bytes v + 128 (1..241). vpdpbusd multiplies u8 × s8 without saturating, so the
/// kernel's block total Σ(v + 128)·a, less the activation side's 128·Σa (<see cref="ActivationSide.Q8_0ScalesAndSums128"/>),
/// is Σv·a exactly and the bits stay those of the row dot. (maddubs would saturate on 241·127·2, hence AVX-VNNI only.)</item>
/// <item>IQ4_XS (<see cref="XSBlockBytes"/> per super-block): 64 steps × 32 B of s8 levels, the sub-block scales
/// ls − 32 as [8 sub-blocks][8 rows] int32, then the 8 rows' d_w as f32; <see cref="KernelIQ4XSDot4{TDot}"/> sums each
/// sub-block exactly, multiplies by the scales (vpmulld) and ends each super-block with fma(isum, d_w·d_a, acc), as
/// <see cref="IQ4XS.DotAvx2"/>. With AVX-VNNI the levels are stored as kv + 128 (<see cref="PackIQ4XSBiased"/>) and
/// <see cref="KernelIQ4XSBiased"/> starts each sub-block's sums at −128·Σa from the Q8_K bsums: the same exact sums
/// without an abs and four signs per step (~1.1× in-process). On AVX-512BW without AVX-VNNI the batches take
/// <see cref="KernelIQ4XSZmm16"/> instead (16 rows × 4 tokens in zmm, its own layout; IQ4PackedZmm.cs).</item>
/// </list>
/// The signed-level kernels take |w|·sign(a, w) (|level| ≤ 127), exact for activations in ±127 — what the Q8_0/Q8_K quantizers
/// write (the same condition as the Q8_0 GEMM).
/// </remarks>
internal static unsafe partial class IQ4Packed
{
    /// <summary>Packed bytes per IQ4_XS super-block of 8 rows: levels 2048, scales 256, d 32.</summary>
    public const int XSBlockBytes = 2336;

    /// <summary>Packed bytes per IQ4_NL block of 8 rows (<see cref="PackedGemm.PackQ8_0"/>'s layout and the pairs layout alike).</summary>
    public const int NLBlockBytes = 288;

    /// <summary>Packs rows r0..r0+7 of an IQ4_NL matrix into the packed Q8_0 layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NL(byte* w, int rowBytes, int nb, byte* dst)
    {
        var kv = IQ4XS.LevelTable();
        long rb = rowBytes;
        for (int b = 0; b < nb; b++, dst += NLBlockBytes)
        {
            byte* x = w + b * 18;
            StoreLevels(Levels(x + 2, kv), Levels(x + rb + 2, kv), Levels(x + 2 * rb + 2, kv), Levels(x + 3 * rb + 2, kv),
                Levels(x + 4 * rb + 2, kv), Levels(x + 5 * rb + 2, kv), Levels(x + 6 * rb + 2, kv), Levels(x + 7 * rb + 2, kv), dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(*(ushort*)(x + r * rb));
        }
    }

    /// <summary><see cref="PackIQ4NL"/> from a group of the interleaved copy (<see cref="InterleaveLayout.Q4_0"/>): the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NLx8(byte* g, int nb, byte* dst)
    {
        var kv = IQ4XS.LevelTable();
        for (int b = 0; b < nb; b++, dst += NLBlockBytes)
        {
            byte* x = g + b * 144;
            // Row r's 16 quant bytes: the low half of slot r (rows 0..3), the high half of slot r−4 (rows 4..7).
            StoreLevels(Levels(x + 16, kv), Levels(x + 48, kv), Levels(x + 80, kv), Levels(x + 112, kv),
                Levels(x + 32, kv), Levels(x + 64, kv), Levels(x + 96, kv), Levels(x + 128, kv), dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(((ushort*)x)[r]);
        }
    }

    /// <summary>Packs rows r0..r0+7 of an IQ4_NL matrix in Q4_0's pairs layout with levels v + 128 (see the remarks).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NLPairs(byte* w, int rowBytes, int nb, byte* dst)
    {
        var ku = BiasedLevelTable();
        long rb = rowBytes;
        for (int b = 0; b < nb; b++, dst += NLBlockBytes)
        {
            byte* x = w + b * 18;
            PackedGemm.StorePairs(BiasedLevels(x + 2, ku), BiasedLevels(x + rb + 2, ku), BiasedLevels(x + 2 * rb + 2, ku), BiasedLevels(x + 3 * rb + 2, ku),
                BiasedLevels(x + 4 * rb + 2, ku), BiasedLevels(x + 5 * rb + 2, ku), BiasedLevels(x + 6 * rb + 2, ku), BiasedLevels(x + 7 * rb + 2, ku), dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(*(ushort*)(x + r * rb));
        }
    }

    /// <summary><see cref="PackIQ4NLPairs"/> from a group of the interleaved copy (<see cref="InterleaveLayout.Q4_0"/>): the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NLx8Pairs(byte* g, int nb, byte* dst)
    {
        var ku = BiasedLevelTable();
        for (int b = 0; b < nb; b++, dst += NLBlockBytes)
        {
            byte* x = g + b * 144;
            // Row r's 16 quant bytes: the low half of slot r (rows 0..3), the high half of slot r−4 (rows 4..7).
            PackedGemm.StorePairs(BiasedLevels(x + 16, ku), BiasedLevels(x + 48, ku), BiasedLevels(x + 80, ku), BiasedLevels(x + 112, ku),
                BiasedLevels(x + 32, ku), BiasedLevels(x + 64, ku), BiasedLevels(x + 96, ku), BiasedLevels(x + 128, ku), dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(((ushort*)x)[r]);
        }
    }

    /// <summary>Packs rows r0..r0+7 of an IQ4_XS matrix (layout in the remarks).</summary>
    public static void PackIQ4XS(byte* w, int rowBytes, int nb, byte* dst) => PackXS(w, rowBytes, nb, dst, IQ4XS.LevelTable());

    /// <summary>
    /// <see cref="PackIQ4XS"/> with the levels as the unsigned bytes kv + 128 (<see cref="KernelIQ4XSBiased"/>'s
    /// operand); scales and d as there.
    /// </summary>
    public static void PackIQ4XSBiased(byte* w, int rowBytes, int nb, byte* dst) => PackXS(w, rowBytes, nb, dst, BiasedLevelTable().AsSByte());

    /// <summary>Packs one group of the interleaved block copy (block b of rows 0..7 side by side) as <see cref="PackIQ4XSBiased"/>.</summary>
    public static void PackIQ4XSx8Biased(byte* g, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++)
            PackIQ4XSBiased(g + (long)b * 8 * 136, 136, 1, dst + (long)b * XSBlockBytes);
    }

    /// <summary>Packs rows r0..r0+7 with the level table <paramref name="kv"/> (plain or biased).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackXS(byte* w, int rowBytes, int nb, byte* dst, Vector256<sbyte> kv)
    {
        long rb = rowBytes;
        for (int b = 0; b < nb; b++, dst += XSBlockBytes)
        {
            byte* x = w + b * 136 + 8;
            for (int j = 0; j < 8; j++)
            {
                byte* q = x + 16 * j;
                StoreLevels(Levels(q, kv), Levels(q + rb, kv), Levels(q + 2 * rb, kv), Levels(q + 3 * rb, kv),
                    Levels(q + 4 * rb, kv), Levels(q + 5 * rb, kv), Levels(q + 6 * rb, kv), Levels(q + 7 * rb, kv), dst + 256 * j);
            }
            int* sc = (int*)(dst + 2048);
            float* d = (float*)(dst + 2304);
            for (int r = 0; r < 8; r++)
            {
                byte* xr = w + b * 136 + r * rb;
                d[r] = HalfToSingle(*(ushort*)xr);
                ushort h = *(ushort*)(xr + 2);
                for (int j = 0; j < 8; j++)
                    sc[8 * j + r] = (((xr[4 + j / 2] >> (4 * (j & 1))) & 0xF) | (((h >> (2 * j)) & 3) << 4)) - 32;
            }
        }
    }

    /// <summary>
    /// IQ4_XS × Q8_K, 8 rows × 4 tokens on <see cref="PackIQ4XS"/>'s bytes: per sub-block the exact Σ level·a into int32
    /// lanes by <typeparamref name="TDot"/> (a's sign moved onto the levels), times the rows' scales; per super-block
    /// acc = fma(isum, d_w·d_a, acc).
    /// </summary>
    public static void KernelIQ4XSDot4<TDot>(byte* pk, int nb, in PackedGemm.TokenTile t) where TDot : struct, IByteDot
        => KernelXS<SignedXS<TDot>>(pk, nb, t);

    /// <summary>
    /// IQ4_XS × Q8_K with AVX-VNNI on <see cref="PackIQ4XSBiased"/>'s bytes: per sub-block one vpdpbusd per step and
    /// token on the unsigned levels kv + 128 against the signed activations (no abs / sign per step), started at
    /// −128·Σa of the sub-block (its two Q8_K bsums), so each lane ends at the exact Σ kv·a of
    /// <see cref="KernelIQ4XSDot4{TDot}"/> (|Σ (kv + 128)·a| ≤ 32·241·128: no overflow); the same scale products and
    /// float steps follow, so the bits are the row dots'.
    /// </summary>
    public static void KernelIQ4XSBiased(byte* pk, int nb, in PackedGemm.TokenTile t) => KernelXS<BiasedXS>(pk, nb, t);

    /// <summary>
    /// The frame of both IQ4_XS GEMM kernels: per super-block and sub-block j, <typeparamref name="T"/>'s exact level
    /// sums of the 8 rows for 4 tokens, times the rows' scales into int32; then acc = fma(isum, d_w·d_a, acc).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void KernelXS<T>(byte* pk, int nb, in PackedGemm.TokenTile t) where T : struct, IXSSubBlock
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += XSBlockBytes, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            Vector256<int> i0 = default, i1 = default, i2 = default, i3 = default;
            for (int j = 0; j < 8; j++)
            {
                T.Dots(pk + 256 * j, a0, a1, a2, a3, j, out var p0, out var p1, out var p2, out var p3);
                var sc = Vector256.Load((int*)(pk + 2048) + 8 * j);
                i0 += Avx2.MultiplyLow(p0, sc);
                i1 += Avx2.MultiplyLow(p1, sc);
                i2 += Avx2.MultiplyLow(p2, sc);
                i3 += Avx2.MultiplyLow(p3, sc);
            }
            var d = Vector256.Load((float*)(pk + 2304));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i0), d * Vector256.Create(*(float*)a0), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i1), d * Vector256.Create(*(float*)a1), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i2), d * Vector256.Create(*(float*)a2), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i3), d * Vector256.Create(*(float*)a3), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>One sub-block of the IQ4_XS GEMM: the exact Σ level·a of 8 rows (8 steps of 4 levels at v) for 4 tokens.</summary>
    private interface IXSSubBlock
    {
        static abstract void Dots(byte* v, byte* a0, byte* a1, byte* a2, byte* a3, int j,
            out Vector256<int> p0, out Vector256<int> p1, out Vector256<int> p2, out Vector256<int> p3);
    }

    /// <summary>Signed levels: |level| against a with the level's sign (<typeparamref name="TDot"/>: maddubs or vpdpbusd).</summary>
    private readonly struct SignedXS<TDot> : IXSSubBlock where TDot : struct, IByteDot
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dots(byte* v, byte* a0, byte* a1, byte* a2, byte* a3, int j,
            out Vector256<int> p0, out Vector256<int> p1, out Vector256<int> p2, out Vector256<int> p3)
        {
            p0 = p1 = p2 = p3 = default;
            int o = 4 + 32 * j;
            byte* b0 = a0 + o, b1 = a1 + o, b2 = a2 + o, b3 = a3 + o;
            for (int s = 0; s < 8; s++)
            {
                var w = Vector256.Load((sbyte*)(v + 32 * s));
                var aw = Avx2.Abs(w);
                p0 = TDot.Add(p0, aw, Avx2.Sign(Bcast(b0 + 4 * s), w));
                p1 = TDot.Add(p1, aw, Avx2.Sign(Bcast(b1 + 4 * s), w));
                p2 = TDot.Add(p2, aw, Avx2.Sign(Bcast(b2 + 4 * s), w));
                p3 = TDot.Add(p3, aw, Avx2.Sign(Bcast(b3 + 4 * s), w));
            }
        }
    }

    /// <summary>Biased levels kv + 128 with AVX-VNNI, each lane started at −128·Σa of the sub-block.</summary>
    private readonly struct BiasedXS : IXSSubBlock
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Dots(byte* v, byte* a0, byte* a1, byte* a2, byte* a3, int j,
            out Vector256<int> p0, out Vector256<int> p1, out Vector256<int> p2, out Vector256<int> p3)
        {
            p0 = Vector256.Create(Bias(a0, j));
            p1 = Vector256.Create(Bias(a1, j));
            p2 = Vector256.Create(Bias(a2, j));
            p3 = Vector256.Create(Bias(a3, j));
            int o = 4 + 32 * j;
            byte* b0 = a0 + o, b1 = a1 + o, b2 = a2 + o, b3 = a3 + o;
            for (int s = 0; s < 8; s++)
            {
                var u = Vector256.Load(v + 32 * s);
                p0 = AvxVnni.MultiplyWideningAndAdd(p0, u, Bcast(b0 + 4 * s));
                p1 = AvxVnni.MultiplyWideningAndAdd(p1, u, Bcast(b1 + 4 * s));
                p2 = AvxVnni.MultiplyWideningAndAdd(p2, u, Bcast(b2 + 4 * s));
                p3 = AvxVnni.MultiplyWideningAndAdd(p3, u, Bcast(b3 + 4 * s));
            }
        }
    }

    /// <summary>−128·Σa over sub-block <paramref name="j"/> of a Q8_K block (bsums 2j and 2j + 1 at byte 260).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Bias(byte* q8k, int j) => -128 * (((short*)(q8k + 260))[2 * j] + ((short*)(q8k + 260))[2 * j + 1]);

    /// <summary>The 32 levels kv[q] of 16 nibble bytes (low nibbles first), as in <see cref="IQ4XS.LevelDot"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Levels(byte* q, Vector256<sbyte> kv) => Avx2.Shuffle(kv, Simd.Nibbles(Vector128.Load(q)).AsSByte()).AsInt32();

    /// <summary>kvalues_iq4nl + 128 as unsigned bytes (flipping the sign bit adds 128 to an s8), in both 128-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> BiasedLevelTable() => IQ4XS.LevelTable().AsByte() ^ Vector256.Create((byte)0x80);

    /// <summary>The 32 biased levels kv[q] + 128 of 16 nibble bytes (low nibbles first), in element order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> BiasedLevels(byte* q, Vector256<byte> ku) => Avx2.Shuffle(ku, Simd.Nibbles(Vector128.Load(q)));

    /// <summary>8 rows of 32 levels as 8 steps of 4 levels × 8 rows (step s at dst + 32·s).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLevels(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3,
        Vector256<int> a4, Vector256<int> a5, Vector256<int> a6, Vector256<int> a7, byte* dst)
    {
        KStream.Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        a0.Store((int*)dst); a1.Store((int*)(dst + 32)); a2.Store((int*)(dst + 64)); a3.Store((int*)(dst + 96));
        a4.Store((int*)(dst + 128)); a5.Store((int*)(dst + 160)); a6.Store((int*)(dst + 192)); a7.Store((int*)(dst + 224));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast(byte* p) => Vector256.Create(*(int*)p).AsSByte();
}
