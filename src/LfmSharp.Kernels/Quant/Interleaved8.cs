using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The load-time ("repacked") layout of Q4_0 and Q8_0 matrices for the AVX2 decode kernels: the same bytes as the GGUF
/// rows, reordered so that each group of 8 rows is one contiguous stream, block by block.
/// </summary>
/// <remarks>
/// In GGUF order a group's 8 rows are 8 streams <c>rowBytes</c> apart and each block's 8 f16 scales lie 18 (34) bytes
/// into 8 different rows, so the 8-row matvec spends a fifth of its instructions copying scales into a ring and
/// prefetching the next group by hand. Interleaved, one block of the group is
/// <list type="bullet">
/// <item>Q4_0 (144 B): the 8 rows' f16 scales (16 B), then the quant bytes of rows (0,4), (1,5), (2,6), (3,7) — 16 B
/// each, so every 32-byte load is the two-row vector <see cref="MatVec8"/> builds from two loads in GGUF order;</item>
/// <item>Q8_0 (272 B): the 8 scales (16 B), then the 32 quants of rows 0..7 in order.</item>
/// </list>
/// Group g starts at byte g·8·rowBytes (the total size is unchanged). Only matrices with a multiple of 8 rows are
/// interleaved. The kernels that read this layout do exactly the integer and float operations of the GGUF-order ones,
/// so outputs are bit-identical (tested).
/// </remarks>
internal static unsafe class Interleaved8
{
    public const int Rows = 8;

    public static bool Handles(GgmlType t) => t is GgmlType.Q4_0 or GgmlType.Q8_0;

    /// <summary>Bytes of one interleaved block of 8 rows (8 × the GGUF block).</summary>
    public static int BlockBytes(GgmlType t) => t switch
    {
        GgmlType.Q4_0 => 8 * 18,
        GgmlType.Q8_0 => 8 * 34,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "no interleaved layout"),
    };

    /// <summary>Reorders 8 GGUF rows (<paramref name="rowBytes"/> apart, <paramref name="nb"/> blocks each) into one interleaved group.</summary>
    public static void PackGroup(GgmlType t, byte* src, int rowBytes, int nb, byte* dst)
    {
        int blockBytes = t == GgmlType.Q4_0 ? 18 : t == GgmlType.Q8_0 ? 34 : throw new ArgumentOutOfRangeException(nameof(t), t, "no interleaved layout");
        int quantBytes = blockBytes - 2;
        for (int b = 0; b < nb; b++, dst += 8 * blockBytes)
        {
            for (int r = 0; r < 8; r++)
            {
                byte* x = src + (long)r * rowBytes + (long)b * blockBytes;
                ((ushort*)dst)[r] = *(ushort*)x;
                // Q4_0: rows r and r+4 share a 32-byte slot (r in the low half); Q8_0: row r's 32 bytes in order.
                int slot = t == GgmlType.Q4_0 ? 16 + 32 * (r & 3) + 16 * (r >> 2) : 16 + 32 * r;
                Unsafe.CopyBlockUnaligned(dst + slot, x + 2, (uint)quantBytes);
            }
        }
    }

    /// <summary>The inverse of <see cref="PackGroup"/> for one row of a group (tests, and reading a single row back).</summary>
    public static void UnpackRow(GgmlType t, byte* group, int nb, int r, byte* dst)
    {
        int blockBytes = t == GgmlType.Q4_0 ? 18 : t == GgmlType.Q8_0 ? 34 : throw new ArgumentOutOfRangeException(nameof(t), t, "no interleaved layout");
        int slot = t == GgmlType.Q4_0 ? 16 + 32 * (r & 3) + 16 * (r >> 2) : 16 + 32 * r;
        for (int b = 0; b < nb; b++)
        {
            byte* blk = group + (long)b * 8 * blockBytes;
            byte* o = dst + (long)b * blockBytes;
            *(ushort*)o = ((ushort*)blk)[r];
            Unsafe.CopyBlockUnaligned(o + 2, blk + slot, (uint)(blockBytes - 2));
        }
    }
}
