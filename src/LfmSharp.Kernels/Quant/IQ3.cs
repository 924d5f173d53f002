using System.Runtime.CompilerServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// IQ3_XXS rows (<see cref="BlockIQ3XXS"/>): 3.0625 bits per weight; groups of 4 are points of iq3xxs_grid, signs
/// per 8 from ksigns_iq2xs. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ3XXS
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ3_XXS;

    /// <summary>
    /// Sub-block ib: aux = u32 at qs[64 + 4ib], db = d·(0.5 + aux » 28)·0.5; group l of 8 is grid[qs[8ib + 2l]] then
    /// grid[qs[8ib + 2l + 1]] with sign byte ksigns[(aux » 7l) &amp; 127]. Bit-identical to ggml's dequantize_row_iq3_xxs.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ3XXS>(src, nb);
        ReadOnlySpan<uint> grid = IQTables.Iq3XxsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs;
            for (int ib = 0; ib < 8; ib++)
            {
                uint aux = Aux(qs, ib);
                float db = d * (0.5f + (aux >> 28)) * 0.5f;
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[qs[8 * ib + 2 * l]] | (ulong)grid[qs[8 * ib + 2 * l + 1]] << 32;
                    IQ2XS.Group(g, ksigns[(int)((aux >> (7 * l)) & 127)], db, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Aux(ReadOnlySpan<byte> qs, int ib)
        => qs[64 + 4 * ib] | (uint)qs[65 + 4 * ib] << 8 | (uint)qs[66 + 4 * ib] << 16 | (uint)qs[67 + 4 * ib] << 24;

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq3_xxs_q8_K_generic: exact block integers Σ ls·Σ ±g·a (ls = 2·(aux » 28) + 1),
    /// sumf += (d_w·d_a)·bsum, and 0.25·sumf at the end. weightRow: [n/256 × 98] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (exact block integers from <see cref="IQBlockSums.IQ3XXS"/>, the same float steps).</summary>
    internal static float DotAvx2(byte* w, byte* a, int nb) => MatVec8IQ.RowDot<IQ3XXS8>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: signed grid bytes, ls = 2·(aux » 28) + 1 for both halves.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        uint* grid = IQSimd.Pointer(IQTables.Iq3XxsGrid);
        ulong* masks = IQSimd.SignMaskPointer;
        ulong* dst = (ulong*)q;
        for (int ib = 0; ib < 8; ib++)
        {
            byte* q3 = x + 2 + 8 * ib;
            uint aux = *(uint*)(x + 66 + 4 * ib);
            for (int l = 0; l < 4; l++)
                dst[4 * ib + l] = IQDecoded.Signed(grid[q3[2 * l]] | (ulong)grid[q3[2 * l + 1]] << 32, masks[(aux >> (7 * l)) & 127]);
            ls[2 * ib] = ls[2 * ib + 1] = (short)(2 * (aux >> 28) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ3XXS>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<uint> grid = IQTables.Iq3XxsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(x[i].D) * y[i].D;
            ReadOnlySpan<byte> qs = x[i].Qs;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int bsum = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                uint aux = Aux(qs, ib);
                int ls = (int)(2 * (aux >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                {
                    ulong g = grid[qs[8 * ib + 2 * l]] | (ulong)grid[qs[8 * ib + 2 * l + 1]] << 32;
                    sumi += IQ2XS.GroupDot(g, ksigns[(int)((aux >> (7 * l)) & 127)], q8.Slice(32 * ib + 8 * l, 8));
                }
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return 0.25f * sumf;
    }
}

/// <summary>
/// IQ3_S rows (<see cref="BlockIQ3S"/>): 3.4375 bits per weight; groups of 4 have a 9-bit index into iq3s_grid,
/// every weight an explicit sign bit, every 32 a 4-bit scale. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ3S
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ3_S;

    /// <summary>
    /// Sub-block ib: db = d·(1 + 2·s) with s nibble ib of scales; group l of 8 is grid[qs[8ib + 2l] | ninth bit 2l of
    /// qh[ib]] then grid[qs[8ib + 2l + 1] | bit 2l + 1], signs from signs[4ib + l]. Bit-identical to ggml.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ3S>(src, nb);
        ReadOnlySpan<uint> grid = IQTables.Iq3SGrid;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs, qh = blocks[i].Qh, signs = blocks[i].Signs, scales = blocks[i].Scales;
            for (int ib = 0; ib < 8; ib++)
            {
                float db = d * (1 + 2 * ((scales[ib / 2] >> (4 * (ib & 1))) & 0xF));
                for (int l = 0; l < 4; l++)
                    IQ2XS.Group(GroupGrid(grid, qs, qh[ib], ib, l), signs[4 * ib + l], db, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
            }
        }
    }

    /// <summary>The 8 magnitudes of group l of sub-block ib: two grid points with their ninth index bits from <paramref name="qh"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong GroupGrid(ReadOnlySpan<uint> grid, ReadOnlySpan<byte> qs, int qh, int ib, int l)
        => grid[qs[8 * ib + 2 * l] | ((qh << (8 - 2 * l)) & 256)] | (ulong)grid[qs[8 * ib + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256)] << 32;

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq3_s_q8_K_generic: exact block integers Σ ls·Σ ±g·a (ls = 2s + 1),
    /// sumf += (d_w·d_a)·bsum. weightRow: [n/256 × 110] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (exact block integers from <see cref="IQBlockSums.IQ3S"/>, the same float steps).</summary>
    internal static float DotAvx2(byte* w, byte* a, int nb) => MatVec8IQ.RowDot<IQ3S8>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: signed grid bytes (explicit sign bits), one ls = 2s + 1 per 32.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        uint* grid = IQSimd.Pointer(IQTables.Iq3SGrid);
        ulong* dst = (ulong*)q;
        for (int ib = 0; ib < 8; ib++)
        {
            byte* qs = x + 2 + 8 * ib;
            int h = x[66 + ib];
            for (int l = 0; l < 4; l++)
            {
                ulong g = grid[qs[2 * l] | ((h << (8 - 2 * l)) & 256)] | (ulong)grid[qs[2 * l + 1] | ((h << (7 - 2 * l)) & 256)] << 32;
                dst[4 * ib + l] = IQDecoded.Signed(g, IQDecoded.BitMask8(x[74 + 4 * ib + l]));
            }
            ls[2 * ib] = ls[2 * ib + 1] = (short)(2 * ((x[106 + ib / 2] >> (4 * (ib & 1))) & 0xF) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ3S>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<uint> grid = IQTables.Iq3SGrid;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(x[i].D) * y[i].D;
            ReadOnlySpan<byte> qs = x[i].Qs, qh = x[i].Qh, signs = x[i].Signs, scales = x[i].Scales;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int bsum = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int ls = 2 * ((scales[ib / 2] >> (4 * (ib & 1))) & 0xF) + 1;
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                    sumi += IQ2XS.GroupDot(GroupGrid(grid, qs, qh[ib], ib, l), signs[4 * ib + l], q8.Slice(32 * ib + 8 * l, 8));
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return sumf;
    }
}
