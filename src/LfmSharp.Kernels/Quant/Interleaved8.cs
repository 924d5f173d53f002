using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The load-time ("repacked") layouts of Q4_0, Q8_0, Q4_K, Q6_K (and, as plain blocks, Q2_K, Q3_K, Q5_K) matrices for the AVX2 decode kernels: the GGUF rows
/// reordered so that each group of 8 rows is one contiguous stream, block by block (and, for the K-quants, the values
/// within a super-block in <see cref="KStream"/> order).
/// </summary>
/// <remarks>
/// In GGUF order a group's 8 rows are 8 streams <c>rowBytes</c> apart and each block's 8 f16 scales lie 18 (34) bytes
/// into 8 different rows, so the 8-row matvec spends a fifth of its instructions copying scales into a ring and
/// prefetching the next group by hand. Interleaved, one block of the group is
/// <list type="bullet">
/// <item>Q4_0 (144 B): the 8 rows' f16 scales (16 B), then the quant bytes of rows (0,4), (1,5), (2,6), (3,7) — 16 B
/// each, so every 32-byte load is the two-row vector <see cref="MatVec8"/> builds from two loads in GGUF order;</item>
/// <item>Q8_0 (272 B): the 8 scales (16 B), then the 32 quants of rows 0..7 in order;</item>
/// <item>Q4_K (1152 B per super-block): the 8 rows' d (16 B), their dmin (16 B), their 6-bit scales and mins
/// (96 B, regrouped so that one vector sequence unpacks all 8 rows: see <see cref="PackQ4KScales"/>), then each
/// row's 128 quant bytes with the values in <see cref="KStream"/> order;</item>
/// <item>Q6_K (1680 B per super-block): the 8 rows' d (16 B), their 16 int8 scales each (128 B), then each row's
/// ql and qh (192 B), values in <see cref="KStream"/> order;</item>
/// <item><see cref="InterleaveLayout.Blocks"/> (Q2_K, Q3_K, Q5_K): the 8 rows' GGUF blocks side by side, so the group
/// is one stream for <see cref="MatVec8K"/>.</item>
/// </list>
/// Which layout a type has is its <see cref="TypeTraits.Layout"/>.
/// Group g starts at byte g·8·rowBytes (the total size is unchanged). Only matrices with a multiple of 8 rows are
/// interleaved. The kernels that read this layout compute the same exact integer sums per block and the same float
/// operations as the GGUF-order ones, so outputs are bit-identical (tested).
/// </remarks>
internal static unsafe class Interleaved8
{
    public const int Rows = 8;

    /// <summary>True when <paramref name="t"/> has an interleaved layout (its <see cref="TypeTraits.Layout"/>; machine-independent).</summary>
    public static bool Handles(GgmlType t) => LayoutOf(t) != InterleaveLayout.None;

    private static InterleaveLayout LayoutOf(GgmlType t) => TypeTraits.TryFor(t)?.Layout ?? InterleaveLayout.None;

    /// <summary>The GGUF block size in bytes of a type this layout handles (an interleaved block is 8 of them).</summary>
    private static int GgufBlockBytes(GgmlType t) =>
        Handles(t) ? GgmlTypes.TypeSize(t) : throw new ArgumentOutOfRangeException(nameof(t), t, "no interleaved layout");

    /// <summary>How a field moves between a GGUF block and the interleaved block.</summary>
    private enum FieldKind
    {
        /// <summary>Past the last field.</summary>
        None,
        /// <summary>The bytes as they are.</summary>
        Copy,
        /// <summary>Q4_K's 12-byte 6-bit scales and mins, into the group's shared 96-byte field (<see cref="PackQ4KScales"/>).</summary>
        Q4KScales,
        /// <summary>Q4_K's 128 quant bytes, values in <see cref="KStream"/> order.</summary>
        Q4KStream,
        /// <summary>Q6_K's ql and qh (192 bytes), values in <see cref="KStream"/> order.</summary>
        Q6KStream,
    }

    /// <summary>
    /// The layout as data (what <see cref="PackGroup"/> does with fixed-size code): field <paramref name="f"/> of a
    /// GGUF block — its offset and length there, where row <paramref name="r"/>'s copy goes in the interleaved block,
    /// and how it moves; <see cref="FieldKind.None"/> past the last field.
    /// </summary>
    private static FieldKind Field(InterleaveLayout layout, int blockBytes, int f, int r, out int src, out int length, out int dst)
    {
        FieldKind kind;
        (kind, src, length, dst) = (layout, f) switch
        {
            (InterleaveLayout.Blocks, 0) => (FieldKind.Copy, 0, blockBytes, blockBytes * r),      // the whole block
            (InterleaveLayout.Blocks, _) => (FieldKind.None, 0, 0, 0),
            (InterleaveLayout.Q6K, 0) => (FieldKind.Copy, 208, 2, 2 * r),                        // d (last in the GGUF block)
            (_, 0) => (FieldKind.Copy, 0, 2, 2 * r),                                             // d (first in the other types)
            (InterleaveLayout.Q4_0, 1) => (FieldKind.Copy, 2, 16, 16 + 32 * (r & 3) + 16 * (r >> 2)), // rows r, r+4 share 32 bytes
            (InterleaveLayout.Q8_0, 1) => (FieldKind.Copy, 2, 32, 16 + 32 * r),
            (InterleaveLayout.Q4K, 1) => (FieldKind.Copy, 2, 2, 16 + 2 * r),                     // dmin
            (InterleaveLayout.Q4K, 2) => (FieldKind.Q4KScales, 4, 12, 32),                       // scales and mins, all 8 rows at 32..127
            (InterleaveLayout.Q4K, 3) => (FieldKind.Q4KStream, 16, 128, 128 + 128 * r),          // quants
            (InterleaveLayout.Q6K, 1) => (FieldKind.Copy, 192, 16, 16 + 16 * r),                 // int8 scales
            (InterleaveLayout.Q6K, 2) => (FieldKind.Q6KStream, 0, 192, 144 + 192 * r),           // ql (128 B) and qh (64 B)
            _ => (FieldKind.None, 0, 0, 0),
        };
        return kind;
    }

    /// <summary>Reorders 8 GGUF rows (<paramref name="rowBytes"/> apart, <paramref name="nb"/> blocks each) into one interleaved group.</summary>
    /// <remarks>The field copies of each type are spelled out with fixed sizes (see <see cref="Field"/> for the map): a generic copy loop made loading a 1.2 GB model take seconds.</remarks>
    public static void PackGroup(GgmlType t, byte* src, int rowBytes, int nb, byte* dst)
    {
        int blockBytes = GgufBlockBytes(t);
        var layout = LayoutOf(t);
        for (int b = 0; b < nb; b++, dst += Rows * blockBytes)
        {
            for (int r = 0; r < Rows; r++)
            {
                byte* x = src + (long)r * rowBytes + (long)b * blockBytes;
                switch (layout)
                {
                    case InterleaveLayout.Blocks:
                        Unsafe.CopyBlockUnaligned(dst + r * blockBytes, x, (uint)blockBytes);
                        break;
                    case InterleaveLayout.Q4_0:
                        ((ushort*)dst)[r] = *(ushort*)x;
                        Vector128.Store(Vector128.Load(x + 2), dst + 16 + 32 * (r & 3) + 16 * (r >> 2));
                        break;
                    case InterleaveLayout.Q8_0:
                        ((ushort*)dst)[r] = *(ushort*)x;
                        Vector256.Store(Vector256.Load(x + 2), dst + 16 + 32 * r);
                        break;
                    case InterleaveLayout.Q4K:
                        ((ushort*)dst)[r] = *(ushort*)x;
                        ((ushort*)(dst + 16))[r] = *(ushort*)(x + 2);
                        Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
                        PackQ4KScales(dst, r, scales, mins);
                        KStream.Q4KToStream(x + 16, dst + 128 + 128 * r);
                        break;
                    default:   // InterleaveLayout.Q6K
                        ((ushort*)dst)[r] = *(ushort*)(x + 208);
                        Vector128.Store(Vector128.Load(x + 192), dst + 16 + 16 * r);
                        KStream.Q6KToStream(x, dst + 144 + 192 * r);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Writes row <paramref name="r"/>'s eight 6-bit scales and mins (bytes of <paramref name="scales"/> /
    /// <paramref name="mins"/>, as <see cref="Q4K.UnpackScaleMin"/> gives them) into the 96-byte scale field of an
    /// interleaved Q4_K super-block <paramref name="blk"/>. The field holds value i = 8·r + j (row r, sub-block j) as
    /// <list type="bullet">
    /// <item>bytes 32..95: the low nibbles, byte i = (s_i &amp; 15) | (m_i &amp; 15) &lt;&lt; 4;</item>
    /// <item>bytes 96..127: the top two bits, byte k (k = i mod 32) = s_k &gt;&gt; 4 | s_{32+k} &gt;&gt; 4 &lt;&lt; 2 |
    /// m_k &gt;&gt; 4 &lt;&lt; 4 | m_{32+k} &gt;&gt; 4 &lt;&lt; 6,</item>
    /// </list>
    /// so three 32-byte loads, shifts, masks and ors give the scales and the mins of rows 0–3 and 4–7 as bytes in row
    /// order (<see cref="MatVec8.Q4Kx8"/>); GGUF's 12-byte packing took a shuffle sequence per two rows. Same 96 bytes.
    /// Rows must be written in order 0..7 (row 0 clears the shared top-bit bytes).
    /// </summary>
    internal static void PackQ4KScales(byte* blk, int r, ulong scales, ulong mins)
    {
        byte* lo = blk + 32, hi = blk + 96;
        if (r == 0)
            Unsafe.InitBlockUnaligned(hi, 0, 32);
        for (int j = 0; j < 8; j++)
        {
            int sc = (byte)(scales >> (8 * j)), mn = (byte)(mins >> (8 * j));
            int i = 8 * r + j, shift = i < 32 ? 0 : 2;
            lo[i] = (byte)((sc & 15) | (mn & 15) << 4);
            hi[i & 31] |= (byte)((sc >> 4 & 3) << shift | (mn >> 4 & 3) << (4 + shift));
        }
    }

    /// <summary>The inverse of <see cref="PackQ4KScales"/>: row <paramref name="r"/>'s scales and mins, byte j = sub-block j.</summary>
    internal static void Q4KScales(byte* blk, int r, out ulong scales, out ulong mins)
    {
        byte* lo = blk + 32, hi = blk + 96;
        scales = mins = 0;
        for (int j = 0; j < 8; j++)
        {
            int i = 8 * r + j, shift = i < 32 ? 0 : 2;
            int top = hi[i & 31];
            ulong sc = (ulong)((lo[i] & 15) | (top >> shift & 3) << 4);
            ulong mn = (ulong)((lo[i] >> 4) | (top >> (4 + shift) & 3) << 4);
            scales |= sc << (8 * j);
            mins |= mn << (8 * j);
        }
    }

    /// <summary>The inverse of <see cref="PackGroup"/> for one row of a group (tests, and reading a single row back).</summary>
    public static void UnpackRow(GgmlType t, byte* group, int nb, int r, byte* dst)
    {
        int blockBytes = GgufBlockBytes(t);
        var layout = LayoutOf(t);
        for (int b = 0; b < nb; b++)
        {
            byte* blk = group + (long)b * Rows * blockBytes;
            byte* o = dst + (long)b * blockBytes;
            FieldKind kind;
            for (int f = 0; (kind = Field(layout, blockBytes, f, r, out int from, out int length, out int to)) != FieldKind.None; f++)
            {
                switch (kind)
                {
                    case FieldKind.Copy:
                        Unsafe.CopyBlockUnaligned(o + from, blk + to, (uint)length);
                        break;
                    case FieldKind.Q4KScales:
                        Q4KScales(blk, r, out ulong scales, out ulong mins);
                        Q4K.PackScaleMin(scales, mins, o + from);
                        break;
                    case FieldKind.Q4KStream:
                        KStream.Q4KFromStream(blk + to, o + from);
                        break;
                    case FieldKind.Q6KStream:
                        KStream.Q6KFromStream(blk + to, o + from);
                        break;
                }
            }
        }
    }
}

/// <summary>The 8-row interleaved layouts (<see cref="Interleaved8"/>); each type names its own in <see cref="TypeTraits.Layout"/>.</summary>
internal enum InterleaveLayout
{
    /// <summary>No interleaved copy.</summary>
    None,
    /// <summary>Q4_0's: 8 scales, then the quants of rows (0,4), (1,5), (2,6), (3,7).</summary>
    Q4_0,
    /// <summary>Q8_0's: 8 scales, then the quants of rows 0..7.</summary>
    Q8_0,
    /// <summary>Q4_K's: d, dmin, the regrouped 6-bit scales, the quants in <see cref="KStream"/> order.</summary>
    Q4K,
    /// <summary>Q6_K's: d, the int8 scales, ql/qh in <see cref="KStream"/> order.</summary>
    Q6K,
    /// <summary>The 8 rows' GGUF blocks side by side, unchanged.</summary>
    Blocks,
}
