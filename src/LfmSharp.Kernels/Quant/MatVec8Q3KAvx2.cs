using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The AVX2 (+FMA, no AVX-512) 8-row decode of Q3_K, over GGUF rows or over the <see cref="InterleaveLayout.Blocks"/>
/// copy; on AVX-512BW machines <see cref="MatVec8Q3K"/> runs instead.
/// </summary>
/// <remarks>
/// The generic <see cref="MatVec8K"/> over <see cref="Q3K.BlockSum256"/> spent about a third of each row's work on the
/// scales (scalar 6-bit unpacking, two lane permutes) and ran its run loop with per-iteration constants. Here, per row,
/// the scales are unpacked with a few vector ops straight into the order [even scales | odd scales] (int16): run k of
/// chunk c takes scale 8c + 2k in its low 128 bits and 8c + 2k + 1 in its high ones, i.e. word 4c + k of both lanes, so
/// one in-lane vpshufb with a constant control picks it; the activations' bsums are put in that order (and times 4)
/// once per block for the 8 rows. The block integer is Σ (sc − 32)·(lo | 4h)·a − Σ (sc − 32)·4·bsum, the exact total of
/// <see cref="Q3K.BlockSum"/>, and the float step per block that of <see cref="Q3K8"/> (fma(isum, d·d_a, acc)): the
/// outputs keep the row dots' bits.
/// </remarks>
internal static unsafe class MatVec8Q3KAvx2
{
    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group(in Group8 g) => Decode(g.Rows, g.RowBytes, 110, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>The decode kernel over a group of the <see cref="InterleaveLayout.Blocks"/> copy (<see cref="TypeTraits.Decode8Interleaved"/>).</summary>
    public static void GroupBlocks(in Group8 g) => Decode(g.Interleaved, 110, 8 * 110, g.Nb, g.Act, g.Y, g.Rows, g.RowBytes);

    /// <summary>
    /// Rows at <paramref name="w"/> (row r of block b at w + b·<paramref name="blockStride"/> + r·<paramref name="rowStride"/>)
    /// · one Q8_K row <paramref name="a"/> → y[0..7]; <paramref name="rows"/> / <paramref name="rowBytes"/>: the group's
    /// GGUF rows, read only to recompute a group with an Inf/NaN scale exactly.
    /// </summary>
    /// <remarks>
    /// The rows run in a loop over one inlined <see cref="Row"/>: eight inlined copies had so many temporaries that the
    /// JIT stopped tracking them and spilled every vector to the stack (slower than the generic kernel).
    /// </remarks>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    public static void Decode(byte* w, int rowStride, int blockStride, int nb, byte* a, float* y, byte* rows, int rowBytes)
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        long rowStep = rowStride;
        long rs = rowStride;
        var sums = stackalloc Vector256<int>[8];
        byte* next = w + 8L * rowBytes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * blockStride, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * 110, b);
            sbyte* q8 = (sbyte*)(ab + 4);
            // 4·bsum in the scales' order [even | odd] (|4·bsum| ≤ 4·16·128 fits int16): the −4·Σ sc·bsum of v = q + 4.
            var bs4 = Vector256.ShiftLeft(EvenOddWords(Vector256.Load((short*)(ab + 260))), 2);
            for (int r = 0; r < 8; r++)
                sums[r] = Row(x + r * rs, q8, bs4);
            // d ends the block: the high half of the dword at 106.
            var d = MatVec8.RowHalves(x + 106, rowStep, ref special, high: true) * Vector256.Create(*(float*)ab);
            acc = Fma.MultiplyAdd(Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7])), d, acc);
        }
        acc.Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&Q3K.DotAvx2, rows, rowBytes, nb, a, y);
    }

    /// <summary>16 int16 (bsums) in the order of the scales here: [0, 2, .., 14 | 1, 3, .., 15].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<short> EvenOddWords(Vector256<short> v)
    {
        var evenOdd = Vector256.Create((byte)0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
        // Each lane now [evens | odds] of its 8 words; the qwords [0, 2, 1, 3] give all evens, then all odds.
        return Avx2.Permute4x64(Avx2.Shuffle(v.AsByte(), evenOdd).AsUInt64(), 0b11_01_10_00).AsInt16();
    }

    /// <summary>vpshufb control repeating int16 word <paramref name="word"/> of each 128-bit lane over that lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> WordControl(int word) => Vector256.Create((ushort)(2 * word | (2 * word + 1) << 8)).AsByte();

    /// <summary>
    /// One row's block (x: the Q3_K block; q8: the activations; bs4: 4·bsums in scale order [even | odd]): the exact
    /// Σ (sc − 32)·(lo | 4h)·a − Σ (sc − 32)·4·bsum in 8 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Row(byte* x, sbyte* q8, Vector256<short> bs4)
    {
        var sc = Scales(x + 96);
        var offset = Avx2.MultiplyAddAdjacent(bs4, sc);
        var hm = Vector256.Load(x).AsUInt16();
        var q0 = Vector256.Load(x + 32).AsUInt16();
        var q1 = Vector256.Load(x + 64).AsUInt16();
        // Run k of chunk c: lo = bits 2k of its qs byte, h = bit 4c + k of its hmask byte, moved to bit 2.
        var s0 = Run(q0, Vector256.ShiftLeft(hm, 2), q8, sc, 0)
            + Run(Vector256.ShiftRightLogical(q0, 2), Vector256.ShiftLeft(hm, 1), q8 + 32, sc, 1);
        var s1 = Run(Vector256.ShiftRightLogical(q0, 4), hm, q8 + 64, sc, 2)
            + Run(Vector256.ShiftRightLogical(q0, 6), Vector256.ShiftRightLogical(hm, 1), q8 + 96, sc, 3);
        var s2 = Run(q1, Vector256.ShiftRightLogical(hm, 2), q8 + 128, sc, 4)
            + Run(Vector256.ShiftRightLogical(q1, 2), Vector256.ShiftRightLogical(hm, 3), q8 + 160, sc, 5);
        var s3 = Run(Vector256.ShiftRightLogical(q1, 4), Vector256.ShiftRightLogical(hm, 4), q8 + 192, sc, 6)
            + Run(Vector256.ShiftRightLogical(q1, 6), Vector256.ShiftRightLogical(hm, 5), q8 + 224, sc, 7);
        return (s0 + s1) + (s2 + s3) - offset;
    }

    /// <summary>
    /// One 32-weight run: v = (lo &amp; 3) | (h &amp; 4) in 0..7 (|maddubs pair| ≤ 2·7·128 fits int16) times the activations,
    /// times the scale in word <paramref name="word"/> of each lane of <paramref name="sc"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Run(Vector256<ushort> lo, Vector256<ushort> h, sbyte* a, Vector256<short> sc, int word)
    {
        var v = (lo.AsByte() & Vector256.Create((byte)3)) | (h.AsByte() & Vector256.Create((byte)4));
        var p = Avx2.MultiplyAddAdjacent(v, Vector256.Load(a));
        return Avx2.MultiplyAddAdjacent(p, Avx2.Shuffle(sc.AsByte(), WordControl(word)).AsInt16());
    }

    /// <summary>
    /// The 16 6-bit scales of the 12 bytes at <paramref name="p"/> minus 32 as int16, in the order [s0, s2, .., s14 |
    /// s1, s3, .., s15]: scale j is the low (j &lt; 8) or high nibble of byte j mod 8, its top two bits bits 2·(j / 4) of
    /// byte 8 + j mod 4 (<see cref="Q3K.ScaleDwords"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<short> Scales(byte* p)
    {
        var lo8 = Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(p));
        var nib = Sse2.UnpackLow(lo8, Vector128.ShiftRightLogical(lo8, 4)).AsByte() & Vector128.Create((byte)0x0F);
        var hi = Avx2.ShiftRightLogicalVariable(Vector128.Create(Unsafe.ReadUnaligned<uint>(p + 8)), Vector128.Create(0u, 2, 4, 6));
        var all = (nib | (Vector128.ShiftLeft(hi, 4).AsByte() & Vector128.Create((byte)0x30))) - Vector128.Create((byte)32);
        var ordered = Ssse3.Shuffle(all, Vector128.Create((byte)0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
        return Avx2.ConvertToVector256Int16(ordered.AsSByte());
    }
}
