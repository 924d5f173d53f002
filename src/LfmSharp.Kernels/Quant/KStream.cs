using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The "stream order" of Q4_K and Q6_K super-blocks in the interleaved copy (<see cref="Interleaved8"/>) and of the
/// Q8_K activations the 8-row decode kernels (<see cref="MatVec8"/>) dot them with.
/// </summary>
/// <remarks>
/// The decode kernels multiply 32 weight bytes by 32 activation bytes with <c>vpmaddubsw</c>, which sums adjacent
/// pairs into 16 int16 lanes. In GGUF order each 32-byte run lies inside one sub-block, so the 8 (Q4_K) or 16 (Q6_K)
/// runs of a super-block are 8 or 16 vectors of partial sums, and folding them before their sub-block scales can be
/// applied took six horizontal adds per row and super-block — the kernels' bottleneck. In stream order, dword d of
/// every 32-byte vector belongs to sub-block d (Q4_K) or 8·h + d (Q6_K, half h): the int16 lanes of all vectors line
/// up with the same sub-blocks, so the partial sums are added lane by lane (Q4_K: all 8, |Σ| ≤ 8·2·15·128 = 30720;
/// Q6_K: 2 at a time, ≤ 2·2·63·128 = 32256, both within int16) and one <c>vpmaddwd</c> with each row's scales does
/// all of them. The integer total per row and super-block is the same, so results keep their bits.
/// <para>Stream position s = 32·v + 4·d + i (vector v, dword d, byte i) holds the value of natural index
/// <see cref="Q4KNatural"/>(s) = 32·d + 4·v + i (an 8×8 dword transpose of the super-block), resp.
/// <see cref="Q6KNatural"/>(s) = 128·(v/4) + 16·d + 4·(v%4) + i (an 8×4 transpose per half). The weights keep their
/// bit layout (Q4_K: the low nibbles of 32 bytes are vector 2u, their high nibbles vector 2u+1; Q6_K: ql and qh as in
/// GGUF, decoded with the same operations), only the values move; the sub-block scales, mins, d and the activations'
/// d and bsums stay in natural order.</para>
/// </remarks>
internal static unsafe class KStream
{
    /// <summary>Natural index (0..255) of the value at stream position <paramref name="s"/> of a Q4_K super-block.</summary>
    public static int Q4KNatural(int s) => 32 * ((s & 31) >> 2) + 4 * (s >> 5) + (s & 3);

    /// <summary>Natural index (0..255) of the value at stream position <paramref name="s"/> of a Q6_K super-block.</summary>
    public static int Q6KNatural(int s) => 128 * (s >> 7) + 16 * ((s & 31) >> 2) + 4 * ((s >> 5) & 3) + (s & 3);

    /// <summary>In-register 8×8 transpose of dwords: afterwards a_j dword r = (before) a_r dword j.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose8x8(ref Vector256<int> a0, ref Vector256<int> a1, ref Vector256<int> a2, ref Vector256<int> a3,
        ref Vector256<int> a4, ref Vector256<int> a5, ref Vector256<int> a6, ref Vector256<int> a7)
    {
        var t0 = Avx2.UnpackLow(a0, a1); var t1 = Avx2.UnpackHigh(a0, a1);
        var t2 = Avx2.UnpackLow(a2, a3); var t3 = Avx2.UnpackHigh(a2, a3);
        var t4 = Avx2.UnpackLow(a4, a5); var t5 = Avx2.UnpackHigh(a4, a5);
        var t6 = Avx2.UnpackLow(a6, a7); var t7 = Avx2.UnpackHigh(a6, a7);
        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32(); var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32();
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32(); var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32();
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32(); var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32(); var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
        a0 = Avx2.Permute2x128(u0, u4, 0x20); a1 = Avx2.Permute2x128(u1, u5, 0x20);
        a2 = Avx2.Permute2x128(u2, u6, 0x20); a3 = Avx2.Permute2x128(u3, u7, 0x20);
        a4 = Avx2.Permute2x128(u0, u4, 0x31); a5 = Avx2.Permute2x128(u1, u5, 0x31);
        a6 = Avx2.Permute2x128(u2, u6, 0x31); a7 = Avx2.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>4×4 transpose of dwords in each 128-bit lane (its own inverse).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose4x4(ref Vector256<int> x0, ref Vector256<int> x1, ref Vector256<int> x2, ref Vector256<int> x3)
    {
        var t0 = Avx2.UnpackLow(x0, x1); var t1 = Avx2.UnpackLow(x2, x3);
        var t2 = Avx2.UnpackHigh(x0, x1); var t3 = Avx2.UnpackHigh(x2, x3);
        x0 = Avx2.UnpackLow(t0.AsInt64(), t1.AsInt64()).AsInt32(); x1 = Avx2.UnpackHigh(t0.AsInt64(), t1.AsInt64()).AsInt32();
        x2 = Avx2.UnpackLow(t2.AsInt64(), t3.AsInt64()).AsInt32(); x3 = Avx2.UnpackHigh(t2.AsInt64(), t3.AsInt64()).AsInt32();
    }

    // ---- activations (per matmul and token, before the decode kernels) ----------------------------------------

    /// <summary>The 256 quants of each of the <paramref name="nb"/> super-blocks of a Q8_K row, in Q4_K stream order, to <paramref name="dst"/> (256 B per super-block).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4KActivations(byte* q8k, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += 256)
        {
            int* q = (int*)(q8k + b * 292 + 4);
            var a0 = Vector256.Load(q); var a1 = Vector256.Load(q + 8); var a2 = Vector256.Load(q + 16); var a3 = Vector256.Load(q + 24);
            var a4 = Vector256.Load(q + 32); var a5 = Vector256.Load(q + 40); var a6 = Vector256.Load(q + 48); var a7 = Vector256.Load(q + 56);
            Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
            int* o = (int*)dst;
            a0.Store(o); a1.Store(o + 8); a2.Store(o + 16); a3.Store(o + 24);
            a4.Store(o + 32); a5.Store(o + 40); a6.Store(o + 48); a7.Store(o + 56);
        }
    }

    /// <summary>As <see cref="Q4KActivations"/>, in Q6_K stream order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6KActivations(byte* q8k, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++)
        {
            for (int h = 0; h < 2; h++, dst += 128)
            {
                // The half's 128 bytes as 8 rows of 4 dwords; x_d = [row d | row d+4].
                int* q = (int*)(q8k + b * 292 + 4 + 128 * h);
                var x0 = Vector256.Create(Vector128.Load(q), Vector128.Load(q + 16));
                var x1 = Vector256.Create(Vector128.Load(q + 4), Vector128.Load(q + 20));
                var x2 = Vector256.Create(Vector128.Load(q + 8), Vector128.Load(q + 24));
                var x3 = Vector256.Create(Vector128.Load(q + 12), Vector128.Load(q + 28));
                Transpose4x4(ref x0, ref x1, ref x2, ref x3);
                int* o = (int*)dst;
                x0.Store(o); x1.Store(o + 8); x2.Store(o + 16); x3.Store(o + 24);
            }
        }
    }

    // ---- weights (load time, and the packed GEMM reads stream order) -----------------------------------------

    /// <summary>One Q4_K super-block's 128 quant bytes from GGUF order (<paramref name="qs"/>) to stream order (<paramref name="dst"/>).</summary>
    public static void Q4KToStream(byte* qs, byte* dst)
    {
        if (Avx2.IsSupported)
            Q4KTranspose(qs, dst);
        else
            Scalar(qs, dst, q6: false, toStream: true);
    }

    /// <summary>The inverse of <see cref="Q4KToStream"/>.</summary>
    public static void Q4KFromStream(byte* src, byte* qs)
    {
        if (Avx2.IsSupported)
            Q4KTranspose(src, qs);
        else
            Scalar(src, qs, q6: false, toStream: false);
    }

    /// <summary>
    /// Both directions are the same 8×8 dword transpose of the unpacked values: in GGUF order the low (high) nibbles of
    /// the 32 bytes at 32·c are sub-block 2c (2c+1), one dword per 4 values; in stream order they are vector 2u (2u+1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Q4KTranspose(byte* src, byte* dst)
    {
        var low = Vector256.Create((byte)0x0F);
        var b0 = Vector256.Load(src); var b1 = Vector256.Load(src + 32); var b2 = Vector256.Load(src + 64); var b3 = Vector256.Load(src + 96);
        var a0 = (b0 & low).AsInt32(); var a1 = Simd.HighNibbles(b0);
        var a2 = (b1 & low).AsInt32(); var a3 = Simd.HighNibbles(b1);
        var a4 = (b2 & low).AsInt32(); var a5 = Simd.HighNibbles(b2);
        var a6 = (b3 & low).AsInt32(); var a7 = Simd.HighNibbles(b3);
        Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        (a0.AsByte() | Avx2.ShiftLeftLogical(a1.AsUInt16(), 4).AsByte()).Store(dst);
        (a2.AsByte() | Avx2.ShiftLeftLogical(a3.AsUInt16(), 4).AsByte()).Store(dst + 32);
        (a4.AsByte() | Avx2.ShiftLeftLogical(a5.AsUInt16(), 4).AsByte()).Store(dst + 64);
        (a6.AsByte() | Avx2.ShiftLeftLogical(a7.AsUInt16(), 4).AsByte()).Store(dst + 96);
    }

    /// <summary>One Q6_K super-block's ql (128 B) and qh (64 B) at <paramref name="src"/> from GGUF to stream order at <paramref name="dst"/> (same shape).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6KToStream(byte* src, byte* dst)
    {
        if (!Avx2.IsSupported)
        {
            Scalar(src, dst, q6: true, toStream: true);
            return;
        }
        for (int h = 0; h < 2; h++)
        {
            Q6K.DecodeHalf(src, h, out var r0, out var r1, out var r2, out var r3);   // runs of 32 natural values
            // Rows of 4 dwords: run m holds rows 2m (low lane) and 2m+1 (high); the transpose wants x_d = [row d | row d+4].
            var x0 = Avx2.Permute2x128(r0, r2, 0x20); var x1 = Avx2.Permute2x128(r0, r2, 0x31);
            var x2 = Avx2.Permute2x128(r1, r3, 0x20); var x3 = Avx2.Permute2x128(r1, r3, 0x31);
            Transpose4x4(ref x0, ref x1, ref x2, ref x3);
            Q6KEncode(x0, x1, x2, x3, dst, h);
        }
    }

    /// <summary>The inverse of <see cref="Q6KToStream"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6KFromStream(byte* src, byte* dst)
    {
        if (!Avx2.IsSupported)
        {
            Scalar(src, dst, q6: true, toStream: false);
            return;
        }
        for (int h = 0; h < 2; h++)
        {
            Q6K.DecodeHalf(src, h, out var x0, out var x1, out var x2, out var x3);
            Transpose4x4(ref x0, ref x1, ref x2, ref x3);
            Q6KEncode(Avx2.Permute2x128(x0, x1, 0x20), Avx2.Permute2x128(x2, x3, 0x20),
                Avx2.Permute2x128(x0, x1, 0x31), Avx2.Permute2x128(x2, x3, 0x31), dst, h);
        }
    }

    /// <summary>The inverse of <see cref="Q6K.DecodeHalf"/>: four vectors of 6-bit values to half <paramref name="h"/>'s ql and qh at <paramref name="x"/>.</summary>
    private static void Q6KEncode(Vector256<int> q1, Vector256<int> q2, Vector256<int> q3, Vector256<int> q4, byte* x, int h)
    {
        var low = Vector256.Create((byte)0x0F);
        var b1 = q1.AsByte(); var b2 = q2.AsByte(); var b3 = q3.AsByte(); var b4 = q4.AsByte();
        ((b1 & low) | Avx2.ShiftLeftLogical((b3 & low).AsUInt16(), 4).AsByte()).Store(x + 64 * h);
        ((b2 & low) | Avx2.ShiftLeftLogical((b4 & low).AsUInt16(), 4).AsByte()).Store(x + 64 * h + 32);
        var top = Vector256.Create((byte)0x30);
        (Avx2.ShiftRightLogical((b1 & top).AsUInt16(), 4).AsByte() | Avx2.ShiftRightLogical((b2 & top).AsUInt16(), 2).AsByte()
            | (b3 & top) | Avx2.ShiftLeftLogical((b4 & top).AsUInt16(), 2).AsByte()).Store(x + 128 + 32 * h);
    }

    // ---- scalar twins: the definitions above, value by value ---------------------------------------------------

    /// <summary>
    /// The conversions by <see cref="Q4KNatural"/> / <see cref="Q6KNatural"/>, one value at a time (machines without
    /// AVX2, and the reference the vector code is tested against). Both orders share the bit layout, so value k of
    /// either sits where value k of a GGUF super-block would.
    /// </summary>
    internal static void Scalar(byte* src, byte* dst, bool q6, bool toStream)
    {
        byte* v = stackalloc byte[256];
        byte* o = stackalloc byte[256];
        for (int k = 0; k < 256; k++)
            v[k] = (byte)(q6 ? Q6KValue(src, k) : Q4KValue(src, k));
        for (int s = 0; s < 256; s++)
        {
            int n = q6 ? Q6KNatural(s) : Q4KNatural(s);
            if (toStream)
                o[s] = v[n];
            else
                o[n] = v[s];
        }
        new Span<byte>(dst, q6 ? 192 : 128).Clear();
        for (int k = 0; k < 256; k++)
        {
            if (q6)
                SetQ6KValue(dst, k, o[k]);
            else
                dst[32 * (k >> 6) + (k & 31)] |= (byte)(o[k] << ((k & 32) >> 3));
        }
    }

    /// <summary>Value k of a Q4_K super-block's 128 quant bytes: bytes 32·(k/64).., low nibbles for k % 64 &lt; 32.</summary>
    internal static int Q4KValue(byte* qs, int k) => (qs[32 * (k >> 6) + (k & 31)] >> ((k & 32) >> 3)) & 0x0F;

    /// <summary>Value k of a Q6_K super-block's ql (128 B) + qh (64 B): half h = k/128, run m = k%128/32, position p = k%32.</summary>
    internal static int Q6KValue(byte* x, int k)
    {
        int h = k >> 7, m = (k >> 5) & 3, p = k & 31;
        int lowBits = (x[64 * h + 32 * (m & 1) + p] >> (4 * (m >> 1))) & 0x0F;
        return lowBits | (((x[128 + 32 * h + p] >> (2 * m)) & 3) << 4);
    }

    private static void SetQ6KValue(byte* x, int k, int value)
    {
        int h = k >> 7, m = (k >> 5) & 3, p = k & 31;
        x[64 * h + 32 * (m & 1) + p] |= (byte)((value & 0x0F) << (4 * (m >> 1)));
        x[128 + 32 * h + p] |= (byte)((value >> 4) << (2 * m));
    }

    /// <summary>The activation conversions one byte at a time (the reference for <see cref="Q4KActivations"/> / <see cref="Q6KActivations"/>).</summary>
    internal static void ActivationsScalar(byte* q8k, int nb, byte* dst, bool q6)
    {
        for (int b = 0; b < nb; b++)
            for (int s = 0; s < 256; s++)
                dst[256 * b + s] = q8k[292 * b + 4 + (q6 ? Q6KNatural(s) : Q4KNatural(s))];
    }
}
