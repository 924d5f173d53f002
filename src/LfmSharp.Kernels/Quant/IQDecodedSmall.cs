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

    /// <summary>
    /// Every run of 8 weights with Σ|q| ≤ 255 (after halving where all are even), blocks interleaved, int16 sums that
    /// start at −128·Σq: <see cref="IQDecoded.Tile512Centered"/>.
    /// </summary>
    Centered,

    /// <summary>As <see cref="Centered"/> for runs of 4 (two int16 sums per lane and block): <see cref="IQDecoded.Tile512CenteredPairs"/>.</summary>
    CenteredPairs,
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
    /// The 256 bytes of a block as 4 steps of 64, step s holding, for each run e of 8 bytes (in order), its bytes 2s, 2s+1:
    /// a 32×4 transpose of the block's 16-bit words. Int16 lane e of every step then covers a pair of run e, so over the
    /// 4 steps lane e covers exactly run e (one IQ2 grid point, two IQ3 points), which lies in group e / 2 of 16. With
    /// <paramref name="flip"/>, every byte is also XORed with 0x80 (activations as the unsigned side, a + 128).
    /// <paramref name="dst"/> may be <paramref name="src"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave(byte* src, byte* dst, bool flip)
    {
        if (Avx512BW.IsSupported)
        {
            var x = flip ? Vector512.Create(unchecked((short)0x8080)) : Vector512<short>.Zero;
            var i0 = Vector512.Load((short*)src) ^ x;
            var i1 = Vector512.Load((short*)src + 32) ^ x;
            var i2 = Vector512.Load((short*)src + 64) ^ x;
            var i3 = Vector512.Load((short*)src + 96) ^ x;
            // Step s: words 4e + s of runs 0..15 (i0, i1) and of runs 16..31 (i2, i3), each into its low half, then the
            // two low halves together.
            var pick = Vector512.Create((short)0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60,
                0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60);
            for (short s = 0; s < 4; s++)
            {
                var idx = pick + Vector512.Create(s);
                var low = Avx512BW.PermuteVar32x16x2(i0, idx, i1).AsInt64();
                var high = Avx512BW.PermuteVar32x16x2(i2, idx, i3).AsInt64();
                Avx512F.Shuffle4x128(low, high, 0x44).Store((long*)dst + 8 * s);
            }
            return;
        }
        InterleaveScalar(src, dst, flip);
    }

    /// <summary>Scalar reference of <see cref="Interleave"/>: word 32·s + e of the result is word 4·e + s of the block.</summary>
    public static void InterleaveScalar(byte* src, byte* dst, bool flip)
    {
        ushort* t = stackalloc ushort[128];
        ushort x = (ushort)(flip ? 0x8080 : 0);
        for (int e = 0; e < 32; e++)
            for (int s = 0; s < 4; s++)
                t[32 * s + e] = (ushort)(((ushort*)src)[4 * e + s] ^ x);
        new ReadOnlySpan<ushort>(t, 128).CopyTo(new Span<ushort>(dst, 128));
    }

    /// <summary>
    /// The Q8_K quants of every token (<paramref name="actRowBytes"/> apart) interleaved and offset by 128, token t's
    /// block b at <paramref name="dst"/> + 256·(t·nb + b): the unsigned side of <see cref="Tile512Small"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InterleaveActivations(byte* act, int actRowBytes, int tokens, int nb, byte* dst)
    {
        for (int t = 0; t < tokens; t++)
            for (int b = 0; b < nb; b++)
                Interleave(act + (long)t * actRowBytes + (long)Q8KBytes * b + 4, dst + 256 * ((long)t * nb + b), flip: true);
    }

    /// <summary>
    /// <see cref="Tile512"/> for a <see cref="GroupKind.Small"/> group, against interleaved activations
    /// (<paramref name="x0"/>..<paramref name="x3"/>: the tokens' first blocks, 256 bytes per block): the 4 steps' pair
    /// sums add up in int16 and meet the group scales in one vpmaddwd per block. Same exact integers, so the same bits.
    /// </summary>
    public static void Tile512Small(byte* g, int blocks, byte* x0, byte* x1, byte* x2, byte* x3, float* da, float post, float* sumf)
        => Tile512Runs<OffsetSums>(g, blocks, x0, x1, x2, x3, da, post, sumf);

    /// <summary>
    /// <see cref="Tile512Small"/> for a <see cref="GroupKind.Centered"/> group: each int16 sum starts at its lane's
    /// −128·Σq (the scale area's second 64 bytes), so the wrapping adds end at the exact Σ q·a of the lane's run of 8
    /// (|Σ q·a| ≤ 128·Σ|q| ≤ 32640) whatever the partial sums did, and no offset is subtracted after the scales.
    /// </summary>
    public static void Tile512Centered(byte* g, int blocks, byte* x0, byte* x1, byte* x2, byte* x3, float* da, float post, float* sumf)
        => Tile512Runs<CenteredSums>(g, blocks, x0, x1, x2, x3, da, post, sumf);

    /// <summary>Marks <see cref="Tile512Runs{T}"/> for Small groups: sums from 0, the 128·Σ ls·Σq offset subtracted per block.</summary>
    private struct OffsetSums;

    /// <summary>Marks <see cref="Tile512Runs{T}"/> for Centered groups: sums from −128·Σq per lane, nothing subtracted.</summary>
    private struct CenteredSums;

    /// <summary>The body of <see cref="Tile512Small"/> and <see cref="Tile512Centered"/> (T is a constant to the JIT).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512Runs<T>(byte* g, int blocks, byte* x0, byte* x1, byte* x2, byte* x3, float* da, float post, float* sumf)
        where T : struct
    {
        bool centered = typeof(T) == typeof(CenteredSums);
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
            if (centered)
            {
                var i0 = Vector512.Load((short*)(g + ScalesAt + 64));
                var i1 = Vector512.Load((short*)(g + ScalesAt + 256 + 64));
                var i2 = Vector512.Load((short*)(g + ScalesAt + 512 + 64));
                var i3 = Vector512.Load((short*)(g + ScalesAt + 768 + 64));
                c00 += i0;
                c01 += i0;
                c02 += i0;
                c03 += i0;
                c10 += i1;
                c11 += i1;
                c12 += i1;
                c13 += i1;
                c20 += i2;
                c21 += i2;
                c22 += i2;
                c23 += i2;
                c30 += i3;
                c31 += i3;
                c32 += i3;
                c33 += i3;
            }
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
                Sum4(Avx512BW.MultiplyAddAdjacent(c03, s0), Avx512BW.MultiplyAddAdjacent(c13, s1), Avx512BW.MultiplyAddAdjacent(c23, s2), Avx512BW.MultiplyAddAdjacent(c33, s3)));
            if (!centered)
                isum -= Vector512.Load((int*)(g + OffsetsAt));
            var d = Vector512.Load((float*)(g + ScaleAt)) * Vector512.Load(da);
            s += d * (Vector512.ConvertToSingle(isum) * vpost);
        }
        s.Store(sumf);
    }
}
