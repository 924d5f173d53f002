using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>Small building blocks shared by the AVX2 block kernels.</summary>
internal static class Simd
{
    /// <summary>True where the AVX2 integer-dot paths run (AVX2 for maddubs/madd, FMA for the float accumulation).</summary>
    public static bool Avx2Fma => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>16 packed bytes → 32 nibbles as bytes: the low nibbles in lanes 0..15, the high nibbles in 16..31.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Nibbles(Vector128<byte> packed)
    {
        var hi = Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte();
        return Vector256.Create(packed, hi) & Vector256.Create((byte)0x0F);
    }

    /// <summary>Σ x[i]·y[i] over 32 signed bytes as 8 int32 lanes, with x in [−128, 127] and y in [−127, 127] (maddubs sign trick).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotSigned(Vector256<sbyte> x, Vector256<sbyte> y)
    {
        var p = Avx2.MultiplyAddAdjacent(Avx2.Abs(x), Avx2.Sign(y, x));
        return Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
    }

    /// <summary>Σ x[i]·y[i] over 32 bytes as 8 int32 lanes, x unsigned with x·|y| pair sums below 2^15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> DotUnsigned(Vector256<byte> x, Vector256<sbyte> y)
        => Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(x, y), Vector256.Create((short)1));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> v)
    {
        var s = v.GetLower() + v.GetUpper();
        s += Sse.MoveHighToLow(s, s);
        s = Sse.AddScalar(s, Sse.Shuffle(s, s, 1));
        return s.ToScalar();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int HorizontalSum(Vector256<int> v)
    {
        var s = v.GetLower() + v.GetUpper();
        s += Sse2.Shuffle(s, 0b_01_00_11_10);
        s += Sse2.Shuffle(s, 0b_10_11_00_01);
        return s.ToScalar();
    }
}
