using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>Building blocks shared by the grid i-quants' AVX2 kernels.</summary>
internal static unsafe class IQSimd
{
    /// <summary>
    /// Σ ±g·a over 32 weights as 16 int16 pair sums, exact for every activation byte: g are unsigned grid magnitudes
    /// (≤ 127), <paramref name="negative"/> is 0xFF where a weight is negative. The abs/sign maddubs trick with the
    /// activation as the unsigned side; the sign operand (a ^ negative) | 1 carries the product's sign and is never 0
    /// (when a = 0 its |a| already zeroes the product).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<short> SignedProducts(Vector256<byte> g, Vector256<byte> negative, Vector256<sbyte> act)
    {
        var sign = (act.AsByte() ^ negative) | Vector256.Create((byte)1);
        return Avx2.MultiplyAddAdjacent(Avx2.Abs(act), Avx2.Sign(g.AsSByte(), sign.AsSByte()));
    }

    /// <summary>
    /// ksigns_iq2xs expanded to byte masks (ggml's keven_signs / ksigns64): entry i has byte j = 0xFF where bit j of
    /// ksigns_iq2xs[i] is set, so a group of 8 gets its negative-weight mask with one load.
    /// </summary>
    public static readonly ulong[] SignMasks = BuildSignMasks();

    /// <summary><see cref="SignMasks"/> as a pointer (the array lives on the pinned heap).</summary>
    public static ulong* SignMaskPointer => (ulong*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(SignMasks));

    /// <summary>The address of a grid table (constant data in the assembly image, which never moves).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T* Pointer<T>(ReadOnlySpan<T> table) where T : unmanaged => (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(table));

    private static ulong[] BuildSignMasks()
    {
        var m = GC.AllocateArray<ulong>(128, pinned: true);
        for (int i = 0; i < 128; i++)
            for (int j = 0; j < 8; j++)
                if ((IQTables.KSigns[i] & (1 << j)) != 0)
                    m[i] |= 0xFFul << (8 * j);
        return m;
    }
}

/// <summary>
/// IQ2_XXS rows (<see cref="BlockIQ2XXS"/>): 2.0625 bits per weight; groups of 8 are points of iq2xxs_grid with
/// signs from ksigns_iq2xs. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ2XXS
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ2_XXS;

    /// <summary>
    /// Per sub-block of 32 with words (a0, a1): db = d·(0.5 + a1 » 28)·0.25; group l is grid[byte l of a0] with
    /// sign byte ksigns[(a1 » 7l) &amp; 127]. Bit-identical to ggml's dequantize_row_iq2_xxs.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ2XXS>(src, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2XxsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<ushort> qs = blocks[i].Qs;
            for (int ib = 0; ib < 8; ib++)
            {
                uint a0 = qs[4 * ib] | (uint)qs[4 * ib + 1] << 16, a1 = qs[4 * ib + 2] | (uint)qs[4 * ib + 3] << 16;
                float db = d * (0.5f + (a1 >> 28)) * 0.25f;
                for (int l = 0; l < 4; l++)
                    IQ2XS.Group(grid[(int)((a0 >> (8 * l)) & 0xFF)], ksigns[(int)((a1 >> (7 * l)) & 127)], db, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq2_xxs_q8_K_generic: the exact integer Σ ls·Σ ±g·a per block (ls = 2·(a1 » 28) + 1),
    /// sumf += (d_w·d_a)·bsum, and 0.125·sumf at the end. weightRow: [n/256 × 66] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (exact block integers, the same float steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb) => IQ2Simd.Dot<IQ2XXSBlock>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: signed grid bytes, ls = 2·(a1 » 28) + 1 for both halves.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XxsGrid), masks = IQSimd.SignMaskPointer;
        ulong* dst = (ulong*)q;
        for (int ib = 0; ib < 8; ib++)
        {
            uint a0 = *(uint*)(x + 2 + 8 * ib), a1 = *(uint*)(x + 6 + 8 * ib);
            for (int l = 0; l < 4; l++)
                dst[4 * ib + l] = IQDecoded.Signed(grid[(a0 >> (8 * l)) & 0xFF], masks[(a1 >> (7 * l)) & 127]);
            ls[2 * ib] = ls[2 * ib + 1] = (short)(2 * (a1 >> 28) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ2XXS>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2XxsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(x[i].D) * y[i].D;
            ReadOnlySpan<ushort> qs = x[i].Qs;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int bsum = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                uint a0 = qs[4 * ib] | (uint)qs[4 * ib + 1] << 16, a1 = qs[4 * ib + 2] | (uint)qs[4 * ib + 3] << 16;
                int ls = (int)(2 * (a1 >> 28) + 1);
                int sumi = 0;
                for (int l = 0; l < 4; l++)
                    sumi += IQ2XS.GroupDot(grid[(int)((a0 >> (8 * l)) & 0xFF)], ksigns[(int)((a1 >> (7 * l)) & 127)], q8.Slice(32 * ib + 8 * l, 8));
                bsum += sumi * ls;
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }
}

/// <summary>
/// IQ2_XS rows (<see cref="BlockIQ2XS"/>): 2.3125 bits per weight; each group of 8 has a 9-bit index into
/// iq2xs_grid and a 7-bit sign index. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ2XS
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ2_XS;

    /// <summary>
    /// Group l of sub-block ib: grid[q &amp; 511] with signs ksigns[q » 9] (q = qs[4ib + l]), scaled by
    /// d·(0.5 + s)·0.25 with s the low (l &lt; 2) or high nibble of scales[ib]. Bit-identical to ggml.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ2XS>(src, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2XsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<ushort> qs = blocks[i].Qs;
            ReadOnlySpan<byte> scales = blocks[i].Scales;
            for (int ib = 0; ib < 8; ib++)
            {
                float db0 = d * (0.5f + (scales[ib] & 0xF)) * 0.25f;
                float db1 = d * (0.5f + (scales[ib] >> 4)) * 0.25f;
                for (int l = 0; l < 4; l++)
                {
                    ushort q = qs[4 * ib + l];
                    Group(grid[q & 511], ksigns[q >> 9], l < 2 ? db0 : db1, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
                }
            }
        }
    }

    /// <summary>y[j] = db·g_j·(±1) for the 8 magnitudes of <paramref name="grid"/> and the sign bits of <paramref name="signs"/>, as ggml writes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Group(ulong grid, byte signs, float db, Span<float> y)
    {
        for (int j = 0; j < 8; j++)
            y[j] = db * (byte)(grid >> (8 * j)) * ((signs & (1 << j)) != 0 ? -1f : 1f);
    }

    /// <summary>Σ_j g_j·a_j·(±1) over one group of 8 (grid magnitudes, sign bits).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int GroupDot(ulong grid, byte signs, ReadOnlySpan<sbyte> q8)
    {
        int sum = 0;
        for (int j = 0; j < 8; j++)
            sum += (byte)(grid >> (8 * j)) * q8[j] * ((signs & (1 << j)) != 0 ? -1 : 1);
        return sum;
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq2_xs_q8_K_generic: exact block integers Σ ls·Σ ±g·a (ls = 2s + 1 per 16),
    /// sumf += (d_w·d_a)·bsum, and 0.125·sumf at the end. weightRow: [n/256 × 74] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (exact block integers, the same float steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb) => IQ2Simd.Dot<IQ2XSBlock>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: signed grid bytes, ls = 2s + 1 per half.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2XsGrid), masks = IQSimd.SignMaskPointer;
        ulong* dst = (ulong*)q;
        ushort* q2 = (ushort*)(x + 2);
        for (int ib = 0; ib < 8; ib++)
        {
            for (int l = 0; l < 4; l++)
            {
                int v = q2[4 * ib + l];
                dst[4 * ib + l] = IQDecoded.Signed(grid[v & 511], masks[v >> 9]);
            }
            byte sc = x[66 + ib];
            ls[2 * ib] = (short)(2 * (sc & 0xF) + 1);
            ls[2 * ib + 1] = (short)(2 * (sc >> 4) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ2XS>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2XsGrid;
        ReadOnlySpan<byte> ksigns = IQTables.KSigns;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(x[i].D) * y[i].D;
            ReadOnlySpan<ushort> qs = x[i].Qs;
            ReadOnlySpan<byte> sc = x[i].Scales;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int bsum = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int ls1 = 2 * (sc[ib] & 0xF) + 1, ls2 = 2 * (sc[ib] >> 4) + 1;
                int sumi1 = 0, sumi2 = 0;
                for (int l = 0; l < 4; l++)
                {
                    ushort q = qs[4 * ib + l];
                    int s = GroupDot(grid[q & 511], ksigns[q >> 9], q8.Slice(32 * ib + 8 * l, 8));
                    if (l < 2) sumi1 += s; else sumi2 += s;
                }
                bsum += sumi1 * ls1 + sumi2 * ls2;
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }
}

/// <summary>
/// IQ2_S rows (<see cref="BlockIQ2S"/>): 2.5625 bits per weight; each group of 8 has a 10-bit index into iq2s_grid
/// and 8 explicit sign bits. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ2S
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ2_S;

    /// <summary>
    /// Group l of sub-block ib: grid[qs[4ib + l] | ((qh[ib] « (8 − 2l)) &amp; 0x300)] with sign byte qs[32 + 4ib + l],
    /// scaled as in IQ2_XS. Bit-identical to ggml's dequantize_row_iq2_s.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ2S>(src, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2SGrid;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs, qh = blocks[i].Qh, scales = blocks[i].Scales;
            for (int ib = 0; ib < 8; ib++)
            {
                float db0 = d * (0.5f + (scales[ib] & 0xF)) * 0.25f;
                float db1 = d * (0.5f + (scales[ib] >> 4)) * 0.25f;
                for (int l = 0; l < 4; l++)
                    IQ2XS.Group(grid[Index(qs, qh, ib, l)], qs[32 + 4 * ib + l], l < 2 ? db0 : db1, dst.Slice(256 * i + 32 * ib + 8 * l, 8));
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Index(ReadOnlySpan<byte> qs, ReadOnlySpan<byte> qh, int ib, int l) => qs[4 * ib + l] | ((qh[ib] << (8 - 2 * l)) & 0x300);

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq2_s_q8_K_generic: exact block integers Σ ls·Σ ±g·a, sumf += (d_w·d_a)·bsum,
    /// and 0.125·sumf at the end. weightRow: [n/256 × 82] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (exact block integers, the same float steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb) => IQ2Simd.Dot<IQ2SBlock>(w, a, nb);

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: signed grid bytes (explicit sign bits), ls = 2s + 1 per half.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* grid = IQSimd.Pointer(IQ2Grids.Iq2SGrid);
        ulong* dst = (ulong*)q;
        for (int ib = 0; ib < 8; ib++)
        {
            byte* qs = x + 2 + 4 * ib;
            int h = x[66 + ib];
            for (int l = 0; l < 4; l++)
                dst[4 * ib + l] = IQDecoded.Signed(grid[qs[l] | ((h << (8 - 2 * l)) & 0x300)], IQDecoded.BitMask8(qs[32 + l]));
            byte sc = x[74 + ib];
            ls[2 * ib] = (short)(2 * (sc & 0xF) + 1);
            ls[2 * ib + 1] = (short)(2 * (sc >> 4) + 1);
        }
        return HalfToSingle(*(ushort*)x);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ2S>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2SGrid;
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(x[i].D) * y[i].D;
            ReadOnlySpan<byte> qs = x[i].Qs, qh = x[i].Qh, sc = x[i].Scales;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int bsum = 0;
            for (int ib = 0; ib < 8; ib++)
            {
                int ls1 = 1 + 2 * (sc[ib] & 0xF), ls2 = 1 + 2 * (sc[ib] >> 4);
                int sumi1 = 0, sumi2 = 0;
                for (int l = 0; l < 4; l++)
                {
                    int s = IQ2XS.GroupDot(grid[Index(qs, qh, ib, l)], qs[32 + 4 * ib + l], q8.Slice(32 * ib + 8 * l, 8));
                    if (l < 2) sumi1 += s; else sumi2 += s;
                }
                bsum += ls1 * sumi1 + ls2 * sumi2;
            }
            sumf += d * bsum;
        }
        return 0.125f * sumf;
    }
}
