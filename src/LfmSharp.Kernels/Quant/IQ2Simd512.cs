using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// One IQ2 format for <see cref="IQ2Simd512"/>: where a pair of rows keeps its 64 grid indices, sign bits and scales.
/// Entry e of a pair (0..63) is group e % 4 of sub-block (e / 4) % 8 of row e / 32.
/// </summary>
internal unsafe interface IIQ2Pair
{
    /// <summary>Bytes per super-block (its f16 d first).</summary>
    static abstract int BlockBytes { get; }

    /// <summary>The type's AVX2 row dot (what a group with an Inf/NaN scale is recomputed with).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }

    /// <summary>The grid's 2-bit codes (<see cref="IQ2Simd512.BuildCodes"/>) as a pointer.</summary>
    static abstract byte* Codes { get; }

    /// <summary>
    /// The low and high code bytes of the pair's 64 grid points, their sign bytes (bit j set: weight j negative), and
    /// each row's scale bytes (the odd ls = 2s + 1 where <see cref="ScaleControl"/> picks them).
    /// </summary>
    static abstract void Pair(byte* x0, byte* x1, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi,
        out Vector512<byte> signs, out Vector512<byte> ls0, out Vector512<byte> ls1);

    /// <summary>vpermt2b control that zero-extends the scales of sub-blocks 2k, 2k + 1 of a row's ls bytes to the 32 pair-sum words.</summary>
    static abstract Vector512<byte> ScaleControl(int k);

    /// <summary>
    /// vpermt2b control gathering each row's 16 group scales from <see cref="Pair"/>'s ls bytes (bytes 0..15 row 0,
    /// 16..31 row 1) in group order (<see cref="IQ2DecodePair512"/>).
    /// </summary>
    static abstract Vector512<byte> GroupScales { get; }
}

/// <summary>
/// The 8-row IQ2_XXS / IQ2_XS / IQ2_S decode kernel on AVX-512 VBMI and GFNI: the grid and sign tables are looked up
/// with byte permutes instead of 8-byte loads, a pair of rows' 64 grid points at a time. Bit-identical to the scalar dots.
/// </summary>
/// <remarks>
/// <para>Why: the AVX2 kernel (<see cref="IQ2Simd.Decode8{T}"/>) spends about 40 instructions per 32 weights, most
/// of them on four grid loads, four sign loads and their inserts; that put its decode at ~0.96–1.1× llama.cpp's.
/// Here each grid point is a 16-bit code (2 bits per weight: 8, 25, 43), so a grid of 256·B points is two planes of
/// 256·B bytes, and a pair of rows needs per block:</para>
/// <list type="bullet">
/// <item>its 64 indices and sign bytes gathered by <c>vpermt2b</c> (IQ2_XXS's and IQ2_XS's 7-bit sign indices
/// completed to ksigns bytes — bit 7 the parity — by one <c>gf2p8affineqb</c>);</item>
/// <item>per code plane and bank of 256 points two <c>vpermt2b</c> and a blend, and B − 1 blends across banks;</item>
/// <item>per 64 weights: the codes expanded by <c>vpermt2b</c>, <c>vpmultishiftqb</c> and a 64-byte <c>vpermb</c>
/// table, the signs put on the activations by a byte blend of q and −q, <c>vpmaddubsw</c>, <c>vpmaddwd</c> with the
/// scales.</item>
/// </list>
/// <para>Input contract: Q8_K quants within ±127 (what <see cref="Q8K.QuantizeRow"/> writes: the block's largest |x|
/// maps to ±127, and Inf/NaN/subnormal blocks give quants in [0, 127]), because −(−128) wraps. The AVX2 kernel and the
/// scalar dot stay exact at −128 and remain the reference.</para>
/// </remarks>
internal static unsafe class IQ2Simd512
{
    /// <summary>True where these kernels run (AVX-512 VBMI and GFNI on 512-bit vectors).</summary>
    public static bool IsSupported => Avx512Vbmi.IsSupported && Gfni.V512.IsSupported;

    /// <summary>
    /// The code planes of <paramref name="grid"/> (8 bytes of 8, 25 or 43 per point): bytes [0, n) the low code bytes,
    /// [n, 2n) the high ones; weight j's code (0, 1, 2) sits at bits 2j..2j+1 of its point's 16-bit code. Pinned.
    /// </summary>
    public static byte[] BuildCodes(ReadOnlySpan<ulong> grid)
    {
        int n = grid.Length;
        var c = GC.AllocateArray<byte>(2 * n, pinned: true);
        for (int i = 0; i < n; i++)
        {
            int code = 0;
            for (int j = 0; j < 8; j++)
            {
                int v = (int)(grid[i] >> (8 * j)) & 0xFF;
                code |= (v == 8 ? 0 : v == 25 ? 1 : 2) << (2 * j);
            }
            c[i] = (byte)code;
            c[n + i] = (byte)(code >> 8);
        }
        return c;
    }

    /// <summary>A pinned array's first element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte* Pointer(byte[] pinned) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));

    /// <summary>8 GGUF rows · one Q8_K row (<see cref="TypeTraits.Decode8"/>), the float steps of <see cref="IQ2Simd.Decode8{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Decode8<T>(in Group8 g) where T : struct, IIQ2Pair
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        var sums = stackalloc Vector256<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        byte* next = w + 8L * rowBytes;
        byte* codes = T.Codes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * T.BlockBytes, ab = a + 292 * b;
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            Activations((sbyte*)(ab + 4), out var q0, out var q1, out var q2, out var q3, out var n0, out var n1, out var n2, out var n3);
            // One inlined copy of the pair code in a loop keeps the method small (four copies add no registers to use).
            for (int p = 0; p < 8; p += 2)
            {
                byte* x0 = x + (long)p * rowBytes;
                T.Pair(x0, x0 + rowBytes, codes, out var lo, out var hi, out var ks, out var ls0, out var ls1);
                var s0 = Quad<T>(lo, hi, ks, ls0, 0, q0, n0) + Quad<T>(lo, hi, ks, ls0, 1, q1, n1)
                       + Quad<T>(lo, hi, ks, ls0, 2, q2, n2) + Quad<T>(lo, hi, ks, ls0, 3, q3, n3);
                var s1 = Quad<T>(lo, hi, ks, ls1, 4, q0, n0) + Quad<T>(lo, hi, ks, ls1, 5, q1, n1)
                       + Quad<T>(lo, hi, ks, ls1, 6, q2, n2) + Quad<T>(lo, hi, ks, ls1, 7, q3, n3);
                sums[p] = s0.GetLower() + s0.GetUpper();
                sums[p + 1] = s1.GetLower() + s1.GetUpper();
            }
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = MatVec8.RowHalves(x, rowStep, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the scalar's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(0.125f)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>
    /// Σ ls·(g·s·q) over the pair's entries 8k..8k+7 (two sub-blocks of one row, 64 weights) against the activations
    /// <paramref name="q"/> (and their negations <paramref name="n"/>) of those sub-blocks, as 16 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad<T>(Vector512<byte> lo, Vector512<byte> hi, Vector512<byte> signs, Vector512<byte> ls, int k,
        Vector512<sbyte> q, Vector512<sbyte> n) where T : struct, IIQ2Pair
    {
        var k8 = Vector512.Create((byte)(8 * k));
        // Qword e: the code of entry 8k + e in its bytes 0 (low) and 1 (high); byte j of the shift picks bits 2j...
        var code = Avx512Vbmi.PermuteVar64x8x2(lo, Vector512.Create(0x4000400040004000ul, 0x4101410141014101ul,
            0x4202420242024202ul, 0x4303430343034303ul, 0x4404440444044404ul, 0x4505450545054505ul,
            0x4606460646064606ul, 0x4707470747074707ul).AsByte() + k8, hi);
        var sel = Avx512Vbmi.MultiShift(Vector512.Create(0x0E0C0A0806040200ul).AsByte(), code.AsUInt64());
        // ... whose low 2 bits a 64-byte table maps to the grid value.
        var grid = Avx512Vbmi.PermuteVar64x8(Vector512.Create(0x002B1908002B1908ul).AsByte(), sel);
        var pairs = Avx512BW.MultiplyAddAdjacent(grid, Signed(signs, k8, q, n));
        var scales = Avx512Vbmi.PermuteVar64x8x2(ls, T.ScaleControl(k & 3), Vector512<byte>.Zero);
        return Avx512BW.MultiplyAddAdjacent(pairs, scales.AsInt16());
    }

    /// <summary>A Q8_K block's 256 quants as four zmm and their negations (the two sides of <see cref="Signed"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Activations(sbyte* q8, out Vector512<sbyte> q0, out Vector512<sbyte> q1, out Vector512<sbyte> q2, out Vector512<sbyte> q3,
        out Vector512<sbyte> n0, out Vector512<sbyte> n1, out Vector512<sbyte> n2, out Vector512<sbyte> n3)
    {
        AssertQ8K(q8);
        q0 = Vector512.Load(q8);
        q1 = Vector512.Load(q8 + 64);
        q2 = Vector512.Load(q8 + 128);
        q3 = Vector512.Load(q8 + 192);
        n0 = -q0;
        n1 = -q1;
        n2 = -q2;
        n3 = -q3;
    }

    /// <summary>
    /// The activations of weights 64k..64k+63 with the weights' signs: byte 8e + j is −q where bit j of sign byte
    /// 8k + e is set, else q (a byte blend; <paramref name="n"/> = −<paramref name="q"/>; <paramref name="k8"/> = 8k in every byte).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<sbyte> Signed(Vector512<byte> signs, Vector512<byte> k8, Vector512<sbyte> q, Vector512<sbyte> n)
    {
        var spread = Avx512Vbmi.PermuteVar64x8(signs, Vector512.Create(0x0000000000000000ul, 0x0101010101010101ul,
            0x0202020202020202ul, 0x0303030303030303ul, 0x0404040404040404ul, 0x0505050505050505ul,
            0x0606060606060606ul, 0x0707070707070707ul).AsByte() + k8);
        return Vector512.ConditionalSelect(Vector512.Equals(spread & BitOfByte, Vector512<byte>.Zero).AsSByte(), q, n);   // vptestnmb
    }

    /// <summary>Bit j % 8 in byte j.</summary>
    public static Vector512<byte> BitOfByte
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(0x8040201008040201ul).AsByte();
    }

    /// <summary>Code bytes (one plane, 256 points at <paramref name="t"/>) of the 64 points whose low index bytes are <paramref name="idx"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> Lookup(byte* t, Vector512<byte> idx)
        => Avx512BW.BlendVariable(Avx512Vbmi.PermuteVar64x8x2(Vector512.Load(t), idx, Vector512.Load(t + 64)),
            Avx512Vbmi.PermuteVar64x8x2(Vector512.Load(t + 128), idx, Vector512.Load(t + 192)), idx);   // index bit 7: the upper 128

    /// <summary>
    /// ls = 2s + 1 of the 16 nibbles of the 8 scale bytes at <paramref name="p"/> (IQ2_XS, IQ2_S: low nibble for groups
    /// 0–1 of sub-block ib, high for 2–3) in bytes 0..15: byte 2ib + h = nibble h of byte ib.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> NibbleScales(byte* p)
    {
        var nib = Avx512Vbmi.MultiShift(Vector512.Create(0x1C1814100C080400ul, 0x3C3834302C282420ul, 0, 0, 0, 0, 0, 0).AsByte(),
            Vector512.Create(*(ulong*)p));
        return Avx512Vbmi.PermuteVar64x8(LsTable, nib);
    }

    /// <summary>vpermb table: byte i is 2·(i &amp; 15) + 1 (a 4-bit scale s to ls, ignoring the index bits above it).</summary>
    public static Vector512<byte> LsTable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(
            0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul, 0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul,
            0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul, 0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul).AsByte();
    }

    /// <summary>The scale control of <see cref="IIQ2Pair.ScaleControl"/> for 16 ls bytes (<see cref="NibbleScales"/>): words 8h..8h+7 take byte 4k + h.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> NibbleScaleControl(int k)
    {
        const ulong word = 0x0001_0001_0001_0001ul, zero = 0x4000_4000_4000_4000ul;
        ulong w0 = zero + word * (ulong)(4 * k), w1 = w0 + word, w2 = w1 + word, w3 = w2 + word;
        return Vector512.Create(w0, w0, w1, w1, w2, w2, w3, w3).AsByte();
    }

    /// <summary>The <see cref="IIQ2Pair.GroupScales"/> of the nibble-scaled types: each row's 16 ls bytes are already in group order.</summary>
    public static Vector512<byte> NibbleGroupScales
        => Vector512.Create(0x0706050403020100ul, 0x0F0E0D0C0B0A0908ul, 0x4746454443424140ul, 0x4F4E4D4C4B4A4948ul, 0, 0, 0, 0).AsByte();

    /// <summary>Picks bytes 0..31 of two 64-byte vectors (vpermt2b control): the low halves of two rows.</summary>
    public static Vector512<byte> Halves0
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(
            0x0706050403020100ul, 0x0F0E0D0C0B0A0908ul, 0x1716151413121110ul, 0x1F1E1D1C1B1A1918ul,
            0x4746454443424140ul, 0x4F4E4D4C4B4A4948ul, 0x5756555453525150ul, 0x5F5E5D5C5B5A5958ul).AsByte();
    }

    /// <summary>Debug check of the input contract: no quant is −128.</summary>
    [Conditional("DEBUG")]
    private static void AssertQ8K(sbyte* q8)
    {
        for (int i = 0; i < 256; i++)
            Debug.Assert(q8[i] != -128, "IQ2Simd512 needs Q8_K quants within ±127");
    }
}
