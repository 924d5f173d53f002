using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>The <see cref="MatVec8"/> kernels of Q4_K and Q6_K (GGUF rows and their interleaved copies).</summary>
internal static unsafe partial class MatVec8
{
    /// <summary>One Q4_K super-block of one row (GGUF order): exact Σ sc_j·q·a (8 lanes) and Σ m_j·bsum (8 lanes), as in <see cref="Q4K.DotAvx2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KBlock(byte* x, byte* y, out Vector256<int> minProd)
    {
        Quant.Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
        var scaleMin = Vector128.Create(scales, mins).AsByte();                              // [s0..s7, m0..m7]
        byte* qs = x + 16;
        minProd = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(scaleMin, scaleMin)));
        var sc16 = Avx2.ConvertToVector256Int16(scaleMin);                                   // [s0..s7 | m0..m7]
        var sc = Avx2.Permute2x128(sc16, sc16, 0x00);                                        // [s0..s7 | s0..s7]
        sbyte* q8 = (sbyte*)(y + 4);
        var low = Vector256.Create((byte)0x0F);
        // Sub-block j (32 weights): the low nibbles of qs[32·(j/2)..] for even j, the high ones for odd j.
        var v0 = Vector256.Load(qs);
        var v1 = Vector256.Load(qs + 32);
        var v2 = Vector256.Load(qs + 64);
        var v3 = Vector256.Load(qs + 96);
        var p0 = Avx2.MultiplyAddAdjacent(v0 & low, Vector256.Load(q8));
        var p1 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 32));
        var p2 = Avx2.MultiplyAddAdjacent(v1 & low, Vector256.Load(q8 + 64));
        var p3 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 96));
        var p4 = Avx2.MultiplyAddAdjacent(v2 & low, Vector256.Load(q8 + 128));
        var p5 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 160));
        var p6 = Avx2.MultiplyAddAdjacent(v3 & low, Vector256.Load(q8 + 192));
        var p7 = Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & low, Vector256.Load(q8 + 224));
        // Each sub-block's 16 pair sums folded (adds, no multiplies) to 2 lanes per 128-bit half: 8 products of
        // u4·s8 ≤ 15·128 each, so |lane| ≤ 15360 fits int16. Per half the lanes are then sub-blocks [0,0,1,1,2,2,3,3]
        // (and 4..7), so one madd against [s0,s0,s1,s1,…] scales four sub-blocks: 2 multiplies instead of 8.
        var x03 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(p0, p1), Avx2.HorizontalAdd(p2, p3));
        var x47 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(p4, p5), Avx2.HorizontalAdd(p6, p7));
        return Avx2.MultiplyAddAdjacent(x03, Avx2.UnpackLow(sc, sc)) + Avx2.MultiplyAddAdjacent(x47, Avx2.UnpackHigh(sc, sc));
    }

    /// <summary>Q4_K rows r..r+7 · one Q8_K activation row → y[0..7].</summary>
    /// <remarks>Rows go one at a time through a super-block (their partial sums parked on the stack): eight rows inlined side by side spill badly.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4K(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        long rb = rowBytes;
        var sums = stackalloc Vector256<int>[16];   // [8 rows] Σ sc·q·a lanes, then [8 rows] Σ m·bsum lanes
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 144, ab = a + b * 292;
            PrefetchNext(w + 8 * rb, 8 * 144, b);
            for (int r = 0; r < 8; r++)
                sums[r] = Q4KBlock(x + r * rb, ab, out sums[8 + r]);
            var ad = Vector256.Create(*(float*)ab);
            // d in the low half of the block's first dword, dmin in the high half.
            var d = RowHalfPair(x, rowStep, ref special, out var dmin);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])), d * ad, acc);
            acc = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(Totals(sums[8], sums[9], sums[10], sums[11], sums[12], sums[13], sums[14], sums[15])), dmin * ad, acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One Q4_K super-block of one interleaved row in <see cref="KStream"/> order: Σ_j s_j·Σ q·a over its sub-blocks,
    /// as 8 int32 lanes (lane d: sub-block d), from the row's 128 quant bytes <paramref name="qs"/>, its scales
    /// <paramref name="scales"/> = [s0, s0, s1, s1, …, s7, s7] (int16) and the activations in stream order
    /// <paramref name="y"/>. The 8 products of vpmaddubsw land in the same int16 lanes (|Σ| ≤ 8·2·15·128 = 30720), so
    /// they are added first and scaled by one vpmaddwd.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KStreamBlock(byte* qs, Vector256<short> scales, sbyte* y)
    {
        var low = Vector256.Create((byte)0x0F);
        var v0 = Vector256.Load(qs);
        var v1 = Vector256.Load(qs + 32);
        var v2 = Vector256.Load(qs + 64);
        var v3 = Vector256.Load(qs + 96);
        var p01 = Avx2.MultiplyAddAdjacent(v0 & low, Vector256.Load(y))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v0.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 32));
        var p23 = Avx2.MultiplyAddAdjacent(v1 & low, Vector256.Load(y + 64))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v1.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 96));
        var p45 = Avx2.MultiplyAddAdjacent(v2 & low, Vector256.Load(y + 128))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v2.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 160));
        var p67 = Avx2.MultiplyAddAdjacent(v3 & low, Vector256.Load(y + 192))
            + Avx2.MultiplyAddAdjacent(Avx2.ShiftRightLogical(v3.AsUInt16(), 4).AsByte() & low, Vector256.Load(y + 224));
        return Avx2.MultiplyAddAdjacent((p01 + p23) + (p45 + p67), scales);
    }

    /// <summary>
    /// <see cref="Q4KStreamBlock"/> in two zmm loads: <paramref name="ya0"/>..<paramref name="yb1"/> hold the stream
    /// runs (0, 2), (1, 3), (4, 6), (5, 7), so the upper 256 bits of the int16 sum are what the ymm form adds as
    /// p23 (p67) to p01 (p45). The int16 lanes take the same products in another order; vpaddw wraps and the exact
    /// total fits (see <see cref="Q4KStreamBlock"/>), so the lanes, and the int32 result, are the same.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q4KStreamBlock512(byte* qs, Vector256<short> scales,
        Vector512<sbyte> ya0, Vector512<sbyte> ya1, Vector512<sbyte> yb0, Vector512<sbyte> yb1)
    {
        var low = Vector512.Create((byte)0x0F);
        var va = Vector512.Load(qs);
        var vb = Vector512.Load(qs + 64);
        var s = (Avx512BW.MultiplyAddAdjacent(va & low, ya0)
                + Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(va.AsUInt16(), 4).AsByte() & low, ya1))
            + (Avx512BW.MultiplyAddAdjacent(vb & low, yb0)
                + Avx512BW.MultiplyAddAdjacent(Avx512BW.ShiftRightLogical(vb.AsUInt16(), 4).AsByte() & low, yb1));
        return Avx2.MultiplyAddAdjacent(s.GetLower() + s.GetUpper(), scales);
    }

    /// <summary>
    /// <see cref="Q4K"/> on an interleaved group (<see cref="Interleaved8"/>) with the activations' quants also in
    /// <see cref="KStream"/> order (<paramref name="stream"/>, 256 B per super-block; <paramref name="a"/> is the
    /// Q8_K row itself, for d and the bsums): d and dmin are one 16-byte load each, the 8 rows' scales and mins one
    /// short vector sequence (<see cref="Interleaved8.PackQ4KScales"/>), each row's scaled sums take one vpmaddwd (<see cref="Q4KStreamBlock"/>), and the
    /// mins of two rows take one against the 8 sub-block sums of the activations. The integer totals per row and
    /// super-block and the float operations are those of <see cref="Q4K"/> (identical bits).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q4Kx8(byte* g, int nb, byte* a, byte* stream, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var sums = stackalloc Vector256<int>[8];      // [8 rows] Σ s·q·a, per sub-block
        var scales = stackalloc Vector256<short>[8];  // [8 rows] [s0, s0, …, s7, s7]
        var mins = stackalloc Vector256<int>[4];      // [4 row pairs] Σ m·bsum, 4 lanes per row
        var minOrder = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 1152, ab = a + b * 292;
            Prefetch18Lines(x + InterleavedLead);
            // The activations' 8 sub-block sums (each ≤ 32·128), in both 128-bit lanes.
            var bs = Vector256.Load((short*)(ab + 4 + 256));
            var sub = Avx2.Permute4x64(Avx2.HorizontalAdd(bs, bs).AsInt64(), 0x88).AsInt16();
            // The 8 rows' scales and mins as bytes, rows 0-3 and 4-7 (Interleaved8.PackQ4KScales): low nibbles, then
            // the top two bits from one shared vector.
            var lo03 = Vector256.Load(x + 32);
            var lo47 = Vector256.Load(x + 64);
            var top = Vector256.Load(x + 96).AsUInt16();
            var nib = Vector256.Create((byte)0x0F);
            var bits = Vector256.Create((byte)0x30);
            var s03 = (lo03 & nib) | (Avx2.ShiftLeftLogical(top, 4).AsByte() & bits);
            var s47 = (lo47 & nib) | (Avx2.ShiftLeftLogical(top, 2).AsByte() & bits);
            var m03 = (Avx2.ShiftRightLogical(lo03.AsUInt16(), 4).AsByte() & nib) | (top.AsByte() & bits);
            var m47 = (Avx2.ShiftRightLogical(lo47.AsUInt16(), 4).AsByte() & nib) | (Avx2.ShiftRightLogical(top, 2).AsByte() & bits);
            // Row r's scales duplicated into int16 pairs [s0, s0, …, s7, s7]: unpacking a vector with itself puts rows
            // (0, 2) in the low bytes' lanes and (1, 3) in the high ones.
            var d02 = Avx2.UnpackLow(s03, s03);
            var d13 = Avx2.UnpackHigh(s03, s03);
            var d46 = Avx2.UnpackLow(s47, s47);
            var d57 = Avx2.UnpackHigh(s47, s47);
            scales[0] = Avx2.ConvertToVector256Int16(d02.GetLower()).AsInt16();
            scales[1] = Avx2.ConvertToVector256Int16(d13.GetLower()).AsInt16();
            scales[2] = Avx2.ConvertToVector256Int16(d02.GetUpper()).AsInt16();
            scales[3] = Avx2.ConvertToVector256Int16(d13.GetUpper()).AsInt16();
            scales[4] = Avx2.ConvertToVector256Int16(d46.GetLower()).AsInt16();
            scales[5] = Avx2.ConvertToVector256Int16(d57.GetLower()).AsInt16();
            scales[6] = Avx2.ConvertToVector256Int16(d46.GetUpper()).AsInt16();
            scales[7] = Avx2.ConvertToVector256Int16(d57.GetUpper()).AsInt16();
            // Rows 2p, 2p+1: their mins as int16 (one row per 128-bit lane) against the sub-block sums.
            mins[0] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m03.GetLower()).AsInt16(), sub);
            mins[1] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m03.GetUpper()).AsInt16(), sub);
            mins[2] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m47.GetLower()).AsInt16(), sub);
            mins[3] = Avx2.MultiplyAddAdjacent(Avx2.ConvertToVector256Int16(m47.GetUpper()).AsInt16(), sub);
            sbyte* ys = (sbyte*)(stream + b * 256);
            if (Avx512BW.IsSupported && CpuTuning.ZmmDecode)
            {
                // Stream runs (0, 2), (1, 3), (4, 6), (5, 7) side by side, once for the 8 rows: each row's 128 quant
                // bytes are then two zmm loads against them (Q4KStreamBlock512).
                var ya0 = Vector512.Create(Vector256.Load(ys), Vector256.Load(ys + 64));
                var ya1 = Vector512.Create(Vector256.Load(ys + 32), Vector256.Load(ys + 96));
                var yb0 = Vector512.Create(Vector256.Load(ys + 128), Vector256.Load(ys + 192));
                var yb1 = Vector512.Create(Vector256.Load(ys + 160), Vector256.Load(ys + 224));
                for (int r = 0; r < 8; r++)
                    sums[r] = Q4KStreamBlock512(x + 128 + 128 * r, scales[r], ya0, ya1, yb0, yb1);
            }
            else
            {
                for (int r = 0; r < 8; r++)
                    sums[r] = Q4KStreamBlock(x + 128 + 128 * r, scales[r], ys);
            }
            // Row pairs (0,1), (2,3), … → lanes [0, 2, 4, 6 | 1, 3, 5, 7] → row order.
            var minTot = Avx2.PermuteVar8x32(Avx2.HorizontalAdd(Avx2.HorizontalAdd(mins[0], mins[1]), Avx2.HorizontalAdd(mins[2], mins[3])), minOrder);
            var ad = Vector256.Create(*(float*)ab);
            Vector256<float> d, dmin;
            if (Avx512F.IsSupported)
                (d, dmin) = SlotHalvesPair((ushort*)x, ref special);   // the 8 d then the 8 dmin: 32 contiguous bytes
            else
                (d, dmin) = (SlotHalves((ushort*)x, ref special), SlotHalves((ushort*)(x + 16), ref special));
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])), d * ad, acc);
            acc = Fma.MultiplyAddNegated(Vector256.ConvertToSingle(minTot), dmin * ad, acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q4K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>One Q6_K super-block of one row (GGUF order): exact Σ sc·q·a − 32·Σ sc·bsum (8 lanes), as in <see cref="Q6K.DotAvx2"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KBlock(byte* x, byte* y)
    {
        sbyte* scales = (sbyte*)(x + 192);
        sbyte* q8 = (sbyte*)(y + 4);
        var sc16 = Avx2.ConvertToVector256Int16(Vector128.Load(scales));   // [s0..s7 | s8..s15]
        var offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), sc16);
        var sumi = Vector256<int>.Zero;
        for (int h = 0; h < 2; h++)
        {
            // This half's 8 scales in both 128-bit lanes; a run of 32 uses scales (2k, 2k+1): low lanes get 2k, high 2k+1.
            var sh = (h == 0 ? Avx2.Permute2x128(sc16, sc16, 0x00) : Avx2.Permute2x128(sc16, sc16, 0x11)).AsByte();
            Quant.Q6K.DecodeHalf(x, h, out var v1, out var v2, out var v3, out var v4);
            var (q1, q2, q3, q4) = (v1.AsByte(), v2.AsByte(), v3.AsByte(), v4.AsByte());
            sbyte* ys = q8 + 128 * h;
            // Pair sums u6·s8 ≤ 2·63·128 each: one horizontal add (≤ 32256) still fits int16, so two runs share one
            // madd against their four scales (per half [run A's 4 lanes, run B's 4 lanes]): 2 multiplies instead of 4.
            var a = Avx2.HorizontalAdd(Avx2.MultiplyAddAdjacent(q1, Vector256.Load(ys)), Avx2.MultiplyAddAdjacent(q2, Vector256.Load(ys + 32)));
            var b = Avx2.HorizontalAdd(Avx2.MultiplyAddAdjacent(q3, Vector256.Load(ys + 64)), Avx2.MultiplyAddAdjacent(q4, Vector256.Load(ys + 96)));
            sumi += Avx2.MultiplyAddAdjacent(a, Avx2.Shuffle(sh, QuadBroadcast(0)).AsInt16()) + Avx2.MultiplyAddAdjacent(b, Avx2.Shuffle(sh, QuadBroadcast(4)).AsInt16());
        }
        return sumi - Avx2.ShiftLeftLogical(offset, 5);
    }

    /// <summary>
    /// vpshufb control for two runs folded by one horizontal add: per 128-bit half, int16 lanes 0..3 get scale
    /// <paramref name="k"/> (low half) or k+1 (high half), lanes 4..7 scale k+2 or k+3.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> QuadBroadcast(int k) =>
        Vector256.Create(Words(k, k + 2), Words(k + 1, k + 3)).AsByte();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ushort> Words(int u, int v)
    {
        ushort a = (ushort)(2 * u | (2 * u + 1) << 8), b = (ushort)(2 * v | (2 * v + 1) << 8);
        return Vector128.Create(a, a, a, a, b, b, b, b);
    }

    /// <summary>Q6_K rows r..r+7 · one Q8_K activation row → y[0..7] (rows one at a time per super-block, as <see cref="Q4K"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6K(byte* w, int rowBytes, int nb, byte* a, float* aScales, int* aSums, float* y)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowBytes;
        long rb = rowBytes;
        var sums = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + b * 210, ab = a + b * 292;
            PrefetchNext(w + 8 * rb, 8 * 210, b);
            for (int r = 0; r < 8; r++)
                sums[r] = Q6KBlock(x + r * rb, ab);
            var tot = Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            // d ends the block: the high half of the dword before it, so no read leaves the block.
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), RowHalves(x + 206, rowStep, ref special, high: true) * Vector256.Create(*(float*)ab), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q6K.DotAvx2, w, rowBytes, nb, a, y);
    }

    /// <summary>
    /// One Q6_K super-block of one interleaved row in <see cref="KStream"/> order: exact Σ sc·q·a − 32·Σ sc·bsum
    /// (8 lanes), as <see cref="Q6KBlock(byte*, byte*)"/>, from its ql/qh <paramref name="x"/>, its 16 int8
    /// scales, the activations' bsums and their quants in stream order <paramref name="y"/>. Per half, vector j's
    /// int16 lanes (2d, 2d+1) belong to sub-block 8·h + d in every vector, so two products are added (≤ 2·2·63·128 =
    /// 32256) and scaled by one vpmaddwd against [s_8h, s_8h, …, s_8h+7, s_8h+7].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Q6KStreamBlock(byte* x, sbyte* scales, Vector256<short> bsums, sbyte* y)
    {
        var raw = Vector128.Load(scales);
        var offset = Avx2.MultiplyAddAdjacent(bsums, Avx2.ConvertToVector256Int16(raw));
        var sLo = Avx2.ConvertToVector256Int16(Sse2.UnpackLow(raw, raw));
        var sHi = Avx2.ConvertToVector256Int16(Sse2.UnpackHigh(raw, raw));
        Quant.Q6K.DecodeHalf(x, 0, out var q1, out var q2, out var q3, out var q4);
        var lo = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1.AsByte(), Vector256.Load(y)) + Avx2.MultiplyAddAdjacent(q2.AsByte(), Vector256.Load(y + 32)), sLo)
            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3.AsByte(), Vector256.Load(y + 64)) + Avx2.MultiplyAddAdjacent(q4.AsByte(), Vector256.Load(y + 96)), sLo);
        Quant.Q6K.DecodeHalf(x, 1, out q1, out q2, out q3, out q4);
        var hi = Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q1.AsByte(), Vector256.Load(y + 128)) + Avx2.MultiplyAddAdjacent(q2.AsByte(), Vector256.Load(y + 160)), sHi)
            + Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(q3.AsByte(), Vector256.Load(y + 192)) + Avx2.MultiplyAddAdjacent(q4.AsByte(), Vector256.Load(y + 224)), sHi);
        return lo + hi - Avx2.ShiftLeftLogical(offset, 5);
    }

    /// <summary>
    /// <see cref="Q6K"/> on an interleaved group (<see cref="Interleaved8"/>) with the activations' quants in
    /// <see cref="KStream"/> order (<paramref name="stream"/>; <paramref name="a"/> is the Q8_K row): d is one
    /// 16-byte load, the group one stream, each row's scaled sums <see cref="Q6KStreamBlock"/>; identical bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Q6Kx8(byte* g, int nb, byte* a, byte* stream, float* y, byte* w, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var sums = stackalloc Vector256<int>[8];
        for (int b = 0; b < nb; b++)
        {
            byte* x = g + b * 1680, ab = a + b * 292;
            Prefetch27Lines(x + InterleavedLead);
            var bs = Vector256.Load((short*)(ab + 4 + 256));
            sbyte* ys = (sbyte*)(stream + b * 256);
            for (int r = 0; r < 8; r++)
                sums[r] = Q6KStreamBlock(x + 144 + 192 * r, (sbyte*)(x + 16 + 16 * r), bs, ys);
            var tot = Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(tot), SlotHalves((ushort*)x, ref special) * Vector256.Create(*(float*)ab), acc);
        }
        acc.Store(y);
        if (HasSpecial(special))
            Exact(&Quant.Q6K.DotAvx2, w, rowBytes, nb, a, y);
    }
}
