using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// 8-row decode for IQ4_NL, over GGUF rows or over the interleaved copy (IQ4_NL blocks have Q4_0's shape — an f16 d
/// and 16 nibble bytes — so the copy is <see cref="InterleaveLayout.Q4_0"/>: the 8 scales, then the quant bytes of rows
/// (0,4), (1,5), (2,6), (3,7)).
/// </summary>
/// <remarks>
/// Each 32-byte vector holds the 16 quant bytes of two rows, so one and/shift/and and two vpshufb give both rows' 32
/// levels. With AVX-VNNI the levels go in as the unsigned bytes kv + 128 against the signed activations and the
/// activation side's 128·Σa is taken off per block (<see cref="Block{TDot}"/>); without it the maddubs products take
/// |a| as the unsigned side and the level with a's sign (|a| ≤ 128, |level| ≤ 127: exact for every byte, as
/// <see cref="IQ4NL.BlockSum"/>).
/// The 8 rows' exact block integers are gathered into one vector and scaled once per block —
/// acc = fma(sum, d_w·d_a, acc), the steps of <see cref="IQ4NL.DotAvx2"/> — so the outputs have the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8IQ4
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NL<TDot>(in Group8 g) where TDot : struct, IByteDot
    {
        byte* w = g.Rows;
        long rb = g.RowBytes;
        var kv = IQ4XS.LevelTable();
        long rowStep = g.RowBytes;
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        byte* next = w + 8 * rb;
        for (int b = 0; b < g.Nb; b++)
        {
            byte* x = w + b * 18;
            MatVec8.PrefetchNext(next, 8 * 18, b);
            var tot = Block<TDot>(Pair(x, x + 4 * rb), Pair(x + rb, x + 5 * rb), Pair(x + 2 * rb, x + 6 * rb), Pair(x + 3 * rb, x + 7 * rb),
                g.Act + b * 34 + 2, kv, g.Sums, b);
            var d = MatVec8.RowHalves(x, rowStep, ref special) * Vector256.Create(g.Scales[b]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), d, acc);
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ4NL.DotAvx2, w, g.RowBytes, g.Nb, g.Act, g.Y);
    }

    /// <summary>
    /// <see cref="NL{TDot}"/> for AVX2 without VNNI (<see cref="Avx2Dot"/>): the rows' block scales come through the
    /// ring of <see cref="MatVec8.CopyScales"/> (scalar loads and stores a few blocks ahead, on ports the vector work
    /// leaves idle, read back as one vector) instead of a vpgatherdd per block — about 1.2x on GGUF rows, where the
    /// gather was the largest cost after the products. Identical bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NLRing(in Group8 g)
    {
        byte* w = g.Rows;
        long rb = g.RowBytes;
        int nb = g.Nb;
        var kv = IQ4XS.LevelTable();
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        ushort* ring = stackalloc ushort[8 * 8];   // [8 slots][8 rows] f16 scales
        MatVec8.StartRing(w, rb, nb, 18, ring);
        byte* next = w + 8 * rb;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 18;
            MatVec8.StepRing(w, rb, b, nb, 18, ring);
            MatVec8.PrefetchNext(next, 8 * 18, b);
            var tot = Block<Avx2Dot>(Pair(x, x + 4 * rb), Pair(x + rb, x + 5 * rb), Pair(x + 2 * rb, x + 6 * rb), Pair(x + 3 * rb, x + 7 * rb),
                g.Act + b * 34 + 2, kv, g.Sums, b);
            var d = MatVec8.SlotHalves(ring + 8 * (b & 7), ref special) * Vector256.Create(g.Scales[b]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), d, acc);
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ4NL.DotAvx2, w, g.RowBytes, g.Nb, g.Act, g.Y);
    }

    /// <summary>The decode kernel over a group of the interleaved copy (<see cref="TypeTraits.Decode8Interleaved"/>); identical bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void NLx8<TDot>(in Group8 g) where TDot : struct, IByteDot
    {
        var kv = IQ4XS.LevelTable();
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        byte* x = g.Interleaved, ya = g.Act + 2;
        float* scales = g.Scales;
        int* sums = g.Sums;
        for (int b = 0, nb = g.Nb; b < nb; b++, x += 144, ya += 34)
        {
            MatVec8.PrefetchInterleaved3(x);
            var tot = Block<TDot>(Vector256.Load(x + 16), Vector256.Load(x + 48), Vector256.Load(x + 80), Vector256.Load(x + 112), ya, kv, sums, b);
            var d = SlotHalves((ushort*)x, ref special) * Vector256.Create(scales[b]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), d, acc);
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ4NL.DotAvx2, g.Rows, g.RowBytes, g.Nb, g.Act, g.Y);
    }

    /// <summary>
    /// <see cref="NLx8{TDot}"/> with VNNI on an AVX-512 machine, two blocks per iteration: the same block totals, with
    /// both blocks' scales converted and their float steps prepared in one zmm (<see cref="MatVec8Zmm.Accumulate2"/>);
    /// identical bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void NLx8Zmm(in Group8 g)
    {
        var kv = IQ4XS.LevelTable();
        byte* x = g.Interleaved, ya = g.Act + 2;
        int nb = g.Nb, i = 0;
        var acc = Vector256<float>.Zero;
        var special = Vector512<int>.Zero;
        for (; i + 2 <= nb; i += 2, x += 288, ya += 68)
        {
            MatVec8.PrefetchInterleaved5(x);
            var t0 = Block<VnniDot>(Vector256.Load(x + 16), Vector256.Load(x + 48), Vector256.Load(x + 80), Vector256.Load(x + 112), ya, kv, g.Sums, i);
            var t1 = Block<VnniDot>(Vector256.Load(x + 160), Vector256.Load(x + 192), Vector256.Load(x + 224), Vector256.Load(x + 256), ya + 34, kv, g.Sums, i + 1);
            acc = MatVec8Zmm.Accumulate2(acc, Vector512.Create(t0, t1), x, g.Scales + i, ref special);
        }
        var special8 = MatVec8Zmm.Fold8(special);
        if (i < nb)
        {
            var tot = Block<VnniDot>(Vector256.Load(x + 16), Vector256.Load(x + 48), Vector256.Load(x + 80), Vector256.Load(x + 112), ya, kv, g.Sums, i);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves((ushort*)x, ref special8) * Vector256.Create(g.Scales[i]), acc);
        }
        acc.Store(g.Y);
        if (MatVec8.HasSpecial(special8))
            MatVec8.Exact(&IQ4NL.DotAvx2, g.Rows, g.RowBytes, g.Nb, g.Act, g.Y);
    }

    /// <summary>Row r's 16 quant bytes in the low lane and row r + 4's in the high lane (x: the rows' block starts).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Pair(byte* r, byte* r4) => Vector256.Create(Vector128.Load(r + 2), Vector128.Load(r4 + 2));

    /// <summary>
    /// Lane r = row r's exact Σ kv[q]·a over block <paramref name="b"/>: with vpdpbusd (<see cref="VnniDot"/>) from the
    /// levels as unsigned bytes kv + 128 against the signed activations, less the activation side's 128·Σa
    /// (<paramref name="sums128"/>[b], <see cref="ActivationSide.Q8_0ScalesAndSums128"/>), which needs no sign
    /// transfer to the activations (two vpsignb per row pair and two vpabsb per block fewer); else <see cref="Totals{TDot}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Block<TDot>(Vector256<byte> v04, Vector256<byte> v15, Vector256<byte> v26, Vector256<byte> v37, byte* ya,
        Vector256<sbyte> kv, int* sums128, int b) where TDot : struct, IByteDot
    {
        if (typeof(TDot) != typeof(VnniDot))
            return Totals<TDot>(v04, v15, v26, v37, ya, kv);
        var ku = kv.AsByte() ^ Vector256.Create((byte)0x80);
        var yLo = Avx2.BroadcastVector128ToVector256((sbyte*)ya);
        var yHi = Avx2.BroadcastVector128ToVector256((sbyte*)ya + 16);
        var h01 = Avx2.HorizontalAdd(BiasedPair(v04, yLo, yHi, ku), BiasedPair(v15, yLo, yHi, ku));
        var h23 = Avx2.HorizontalAdd(BiasedPair(v26, yLo, yHi, ku), BiasedPair(v37, yLo, yHi, ku));
        return Avx2.HorizontalAdd(h01, h23) - Vector256.Create(sums128[b]);   // [rows 0..3 | rows 4..7]
    }

    /// <summary>Two rows' Σ (kv[q] + 128)·a as 4 int32 lanes each (low lane: row r, high lane: row r + 4); exact (vpdpbusd does not saturate).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BiasedPair(Vector256<byte> v, Vector256<sbyte> yLo, Vector256<sbyte> yHi, Vector256<byte> ku)
    {
        var mask = Vector256.Create((byte)0x0F);
        var lo = Avx2.Shuffle(ku, v & mask);
        var hi = Avx2.Shuffle(ku, Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & mask);
        return AvxVnni.MultiplyWideningAndAdd(AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, lo, yLo), hi, yHi);
    }

    /// <summary>
    /// Lane r = row r's exact Σ kv[q]·a over one block, from the four row-pair vectors (<see cref="Pair"/>) and the
    /// block's 32 activation bytes at <paramref name="ya"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Totals<TDot>(Vector256<byte> v04, Vector256<byte> v15, Vector256<byte> v26, Vector256<byte> v37, byte* ya,
        Vector256<sbyte> kv) where TDot : struct, IByteDot
    {
        var yLo = Avx2.BroadcastVector128ToVector256((sbyte*)ya);        // elements 0..15 (low nibbles) in both lanes
        var yHi = Avx2.BroadcastVector128ToVector256((sbyte*)ya + 16);   // elements 16..31 (high nibbles)
        var aLo = Avx2.Abs(yLo);
        var aHi = Avx2.Abs(yHi);
        var h01 = Avx2.HorizontalAdd(RowPair<TDot>(v04, yLo, yHi, aLo, aHi, kv), RowPair<TDot>(v15, yLo, yHi, aLo, aHi, kv));
        var h23 = Avx2.HorizontalAdd(RowPair<TDot>(v26, yLo, yHi, aLo, aHi, kv), RowPair<TDot>(v37, yLo, yHi, aLo, aHi, kv));
        return Avx2.HorizontalAdd(h01, h23);   // [rows 0..3 | rows 4..7]
    }

    /// <summary>Two rows' block products as 4 int32 lanes each (low lane: row r, high lane: row r + 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RowPair<TDot>(Vector256<byte> v, Vector256<sbyte> yLo, Vector256<sbyte> yHi, Vector256<byte> aLo, Vector256<byte> aHi,
        Vector256<sbyte> kv) where TDot : struct, IByteDot
    {
        var (lo, hi) = Levels(v, kv);
        return TDot.Add(TDot.Add(Vector256<int>.Zero, aLo, Avx2.Sign(lo, yLo)), aHi, Avx2.Sign(hi, yHi));
    }

    /// <summary>
    /// The levels of the low and of the high nibbles of <paramref name="v"/>. With AVX-512 VBMI a vpermb on the
    /// 32-byte table (<paramref name="kv"/> holds the 16 levels in both lanes, so index bit 4 does not matter) takes
    /// the raw and the shifted bytes as they are: no and per lookup, 8 operations fewer per block (IQ4_NL decode on
    /// Zen 4: ~9 % less time per block in cache); vpshufb needs the index masked to 4 bits (bit 7 would zero the byte).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<sbyte> Lo, Vector256<sbyte> Hi) Levels(Vector256<byte> v, Vector256<sbyte> kv)
    {
        var high = Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte();
        if (Avx512Vbmi.VL.IsSupported)
            return (Avx512Vbmi.VL.PermuteVar32x8(kv.AsByte(), v).AsSByte(), Avx512Vbmi.VL.PermuteVar32x8(kv.AsByte(), high).AsSByte());
        var mask = Vector256.Create((byte)0x0F);
        return (Avx2.Shuffle(kv, (v & mask).AsSByte()), Avx2.Shuffle(kv, (high & mask).AsSByte()));
    }

    /// <summary>The interleaved block's 8 f16 scales as f32, exact (Inf/NaN flagged in <paramref name="special"/>, as <see cref="MatVec8.RowHalves"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> SlotHalves(ushort* slot, ref Vector256<int> special)
    {
        var t = Avx2.ConvertToVector256Int32(slot) << 16;
        special = Avx2.Max(special.AsUInt32(), (t & Vector256.Create(0x7C000000)).AsUInt32()).AsInt32();
        return HalfConversion.FromTopHalves(t);
    }
}

/// <summary>
/// IQ4_XS for <see cref="MatVec8K"/>: d at byte 0 (low half of the first dword), no mins; the block integer is
/// <see cref="IQ4XS.BlockSum"/> and acc = fma(isum, d, acc), as <see cref="IQ4XS.DotAvx2"/>.
/// </summary>
internal unsafe struct IQ4XS8 : IKQuant8
{
    public static int BlockBytes => 136;
    public static int ScaleDword => 0;
    public static bool DHigh => false;
    public static bool HasMin => false;
    public static int PackedBlockBytes => IQ4Packed.XSBlockBytes;
    public static delegate*<byte*, byte*, int, float> RowDot => &IQ4XS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y, out Vector256<int> mins)
    {
        mins = default;
        return IQ4XS.BlockSum(x, y, IQ4XS.LevelTable());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Accumulate(Vector256<float> acc, Vector256<float> sum, Vector256<float> mins, Vector256<float> d, Vector256<float> dmin)
        => Fma.MultiplyAdd(sum, d, acc);

    public static void Pack8(byte* w, int rowBytes, int nb, byte* dst) => IQ4Packed.PackIQ4XS(w, rowBytes, nb, dst);
}
