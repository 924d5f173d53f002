using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// One IQ2 format's exact super-block integer for <see cref="IQ2Simd"/>: Σ over its 8 sub-blocks of ls·Σ ±g·a, as 8
/// int32 lanes whose total is the scalar dot's <c>bsum</c>.
/// </summary>
internal unsafe interface IIQ2Block
{
    /// <summary>Bytes per super-block (its f16 d first).</summary>
    static abstract int BlockBytes { get; }

    /// <summary>
    /// The block's integer against the Q8_K quants <paramref name="q8"/>; <paramref name="scratch"/> holds their |q|
    /// (256 bytes) and then 64 bytes the type may use for its grid indices (<see cref="IQ2Simd.ScratchBytes"/>).
    /// </summary>
    static abstract Vector256<int> BlockSum(byte* x, sbyte* q8, byte* scratch);

    /// <summary>The type's AVX2 row dot (what a group with an Inf/NaN scale is recomputed with).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }
}

/// <summary>
/// AVX2 row dot and 8-row decode kernel of IQ2_XXS, IQ2_XS and IQ2_S against Q8_K, bit-identical to the scalar dots
/// (ggml's generic order: sumf += (d_w·d_a)·bsum per block, 0.125·sumf at the end).
/// </summary>
/// <remarks>
/// Why this shape (the first AVX2 dots ran at ~0.6× llama.cpp's decode): the 8 sub-blocks of a super-block are
/// unrolled (the looped version kept its accumulator in a stack slot, a store-to-load chain per sub-block), the
/// signs come as ±1 bytes from a table (<see cref="SignOnes"/>, ggml's keven_signs) and are applied with vpsignb, and
/// the 8-row kernel (<see cref="Decode8{T}"/>) shares each block's |a| between the rows and does the float steps
/// once per block for 8 rows. Products stay exact for every activation byte (−128 included): the unsigned maddubs
/// operand is |a| and the signed one ±g·sign(a), |pair sum| ≤ 2·128·43. Where AVX-512 VBMI and GFNI run, the type
/// table takes the 8-row kernel from <see cref="IQ2Simd512"/> instead (about twice as fast); the row dots stay here.
/// </remarks>
internal static unsafe class IQ2Simd
{
    /// <summary>Bytes of the per-block scratch the kernels pass to <see cref="IIQ2Block.BlockSum"/>: |a| (256) and 32 index words.</summary>
    public const int ScratchBytes = 256 + 64;

    /// <summary><see cref="SignOnes"/> as a pointer (constant data in the assembly image, which never moves).</summary>
    public static ulong* SignOnesPointer => IQSimd.Pointer(SignOnes);

    /// <summary>
    /// ksigns_iq2xs as ±1 bytes (byte j of entry i is 0xFF where bit j of ksigns[i] is set, else 0x01): vpsignb's sign
    /// operand. Literal data rather than a built array so its address is a constant in the kernels (a static readonly
    /// array cost a class-initialisation check and a load per sub-block); a test derives it from ksigns.
    /// </summary>
    internal static ReadOnlySpan<ulong> SignOnes =>
    [
        0x0101010101010101, 0xFF010101010101FF, 0xFF0101010101FF01, 0x010101010101FFFF,
        0xFF01010101FF0101, 0x0101010101FF01FF, 0x0101010101FFFF01, 0xFF01010101FFFFFF,
        0xFF010101FF010101, 0x01010101FF0101FF, 0x01010101FF01FF01, 0xFF010101FF01FFFF,
        0x01010101FFFF0101, 0xFF010101FFFF01FF, 0xFF010101FFFFFF01, 0x01010101FFFFFFFF,
        0xFF0101FF01010101, 0x010101FF010101FF, 0x010101FF0101FF01, 0xFF0101FF0101FFFF,
        0x010101FF01FF0101, 0xFF0101FF01FF01FF, 0xFF0101FF01FFFF01, 0x010101FF01FFFFFF,
        0x010101FFFF010101, 0xFF0101FFFF0101FF, 0xFF0101FFFF01FF01, 0x010101FFFF01FFFF,
        0xFF0101FFFFFF0101, 0x010101FFFFFF01FF, 0x010101FFFFFFFF01, 0xFF0101FFFFFFFFFF,
        0xFF01FF0101010101, 0x0101FF01010101FF, 0x0101FF010101FF01, 0xFF01FF010101FFFF,
        0x0101FF0101FF0101, 0xFF01FF0101FF01FF, 0xFF01FF0101FFFF01, 0x0101FF0101FFFFFF,
        0x0101FF01FF010101, 0xFF01FF01FF0101FF, 0xFF01FF01FF01FF01, 0x0101FF01FF01FFFF,
        0xFF01FF01FFFF0101, 0x0101FF01FFFF01FF, 0x0101FF01FFFFFF01, 0xFF01FF01FFFFFFFF,
        0x0101FFFF01010101, 0xFF01FFFF010101FF, 0xFF01FFFF0101FF01, 0x0101FFFF0101FFFF,
        0xFF01FFFF01FF0101, 0x0101FFFF01FF01FF, 0x0101FFFF01FFFF01, 0xFF01FFFF01FFFFFF,
        0xFF01FFFFFF010101, 0x0101FFFFFF0101FF, 0x0101FFFFFF01FF01, 0xFF01FFFFFF01FFFF,
        0x0101FFFFFFFF0101, 0xFF01FFFFFFFF01FF, 0xFF01FFFFFFFFFF01, 0x0101FFFFFFFFFFFF,
        0xFFFF010101010101, 0x01FF0101010101FF, 0x01FF01010101FF01, 0xFFFF01010101FFFF,
        0x01FF010101FF0101, 0xFFFF010101FF01FF, 0xFFFF010101FFFF01, 0x01FF010101FFFFFF,
        0x01FF0101FF010101, 0xFFFF0101FF0101FF, 0xFFFF0101FF01FF01, 0x01FF0101FF01FFFF,
        0xFFFF0101FFFF0101, 0x01FF0101FFFF01FF, 0x01FF0101FFFFFF01, 0xFFFF0101FFFFFFFF,
        0x01FF01FF01010101, 0xFFFF01FF010101FF, 0xFFFF01FF0101FF01, 0x01FF01FF0101FFFF,
        0xFFFF01FF01FF0101, 0x01FF01FF01FF01FF, 0x01FF01FF01FFFF01, 0xFFFF01FF01FFFFFF,
        0xFFFF01FFFF010101, 0x01FF01FFFF0101FF, 0x01FF01FFFF01FF01, 0xFFFF01FFFF01FFFF,
        0x01FF01FFFFFF0101, 0xFFFF01FFFFFF01FF, 0xFFFF01FFFFFFFF01, 0x01FF01FFFFFFFFFF,
        0x01FFFF0101010101, 0xFFFFFF01010101FF, 0xFFFFFF010101FF01, 0x01FFFF010101FFFF,
        0xFFFFFF0101FF0101, 0x01FFFF0101FF01FF, 0x01FFFF0101FFFF01, 0xFFFFFF0101FFFFFF,
        0xFFFFFF01FF010101, 0x01FFFF01FF0101FF, 0x01FFFF01FF01FF01, 0xFFFFFF01FF01FFFF,
        0x01FFFF01FFFF0101, 0xFFFFFF01FFFF01FF, 0xFFFFFF01FFFFFF01, 0x01FFFF01FFFFFFFF,
        0xFFFFFFFF01010101, 0x01FFFFFF010101FF, 0x01FFFFFF0101FF01, 0xFFFFFFFF0101FFFF,
        0x01FFFFFF01FF0101, 0xFFFFFFFF01FF01FF, 0xFFFFFFFF01FFFF01, 0x01FFFFFF01FFFFFF,
        0x01FFFFFFFF010101, 0xFFFFFFFFFF0101FF, 0xFFFFFFFFFF01FF01, 0x01FFFFFFFF01FFFF,
        0xFFFFFFFFFFFF0101, 0x01FFFFFFFFFF01FF, 0x01FFFFFFFFFFFF01, 0xFFFFFFFFFFFFFFFF,
    ];

    /// <summary>Σ w·a over <paramref name="nb"/> super-blocks: the scalar dot's float steps over <typeparamref name="T"/>'s exact block integers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static float Dot<T>(byte* w, byte* a, int nb) where T : struct, IIQ2Block
    {
        byte* abs = stackalloc byte[ScratchBytes];
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + (long)T.BlockBytes * i, y = a + 292 * i;
            sbyte* q8 = (sbyte*)(y + 4);
            Abs(q8, abs);
            var acc = T.BlockSum(x, q8, abs);
            float d = QuantMath.HalfToSingle(*(ushort*)x) * *(float*)y;
            sumf += d * Simd.HorizontalSum(acc);
        }
        return 0.125f * sumf;
    }

    /// <summary>
    /// 8 GGUF rows · one Q8_K row (<see cref="TypeTraits.Decode8"/>): per block the 8 rows' integers are gathered into
    /// one vector (lane r = row r) and scaled by their 8 d at once; each lane sees the row dot's float steps exactly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]   // the scratch is written before it is read
    public static void Decode8<T>(in Group8 g) where T : struct, IIQ2Block
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        byte* abs = stackalloc byte[ScratchBytes];
        var sums = stackalloc Vector256<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        byte* next = w + 8L * rowBytes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * T.BlockBytes, ab = a + 292 * b;
            sbyte* q8 = (sbyte*)(ab + 4);
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            Abs(q8, abs);
            // One inlined block sum in a loop (eight call sites would exhaust the JIT's inlining budget).
            for (int r = 0; r < 8; r++)
                sums[r] = T.BlockSum(x + (long)r * rowBytes, q8, abs);
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = MatVec8.RowHalves(x, rowStep, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the scalar's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(0.125f)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>|q| of a Q8_K block's 256 quants (as unsigned bytes: |−128| = 128) into <paramref name="abs"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Abs(sbyte* q8, byte* abs)
    {
        for (int k = 0; k < 256; k += 32)
            Avx2.Abs(Vector256.Load(q8 + k)).Store(abs + k);
    }

    /// <summary>
    /// Σ ls·(±g·a) over one sub-block of 32 as 8 int32 lanes: <paramref name="g"/> the grid magnitudes (≤ 43),
    /// <paramref name="signs"/> ±1 per weight, <paramref name="scales"/> the int16 scale of each pair sum's half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> SubBlock(Vector256<ulong> g, Vector256<sbyte> signs, sbyte* q8, byte* abs, Vector256<short> scales)
    {
        var t = Avx2.Sign(Avx2.Sign(g.AsSByte(), signs), Vector256.Load(q8));
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Load(abs), t), scales);
    }

    /// <summary>vpshufb table of 4-bit parities: byte i (in both 128-bit lanes) is 0x80 where i has an odd number of set bits.</summary>
    public static Vector256<byte> ParityTable
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(0x8000008000808000ul, 0x0080800080000080ul, 0x8000008000808000ul, 0x0080800080000080ul).AsByte();
    }

    /// <summary>
    /// ±1 per weight of sub-block <paramref name="k"/> (0..3) of <paramref name="signs"/>, whose words hold the sign
    /// bytes of 4 sub-blocks in their low bytes: byte j is −1 where bit j % 8 of its group's sign byte is set.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<sbyte> ExpandSigns(Vector256<ushort> signs, int k)
    {
        // Both 128-bit lanes get the half holding sub-block k; vpshufb then spreads its 4 sign bytes over 8 bytes each.
        var half = (k < 2 ? Avx2.Permute4x64(signs.AsUInt64(), 0x44) : Avx2.Permute4x64(signs.AsUInt64(), 0xEE)).AsByte();
        var ctrl = Vector256.Create(0ul, 0x0202020202020202ul, 0x0404040404040404ul, 0x0606060606060606ul).AsByte()
            + Vector256.Create((byte)(8 * (k & 1)));
        var bit = Vector256.Create(0x8040201008040201ul).AsByte();
        return (Avx2.CompareEqual(Avx2.Shuffle(half, ctrl) & bit, bit) | Vector256.Create((byte)1)).AsSByte();
    }

    /// <summary>
    /// The 8 scale bytes at <paramref name="p"/> (two 4-bit s per sub-block) as ls = 2s + 1, in byte order
    /// lo₀ hi₀ lo₁ hi₁ … in both 128-bit lanes, for <see cref="PickScales"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> ScaleBytes(byte* p)
    {
        var v = Vector128.CreateScalar(*(ulong*)p).AsByte();
        var nib = Sse2.UnpackLow(v & Vector128.Create((byte)0x0F), Sse2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F));
        var ls = nib + nib + Vector128.Create((byte)1);
        return Vector256.Create(ls, ls);
    }

    /// <summary>
    /// Sub-block <paramref name="ib"/>'s two scales from <see cref="ScaleBytes"/> as int16: ls_lo in lanes 0..7 (the
    /// pair sums of weights 0..15), ls_hi in lanes 8..15 (one vpshufb; control bytes (2ib, 0x80) and (2ib+1, 0x80)).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> PickScales(Vector256<byte> scaleBytes, int ib)
    {
        var ctrl = Vector256.Create(Vector128.Create(unchecked((short)0x8000)), Vector128.Create(unchecked((short)0x8001)))
            + Vector256.Create((short)(2 * ib));
        return Avx2.Shuffle(scaleBytes, ctrl.AsByte()).AsInt16();
    }
}

/// <summary>
/// IQ2_XXS for <see cref="IQ2Simd"/>: per sub-block dwords a0 (four grid bytes, read as bytes) and a1 (four 7-bit
/// sign indices, the scale in bits 28..31).
/// </summary>
internal unsafe struct IQ2XXSBlock : IIQ2Block
{
    public static int BlockBytes => 66;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XXS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* scratch)
    {
        var s0 = Sub(x, 0, q8, scratch) + Sub(x, 2, q8, scratch) + Sub(x, 4, q8, scratch) + Sub(x, 6, q8, scratch);
        var s1 = Sub(x, 1, q8, scratch) + Sub(x, 3, q8, scratch) + Sub(x, 5, q8, scratch) + Sub(x, 7, q8, scratch);
        return s0 + s1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, byte* abs)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XxsGrid), signs = IQ2Simd.SignOnesPointer;
        byte* a0 = x + 2 + 8 * ib;
        uint a1 = *(uint*)(x + 6 + 8 * ib);
        var g = Vector256.Create(grid[a0[0]], grid[a0[1]], grid[a0[2]], grid[a0[3]]);
        var s = Vector256.Create(signs[a1 & 127], signs[(a1 >> 7) & 127], signs[(a1 >> 14) & 127], signs[(a1 >> 21) & 127]);
        return IQ2Simd.SubBlock(g, s.AsSByte(), q8 + 32 * ib, abs + 32 * ib, Vector256.Create((short)(2 * (a1 >> 28) + 1)));
    }
}

/// <summary>
/// IQ2_XS for <see cref="IQ2Simd"/>: per group of 8 a word (9-bit grid index, 7-bit sign index); scales at byte 66.
/// The 32 words are split with vector ops per block (ggml's AVX2 way): the grid indices go to the scratch (one
/// load each afterwards) and the sign bytes are completed with their parity bit and expanded with vpshufb.
/// </summary>
internal unsafe struct IQ2XSBlock : IIQ2Block
{
    public static int BlockBytes => 74;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* scratch)
    {
        var sc = IQ2Simd.ScaleBytes(x + 66);
        ushort* idx = (ushort*)(scratch + 256);
        var signs0 = Words(x + 2, idx);
        var signs1 = Words(x + 34, idx + 16);
        var s0 = Sub(0, q8, scratch, idx, signs0, sc) + Sub(2, q8, scratch, idx, signs0, sc)
               + Sub(4, q8, scratch, idx, signs1, sc) + Sub(6, q8, scratch, idx, signs1, sc);
        var s1 = Sub(1, q8, scratch, idx, signs0, sc) + Sub(3, q8, scratch, idx, signs0, sc)
               + Sub(5, q8, scratch, idx, signs1, sc) + Sub(7, q8, scratch, idx, signs1, sc);
        return s0 + s1;
    }

    /// <summary>
    /// 16 words (4 sub-blocks): stores their grid indices (w &amp; 511) at <paramref name="idx"/> and returns their
    /// ksigns bytes (w » 9 plus bit 7 = parity of those 7 bits) in the low byte of each word.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Words(byte* p, ushort* idx)
    {
        var w = Vector256.Load((ushort*)p);
        (w & Vector256.Create((ushort)511)).Store(idx);
        var s7 = Avx2.ShiftRightLogical(w, 9);
        // parity(s7) = parity(its 4-bit fold (w » 9) ^ (w » 13)); a 16-entry vpshufb table gives 0x80 for odd.
        var fold = (s7 ^ Avx2.ShiftRightLogical(w, 13)).AsByte();
        var odd = Avx2.Shuffle(IQ2Simd.ParityTable, fold);
        return s7 | odd.AsUInt16();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(int ib, sbyte* q8, byte* abs, ushort* idx, Vector256<ushort> signs, Vector256<byte> sc)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XsGrid);
        ushort* q = idx + 4 * ib;
        var g = Vector256.Create(grid[q[0]], grid[q[1]], grid[q[2]], grid[q[3]]);
        return IQ2Simd.SubBlock(g, IQ2Simd.ExpandSigns(signs, ib & 3), q8 + 32 * ib, abs + 32 * ib, IQ2Simd.PickScales(sc, ib));
    }
}

/// <summary>
/// IQ2_S for <see cref="IQ2Simd"/>: 10-bit grid indices (low bytes at 2, two high bits per group at 66), sign bits at
/// 34, scales at 74. The 32 indices are assembled with vector ops per block into the scratch.
/// </summary>
internal unsafe struct IQ2SBlock : IIQ2Block
{
    public static int BlockBytes => 82;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2S.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* scratch)
    {
        var sc = IQ2Simd.ScaleBytes(x + 74);
        ushort* idx = (ushort*)(scratch + 256);
        // Group j: qs[j] | ((qh[j/4] << (8 − 2·(j%4))) & 0x300): qh[j/4] is placed in word j by vpshufb, shifted by a
        // vpmullw with 256, 64, 16, 4.
        var qh = Vector128.CreateScalar(*(ulong*)(x + 66)).AsByte();
        var qh2 = Vector256.Create(qh, qh);
        var spread = Vector256.Create(0x8000800080008000ul, 0x8001800180018001ul, 0x8002800280028002ul, 0x8003800380038003ul).AsByte();
        var mul = Vector256.Create(0x0004001000400100ul).AsInt16();
        var m = Vector256.Create((short)0x300);
        var lo = Avx2.ConvertToVector256Int16(Vector128.Load(x + 2));
        var hi = Avx2.ConvertToVector256Int16(Vector128.Load(x + 18));
        (lo | (Avx2.MultiplyLow(Avx2.Shuffle(qh2, spread).AsInt16(), mul) & m)).Store((short*)idx);
        (hi | (Avx2.MultiplyLow(Avx2.Shuffle(qh2, spread + Vector256.Create((byte)4)).AsInt16(), mul) & m)).Store((short*)idx + 16);
        var s0 = Sub(x, 0, q8, scratch, idx, sc) + Sub(x, 2, q8, scratch, idx, sc) + Sub(x, 4, q8, scratch, idx, sc) + Sub(x, 6, q8, scratch, idx, sc);
        var s1 = Sub(x, 1, q8, scratch, idx, sc) + Sub(x, 3, q8, scratch, idx, sc) + Sub(x, 5, q8, scratch, idx, sc) + Sub(x, 7, q8, scratch, idx, sc);
        return s0 + s1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, byte* abs, ushort* idx, Vector256<byte> sc)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2SGrid);
        ushort* q = idx + 4 * ib;
        var g = Vector256.Create(grid[q[0]], grid[q[1]], grid[q[2]], grid[q[3]]);
        var s = Simd.BitMasks(*(uint*)(x + 34 + 4 * ib)) | Vector256.Create((byte)1);
        return IQ2Simd.SubBlock(g, s.AsSByte(), q8 + 32 * ib, abs + 32 * ib, IQ2Simd.PickScales(sc, ib));
    }
}
