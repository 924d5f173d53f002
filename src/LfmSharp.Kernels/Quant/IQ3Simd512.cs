using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>One IQ3 format for <see cref="IQ3Simd512"/>: where a row keeps its 64 grid indices, sign bits and scales.</summary>
internal unsafe interface IIQ3Row
{
    /// <summary>Bytes per super-block (its f16 d first).</summary>
    static abstract int BlockBytes { get; }

    /// <summary>The factor of the row's sum at the end (ggml's 0.25 of IQ3_XXS; else 1).</summary>
    static abstract float Final { get; }

    /// <summary>The type's AVX2 row dot (what a group with an Inf/NaN scale is recomputed with).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }

    /// <summary>The grid's code planes (<see cref="IQ3Simd512.BuildCodes"/>) as a pointer.</summary>
    static abstract byte* Codes { get; }

    /// <summary>vpermb table of period 8: byte i is the grid level whose 3-bit code is i &amp; 7.</summary>
    static abstract Vector512<byte> Levels { get; }

    /// <summary>
    /// The low and high code bytes of the row's 64 grid points, its 32 sign bytes (bit j of byte t set: weight 8t + j
    /// negative), and ls = 2s + 1 of sub-block 2k + h in byte 8k + h.
    /// </summary>
    static abstract void Row(byte* x, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<byte> signs, out Vector512<byte> ls);
}

/// <summary>
/// The 8-row IQ3_XXS / IQ3_S decode kernel on AVX-512 VBMI and GFNI: <see cref="IQ2Simd512"/>'s byte-permute lookups
/// for grids of 4-weight points. Bit-identical to the scalar dots.
/// </summary>
/// <remarks>
/// <para>Why: the AVX2 kernel (<see cref="MatVec8IQ"/> with <see cref="IQBlockSums"/>) makes each grid point a scalar
/// load and an insert (64 per row and super-block) and left IQ3_XXS decode at ~1.0–1.1× llama.cpp's. Here a point is a
/// 12-bit code (3 bits per weight: its level among the grid's 8), so a grid of 256·B points is two planes of 256·B
/// bytes, and one row's super-block takes:</para>
/// <list type="bullet">
/// <item>its 64 indices looked up in both planes by <c>vpermt2b</c> (two and a blend per plane and bank, a blend
/// across banks);</item>
/// <item>its signs and scales as <see cref="IIQ3Row.Row"/> cuts them out (IQ3_XXS: <c>vpmultishiftqb</c> and one
/// <c>gf2p8affineqb</c> for ksigns);</item>
/// <item>per 64 weights: two points' codes per qword (<c>vpermt2b</c>), each weight's level index cut out by
/// <c>vpmultishiftqb</c> and mapped by a <c>vpermb</c> table, the signs put on the activations by a byte blend of q
/// and −q, <c>vpmaddubsw</c>, <c>vpmaddwd</c> with the scales.</item>
/// </list>
/// <para>Input contract: Q8_K quants within ±127, as for <see cref="IQ2Simd512"/> (−(−128) wraps).</para>
/// </remarks>
internal static unsafe class IQ3Simd512
{
    /// <summary>True where the kernel runs (AVX-512 VBMI and GFNI on 512-bit vectors).</summary>
    public static bool IsSupported => IQ2Simd512.IsSupported;

    /// <summary>
    /// The code planes of <paramref name="grid"/> (4 bytes per point, each one of <paramref name="levels"/>): bytes
    /// [0, n) bits 0..7 of each point's code, [n, 2n) bits 8..11; weight j's level index sits at bits 3j..3j+2. Pinned.
    /// </summary>
    internal static byte[] BuildCodes(ReadOnlySpan<uint> grid, ReadOnlySpan<byte> levels)
    {
        int n = grid.Length;
        var c = GC.AllocateArray<byte>(2 * n, pinned: true);
        for (int i = 0; i < n; i++)
        {
            int code = 0;
            for (int j = 0; j < 4; j++)
            {
                int level = levels.IndexOf((byte)(grid[i] >> (8 * j)));
                if (level < 0)
                    throw new InvalidOperationException($"grid point {i} has a byte outside its 8 levels");
                code |= level << (3 * j);
            }
            c[i] = (byte)code;
            c[n + i] = (byte)(code >> 8);
        }
        return c;
    }

    /// <summary>8 GGUF rows · one Q8_K row (<see cref="TypeTraits.Decode8"/>), the float steps of <see cref="MatVec8IQ.Decode{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Decode8<T>(in Group8 g) where T : struct, IIQ3Row
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        var sums = stackalloc Vector512<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        byte* next = w + 8L * rowBytes;
        byte* codes = T.Codes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * T.BlockBytes, ab = a + 292 * b;
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            IQ2Simd512.Activations((sbyte*)(ab + 4), out var q0, out var q1, out var q2, out var q3, out var n0, out var n1, out var n2, out var n3);
            // One inlined copy of the row code in a loop (eight would outgrow the JIT's tracked locals).
            for (int r = 0; r < 8; r++)
            {
                T.Row(x + (long)r * rowBytes, codes, out var lo, out var hi, out var signs, out var ls);
                sums[r] = Quad<T>(lo, hi, signs, ls, 0, q0, n0) + Quad<T>(lo, hi, signs, ls, 1, q1, n1)
                        + (Quad<T>(lo, hi, signs, ls, 2, q2, n2) + Quad<T>(lo, hi, signs, ls, 3, q3, n3));
            }
            var tot = Vector256.ConvertToSingle(MatVec8IQ4XS.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = MatVec8.RowHalves(x, rowStep, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the scalar's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(T.Final)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>
    /// Σ ls·(g·s·q) over weights 64k..64k+63 (points 16k..16k+15, sub-blocks 2k and 2k + 1) against their activations
    /// <paramref name="q"/> (and negations <paramref name="n"/>), as 16 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad<T>(Vector512<byte> lo, Vector512<byte> hi, Vector512<byte> signs, Vector512<byte> ls, int k,
        Vector512<sbyte> q, Vector512<sbyte> n) where T : struct, IIQ3Row
    {
        // Qword e: the codes of points 16k + 2e (bytes 0, 1) and 16k + 2e + 1 (bytes 2, 3); bytes 4..7 are not read.
        var code = Avx512Vbmi.PermuteVar64x8x2(lo, Vector512.Create(0x41014000ul, 0x43034202ul, 0x45054404ul, 0x47074606ul,
            0x49094808ul, 0x4B0B4A0Aul, 0x4D0D4C0Cul, 0x4F0F4E0Eul).AsByte() + Vector512.Create((byte)(16 * k)), hi);
        // Byte j of qword e: weight 64k + 8e + j's level index in its low 3 bits, mapped by a table of period 8.
        var sel = Avx512Vbmi.MultiShift(Vector512.Create(0x1916131009060300ul).AsByte(), code.AsUInt64());
        var grid = Avx512Vbmi.PermuteVar64x8(T.Levels, sel);
        var pairs = Avx512BW.MultiplyAddAdjacent(grid, IQ2Simd512.Signed(signs, Vector512.Create((byte)(8 * k)), q, n));
        // Words 0..15 take ls byte 8k (sub-block 2k), words 16..31 byte 8k + 1; index 64 is a zero byte.
        ulong w0 = 0x4000_4000_4000_4000ul + 0x0001_0001_0001_0001ul * (ulong)(8 * k), w1 = w0 + 0x0001_0001_0001_0001ul;
        var scales = Avx512Vbmi.PermuteVar64x8x2(ls, Vector512.Create(w0, w0, w0, w0, w1, w1, w1, w1).AsByte(), Vector512<byte>.Zero);
        return Avx512BW.MultiplyAddAdjacent(pairs, scales.AsInt16());
    }
}

/// <summary>IQ3_XXS for <see cref="IQ3Simd512"/>: 64 grid indices at 2, then 8 aux words (4 × 7 sign-index bits, the scale in bits 28..31).</summary>
internal unsafe struct IQ3XXSRow : IIQ3Row
{
    /// <summary>The code planes of iq3xxs_grid (levels 4, 12, ..., 52, 62).</summary>
    internal static readonly byte[] CodeArray = IQ3Simd512.BuildCodes(IQTables.Iq3XxsGrid, [4, 12, 20, 28, 36, 44, 52, 62]);

    public static int BlockBytes => 98;

    public static float Final => 0.25f;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ3XXS.DotAvx2;

    public static byte* Codes => IQ2Simd512.Pointer(CodeArray);

    public static Vector512<byte> Levels
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(0x3E342C241C140C04ul).AsByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Row(byte* x, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<byte> signs, out Vector512<byte> ls)
    {
        var idx = Vector512.Load(x + 2);
        lo = IQ2Simd512.Lookup(codes, idx);
        hi = IQ2Simd512.Lookup(codes + 256, idx);
        // The 8 aux words, 32 bytes: the block ends there.
        var aux = Vector256.Load(x + 66).ToVector512Unsafe().AsUInt64();
        // Byte 8q + m: sign index m % 4 of aux word 2q + m / 4, i.e. sign byte 8q + m; ksigns adds the parity.
        var f = Avx512Vbmi.MultiShift(Vector512.Create(0x352E2720150E0700ul).AsByte(), aux);
        signs = Gfni.V512.GaloisFieldAffineTransform(f, Vector512.Create(IQ2XXSPair.KSignsMatrix).AsByte(), 0);
        // s of sub-block 2q + h: bits 28..31 of its word, into byte 8q + h (the table ignores the bits above).
        ls = Avx512Vbmi.PermuteVar64x8(IQ2Simd512.LsTable, Avx512Vbmi.MultiShift(Vector512.Create(0x3C1Cul).AsByte(), aux));
    }
}

/// <summary>
/// IQ3_S for <see cref="IQ3Simd512"/>: low index bytes at 2, one high index bit per point at 66, sign bytes at 74, a
/// scale nibble per sub-block at 106. The grid has 512 points: the high bit picks the bank.
/// </summary>
internal unsafe struct IQ3SRow : IIQ3Row
{
    /// <summary>The code planes of iq3s_grid (levels 1, 3, ..., 15).</summary>
    internal static readonly byte[] CodeArray = IQ3Simd512.BuildCodes(IQTables.Iq3SGrid, [1, 3, 5, 7, 9, 11, 13, 15]);

    public static int BlockBytes => 110;

    public static float Final => 1f;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ3S.DotAvx2;

    public static byte* Codes => IQ2Simd512.Pointer(CodeArray);

    public static Vector512<byte> Levels
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector512.Create(0x0F0D0B0907050301ul).AsByte();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Row(byte* x, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi, out Vector512<byte> signs, out Vector512<byte> ls)
    {
        var idx = Vector512.Load(x + 2);
        // Point i's bank: bit i % 8 of qh byte i / 8.
        var qh = Avx512Vbmi.PermuteVar64x8(Vector128.CreateScalar(*(ulong*)(x + 66)).ToVector256Unsafe().ToVector512Unsafe().AsByte(),
            Vector512.Create(0x0000000000000000ul, 0x0101010101010101ul, 0x0202020202020202ul, 0x0303030303030303ul,
                0x0404040404040404ul, 0x0505050505050505ul, 0x0606060606060606ul, 0x0707070707070707ul).AsByte());
        var bank0 = Vector512.Equals(qh & IQ2Simd512.BitOfByte, Vector512<byte>.Zero);
        lo = Vector512.ConditionalSelect(bank0, IQ2Simd512.Lookup(codes, idx), IQ2Simd512.Lookup(codes + 256, idx));
        hi = Vector512.ConditionalSelect(bank0, IQ2Simd512.Lookup(codes + 512, idx), IQ2Simd512.Lookup(codes + 768, idx));
        signs = Vector256.Load(x + 74).ToVector512Unsafe();
        // s of sub-block 2k + h: nibble h of scale byte k, into byte 8k + h (the table ignores the bits above).
        ls = Avx512Vbmi.PermuteVar64x8(IQ2Simd512.LsTable, Avx512Vbmi.MultiShift(
            Vector512.Create(0x0400ul, 0x0C08ul, 0x1410ul, 0x1C18ul, 0ul, 0ul, 0ul, 0ul).AsByte(), Vector512.Create((ulong)*(uint*)(x + 106))));
    }
}
