using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The exact integer part of one super-block of IQ3_XXS, IQ3_S, IQ1_S and IQ1_M against one Q8_K block, as 8 int32
/// lanes whose total is the block integer the row dot converts to float. Shared by the single-row AVX2 dots
/// (<see cref="IQ3XXS.DotAvx2"/> etc.) and the 8-row decode kernel (<see cref="MatVec8IQ"/>), so both give the same bits.
/// </summary>
/// <remarks>
/// Where ggml's AVX2 dots look up sign masks per group of 8 (IQ3_XXS) or shift index bits one at a time, these compute
/// them with BMI2 bit deposits and a parity fold in general registers, which run beside the vector work; the grid
/// lookups themselves stay scalar loads (vpgatherdd was slower here, as ggml found on Zen 4). IQ1_S / IQ1_M fold their
/// ±1/8 shift into the integer: the lanes total 8·Σ ls·Σ g·a + Σ ls·Σ ±a, which is below 2^24 in magnitude
/// (15·256·128·9), so converting it and multiplying by 1/8 gives exactly ggml's sumi + 1/8·sumi1 in f32.
/// </remarks>
internal static unsafe class IQBlockSums
{
    /// <summary>Byte j of the 16-byte lane picks source byte j/8 of the low (first) dword: the sign byte of group j/8.</summary>
    private static Vector256<byte> SpreadLow
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(
        (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    }

    /// <summary>As <see cref="SpreadLow"/> for the second dword of a broadcast qword.</summary>
    private static Vector256<byte> SpreadHigh
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(
        (byte)4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7);
    }

    /// <summary>Bit j % 8 in byte j.</summary>
    private static Vector256<byte> BitOfByte
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector256.Create(0x8040201008040201ul).AsByte();
    }

    /// <summary>pdep where BMI2 exists (every AVX2 core we target), else the same bits one at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Deposit(ulong src, ulong mask)
    {
        return Bmi2.X64.IsSupported ? Bmi2.X64.ParallelBitDeposit(src, mask) : DepositPortable(src, mask);
    }

    /// <summary>The bits of <paramref name="src"/>, lowest first, into the set bits of <paramref name="mask"/> (pdep without BMI2).</summary>
    internal static ulong DepositPortable(ulong src, ulong mask)
    {
        ulong r = 0;
        for (ulong bit = 1; mask != 0; bit <<= 1, mask &= mask - 1)
            if ((src & bit) != 0)
                r |= mask & (0 - mask);
        return r;
    }

    /// <summary>
    /// The ksigns_iq2xs bytes of the 8 groups of two IQ3_XXS sub-blocks (their aux words in <paramref name="aux2"/>):
    /// each 7-bit index with its parity as bit 7 (ksigns[i] = i | parity(i) « 7), byte k for group k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong SignBytes(ulong aux2)
    {
        ulong packed = (aux2 & 0x0FFFFFFF) | ((aux2 >> 4) & 0x00FFFFFFF0000000);
        ulong s = Deposit(packed, 0x7F7F7F7F7F7F7F7F);
        ulong t = s ^ (s >> 4);
        t ^= t >> 2;
        t ^= t >> 1;
        return s | ((t & 0x0101010101010101) << 7);
    }

    /// <summary>0xFF where bit j of the 32 bits (dword 0 or 1 of <paramref name="broadcast"/>, by <paramref name="spread"/>) is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Masks(Vector256<byte> broadcast, Vector256<byte> spread)
        => Avx2.CompareEqual(Avx2.Shuffle(broadcast, spread) & BitOfByte, BitOfByte);

    /// <summary>Σ ls·(±g)·a over 32 weights, g unsigned grid magnitudes, <paramref name="negative"/> 0xFF where w &lt; 0 (exact for a = −128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Signed(Vector256<byte> g, Vector256<byte> negative, sbyte* q8, Vector256<short> ls)
        => Avx2.MultiplyAddAdjacent(IQSimd.SignedProducts(g, negative, Vector256.Load(q8)), ls);

    /// <summary>
    /// Per-sub-block scales as dwords ls | ls « 16 (<paramref name="ls"/>: 8 dwords, one per sub-block) so that
    /// <see cref="PickScale"/> spreads sub-block ib's over all 16 int16 lanes with one vpermd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Paired(Vector256<uint> ls) => ls | (ls << 16);

    /// <summary>Sub-block ib's scale from <see cref="Paired"/> in every int16 lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> PickScale(Vector256<uint> paired, int ib) => Avx2.PermuteVar8x32(paired, Vector256.Create((uint)ib)).AsInt16();

    /// <summary>IQ3_XXS (98-byte blocks): lanes total Σ_ib (2·(aux » 28) + 1)·Σ ±g·a, the integer of <see cref="IQ3XXS.DotScalar"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> IQ3XXS(byte* x, byte* y)
    {
        uint* grid = IQSimd.Pointer(IQTables.Iq3XxsGrid);
        sbyte* q8 = (sbyte*)(y + 4);
        // ls = 2·(aux » 28) + 1 of all 8 sub-blocks at once (the aux words are the block's last 32 bytes).
        var ls = Paired(((Vector256.Load((uint*)(x + 66)) >>> 28) << 1) + Vector256<uint>.One);
        return IQ3XXSPair(grid, x, q8, ls, 0) + IQ3XXSPair(grid, x, q8, ls, 2) + (IQ3XXSPair(grid, x, q8, ls, 4) + IQ3XXSPair(grid, x, q8, ls, 6));
    }

    /// <summary>Sub-blocks ib and ib + 1 of an IQ3_XXS block (see <see cref="IQ3XXS(byte*, byte*)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IQ3XXSPair(uint* grid, byte* x, sbyte* q8, Vector256<uint> ls, int ib)
    {
        byte* q3 = x + 2 + 8 * ib;
        var g1 = Vector256.Create(grid[q3[0]], grid[q3[1]], grid[q3[2]], grid[q3[3]], grid[q3[4]], grid[q3[5]], grid[q3[6]], grid[q3[7]]).AsByte();
        var g2 = Vector256.Create(grid[q3[8]], grid[q3[9]], grid[q3[10]], grid[q3[11]], grid[q3[12]], grid[q3[13]], grid[q3[14]], grid[q3[15]]).AsByte();
        var s = Vector256.Create(SignBytes(*(ulong*)(x + 66 + 4 * ib))).AsByte();
        return Signed(g1, Masks(s, SpreadLow), q8 + 32 * ib, PickScale(ls, ib))
            + Signed(g2, Masks(s, SpreadHigh), q8 + 32 * ib + 32, PickScale(ls, ib + 1));
    }

    /// <summary>The 4 grid points of one IQ3_S half sub-block: 8-bit indices at <paramref name="qs"/>, ninth bits in the low 4 of <paramref name="h"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> Grid3S(uint* grid, byte* qs, uint h)
    {
        ulong p = Deposit(*(uint*)qs, 0x00FF00FF00FF00FF) | Deposit(h, 0x0100010001000100);
        return Vector128.Create(grid[(ushort)p], grid[(ushort)(p >> 16)], grid[(ushort)(p >> 32)], grid[p >> 48]);
    }

    /// <summary>IQ3_S (110-byte blocks): lanes total Σ_ib (2·s_ib + 1)·Σ ±g·a with explicit sign bits, the integer of <see cref="IQ3S.DotScalar"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> IQ3S(byte* x, byte* y)
    {
        uint* grid = IQSimd.Pointer(IQTables.Iq3SGrid);
        sbyte* q8 = (sbyte*)(y + 4);
        // ls = 2·s + 1 for the 8 scale nibbles (sub-block ib: nibble ib of the dword at 106) at once.
        var nibbles = Avx2.ShiftRightLogicalVariable(Vector256.Create(*(uint*)(x + 106)), Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28));
        var ls = Paired(((nibbles & Vector256.Create(0xFu)) << 1) + Vector256<uint>.One);
        return IQ3SPair(grid, x, q8, ls, 0) + IQ3SPair(grid, x, q8, ls, 2) + (IQ3SPair(grid, x, q8, ls, 4) + IQ3SPair(grid, x, q8, ls, 6));
    }

    /// <summary>Sub-blocks ib and ib + 1 of an IQ3_S block (see <see cref="IQ3S(byte*, byte*)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IQ3SPair(uint* grid, byte* x, sbyte* q8, Vector256<uint> ls, int ib)
    {
        byte* qs = x + 2 + 8 * ib;
        uint h = *(ushort*)(x + 66 + ib);
        var g1 = Vector256.Create(Grid3S(grid, qs, h), Grid3S(grid, qs + 4, h >> 4)).AsByte();
        var g2 = Vector256.Create(Grid3S(grid, qs + 8, h >> 8), Grid3S(grid, qs + 12, h >> 12)).AsByte();
        var s = Vector256.Create(*(ulong*)(x + 74 + 4 * ib)).AsByte();
        return Signed(g1, Masks(s, SpreadLow), q8 + 32 * ib, PickScale(ls, ib))
            + Signed(g2, Masks(s, SpreadHigh), q8 + 32 * ib + 32, PickScale(ls, ib + 1));
    }

    /// <summary>Σ g·a over 32 activations as 16 int16 pair sums, g signed with |g| ≤ 127, exact for every activation byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Ternary(Vector256<sbyte> g, sbyte* q8)
    {
        var a = Vector256.Load(q8);
        return Avx2.MultiplyAddAdjacent(Avx2.Abs(a).AsByte(), Avx2.Sign(g, a));
    }

    /// <summary>The 4 iq1s_grid points whose 11-bit indices are the u16 lanes of <paramref name="p"/>, as 32 signed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Grid1(ulong* grid, ulong p)
        => Vector256.Create(grid[(ushort)p], grid[(ushort)(p >> 16)], grid[(ushort)(p >> 32)], grid[p >> 48]).AsSByte();

    /// <summary>
    /// IQ1_S (50-byte blocks): lanes total 8·Σ_ib ls·Σ g·a + Σ_ib ls·(±1)·(bsum_2ib + bsum_2ib+1) (ls = 2·((h » 12) &amp; 7) + 1,
    /// minus where bit 15 of h is set) — 8·sumi + sumi1 of <see cref="IQ1S.DotScalar"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> IQ1S(byte* x, byte* y)
    {
        ulong* grid = IQSimd.Pointer(IQ1Grid.Iq1SGrid);
        sbyte* q8 = (sbyte*)(y + 4);
        // The shift term for all 8 sub-blocks at once: ±ls per sub-block against its two bsums.
        var h8 = Vector128.Load((ushort*)(x + 34)).AsInt16();
        var ls = ((h8 >>> 11) & Vector128.Create((short)0xE)) + Vector128.Create((short)1);
        var sign = h8 >> 15;
        var lsd = (ls ^ sign) - sign;
        var shift = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 260)), Vector256.Create(Sse2.UnpackLow(lsd, lsd), Sse2.UnpackHigh(lsd, lsd)));
        // 8·ls = 16·((h » 12) & 7) + 8 of every sub-block, as dword pairs for PickScale.
        var ls8 = ((h8 >>> 8) & Vector128.Create((short)0x70)) + Vector128.Create((short)8);
        var paired = Vector256.Create(Sse2.UnpackLow(ls8, ls8), Sse2.UnpackHigh(ls8, ls8)).AsUInt32();
        return shift + IQ1SPair(grid, x, q8, paired, 0) + (IQ1SPair(grid, x, q8, paired, 2) + IQ1SPair(grid, x, q8, paired, 4)) + IQ1SPair(grid, x, q8, paired, 6);
    }

    /// <summary>8·ls·Σ g·a of sub-blocks ib and ib + 1 of an IQ1_S block (see <see cref="IQ1S(byte*, byte*)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IQ1SPair(ulong* grid, byte* x, sbyte* q8, Vector256<uint> ls, int ib)
    {
        ulong p1 = Deposit(*(uint*)(x + 2 + 4 * ib), 0x00FF00FF00FF00FF) | Deposit(*(ushort*)(x + 34 + 2 * ib), 0x0700070007000700);
        ulong p2 = Deposit(*(uint*)(x + 6 + 4 * ib), 0x00FF00FF00FF00FF) | Deposit(*(ushort*)(x + 36 + 2 * ib), 0x0700070007000700);
        var s1 = Avx2.MultiplyAddAdjacent(Ternary(Grid1(grid, p1), q8 + 32 * ib), PickScale(ls, ib));
        var s2 = Avx2.MultiplyAddAdjacent(Ternary(Grid1(grid, p2), q8 + 32 * ib + 32), PickScale(ls, ib + 1));
        return s1 + s2;
    }

    /// <summary>The bias that makes the IQ1_M bytes 8·g ± 1 unsigned (0..18), so they are maddubs' unsigned operand.</summary>
    private const int Iq1MBias = 9;

    /// <summary>
    /// iq1s_grid with the IQ1_M shift folded in: entry i (12 bits: the 11-bit grid index, then the group's shift bit)
    /// holds the bytes 8·g ± 1 + <see cref="Iq1MBias"/> (minus where bit 11 is set), so a group of 8 needs one load,
    /// no shift vector and no sign fix-up. 32 KiB, built once from the grid; pinned, so it is addressed by pointer.
    /// </summary>
    private static readonly ulong[] s_iq1Shifted = BuildShifted();

    /// <summary>The address of <see cref="s_iq1Shifted"/>.</summary>
    private static ulong* Iq1Shifted => (ulong*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(s_iq1Shifted));

    private static ulong[] BuildShifted()
    {
        var t = GC.AllocateArray<ulong>(4096, pinned: true);
        ReadOnlySpan<ulong> grid = IQ1Grid.Iq1SGrid;
        for (int i = 0; i < 4096; i++)
        {
            int delta = (i & 0x800) != 0 ? -1 : 1;
            for (int j = 0; j < 8; j++)
                t[i] |= (ulong)(byte)(8 * (sbyte)(grid[i & 0x7FF] >> (8 * j)) + delta + Iq1MBias) << (8 * j);
        }
        return t;
    }

    /// <summary>
    /// IQ1_M (56-byte blocks): the weights as unsigned bytes 8·g ± 1 + 9 (the shift of their group of 8, from the
    /// 12-bit index into <see cref="s_iq1Shifted"/>), one maddubs per 32 weights, less 9·Σ ls·bsum: the lanes total
    /// 8·sumi1 + sumi2 of <see cref="IQ1M.DotScalar"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> IQ1M(byte* x, byte* y)
    {
        ulong* grid = Iq1Shifted;
        sbyte* q8 = (sbyte*)(y + 4);
        // The 16 3-bit scales (4 per u16 word, below its super-scale nibble) as bytes 2s + 1 in both 128-bit lanes,
        // byte 2·ib + h for half h of sub-block ib; each sub-block picks its two with one shuffle.
        ulong sc = *(ulong*)(x + 48);
        ulong lo = Deposit((sc & 0xFFF) | ((sc >> 4) & 0xFFF000), 0x0707070707070707);
        ulong hi = Deposit(((sc >> 32) & 0xFFF) | ((sc >> 36) & 0xFFF000), 0x0707070707070707);
        var s = Vector128.Create(lo, hi).AsByte();
        s += s + Vector128.Create((byte)1);
        var ls = Vector256.Create(s, s);
        // The bias comes back out through Q8_K's bsums (Σa per 16, the same halves the scales cover): 9·Σ ls_k·bsum_k.
        var bias = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 260)), Avx2.ConvertToVector256Int16(s).AsInt16());
        // Straight-line pairs of sub-blocks (constant offsets, independent chains for the out-of-order core).
        var sum = IQ1MPair(grid, x, q8, ls, 0) + IQ1MPair(grid, x, q8, ls, 2) + (IQ1MPair(grid, x, q8, ls, 4) + IQ1MPair(grid, x, q8, ls, 6));
        return sum - bias * Iq1MBias;
    }

    /// <summary>Sub-blocks ib and ib + 1 of an IQ1_M block (see <see cref="IQ1M(byte*, byte*)"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IQ1MPair(ulong* grid, byte* x, sbyte* q8, Vector256<byte> ls, int ib)
    {
        uint h = *(uint*)(x + 32 + 2 * ib);
        ulong p1 = Deposit(*(uint*)(x + 4 * ib), 0x00FF00FF00FF00FF) | Deposit(h & 0xFFFF, 0x0F000F000F000F00);
        ulong p2 = Deposit(*(uint*)(x + 4 * ib + 4), 0x00FF00FF00FF00FF) | Deposit(h >> 16, 0x0F000F000F000F00);
        // (8g ± 1 + 9)·a pair sums: |…| ≤ 2·18·128, no saturation.
        var s1 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Grid1(grid, p1).AsByte(), Vector256.Load(q8 + 32 * ib)), PickScales(ls, ib));
        var s2 = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Grid1(grid, p2).AsByte(), Vector256.Load(q8 + 32 * ib + 32)), PickScales(ls, ib + 1));
        return s1 + s2;
    }

    /// <summary>int16 lanes: scale byte 2·ib of <paramref name="ls"/> in the low 128 bits, byte 2·ib + 1 in the high 128 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> PickScales(Vector256<byte> ls, int ib)
        => Avx2.Shuffle(ls, Vector256.Create(Vector128.Create((short)(0x8000 | (2 * ib))), Vector128.Create((short)(0x8000 | (2 * ib + 1)))).AsByte()).AsInt16();
}
