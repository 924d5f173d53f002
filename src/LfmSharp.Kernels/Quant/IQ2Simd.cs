using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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

    /// <summary>The block's integer against the Q8_K quants <paramref name="q8"/>, whose |q| are at <paramref name="abs"/>.</summary>
    static abstract Vector256<int> BlockSum(byte* x, sbyte* q8, byte* abs);

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
/// operand is |a| and the signed one ±g·sign(a), |pair sum| ≤ 2·128·43.
/// </remarks>
internal static unsafe class IQ2Simd
{
    /// <summary>ksigns_iq2xs as ±1 bytes (0xFF where bit j of entry i is set, else 0x01): vpsignb's sign operand.</summary>
    public static readonly ulong[] SignOnes = BuildSignOnes();

    /// <summary><see cref="SignOnes"/> as a pointer (the array lives on the pinned heap).</summary>
    public static ulong* SignOnesPointer => (ulong*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(SignOnes));

    private static ulong[] BuildSignOnes()
    {
        var m = GC.AllocateArray<ulong>(128, pinned: true);
        for (int i = 0; i < 128; i++)
            m[i] = IQSimd.SignMasks[i] | 0x0101010101010101ul;
        return m;
    }

    /// <summary>Σ w·a over <paramref name="nb"/> super-blocks: the scalar dot's float steps over <typeparamref name="T"/>'s exact block integers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot<T>(byte* w, byte* a, int nb) where T : struct, IIQ2Block
    {
        byte* abs = stackalloc byte[256];
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode8<T>(in Group8 g) where T : struct, IIQ2Block
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        byte* abs = stackalloc byte[256];
        var sums = stackalloc Vector256<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var offs = MatVec8.Offsets(rowBytes);
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
            var d = MatVec8.RowHalves(x, offs, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the scalar's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(0.125f)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>|q| of a Q8_K block's 256 quants (as unsigned bytes: |−128| = 128) into <paramref name="abs"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Abs(sbyte* q8, byte* abs)
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

/// <summary>IQ2_XXS for <see cref="IQ2Simd"/>: per sub-block dwords a0 (four grid bytes) and a1 (four 7-bit sign indices, scale in bits 28..31).</summary>
internal unsafe struct IQ2XXSBlock : IIQ2Block
{
    public static int BlockBytes => 66;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XXS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* abs)
    {
        var s0 = Sub(x, 0, q8, abs) + Sub(x, 2, q8, abs) + Sub(x, 4, q8, abs) + Sub(x, 6, q8, abs);
        var s1 = Sub(x, 1, q8, abs) + Sub(x, 3, q8, abs) + Sub(x, 5, q8, abs) + Sub(x, 7, q8, abs);
        return s0 + s1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, byte* abs)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XxsGrid), signs = IQ2Simd.SignOnesPointer;
        uint a0 = *(uint*)(x + 2 + 8 * ib), a1 = *(uint*)(x + 6 + 8 * ib);
        var g = Vector256.Create(grid[a0 & 0xFF], grid[(a0 >> 8) & 0xFF], grid[(a0 >> 16) & 0xFF], grid[a0 >> 24]);
        var s = Vector256.Create(signs[a1 & 127], signs[(a1 >> 7) & 127], signs[(a1 >> 14) & 127], signs[(a1 >> 21) & 127]);
        return IQ2Simd.SubBlock(g, s.AsSByte(), q8 + 32 * ib, abs + 32 * ib, Vector256.Create((short)(2 * (a1 >> 28) + 1)));
    }
}

/// <summary>IQ2_XS for <see cref="IQ2Simd"/>: per group of 8 a word (9-bit grid index, 7-bit sign index); scales at byte 66.</summary>
internal unsafe struct IQ2XSBlock : IIQ2Block
{
    public static int BlockBytes => 74;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* abs)
    {
        var sc = IQ2Simd.ScaleBytes(x + 66);
        var s0 = Sub(x, 0, q8, abs, sc) + Sub(x, 2, q8, abs, sc) + Sub(x, 4, q8, abs, sc) + Sub(x, 6, q8, abs, sc);
        var s1 = Sub(x, 1, q8, abs, sc) + Sub(x, 3, q8, abs, sc) + Sub(x, 5, q8, abs, sc) + Sub(x, 7, q8, abs, sc);
        return s0 + s1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, byte* abs, Vector256<byte> sc)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XsGrid), signs = IQ2Simd.SignOnesPointer;
        ulong q = *(ulong*)(x + 2 + 8 * ib);
        var g = Vector256.Create(grid[q & 511], grid[(q >> 16) & 511], grid[(q >> 32) & 511], grid[(q >> 48) & 511]);
        var s = Vector256.Create(signs[(q >> 9) & 127], signs[(q >> 25) & 127], signs[(q >> 41) & 127], signs[q >> 57]);
        return IQ2Simd.SubBlock(g, s.AsSByte(), q8 + 32 * ib, abs + 32 * ib, IQ2Simd.PickScales(sc, ib));
    }
}

/// <summary>IQ2_S for <see cref="IQ2Simd"/>: 10-bit grid indices (low bytes at 2, high bits at 66), sign bits at 34, scales at 74.</summary>
internal unsafe struct IQ2SBlock : IIQ2Block
{
    public static int BlockBytes => 82;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2S.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> BlockSum(byte* x, sbyte* q8, byte* abs)
    {
        var sc = IQ2Simd.ScaleBytes(x + 74);
        var s0 = Sub(x, 0, q8, abs, sc) + Sub(x, 2, q8, abs, sc) + Sub(x, 4, q8, abs, sc) + Sub(x, 6, q8, abs, sc);
        var s1 = Sub(x, 1, q8, abs, sc) + Sub(x, 3, q8, abs, sc) + Sub(x, 5, q8, abs, sc) + Sub(x, 7, q8, abs, sc);
        return s0 + s1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sub(byte* x, int ib, sbyte* q8, byte* abs, Vector256<byte> sc)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2SGrid);
        uint qs = *(uint*)(x + 2 + 4 * ib), h = x[66 + ib];
        var g = Vector256.Create(grid[(qs & 0xFF) | ((h << 8) & 0x300)], grid[((qs >> 8) & 0xFF) | ((h << 6) & 0x300)],
                                 grid[((qs >> 16) & 0xFF) | ((h << 4) & 0x300)], grid[(qs >> 24) | ((h << 2) & 0x300)]);
        var s = Simd.BitMasks(*(uint*)(x + 34 + 4 * ib)) | Vector256.Create((byte)1);
        return IQ2Simd.SubBlock(g, s.AsSByte(), q8 + 32 * ib, abs + 32 * ib, IQ2Simd.PickScales(sc, ib));
    }
}
