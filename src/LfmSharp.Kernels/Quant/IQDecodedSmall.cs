using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>How <see cref="IQDecoded.DecodeGroup"/> laid a decoded 4-row group out, and so which tile runs it.</summary>
internal enum GroupKind
{
    /// <summary>Natural order, spread scales: <see cref="IQDecoded.Tile512"/> / AVX2 / scalar tiles.</summary>
    Wide,

    /// <summary>Natural order, every scale 1 and every weight within ±16: <see cref="IQDecoded.Tile512Unit"/>.</summary>
    Unit,

    /// <summary>Every weight within ±16, blocks interleaved (<see cref="IQDecoded.Interleave"/>): <see cref="IQDecoded.Tile512Small"/>.</summary>
    Small,
}

/// <summary>
/// The small-weight tile: where every weight of a group is within ±16 (IQ3_S's grid is 1..15, IQ1's bytes 8·g ± 1),
/// the vpmaddubsw pair sums of a block's 4 steps add up in int16 without overflow (4·2·255·16 = 32640). With the block
/// interleaved so that int16 lane i of every step belongs to group i / 2, one vpmaddwd by the group scales per
/// (row, token) and block replaces one per step: 80 multiplies per block instead of 128, the bound of
/// <see cref="Tile512"/> on a machine without 512-bit VNNI. The activations are interleaved the same way once per batch
/// (<see cref="InterleaveActivations"/>), already offset by 128.
/// </summary>
internal static unsafe partial class IQDecoded
{
    /// <summary>
    /// Bytes of the interleaved activations of a batch (<see cref="InterleaveActivations"/>), 64-byte rounded; 0 where
    /// <see cref="Tile512Small"/> cannot run.
    /// </summary>
    public static long InterleavedBytes(int columns, int tokens) => Use512 ? Align64((long)columns * tokens) : 0;

    /// <summary>
    /// The 256 bytes of a block as 4 steps of 64, step s holding, for each group g of 16 (in order), its bytes 4s..4s+3:
    /// a 16×4 transpose of the block's dwords. Each int16 lane i of a step then covers a pair of group i / 2. With
    /// <paramref name="flip"/>, every byte is also XORed with 0x80 (activations as the unsigned side, a + 128).
    /// <paramref name="dst"/> may be <paramref name="src"/>.
    /// </summary>
    public static void Interleave(byte* src, byte* dst, bool flip)
    {
        if (Avx512F.IsSupported)
        {
            var x = flip ? Vector512.Create(unchecked((int)0x80808080)) : Vector512<int>.Zero;
            var i0 = Vector512.Load((int*)src) ^ x;
            var i1 = Vector512.Load((int*)src + 16) ^ x;
            var i2 = Vector512.Load((int*)src + 32) ^ x;
            var i3 = Vector512.Load((int*)src + 48) ^ x;
            // Dwords 0, 1 (A, C) and 2, 3 (B, D) of groups 0..7 (i0, i1) and 8..15 (i2, i3), then the halves together.
            var pick01 = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
            var pick23 = pick01 + Vector512.Create(2);
            var low = Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
            var high = low + Vector512.Create(8);
            var a = Avx512F.PermuteVar16x32x2(i0, pick01, i1);
            var b = Avx512F.PermuteVar16x32x2(i0, pick23, i1);
            var c = Avx512F.PermuteVar16x32x2(i2, pick01, i3);
            var d = Avx512F.PermuteVar16x32x2(i2, pick23, i3);
            Avx512F.PermuteVar16x32x2(a, low, c).Store((int*)dst);
            Avx512F.PermuteVar16x32x2(a, high, c).Store((int*)dst + 16);
            Avx512F.PermuteVar16x32x2(b, low, d).Store((int*)dst + 32);
            Avx512F.PermuteVar16x32x2(b, high, d).Store((int*)dst + 48);
            return;
        }
        InterleaveScalar(src, dst, flip);
    }

    /// <summary>Scalar reference of <see cref="Interleave"/>: dword 16·s + g of the result is dword 4·g + s of the block.</summary>
    public static void InterleaveScalar(byte* src, byte* dst, bool flip)
    {
        uint* t = stackalloc uint[64];
        uint x = flip ? 0x80808080u : 0;
        for (int g = 0; g < 16; g++)
            for (int s = 0; s < 4; s++)
                t[16 * s + g] = ((uint*)src)[4 * g + s] ^ x;
        new ReadOnlySpan<uint>(t, 64).CopyTo(new Span<uint>(dst, 64));
    }

    /// <summary>
    /// The Q8_K quants of every token (<paramref name="actRowBytes"/> apart) interleaved and offset by 128, token t's
    /// block b at <paramref name="dst"/> + 256·(t·nb + b): the unsigned side of <see cref="Tile512Small"/>.
    /// </summary>
    public static void InterleaveActivations(byte* act, int actRowBytes, int tokens, int nb, byte* dst)
    {
        for (int t = 0; t < tokens; t++)
            for (int b = 0; b < nb; b++)
                Interleave(act + (long)t * actRowBytes + (long)Q8KBytes * b + 4, dst + 256 * ((long)t * nb + b), flip: true);
    }

    /// <summary>
    /// Lays a Small group out: each row block's weights interleaved in place, and the first 64 bytes of its scale area
    /// rewritten as the 32 int16 scales of the interleaved lanes (lane i: group i / 2).
    /// </summary>
    private static void InterleaveGroup(byte* dst, int nb)
    {
        short* ls = stackalloc short[16];
        for (int b = 0; b < nb; b++)
            for (int r = 0; r < Rows; r++)
            {
                byte* g = dst + (long)GroupBlockBytes * b;
                Interleave(g + 256 * r, g + 256 * r, flip: false);
                short* sc = (short*)(g + ScalesAt + 256 * r);
                for (int j = 0; j < 16; j++)
                    ls[j] = sc[8 * j];
                for (int i = 0; i < 32; i++)
                    sc[i] = ls[i / 2];
            }
    }

    /// <summary>True when all 256 weights are within ±16 (AVX-512 only).</summary>
    private static bool SmallWeights(sbyte* q)
    {
        var max = Vector512<byte>.Zero;
        for (int v = 0; v < 256; v += 64)
            max = Vector512.Max(max, Vector512.Abs(Vector512.Load(q + v)).AsByte());
        return Vector512.LessThanOrEqualAll(max, Vector512.Create((byte)16));
    }

    /// <summary>
    /// <see cref="Tile512"/> for a <see cref="GroupKind.Small"/> group, against interleaved activations
    /// (<paramref name="x0"/>..<paramref name="x3"/>: the tokens' first blocks, 256 bytes per block): the 4 steps' pair
    /// sums add up in int16 and meet the group scales in one vpmaddwd per block. Same exact integers, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile512Small(byte* g, int blocks, byte* x0, byte* x1, byte* x2, byte* x3, float* da, float post, float* sumf)
    {
        var vpost = Vector512.Create(post);
        var s = Vector512.Load(sumf);
        for (int b = 0; b < blocks; b++, g += GroupBlockBytes, da += 16)
        {
            long ab = 256L * b;
            // Step 0 starts the sums (no zeroing and adding: with 80 multiplies per block, the adds are the next bound).
            var a0 = Vector512.Load(x0 + ab);
            var a1 = Vector512.Load(x1 + ab);
            var a2 = Vector512.Load(x2 + ab);
            var a3 = Vector512.Load(x3 + ab);
            var w = Vector512.Load((sbyte*)g);
            var c00 = Avx512BW.MultiplyAddAdjacent(a0, w);
            var c01 = Avx512BW.MultiplyAddAdjacent(a1, w);
            var c02 = Avx512BW.MultiplyAddAdjacent(a2, w);
            var c03 = Avx512BW.MultiplyAddAdjacent(a3, w);
            w = Vector512.Load((sbyte*)(g + 256));
            var c10 = Avx512BW.MultiplyAddAdjacent(a0, w);
            var c11 = Avx512BW.MultiplyAddAdjacent(a1, w);
            var c12 = Avx512BW.MultiplyAddAdjacent(a2, w);
            var c13 = Avx512BW.MultiplyAddAdjacent(a3, w);
            w = Vector512.Load((sbyte*)(g + 512));
            var c20 = Avx512BW.MultiplyAddAdjacent(a0, w);
            var c21 = Avx512BW.MultiplyAddAdjacent(a1, w);
            var c22 = Avx512BW.MultiplyAddAdjacent(a2, w);
            var c23 = Avx512BW.MultiplyAddAdjacent(a3, w);
            w = Vector512.Load((sbyte*)(g + 768));
            var c30 = Avx512BW.MultiplyAddAdjacent(a0, w);
            var c31 = Avx512BW.MultiplyAddAdjacent(a1, w);
            var c32 = Avx512BW.MultiplyAddAdjacent(a2, w);
            var c33 = Avx512BW.MultiplyAddAdjacent(a3, w);
            for (int v = 64; v < 256; v += 64)
            {
                a0 = Vector512.Load(x0 + ab + v);
                a1 = Vector512.Load(x1 + ab + v);
                a2 = Vector512.Load(x2 + ab + v);
                a3 = Vector512.Load(x3 + ab + v);
                w = Vector512.Load((sbyte*)(g + v));
                c00 += Avx512BW.MultiplyAddAdjacent(a0, w);
                c01 += Avx512BW.MultiplyAddAdjacent(a1, w);
                c02 += Avx512BW.MultiplyAddAdjacent(a2, w);
                c03 += Avx512BW.MultiplyAddAdjacent(a3, w);
                w = Vector512.Load((sbyte*)(g + 256 + v));
                c10 += Avx512BW.MultiplyAddAdjacent(a0, w);
                c11 += Avx512BW.MultiplyAddAdjacent(a1, w);
                c12 += Avx512BW.MultiplyAddAdjacent(a2, w);
                c13 += Avx512BW.MultiplyAddAdjacent(a3, w);
                w = Vector512.Load((sbyte*)(g + 512 + v));
                c20 += Avx512BW.MultiplyAddAdjacent(a0, w);
                c21 += Avx512BW.MultiplyAddAdjacent(a1, w);
                c22 += Avx512BW.MultiplyAddAdjacent(a2, w);
                c23 += Avx512BW.MultiplyAddAdjacent(a3, w);
                w = Vector512.Load((sbyte*)(g + 768 + v));
                c30 += Avx512BW.MultiplyAddAdjacent(a0, w);
                c31 += Avx512BW.MultiplyAddAdjacent(a1, w);
                c32 += Avx512BW.MultiplyAddAdjacent(a2, w);
                c33 += Avx512BW.MultiplyAddAdjacent(a3, w);
            }
            var s0 = Vector512.Load((short*)(g + ScalesAt));
            var s1 = Vector512.Load((short*)(g + ScalesAt + 256));
            var s2 = Vector512.Load((short*)(g + ScalesAt + 512));
            var s3 = Vector512.Load((short*)(g + ScalesAt + 768));
            // c{row}{token}; lane 4·token + row.
            var isum = Sum16(
                Sum4(Avx512BW.MultiplyAddAdjacent(c00, s0), Avx512BW.MultiplyAddAdjacent(c10, s1), Avx512BW.MultiplyAddAdjacent(c20, s2), Avx512BW.MultiplyAddAdjacent(c30, s3)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c01, s0), Avx512BW.MultiplyAddAdjacent(c11, s1), Avx512BW.MultiplyAddAdjacent(c21, s2), Avx512BW.MultiplyAddAdjacent(c31, s3)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c02, s0), Avx512BW.MultiplyAddAdjacent(c12, s1), Avx512BW.MultiplyAddAdjacent(c22, s2), Avx512BW.MultiplyAddAdjacent(c32, s3)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c03, s0), Avx512BW.MultiplyAddAdjacent(c13, s1), Avx512BW.MultiplyAddAdjacent(c23, s2), Avx512BW.MultiplyAddAdjacent(c33, s3)))
                - Vector512.Load((int*)(g + OffsetsAt));
            var d = Vector512.Load((float*)(g + ScaleAt)) * Vector512.Load(da);
            s += d * (Vector512.ConvertToSingle(isum) * vpost);
        }
        s.Store(sumf);
    }
}
