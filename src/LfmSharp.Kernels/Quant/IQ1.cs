using System.Runtime.CompilerServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// IQ1_S rows (<see cref="BlockIQ1S"/>): 1.5625 bits per weight; groups of 8 are points of the ternary iq1s_grid,
/// shifted by ±1/8 per 32 weights. Dot products run against <see cref="Q8K"/> (the shift through its bsums).
/// </summary>
internal static unsafe class IQ1S
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ1_S;

    /// <summary>The grid shift (ggml's IQ1S_DELTA / IQ1M_DELTA).</summary>
    internal const float Delta = 0.125f;

    /// <summary>
    /// Sub-block ib with h = qh[ib]: dl = d·(2·((h » 12) &amp; 7) + 1), delta = ∓1/8 by bit 15; group l is
    /// grid[qs[4ib + l] | ((h » 3l) &amp; 7) « 8], y = dl·(g + delta). Bit-identical to ggml's dequantize_row_iq1_s.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ1S>(src, nb);
        ReadOnlySpan<ulong> grid = IQ1Grid.Iq1SGrid;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs;
            ReadOnlySpan<ushort> qh = blocks[i].Qh;
            for (int ib = 0; ib < 8; ib++)
            {
                int h = qh[ib];
                float dl = d * (2 * ((h >> 12) & 7) + 1);
                float delta = (h & 0x8000) != 0 ? -Delta : Delta;
                for (int l = 0; l < 4; l++)
                    Group(grid[qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8)], dl, delta, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
            }
        }
    }

    /// <summary>y[j] = dl·(g_j + delta) for the 8 signed values of a grid point.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Group(ulong grid, float dl, float delta, Span<float> y)
    {
        for (int j = 0; j < 8; j++)
            y[j] = dl * ((sbyte)(grid >> (8 * j)) + delta);
    }

    /// <summary>Σ_j g_j·a_j over one group of 8 signed grid values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int GroupDot(ulong grid, ReadOnlySpan<sbyte> q8)
    {
        int sum = 0;
        for (int j = 0; j < 8; j++)
            sum += q8[j] * (sbyte)(grid >> (8 * j));
        return sum;
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq1_s_q8_K_generic: exact integers sumi = Σ ls·Σ g·a and sumi1 = Σ ls·(±1)·bsums
    /// per block, sumf += d_w·d_a·(sumi + 1/8·sumi1). weightRow: [n/256 × 50] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (the exact 8·sumi + sumi1 from <see cref="IQBlockSums.IQ1S"/>, the same float steps).</summary>
    internal static float DotAvx2(byte* w, byte* a, int nb) => MatVec8IQ.RowDot<IQ1S8>(w, a, nb);

    /// <summary>
    /// Super-block decode for <see cref="IQDecoded"/>: bytes 8·g ± 1 (the shift folded in, Post = 1/8) and ls for both
    /// halves. The shift term then sums the quants themselves, equal to ggml's use of Q8_K's bsums (their definition).
    /// </summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* grid = IQSimd.Pointer(IQ1Grid.Iq1SGrid);
        byte* qs = x + 2;
        ushort* qh = (ushort*)(x + 34);
        for (int ib = 0; ib < 8; ib++)
        {
            int h = qh[ib];
            int delta = (h & 0x8000) != 0 ? -1 : 1;
            for (int l = 0; l < 4; l++)
                Shifted(grid[qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8)], delta, q + 32 * ib + 8 * l);
            ls[2 * ib] = ls[2 * ib + 1] = (short)(2 * ((h >> 12) & 7) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>
    /// q[j] = 8·g_j + delta (delta ±1) for the 8 signed values of a grid point, all 8 bytes at once (the decode of a
    /// batch panel runs this 32 times per block): 8·g per byte is (grid &lt;&lt; 3) masked, and the ±1 is a carry-free
    /// bytewise add (low 7 bits added, top bit by XOR), so each byte is exactly (sbyte)(8·g + delta) as the byte loop gives.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Shifted(ulong grid, int delta, sbyte* q)
    {
        const ulong Low7 = 0x7F7F7F7F7F7F7F7Ful, Top = 0x8080808080808080ul;
        ulong a = (grid << 3) & 0xF8F8F8F8F8F8F8F8ul;
        ulong b = delta > 0 ? 0x0101010101010101ul : ulong.MaxValue;
        *(ulong*)q = ((a & Low7) + (b & Low7)) ^ ((a ^ b) & Top);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ1S>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<ulong> grid = IQ1Grid.Iq1SGrid;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<byte> qs = x[i].Qs;
            ReadOnlySpan<ushort> qh = x[i].Qh;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            ReadOnlySpan<short> bsums = y[i].BSums;
            int sumi = 0, sumi1 = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int h = qh[ib];
                int ls = 2 * ((h >> 12) & 7) + 1;
                int delta = (h & 0x8000) != 0 ? -1 : 1;
                int lsum = 0;
                for (int l = 0; l < 4; l++)
                    lsum += GroupDot(grid[qs[4 * ib + l] | (((h >> (3 * l)) & 7) << 8)], q8.Slice(32 * ib + 8 * l, 8));
                sumi += ls * lsum;
                sumi1 += ls * delta * (bsums[2 * ib] + bsums[2 * ib + 1]);
            }
            sumf += FromHalf(x[i].D) * y[i].D * (sumi + Delta * sumi1);
        }
        return sumf;
    }
}

/// <summary>
/// IQ1_M rows (<see cref="BlockIQ1M"/>): 1.75 bits per weight; groups of 8 are iq1s_grid points with their own ±1/8
/// shift, 3-bit scales per 16, and an f16 super-scale assembled from the scales' top nibbles. Dot products run against
/// <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ1M
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ1_M;

    /// <summary>
    /// Sub-block ib: dl1, dl2 = d·(2·s + 1) for the 3-bit scales 2ib, 2ib + 1 of the u16 scale words; group l is
    /// grid[qs[4ib + l] | (nibble l of qh[2ib..] &amp; 7) « 8], shifted by ∓1/8 by that nibble's bit 3.
    /// Bit-identical to ggml's dequantize_row_iq1_m.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ1M>(src, nb);
        ReadOnlySpan<ulong> grid = IQ1Grid.Iq1SGrid;
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<byte> qs = blocks[i].Qs, qh = blocks[i].Qh, sc = blocks[i].Scales;
            float d = SuperScale(sc);
            for (int ib = 0; ib < 8; ib++)
            {
                int word = sc[2 * (ib / 2)] | sc[2 * (ib / 2) + 1] << 8;
                float dl1 = d * (2 * ((word >> (6 * (ib % 2))) & 7) + 1);
                float dl2 = d * (2 * ((word >> (6 * (ib % 2) + 3)) & 7) + 1);
                for (int l = 0; l < 4; l++)
                {
                    int nib = qh[2 * ib + l / 2] >> (4 * (l % 2));
                    IQ1S.Group(grid[qs[4 * ib + l] | ((nib & 7) << 8)], l < 2 ? dl1 : dl2, (nib & 8) != 0 ? -IQ1S.Delta : IQ1S.Delta,
                        dst.Slice(256 * i + 32 * ib + 8 * l, 8));
                }
            }
        }
    }

    /// <summary>The f16 super-scale: the top nibbles of the four u16 scale words, lowest word first.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SuperScale(ReadOnlySpan<byte> sc)
    {
        int bits = (sc[1] >> 4) | (sc[3] & 0xF0) | (sc[5] & 0xF0) << 4 | (sc[7] & 0xF0) << 8;
        return FromHalf(BitConverter.UInt16BitsToHalf((ushort)bits));
    }

    /// <summary>The f16 bits of the super-scale from the four u16 scale words (ggml's iq1m_scale_t assembly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort SuperScaleBits(ushort* sc) => (ushort)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00F0) | ((sc[2] >> 4) & 0x0F00) | (sc[3] & 0xF000));

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq1_m_q8_K_generic: exact integers sumi1 = Σ ls·Σ g·a and sumi2 = Σ ls·Σ ±Σa per
    /// block, sumf += d·d_a·(sumi1 + 1/8·sumi2). weightRow: [n/256 × 56] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (the exact 8·sumi1 + sumi2 from <see cref="IQBlockSums.IQ1M"/>, the same float steps).</summary>
    internal static float DotAvx2(byte* w, byte* a, int nb) => MatVec8IQ.RowDot<IQ1M8>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: bytes 8·g ± 1 per group of 8 (Post = 1/8), 3-bit scales per 16.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* grid = IQSimd.Pointer(IQ1Grid.Iq1SGrid);
        byte* qh = x + 32;
        ushort* sc = (ushort*)(x + 48);
        for (int ib = 0; ib < 8; ib++)
        {
            for (int l = 0; l < 4; l++)
            {
                int nib = qh[2 * ib + l / 2] >> (4 * (l % 2));
                IQ1S.Shifted(grid[x[4 * ib + l] | ((nib & 7) << 8)], (nib & 8) != 0 ? -1 : 1, q + 32 * ib + 8 * l);
            }
            int word = sc[ib / 2] >> (6 * (ib % 2));
            ls[2 * ib] = (short)(2 * (word & 7) + 1);
            ls[2 * ib + 1] = (short)(2 * ((word >> 3) & 7) + 1);
        }
        return HalfToSingle(SuperScaleBits(sc));
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ1M>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<ulong> grid = IQ1Grid.Iq1SGrid;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<byte> qs = x[i].Qs, qh = x[i].Qh, sc = x[i].Scales;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int sumi1 = 0, sumi2 = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int s1a = 0, s1b = 0, s2a = 0, s2b = 0;
                for (int l = 0; l < 4; l++)
                {
                    int nib = qh[2 * ib + l / 2] >> (4 * (l % 2));
                    ReadOnlySpan<sbyte> a = q8.Slice(32 * ib + 8 * l, 8);
                    int lsum1 = IQ1S.GroupDot(grid[qs[4 * ib + l] | ((nib & 7) << 8)], a);
                    int lsum2 = 0;
                    for (int j = 0; j < 8; j++)
                        lsum2 += a[j];
                    int delta = (nib & 8) != 0 ? -1 : 1;
                    if (l < 2) { s1a += lsum1; s2a += lsum2 * delta; }
                    else { s1b += lsum1; s2b += lsum2 * delta; }
                }
                int word = sc[2 * (ib / 2)] | sc[2 * (ib / 2) + 1] << 8;
                int ls1 = 2 * ((word >> (6 * (ib % 2))) & 7) + 1;
                int ls2 = 2 * ((word >> (6 * (ib % 2) + 3)) & 7) + 1;
                sumi1 += s1a * ls1 + s1b * ls2;
                sumi2 += s2a * ls1 + s2b * ls2;
            }
            sumf += SuperScale(sc) * y[i].D * (sumi1 + IQ1S.Delta * sumi2);
        }
        return sumf;
    }
}
