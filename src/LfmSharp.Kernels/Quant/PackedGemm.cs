using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The batched (prefill) integer matmul on AVX2: 8 weight rows × 4 tokens per register tile.
/// </summary>
/// <remarks>
/// Per 8-row group the weights are first unpacked ("packed", as a BLIS GEMM packs panels) into a per-thread buffer in
/// which each 32-byte vector holds 4 consecutive quants of each of the 8 rows, so one maddubs against a broadcast
/// 4-byte run of one token's activations gives partial sums of all 8 rows at once, and the 8 int32 lanes of a tile
/// accumulator are 8 output rows. The unpacking costs one pass over the rows and is shared by every token of the
/// batch; the memory-mapped weights (or their load-time interleaved copy, see <see cref="Interleaved8"/>) are not copied elsewhere.
/// Integer sums per block are exact, as in the row dots; only the f32 accumulation order differs from
/// <see cref="VecDot.Row"/> (tests compare against it).
///
/// Packed layout per 8-row group (K = row length):
///  Q4_0: per block of 32: values [8 steps × 32 B] (u4 0..15), then row scales d_w as 8 f32 → 288 B per block.
///  Q8_0: per block of 32: values [8 × 32 B] (s8), then 8 f32 d_w → 288 B per block.
///  Q4_K: per super-block of 256: values [64 × 32 B] (u4), sub-block scales [8 × 16 int16] (each row's scale twice),
///        min coefficients [8 × 16 int16] (row mins per pair of bsum groups), 8 f32 d, 8 f32 dmin → 2624 B.
///  Q6_K: per super-block: values [64 × 32 B] (u6 0..63), scales [16 × 16 int16], offset coefficients
///        [8 × 16 int16] (row scales per pair of bsum groups), 8 f32 d → 2848 B.
/// Activations are the usual vec-dot rows (Q8_0 / Q8_K); for Q8_0 the caller also provides each block's scale as
/// f32 and, for Q4_0, 8·Σq per block (the −8 offset of Q4_0 weights).
/// </remarks>
internal static unsafe partial class PackedGemm
{
    public const int Rows = 8;
    public const int Tokens = 4;

    public static bool IsSupported => Simd.Avx2Fma;

    /// <summary>Bytes of one packed 8-row group of <paramref name="columns"/> columns.</summary>
    public static int PackedBytes(GgmlType t, int columns) => TypeTraits.For(t) is { HasGemm: true } k
        ? columns / k.BlockSize * k.PackedBlockBytes
        : throw new ArgumentOutOfRangeException(nameof(t), t, "no packed GEMM");

    /// <summary>
    /// Largest packed bytes per column over all types (workspace sizing), for 16 rows: the 16-row kernels
    /// (<see cref="TypeTraits.Gemm16"/>, <see cref="TypeTraits.Gemm16x4"/>) read two groups' worth at once. IQ4_NL's zmm
    /// layout is the largest (<see cref="IQ4Packed.NLZmm16BlockBytes"/> per 32 columns: 36; IQ4_XS's 34.5), their
    /// |level| and sign bytes stored apart so the kernels spend no op per step on them.
    /// </summary>
    public const int MaxPackedBytesPerColumn = 36;

    // ---- packing ----------------------------------------------------------------------------------------------

    /// <summary>
    /// 8×8 transpose of dwords: out[s] dword r = in[r] dword s, out[s] stored at dst + s·<paramref name="stride"/>. Turns 8
    /// rows of 32 quants into 8 steps of 4 quants × 8 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTransposed(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3,
        Vector256<int> a4, Vector256<int> a5, Vector256<int> a6, Vector256<int> a7, byte* dst, int stride = 32)
    {
        KStream.Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        a0.Store((int*)dst); a1.Store((int*)(dst + stride)); a2.Store((int*)(dst + 2 * stride)); a3.Store((int*)(dst + 3 * stride));
        a4.Store((int*)(dst + 4 * stride)); a5.Store((int*)(dst + 5 * stride)); a6.Store((int*)(dst + 6 * stride)); a7.Store((int*)(dst + 7 * stride));
    }

    /// <summary>Packs rows r0..r0+7 of a Q4_0 matrix (row stride <paramref name="rowBytes"/>, nb blocks per row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0(byte* w, int rowBytes, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = w + b * 18;
            StoreTransposed(
                Simd.Nibbles(Vector128.Load(x + 2)).AsInt32(), Simd.Nibbles(Vector128.Load(x + rowBytes + 2)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 2 * rowBytes + 2)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 3 * rowBytes + 2)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 4 * rowBytes + 2)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 5 * rowBytes + 2)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 6 * rowBytes + 2)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 7 * rowBytes + 2)).AsInt32(),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(*(ushort*)(x + r * rowBytes));
        }
    }

    /// <summary>Packs rows r0..r0+7 of a Q8_0 matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ8_0(byte* w, int rowBytes, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = w + b * 34 + 2;
            StoreTransposed(
                Vector256.Load(x).AsInt32(), Vector256.Load(x + rowBytes).AsInt32(),
                Vector256.Load(x + 2 * rowBytes).AsInt32(), Vector256.Load(x + 3 * rowBytes).AsInt32(),
                Vector256.Load(x + 4 * rowBytes).AsInt32(), Vector256.Load(x + 5 * rowBytes).AsInt32(),
                Vector256.Load(x + 6 * rowBytes).AsInt32(), Vector256.Load(x + 7 * rowBytes).AsInt32(),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(*(ushort*)(x - 2 + r * rowBytes));
        }
    }

    /// <summary><see cref="PackQ4_0"/> from an interleaved group (<see cref="Interleaved8"/>): the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4_0x8(byte* g, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = g + b * 144;
            // Row r's 16 quant bytes: the low half of slot r (rows 0..3), the high half of slot r−4 (rows 4..7).
            StoreTransposed(
                Simd.Nibbles(Vector128.Load(x + 16)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 48)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 80)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 112)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 32)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 64)).AsInt32(),
                Simd.Nibbles(Vector128.Load(x + 96)).AsInt32(), Simd.Nibbles(Vector128.Load(x + 128)).AsInt32(),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(((ushort*)x)[r]);
        }
    }

    /// <summary><see cref="PackQ8_0"/> from an interleaved group (<see cref="Interleaved8"/>): the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ8_0x8(byte* g, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 288)
        {
            byte* x = g + b * 272;
            StoreTransposed(
                Vector256.Load(x + 16).AsInt32(), Vector256.Load(x + 48).AsInt32(),
                Vector256.Load(x + 80).AsInt32(), Vector256.Load(x + 112).AsInt32(),
                Vector256.Load(x + 144).AsInt32(), Vector256.Load(x + 176).AsInt32(),
                Vector256.Load(x + 208).AsInt32(), Vector256.Load(x + 240).AsInt32(),
                dst);
            float* d = (float*)(dst + 256);
            for (int r = 0; r < 8; r++)
                d[r] = HalfToSingle(((ushort*)x)[r]);
        }
    }

    /// <summary>Packs rows r0..r0+7 of a Q4_K matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4K(byte* w, int rowBytes, int nb, byte* dst)
    {
        var low = Vector256.Create((byte)0x0F);
        for (int b = 0; b < nb; b++, dst += 2624)
        {
            byte* x = w + b * 144;
            // Values: chunk c of 64 = low nibbles of qs[32c..] (sub-block 2c), then high nibbles (sub-block 2c+1).
            for (int c = 0; c < 4; c++)
            {
                byte* q = x + 16 + 32 * c;
                var v0 = Vector256.Load(q); var v1 = Vector256.Load(q + rowBytes);
                var v2 = Vector256.Load(q + 2 * rowBytes); var v3 = Vector256.Load(q + 3 * rowBytes);
                var v4 = Vector256.Load(q + 4 * rowBytes); var v5 = Vector256.Load(q + 5 * rowBytes);
                var v6 = Vector256.Load(q + 6 * rowBytes); var v7 = Vector256.Load(q + 7 * rowBytes);
                StoreTransposed((v0 & low).AsInt32(), (v1 & low).AsInt32(), (v2 & low).AsInt32(), (v3 & low).AsInt32(),
                    (v4 & low).AsInt32(), (v5 & low).AsInt32(), (v6 & low).AsInt32(), (v7 & low).AsInt32(), dst + 512 * c);
                StoreTransposed(Simd.HighNibbles(v0), Simd.HighNibbles(v1), Simd.HighNibbles(v2), Simd.HighNibbles(v3),
                    Simd.HighNibbles(v4), Simd.HighNibbles(v5), Simd.HighNibbles(v6), Simd.HighNibbles(v7), dst + 512 * c + 256);
            }
            for (int r = 0; r < 8; r++)
            {
                byte* xr = x + r * rowBytes;
                PackQ4KScales(r, (ushort*)xr, (ushort*)(xr + 2), xr + 4, dst);
            }
        }
    }

    /// <summary>Row <paramref name="r"/>'s d, dmin and 6-bit scales/mins into a packed Q4_K super-block at <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackQ4KScales(int r, ushort* d, ushort* dmin, byte* scales12, byte* dst)
    {
        Q4K.UnpackScaleMin(scales12, out ulong scales, out ulong mins);
        PackQ4KScales(r, d, dmin, scales, mins, dst);
    }

    /// <summary>As <see cref="PackQ4KScales(int, ushort*, ushort*, byte*, byte*)"/>, from unpacked scales and mins (byte j: sub-block j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackQ4KScales(int r, ushort* d, ushort* dmin, ulong scales, ulong mins, byte* dst)
    {
        short* sc = (short*)(dst + 2048);     // [8 sub-blocks][8 rows × 2]
        short* mc = (short*)(dst + 2304);     // [8 group pairs][8 rows × 2]
        ((float*)(dst + 2560))[r] = HalfToSingle(*d);
        ((float*)(dst + 2592))[r] = HalfToSingle(*dmin);
        for (int j = 0; j < 8; j++)
        {
            short s = (byte)(scales >> (8 * j)), m = (byte)(mins >> (8 * j));
            sc[16 * j + 2 * r] = sc[16 * j + 2 * r + 1] = s;
            // bsum groups 2j and 2j+1 both belong to sub-block j: one madd step covers the pair.
            mc[16 * j + 2 * r] = mc[16 * j + 2 * r + 1] = m;
        }
    }

    /// <summary>
    /// <see cref="PackQ4K"/> from an interleaved group (<see cref="Interleaved8"/>): the same packed bytes. In
    /// <see cref="KStream"/> order vector v of a row holds dword v of each sub-block d, so one transpose across the 8
    /// rows gives the packed steps of dword v of all 8 sub-blocks (256 B apart).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ4Kx8(byte* g, int nb, byte* dst)
    {
        var low = Vector256.Create((byte)0x0F);
        for (int b = 0; b < nb; b++, dst += 2624)
        {
            byte* x = g + b * 1152;
            for (int u = 0; u < 4; u++)
            {
                byte* q = x + 128 + 32 * u;   // row r's quants 128·r further; low nibbles vector 2u, high 2u+1
                var v0 = Vector256.Load(q); var v1 = Vector256.Load(q + 128);
                var v2 = Vector256.Load(q + 256); var v3 = Vector256.Load(q + 384);
                var v4 = Vector256.Load(q + 512); var v5 = Vector256.Load(q + 640);
                var v6 = Vector256.Load(q + 768); var v7 = Vector256.Load(q + 896);
                StoreTransposed((v0 & low).AsInt32(), (v1 & low).AsInt32(), (v2 & low).AsInt32(), (v3 & low).AsInt32(),
                    (v4 & low).AsInt32(), (v5 & low).AsInt32(), (v6 & low).AsInt32(), (v7 & low).AsInt32(), dst + 64 * u, 256);
                StoreTransposed(Simd.HighNibbles(v0), Simd.HighNibbles(v1), Simd.HighNibbles(v2), Simd.HighNibbles(v3),
                    Simd.HighNibbles(v4), Simd.HighNibbles(v5), Simd.HighNibbles(v6), Simd.HighNibbles(v7), dst + 64 * u + 32, 256);
            }
            for (int r = 0; r < 8; r++)
            {
                Interleaved8.Q4KScales(x, r, out ulong scales, out ulong mins);
                PackQ4KScales(r, (ushort*)x + r, (ushort*)(x + 16) + r, scales, mins, dst);
            }
        }
    }

    /// <summary>Packs rows r0..r0+7 of a Q6_K matrix.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ6K(byte* w, int rowBytes, int nb, byte* dst) => PackQ6K(w, rowBytes, nb, dst, interleaved: false);

    /// <summary><see cref="PackQ6K(byte*, int, int, byte*)"/> from an interleaved group (<see cref="Interleaved8"/>): the same packed bytes.</summary>
    public static void PackQ6Kx8(byte* g, int nb, byte* dst) => PackQ6K(g, 0, nb, dst, interleaved: true);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackQ6K(byte* w, int rowBytes, int nb, byte* dst, bool interleaved)
    {
        byte* tmp = stackalloc byte[8 * 128];
        for (int b = 0; b < nb; b++, dst += 2848)
        {
            byte* x = w + b * (interleaved ? 1680 : 210);
            for (int h = 0; h < 2; h++)
            {
                // The 128 quants of half h of each row as 4 vectors of 32, then transposed vector by vector.
                for (int r = 0; r < 8; r++)
                {
                    byte* xr = interleaved ? x + 144 + 192 * r : x + r * rowBytes;   // ql (128 B), then qh (64 B)
                    Q6K.DecodeHalf(xr, h, out var q1, out var q2, out var q3, out var q4);
                    int* t = (int*)(tmp + 128 * r);
                    q1.Store(t); q2.Store(t + 8); q3.Store(t + 16); q4.Store(t + 24);
                }
                // GGUF order: run m is dwords 8m..8m+7 of the half, packed at 256·m. Stream order (KStream): vector j
                // holds dword 4d + j of the half in its dword d, which packs at 128·d + 32·j.
                for (int run = 0; run < 4; run++)
                {
                    byte* t = tmp + 32 * run;
                    StoreTransposed(Vector256.Load(t).AsInt32(), Vector256.Load(t + 128).AsInt32(), Vector256.Load(t + 256).AsInt32(),
                        Vector256.Load(t + 384).AsInt32(), Vector256.Load(t + 512).AsInt32(), Vector256.Load(t + 640).AsInt32(),
                        Vector256.Load(t + 768).AsInt32(), Vector256.Load(t + 896).AsInt32(),
                        interleaved ? dst + 1024 * h + 32 * run : dst + 1024 * h + 256 * run, interleaved ? 128 : 32);
                }
            }
            short* sc = (short*)(dst + 2048);     // [16 sub-blocks of 16][8 rows × 2]
            short* oc = (short*)(dst + 2560);     // [8 group pairs][8 rows × 2]: scales of groups 2p, 2p+1
            float* d = (float*)(dst + 2816);
            for (int r = 0; r < 8; r++)
            {
                byte* xr = x + r * rowBytes;
                sbyte* s = (sbyte*)(interleaved ? x + 16 + 16 * r : xr + 192);
                d[r] = HalfToSingle(interleaved ? ((ushort*)x)[r] : *(ushort*)(xr + 208));
                for (int j = 0; j < 16; j++)
                    sc[16 * j + 2 * r] = sc[16 * j + 2 * r + 1] = s[j];
                for (int p = 0; p < 8; p++)
                {
                    oc[16 * p + 2 * r] = s[2 * p];
                    oc[16 * p + 2 * r + 1] = s[2 * p + 1];
                }
            }
        }
    }

    // ---- kernels ----------------------------------------------------------------------------------------------

    /// <summary>Per-token activation pointers of one 4-token tile (or fewer, repeated).</summary>
    public struct TokenTile
    {
        public byte* A0, A1, A2, A3;        // activation rows (Q8_0 or Q8_K bytes)
        public float* D0, D1, D2, D3;       // Q8_0: f32 block scales
        public int* S0, S1, S2, S3;         // Q4_0: 8·Σq per block
        public float* Y0, Y1, Y2, Y3;       // outputs at the group's first row
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Bcast(byte* p) => Vector256.Create(*(int*)p).AsSByte();

    /// <summary>
    /// Per token, Σ_g coef_g · (Q8_K bsums of groups 2g and 2g+1, one broadcast int16 pair): the K-quants' term on the
    /// activations' block sums (Q4_K: the mins; Q6_K: the −32 offset), int32 lane r for row r. <paramref name="coef"/>
    /// is the packed [8 group pairs][8 rows × 2] int16 table.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void BsumTerms(short* coef, byte* a0, byte* a1, byte* a2, byte* a3,
        out Vector256<int> m0, out Vector256<int> m1, out Vector256<int> m2, out Vector256<int> m3)
    {
        m0 = m1 = m2 = m3 = default;
        for (int g = 0; g < 8; g++)
        {
            var c = Vector256.Load(coef + 16 * g);
            m0 += Avx2.MultiplyAddAdjacent(c, Vector256.Create(*(int*)(a0 + 260 + 4 * g)).AsInt16());
            m1 += Avx2.MultiplyAddAdjacent(c, Vector256.Create(*(int*)(a1 + 260 + 4 * g)).AsInt16());
            m2 += Avx2.MultiplyAddAdjacent(c, Vector256.Create(*(int*)(a2 + 260 + 4 * g)).AsInt16());
            m3 += Avx2.MultiplyAddAdjacent(c, Vector256.Create(*(int*)(a3 + 260 + 4 * g)).AsInt16());
        }
    }

    /// <summary>
    /// The end of a packed Q4_K super-block for 4 tokens, whichever kernel summed it: acc += i·d·d_a − mins·dmin·d_a
    /// (<paramref name="i0"/>.. are the exact Σ s·q·a per row).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateQ4K(byte* pk, byte* a0, byte* a1, byte* a2, byte* a3,
        Vector256<int> i0, Vector256<int> i1, Vector256<int> i2, Vector256<int> i3,
        ref Vector256<float> acc0, ref Vector256<float> acc1, ref Vector256<float> acc2, ref Vector256<float> acc3)
    {
        BsumTerms((short*)(pk + 2304), a0, a1, a2, a3, out var m0, out var m1, out var m2, out var m3);
        var d = Vector256.Load((float*)(pk + 2560));
        var dmin = Vector256.Load((float*)(pk + 2592));
        var ad0 = Vector256.Create(*(float*)a0); var ad1 = Vector256.Create(*(float*)a1);
        var ad2 = Vector256.Create(*(float*)a2); var ad3 = Vector256.Create(*(float*)a3);
        acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i0), d * ad0, acc0);
        acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i1), d * ad1, acc1);
        acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i2), d * ad2, acc2);
        acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i3), d * ad3, acc3);
        acc0 = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(m0), dmin * ad0, acc0);
        acc1 = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(m1), dmin * ad1, acc1);
        acc2 = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(m2), dmin * ad2, acc2);
        acc3 = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(m3), dmin * ad3, acc3);
    }

    /// <summary>The end of a packed Q6_K super-block for 4 tokens: acc += (i − 32·Σ scale·bsum)·d·d_a.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AccumulateQ6K(byte* pk, byte* a0, byte* a1, byte* a2, byte* a3,
        Vector256<int> i0, Vector256<int> i1, Vector256<int> i2, Vector256<int> i3,
        ref Vector256<float> acc0, ref Vector256<float> acc1, ref Vector256<float> acc2, ref Vector256<float> acc3)
    {
        BsumTerms((short*)(pk + 2560), a0, a1, a2, a3, out var m0, out var m1, out var m2, out var m3);
        var d = Vector256.Load((float*)(pk + 2816));
        acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i0 - Avx2.ShiftLeftLogical(m0, 5)), d * Vector256.Create(*(float*)a0), acc0);
        acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i1 - Avx2.ShiftLeftLogical(m1, 5)), d * Vector256.Create(*(float*)a1), acc1);
        acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i2 - Avx2.ShiftLeftLogical(m2, 5)), d * Vector256.Create(*(float*)a2), acc2);
        acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(i3 - Avx2.ShiftLeftLogical(m3, 5)), d * Vector256.Create(*(float*)a3), acc3);
    }

    /// <summary>Q4_0 weights × Q8_0 activations, 8 rows × 4 tokens.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4_0(byte* pk, int nb, in TokenTile t)
    {
        var ones = Vector256.Create((short)1);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        for (int b = 0; b < nb; b++, pk += 288, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            Vector256<short> p0 = default, p1 = default, p2 = default, p3 = default;
            for (int s = 0; s < 8; s++)
            {
                var w = Vector256.Load(pk + 32 * s);
                p0 += Avx2.MultiplyAddAdjacent(w, Bcast(a0 + 4 * s));
                p1 += Avx2.MultiplyAddAdjacent(w, Bcast(a1 + 4 * s));
                p2 += Avx2.MultiplyAddAdjacent(w, Bcast(a2 + 4 * s));
                p3 += Avx2.MultiplyAddAdjacent(w, Bcast(a3 + 4 * s));
            }
            var dw = Vector256.Load((float*)(pk + 256));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(p0, ones) - Vector256.Create(t.S0[b])), dw * Vector256.Create(t.D0[b]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(p1, ones) - Vector256.Create(t.S1[b])), dw * Vector256.Create(t.D1[b]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(p2, ones) - Vector256.Create(t.S2[b])), dw * Vector256.Create(t.D2[b]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(Avx2.MultiplyAddAdjacent(p3, ones) - Vector256.Create(t.S3[b])), dw * Vector256.Create(t.D3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>
    /// <see cref="KernelQ4_0"/> with the products summed straight into int32 lanes by <typeparamref name="TDot"/>
    /// (<see cref="VnniDot"/>: one vpdpbusd per token and step instead of vpmaddubsw, the int16 add and, per block, a
    /// vpmaddwd). The integer totals per block are the same, so are the bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4_0Dot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        for (int b = 0; b < nb; b++, pk += 288, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default;
            for (int s = 0; s < 8; s++)
            {
                var w = Vector256.Load(pk + 32 * s);
                p0 = TDot.Add(p0, w, Bcast(a0 + 4 * s));
                p1 = TDot.Add(p1, w, Bcast(a1 + 4 * s));
                p2 = TDot.Add(p2, w, Bcast(a2 + 4 * s));
                p3 = TDot.Add(p3, w, Bcast(a3 + 4 * s));
            }
            var dw = Vector256.Load((float*)(pk + 256));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0 - Vector256.Create(t.S0[b])), dw * Vector256.Create(t.D0[b]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p1 - Vector256.Create(t.S1[b])), dw * Vector256.Create(t.D1[b]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p2 - Vector256.Create(t.S2[b])), dw * Vector256.Create(t.D2[b]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p3 - Vector256.Create(t.S3[b])), dw * Vector256.Create(t.D3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>
    /// Q8_0 weights × Q8_0 activations, 8 rows × 4 tokens: <typeparamref name="TDot"/> sums |w|·sign(a, w) into int32 lanes
    /// (see <see cref="KernelQ4_0Dot4{TDot}"/>); with <see cref="Avx2Dot"/> it is the plain-AVX2 kernel (int16 pair sums
    /// reach 32512, so every step widens).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ8_0Dot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        for (int b = 0; b < nb; b++, pk += 288, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default;
            for (int s = 0; s < 8; s++)
            {
                var w = Vector256.Load((sbyte*)(pk + 32 * s));
                var aw = Avx2.Abs(w);
                p0 = TDot.Add(p0, aw, Avx2.Sign(Bcast(a0 + 4 * s), w));
                p1 = TDot.Add(p1, aw, Avx2.Sign(Bcast(a1 + 4 * s), w));
                p2 = TDot.Add(p2, aw, Avx2.Sign(Bcast(a2 + 4 * s), w));
                p3 = TDot.Add(p3, aw, Avx2.Sign(Bcast(a3 + 4 * s), w));
            }
            var dw = Vector256.Load((float*)(pk + 256));
            acc0 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p0), dw * Vector256.Create(t.D0[b]), acc0);
            acc1 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p1), dw * Vector256.Create(t.D1[b]), acc1);
            acc2 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p2), dw * Vector256.Create(t.D2[b]), acc2);
            acc3 = Fma.MultiplyAdd(Vector256.ConvertToSingle(p3), dw * Vector256.Create(t.D3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>
    /// <see cref="KernelQ4K"/> with <typeparamref name="TDot"/> summing each sub-block's products straight into int32
    /// lanes (one per row), then one vpmulld by the rows' scales (the packed [s, s] int16 pairs read as dwords and
    /// shifted down) — where the maddubs kernel needs an int16 add per step and a vpmaddwd per sub-block. Same integer
    /// totals, same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ4KDot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += 2624, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            ScaledSubBlockSums<TDot>(pk, 8, 8, a0, a1, a2, a3, out var i0, out var i1, out var i2, out var i3);
            AccumulateQ4K(pk, a0, a1, a2, a3, i0, i1, i2, i3, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary><see cref="KernelQ6K"/> with <typeparamref name="TDot"/> and one vpmulld per sub-block of 16 (see <see cref="KernelQ4KDot4{TDot}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ6KDot4<TDot>(byte* pk, int nb, in TokenTile t) where TDot : struct, IByteDot
    {
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += 2848, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            ScaledSubBlockSums<TDot>(pk, 16, 4, a0, a1, a2, a3, out var i0, out var i1, out var i2, out var i3);
            AccumulateQ6K(pk, a0, a1, a2, a3, i0, i1, i2, i3, ref acc0, ref acc1, ref acc2, ref acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>
    /// The integer core of <see cref="KernelQ4KDot4{TDot}"/> and <see cref="KernelQ6KDot4{TDot}"/> for one packed
    /// super-block and 4 tokens: per sub-block j of <paramref name="subBlocks"/> (<paramref name="steps"/> packed steps
    /// of 4 quants × 8 rows each, 32·steps bytes, against the Q8_K quants from byte 4 + 4·steps·j), the products summed
    /// into int32 lanes by <typeparamref name="TDot"/>, then one vpmulld by the rows' scales (the packed [s, s] int16
    /// pairs at 2048 read as dwords and shifted down). Lane r of <paramref name="i0"/>.. = Σ_j s_rj·Σ q·a, exact.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaledSubBlockSums<TDot>(byte* pk, int subBlocks, int steps, byte* a0, byte* a1, byte* a2, byte* a3,
        out Vector256<int> i0, out Vector256<int> i1, out Vector256<int> i2, out Vector256<int> i3) where TDot : struct, IByteDot
    {
        i0 = i1 = i2 = i3 = default;
        byte* v = pk;
        for (int j = 0; j < subBlocks; j++, v += 32 * steps)
        {
            Vector256<int> p0 = default, p1 = default, p2 = default, p3 = default;
            int o = 4 + 4 * steps * j;
            for (int s = 0; s < steps; s++)
            {
                var w = Vector256.Load(v + 32 * s);
                p0 = TDot.Add(p0, w, Bcast(a0 + o + 4 * s));
                p1 = TDot.Add(p1, w, Bcast(a1 + o + 4 * s));
                p2 = TDot.Add(p2, w, Bcast(a2 + o + 4 * s));
                p3 = TDot.Add(p3, w, Bcast(a3 + o + 4 * s));
            }
            var sc = Avx2.ShiftRightArithmetic(Vector256.Load((int*)(pk + 2048) + 8 * j), 16);   // row r's scale in dword r
            i0 += Avx2.MultiplyLow(p0, sc);
            i1 += Avx2.MultiplyLow(p1, sc);
            i2 += Avx2.MultiplyLow(p2, sc);
            i3 += Avx2.MultiplyLow(p3, sc);
        }
    }
}

/// <summary>
/// acc + Σ of the 4 products u·s (u8 × s8) in each int32 lane: what AVX-VNNI's vpdpbusd does in one instruction. The
/// packed GEMM kernels are generic over it, so the same kernel runs with <see cref="VnniDot"/> on CPUs that have
/// AVX-VNNI and with <see cref="Avx2Dot"/> in the tests of every AVX2 machine.
/// </summary>
internal interface IByteDot
{
    static abstract Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s);
}

/// <summary>vpdpbusd (AVX-VNNI, VEX-encoded: Intel since Alder Lake, AMD since Zen 5).</summary>
internal readonly struct VnniDot : IByteDot
{
    public static bool IsSupported => AvxVnni.IsSupported;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) => AvxVnni.MultiplyWideningAndAdd(acc, u, s);
}

/// <summary>
/// The same sums on AVX2: vpmaddubsw then vpmaddwd against ones. Equal to <see cref="VnniDot"/> whenever no pair sum
/// saturates int16, which holds for the callers (|u·s + u'·s'| ≤ 2·128·127 = 32512 for |w|·sign(a, w) of Q8_0 with
/// Q8_0 activations in ±127; ≤ 2·63·128 = 16128 for the K-quants' u4/u6 against Q8_K's −128..127).
/// </summary>
internal readonly struct Avx2Dot : IByteDot
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Add(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s) => acc + Simd.DotUnsigned(u, s);
}
