using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The tile kernels of <see cref="IQDecoded"/>: 4 decoded rows × 4 tokens over <c>blocks</c> consecutive super-blocks,
/// adding each block's 16 (row, token) terms to <c>sumf</c> (lane 4·token + row) in block order. Each weight vector is
/// loaded once per tile and each activation vector once per row pair or tile, and the 16 block integers are reduced
/// together, so a block costs 16 multiply pairs per 64 bytes instead of 16 separate dots with 16 reductions.
/// </summary>
internal static unsafe partial class IQDecoded
{
    /// <summary>
    /// Scalar reference of the tiles: per block and lane, sumf += (d_w·d_a)·(isum·post) with the exact
    /// <see cref="BlockDotScalar"/> integer (the row dot's float steps).
    /// </summary>
    public static void TileScalar(byte* g, int blocks, byte* a0, byte* a1, byte* a2, byte* a3, float post, float* sumf)
    {
        byte** a = stackalloc byte*[Tokens];
        a[0] = a0;
        a[1] = a1;
        a[2] = a2;
        a[3] = a3;
        for (int b = 0; b < blocks; b++, g += GroupBlockBytes)
            for (int j = 0; j < 16; j++)
            {
                int r = j % Rows;
                byte* at = a[j / Rows] + (long)Q8KBytes * b;
                int isum = BlockDotScalar((sbyte*)(g + 256 * r), (short*)(g + ScalesAt + 256 * r), (sbyte*)(at + 4));
                sumf[j] += ((float*)(g + ScaleAt))[j] * *(float*)at * (isum * post);
            }
    }

    /// <summary>AVX2 twin of <see cref="TileScalar"/>: two passes of 2 tokens × 4 rows (8 ymm accumulators), same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void TileAvx2(byte* g, int blocks, byte* a0, byte* a1, byte* a2, byte* a3, float* da, float post, float* sumf)
    {
        var flip = Vector256.Create((byte)0x80);
        var vpost = Vector256.Create(post);
        for (int h = 0; h < 2; h++)
        {
            var s = Vector256.Load(sumf + 8 * h);
            byte* p0 = h == 0 ? a0 : a2, p1 = h == 0 ? a1 : a3;
            for (int b = 0; b < blocks; b++)
            {
                byte* gb = g + (long)GroupBlockBytes * b;
                long ab = (long)Q8KBytes * b + 4;
                Vector256<int> c00 = default, c01 = default, c02 = default, c03 = default;
                Vector256<int> c10 = default, c11 = default, c12 = default, c13 = default;
                for (int v = 0; v < 256; v += 32)
                {
                    var x0 = Vector256.Load(p0 + ab + v) ^ flip;
                    var x1 = Vector256.Load(p1 + ab + v) ^ flip;
                    var w = Vector256.Load((sbyte*)(gb + v));
                    var sc = Vector256.Load((short*)(gb + ScalesAt + v));
                    c00 += Madd(x0, w, sc);
                    c10 += Madd(x1, w, sc);
                    w = Vector256.Load((sbyte*)(gb + 256 + v));
                    sc = Vector256.Load((short*)(gb + ScalesAt + 256 + v));
                    c01 += Madd(x0, w, sc);
                    c11 += Madd(x1, w, sc);
                    w = Vector256.Load((sbyte*)(gb + 512 + v));
                    sc = Vector256.Load((short*)(gb + ScalesAt + 512 + v));
                    c02 += Madd(x0, w, sc);
                    c12 += Madd(x1, w, sc);
                    w = Vector256.Load((sbyte*)(gb + 768 + v));
                    sc = Vector256.Load((short*)(gb + ScalesAt + 768 + v));
                    c03 += Madd(x0, w, sc);
                    c13 += Madd(x1, w, sc);
                }
                var y0 = Sum4(c00, c01, c02, c03);
                var y1 = Sum4(c10, c11, c12, c13);
                var isum = Avx2.Permute2x128(y0, y1, 0x20) + Avx2.Permute2x128(y0, y1, 0x31)
                    - Vector256.Load((int*)(gb + OffsetsAt) + 8 * h);
                var d = Vector256.Load((float*)(gb + ScaleAt) + 8 * h) * Vector256.Load(da + 16 * b + 8 * h);
                s += d * (Vector256.ConvertToSingle(isum) * vpost);
            }
            s.Store(sumf + 8 * h);
        }
    }

    /// <summary>AVX-512 twin of <see cref="TileScalar"/>: 16 zmm accumulators, one 16-way reduction per block, same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile512(byte* g, int blocks, byte* a0, byte* a1, byte* a2, byte* a3, float* da, float post, float* sumf)
    {
        var flip = Vector512.Create((byte)0x80);
        var vpost = Vector512.Create(post);
        var s = Vector512.Load(sumf);
        for (int b = 0; b < blocks; b++, g += GroupBlockBytes, da += 16)
        {
            long ab = (long)Q8KBytes * b + 4;
            Vector512<int> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<int> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<int> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector512<int> c30 = default, c31 = default, c32 = default, c33 = default;
            for (int v = 0; v < 256; v += 64)
            {
                var x0 = Vector512.Load(a0 + ab + v) ^ flip;
                var x1 = Vector512.Load(a1 + ab + v) ^ flip;
                var x2 = Vector512.Load(a2 + ab + v) ^ flip;
                var x3 = Vector512.Load(a3 + ab + v) ^ flip;
                var w = Vector512.Load((sbyte*)(g + v));
                var sc = Vector512.Load((short*)(g + ScalesAt + v));
                c00 += Madd(x0, w, sc);
                c01 += Madd(x1, w, sc);
                c02 += Madd(x2, w, sc);
                c03 += Madd(x3, w, sc);
                w = Vector512.Load((sbyte*)(g + 256 + v));
                sc = Vector512.Load((short*)(g + ScalesAt + 256 + v));
                c10 += Madd(x0, w, sc);
                c11 += Madd(x1, w, sc);
                c12 += Madd(x2, w, sc);
                c13 += Madd(x3, w, sc);
                w = Vector512.Load((sbyte*)(g + 512 + v));
                sc = Vector512.Load((short*)(g + ScalesAt + 512 + v));
                c20 += Madd(x0, w, sc);
                c21 += Madd(x1, w, sc);
                c22 += Madd(x2, w, sc);
                c23 += Madd(x3, w, sc);
                w = Vector512.Load((sbyte*)(g + 768 + v));
                sc = Vector512.Load((short*)(g + ScalesAt + 768 + v));
                c30 += Madd(x0, w, sc);
                c31 += Madd(x1, w, sc);
                c32 += Madd(x2, w, sc);
                c33 += Madd(x3, w, sc);
            }
            // c{row}{token}; lane 4·token + row.
            var isum = Sum16(Sum4(c00, c10, c20, c30), Sum4(c01, c11, c21, c31), Sum4(c02, c12, c22, c32), Sum4(c03, c13, c23, c33))
                - Vector512.Load((int*)(g + OffsetsAt));
            var d = Vector512.Load((float*)(g + ScaleAt)) * Vector512.Load(da);
            s += d * (Vector512.ConvertToSingle(isum) * vpost);
        }
        s.Store(sumf);
    }

    /// <summary>
    /// <see cref="Tile512"/> for groups whose scales are all 1 and weights within ±16 (<see cref="DecodeGroup"/>'s
    /// answer; TQ1_0/TQ2_0 always): the vpmaddubsw pair sums (≤ 2·255·16 = 8160 each) add up in int16 over the
    /// block's 4 steps (≤ 32640) and meet one vpmaddwd by 1 per block, instead of one vpmaddwd by the scales per step.
    /// Same exact integers, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile512Unit(byte* g, int blocks, byte* a0, byte* a1, byte* a2, byte* a3, float* da, float post, float* sumf)
    {
        var flip = Vector512.Create((byte)0x80);
        var ones = Vector512.Create((short)1);
        var vpost = Vector512.Create(post);
        var s = Vector512.Load(sumf);
        for (int b = 0; b < blocks; b++, g += GroupBlockBytes, da += 16)
        {
            long ab = (long)Q8KBytes * b + 4;
            Vector512<short> c00 = default, c01 = default, c02 = default, c03 = default;
            Vector512<short> c10 = default, c11 = default, c12 = default, c13 = default;
            Vector512<short> c20 = default, c21 = default, c22 = default, c23 = default;
            Vector512<short> c30 = default, c31 = default, c32 = default, c33 = default;
            for (int v = 0; v < 256; v += 64)
            {
                var x0 = Vector512.Load(a0 + ab + v) ^ flip;
                var x1 = Vector512.Load(a1 + ab + v) ^ flip;
                var x2 = Vector512.Load(a2 + ab + v) ^ flip;
                var x3 = Vector512.Load(a3 + ab + v) ^ flip;
                var w = Vector512.Load((sbyte*)(g + v));
                c00 += Avx512BW.MultiplyAddAdjacent(x0, w);
                c01 += Avx512BW.MultiplyAddAdjacent(x1, w);
                c02 += Avx512BW.MultiplyAddAdjacent(x2, w);
                c03 += Avx512BW.MultiplyAddAdjacent(x3, w);
                w = Vector512.Load((sbyte*)(g + 256 + v));
                c10 += Avx512BW.MultiplyAddAdjacent(x0, w);
                c11 += Avx512BW.MultiplyAddAdjacent(x1, w);
                c12 += Avx512BW.MultiplyAddAdjacent(x2, w);
                c13 += Avx512BW.MultiplyAddAdjacent(x3, w);
                w = Vector512.Load((sbyte*)(g + 512 + v));
                c20 += Avx512BW.MultiplyAddAdjacent(x0, w);
                c21 += Avx512BW.MultiplyAddAdjacent(x1, w);
                c22 += Avx512BW.MultiplyAddAdjacent(x2, w);
                c23 += Avx512BW.MultiplyAddAdjacent(x3, w);
                w = Vector512.Load((sbyte*)(g + 768 + v));
                c30 += Avx512BW.MultiplyAddAdjacent(x0, w);
                c31 += Avx512BW.MultiplyAddAdjacent(x1, w);
                c32 += Avx512BW.MultiplyAddAdjacent(x2, w);
                c33 += Avx512BW.MultiplyAddAdjacent(x3, w);
            }
            // c{row}{token}; lane 4·token + row.
            var isum = Sum16(
                Sum4(Avx512BW.MultiplyAddAdjacent(c00, ones), Avx512BW.MultiplyAddAdjacent(c10, ones), Avx512BW.MultiplyAddAdjacent(c20, ones), Avx512BW.MultiplyAddAdjacent(c30, ones)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c01, ones), Avx512BW.MultiplyAddAdjacent(c11, ones), Avx512BW.MultiplyAddAdjacent(c21, ones), Avx512BW.MultiplyAddAdjacent(c31, ones)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c02, ones), Avx512BW.MultiplyAddAdjacent(c12, ones), Avx512BW.MultiplyAddAdjacent(c22, ones), Avx512BW.MultiplyAddAdjacent(c32, ones)),
                Sum4(Avx512BW.MultiplyAddAdjacent(c03, ones), Avx512BW.MultiplyAddAdjacent(c13, ones), Avx512BW.MultiplyAddAdjacent(c23, ones), Avx512BW.MultiplyAddAdjacent(c33, ones)))
                - Vector512.Load((int*)(g + OffsetsAt));
            var d = Vector512.Load((float*)(g + ScaleAt)) * Vector512.Load(da);
            s += d * (Vector512.ConvertToSingle(isum) * vpost);
        }
        s.Store(sumf);
    }

    /// <summary>Σ ls·q·(a + 128) per pair of pairs: vpmaddubsw (x = a ^ 0x80 unsigned, w signed) then vpmaddwd with the spread scales.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Madd(Vector256<byte> x, Vector256<sbyte> w, Vector256<short> sc)
        => Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(x, w), sc);

    /// <summary>512-bit <see cref="Madd(Vector256{byte}, Vector256{sbyte}, Vector256{short})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Madd(Vector512<byte> x, Vector512<sbyte> w, Vector512<short> sc)
        => Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(x, w), sc);

    /// <summary>Each 128-bit lane of the result holds that lane's sums of a, b, c, d (as elements 0..3).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Sum4(Vector256<int> a, Vector256<int> b, Vector256<int> c, Vector256<int> d)
    {
        var ab = Avx2.UnpackLow(a, b) + Avx2.UnpackHigh(a, b);
        var cd = Avx2.UnpackLow(c, d) + Avx2.UnpackHigh(c, d);
        return Avx2.UnpackLow(ab.AsInt64(), cd.AsInt64()).AsInt32() + Avx2.UnpackHigh(ab.AsInt64(), cd.AsInt64()).AsInt32();
    }

    /// <summary>512-bit <see cref="Sum4(Vector256{int}, Vector256{int}, Vector256{int}, Vector256{int})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Sum4(Vector512<int> a, Vector512<int> b, Vector512<int> c, Vector512<int> d)
    {
        var ab = Avx512F.UnpackLow(a, b) + Avx512F.UnpackHigh(a, b);
        var cd = Avx512F.UnpackLow(c, d) + Avx512F.UnpackHigh(c, d);
        return Avx512F.UnpackLow(ab.AsInt64(), cd.AsInt64()).AsInt32() + Avx512F.UnpackHigh(ab.AsInt64(), cd.AsInt64()).AsInt32();
    }

    /// <summary>From four <see cref="Sum4(Vector512{int}, Vector512{int}, Vector512{int}, Vector512{int})"/> results: element 4m + i = the total of y_m's element i over its 4 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Sum16(Vector512<int> y0, Vector512<int> y1, Vector512<int> y2, Vector512<int> y3)
    {
        var z0 = Avx512F.Shuffle4x128(y0, y1, 0x88) + Avx512F.Shuffle4x128(y0, y1, 0xDD);
        var z1 = Avx512F.Shuffle4x128(y2, y3, 0x88) + Avx512F.Shuffle4x128(y2, y3, 0xDD);
        return Avx512F.Shuffle4x128(z0, z1, 0x88) + Avx512F.Shuffle4x128(z0, z1, 0xDD);
    }
}
