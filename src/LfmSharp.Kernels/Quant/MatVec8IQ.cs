using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// What the row dot and the 8-row decode kernel of <see cref="MatVec8IQ"/> need of a grid type whose dot is, per
/// super-block, one exact integer (<see cref="IQBlockSums"/>) scaled by d_w·d_a: IQ3_XXS, IQ3_S, IQ1_S, IQ1_M.
/// </summary>
internal unsafe interface IIQBlock
{
    /// <summary>Bytes per GGUF block.</summary>
    static abstract int BlockBytes { get; }

    /// <summary>True when the block integer is 8× the value (IQ1's ±1/8 shift folded in), so it is scaled by 1/8 first.</summary>
    static abstract bool Eighths { get; }

    /// <summary>The factor of the row's sum at the end (ggml's 0.25 of IQ3_XXS; else 1).</summary>
    static abstract float Final { get; }

    /// <summary>The block integer of one row's block against one Q8_K block, spread over 8 lanes.</summary>
    static abstract Vector256<int> Sum(byte* x, byte* y);

    /// <summary>The f16 bits of the block's d (assembled from the scales for IQ1_M).</summary>
    static abstract ushort ScaleBits(byte* x);

    /// <summary>The row dot whose bits the 8-row kernel reproduces (used for a group with an Inf/NaN scale).</summary>
    static abstract delegate*<byte*, byte*, int, float> RowDot { get; }
}

/// <summary>
/// The AVX2 row dot and 8-row decode kernel of the grid types of <see cref="IIQBlock"/>. Both take the block integer
/// from <see cref="IQBlockSums"/> and run the float steps of ggml's generic dot — sumf += (d_w·d_a)·isum per block,
/// the factor at the end — so they are bit-identical to each other and to the types' DotScalar. The 8-row kernel
/// shares each activation block between 8 rows and replaces 8 horizontal sums and 8 scalar float steps per block
/// with one transpose-add (<see cref="MatVec8.Totals"/>) and one vector step.
/// </summary>
internal static unsafe class MatVec8IQ
{
    /// <summary>One row of <paramref name="nb"/> blocks · one Q8_K row (the types' DotAvx2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float RowDot<T>(byte* w, byte* a, int nb) where T : struct, IIQBlock
    {
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + T.BlockBytes * i, y = a + 292 * i;
            float d = QuantMath.HalfToSingle(T.ScaleBits(x)) * *(float*)y;
            float isum = Simd.HorizontalSum(T.Sum(x, y));
            sumf += d * (T.Eighths ? isum * 0.125f : isum);
        }
        return T.Final * sumf;
    }

    /// <summary>The decode kernel over a group's GGUF rows (<see cref="TypeTraits.Decode8"/>).</summary>
    public static void Group<T>(in Group8 g) where T : struct, IIQBlock => Decode<T>(g.Rows, g.RowBytes, g.Nb, g.Act, g.Y);

    /// <summary>8 GGUF rows at <paramref name="w"/> (<paramref name="rowBytes"/> apart) · one Q8_K row → y[0..7], each the row dot's bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode<T>(byte* w, int rowBytes, int nb, byte* a, float* y) where T : struct, IIQBlock
    {
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var sums = stackalloc Vector256<int>[8];
        byte* next = w + 8L * rowBytes;
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * T.BlockBytes, ab = a + b * 292;
            MatVec8.PrefetchNext(next, 8 * T.BlockBytes, b);
            // One inlined copy of the block sum (8 would outgrow the JIT's tracked locals and spill everything).
            for (int r = 0; r < 8; r++)
                sums[r] = T.Sum(x + (long)r * rowBytes, ab);
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = Scales<T>(x, rowBytes, ref special) * Vector256.Create(*(float*)ab);
            acc += d * (T.Eighths ? tot * Vector256.Create(0.125f) : tot);
        }
        (acc * Vector256.Create(T.Final)).Store(y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(T.RowDot, w, rowBytes, nb, a, y);
    }

    /// <summary>
    /// The 8 rows' d of one block as f32 (exact for finite f16, no f32 subnormals, see
    /// <see cref="HalfConversion.FromTopHalves(Vector256{int})"/>); an Inf/NaN exponent is noted in <paramref name="special"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Scales<T>(byte* x, int rowBytes, ref Vector256<int> special) where T : struct, IIQBlock
    {
        var t = Vector256.Create((int)T.ScaleBits(x), T.ScaleBits(x + rowBytes), T.ScaleBits(x + 2L * rowBytes), T.ScaleBits(x + 3L * rowBytes),
            T.ScaleBits(x + 4L * rowBytes), T.ScaleBits(x + 5L * rowBytes), T.ScaleBits(x + 6L * rowBytes), T.ScaleBits(x + 7L * rowBytes)) << 16;
        special = Vector256.Max(special.AsUInt32(), (t & Vector256.Create(0x7C000000)).AsUInt32()).AsInt32();
        return HalfConversion.FromTopHalves(t);
    }
}

/// <summary>IQ3_XXS for <see cref="MatVec8IQ"/>: d first, 0.25 at the end.</summary>
internal unsafe struct IQ3XXS8 : IIQBlock
{
    public static int BlockBytes => 98;
    public static bool Eighths => false;
    public static float Final => 0.25f;
    public static delegate*<byte*, byte*, int, float> RowDot => &IQ3XXS.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => IQBlockSums.IQ3XXS(x, y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ScaleBits(byte* x) => *(ushort*)x;
}

/// <summary>IQ3_S for <see cref="MatVec8IQ"/>: d first.</summary>
internal unsafe struct IQ3S8 : IIQBlock
{
    public static int BlockBytes => 110;
    public static bool Eighths => false;
    public static float Final => 1f;
    public static delegate*<byte*, byte*, int, float> RowDot => &IQ3S.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => IQBlockSums.IQ3S(x, y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ScaleBits(byte* x) => *(ushort*)x;
}

/// <summary>IQ1_S for <see cref="MatVec8IQ"/>: d first, the integer is 8·sumi + sumi1.</summary>
internal unsafe struct IQ1S8 : IIQBlock
{
    public static int BlockBytes => 50;
    public static bool Eighths => true;
    public static float Final => 1f;
    public static delegate*<byte*, byte*, int, float> RowDot => &IQ1S.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => IQBlockSums.IQ1S(x, y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ScaleBits(byte* x) => *(ushort*)x;
}

/// <summary>IQ1_M for <see cref="MatVec8IQ"/>: d from the scale words' top nibbles, the integer is 8·sumi1 + sumi2.</summary>
internal unsafe struct IQ1M8 : IIQBlock
{
    public static int BlockBytes => 56;
    public static bool Eighths => true;
    public static float Final => 1f;
    public static delegate*<byte*, byte*, int, float> RowDot => &IQ1M.DotAvx2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Sum(byte* x, byte* y) => IQBlockSums.IQ1M(x, y);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ScaleBits(byte* x) => IQ1M.SuperScaleBits((ushort*)(x + 48));
}
