using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>Small building blocks shared by the AVX2 and portable Vector128 block kernels.</summary>
internal static class Simd
{
    /// <summary>True where the AVX2 integer-dot paths run (AVX2 for maddubs/madd, FMA for the float accumulation).</summary>
    public static bool Avx2Fma => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>
    /// True where the portable Vector128 paths are worth running: no AVX2, but 128-bit vectors are hardware
    /// (ARM64 AdvSimd, or x64 with AVX2 disabled). Dispatch order is AVX2 → Vector128 → scalar.
    /// </summary>
    public static bool UseVector128 => !Avx2Fma && Vector128.IsHardwareAccelerated;

    /// <summary>The raw-pointer row dot this machine runs (AVX2, else Vector128), or null where only the scalar one runs.</summary>
    public static unsafe delegate*<byte*, byte*, int, float> Pick(delegate*<byte*, byte*, int, float> avx2, delegate*<byte*, byte*, int, float> vector128)
        => Avx2Fma ? avx2 : UseVector128 ? vector128 : null;

    /// <summary>
    /// A weight row · activation row on the best path of <see cref="Pick"/>, else the scalar reference. The count is
    /// blocks (elements for F16/BF16), already validated by the caller.
    /// </summary>
    public static unsafe float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int count,
        delegate*<byte*, byte*, int, float> avx2, delegate*<byte*, byte*, int, float> vector128,
        delegate*<ReadOnlySpan<byte>, ReadOnlySpan<byte>, int, float> scalar)
    {
        var kernel = Pick(avx2, vector128);
        if (kernel == null)
            return scalar(weightRow, activationRow, count);
        fixed (byte* w = weightRow, a = activationRow)
            return kernel(w, a, count);
    }

    /// <summary>
    /// The 32 bits of <paramref name="bits"/> as 32 byte masks: byte j = 0xFF where bit j is set, else 0
    /// (Q5_0/Q5_1's fifth bits, in the element order of <see cref="Nibbles"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> BitMasks(uint bits)
    {
        // Byte j takes source byte j/8 (vpshufb works per 128-bit lane, and the broadcast puts bytes 0..3 in both),
        // then tests its own bit j%8.
        var spread = Avx2.Shuffle(Vector256.Create(bits).AsByte(), Vector256.Create(
            (byte)0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
        var bit = Vector256.Create(0x8040201008040201ul).AsByte();
        return Avx2.CompareEqual(spread & bit, bit);
    }

    /// <summary>16 packed bytes → 32 nibbles as bytes: the low nibbles in lanes 0..15, the high nibbles in 16..31.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<byte> Nibbles(Vector128<byte> packed)
    {
        var hi = Sse2.ShiftRightLogical(packed.AsUInt16(), 4).AsByte();
        return Vector256.Create(packed, hi) & Vector256.Create((byte)0x0F);
    }

    /// <summary>
    /// The high nibbles of 32 packed bytes, each in the low bits of its byte, as dwords (the shape the 8×8 dword
    /// transposes of the Q4_K packers take; the low nibbles are just <c>v &amp; 0x0F</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> HighNibbles(Vector256<byte> v) => (Avx2.ShiftRightLogical(v.AsUInt16(), 4).AsByte() & Vector256.Create((byte)0x0F)).AsInt32();

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

    // ---- portable Vector128 building blocks (exact integer math by widening; no ISA-specific instructions) ----

    /// <summary>
    /// 16 byte products x[i]·y[i] folded to 8 int16 lanes (lane l = x[l]·y[l] + x[l+8]·y[l+8]). Exact while every
    /// pair sum fits int16: |x|·|y| ≤ 16383, which holds for all weight formats here except Q8_0 × Q8_0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<short> MulPairs(Vector128<sbyte> x, Vector128<sbyte> y)
        => Vector128.WidenLower(x) * Vector128.WidenLower(y) + Vector128.WidenUpper(x) * Vector128.WidenUpper(y);

    /// <summary>int16 lanes widened to int32 and folded to 4 lanes (lane l = s[l] + s[l+4]), exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> WidenSum(Vector128<short> s) => Vector128.WidenLower(s) + Vector128.WidenUpper(s);

    /// <summary>
    /// Σ x[i]·y[i] over 16 signed bytes of any value (−128·−128 included) as 4 int32 lanes: ARM64's sdot (Dp) where
    /// present, else products widened before any addition. The total is exact either way; how it is spread over the
    /// lanes differs, so callers only sum the lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotBytesExact(Vector128<sbyte> x, Vector128<sbyte> y)
        => Dp.IsSupported ? Dp.DotProduct(Vector128<int>.Zero, x, y)
            : WidenSum(Vector128.WidenLower(x) * Vector128.WidenLower(y)) + WidenSum(Vector128.WidenUpper(x) * Vector128.WidenUpper(y));

    /// <summary>
    /// Σ a·b + Σ c·d over two runs of 16 signed bytes (every product within <see cref="MulPairs"/>' bound) as 4 int32
    /// lanes: two sdot on ARM64 (Dp), else <c>WidenSum(MulPairs(a, b) + MulPairs(c, d))</c>. The total is exact either
    /// way but spread over the lanes differently, so callers only sum the lanes or scale them all alike.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotPairs(Vector128<sbyte> a, Vector128<sbyte> b, Vector128<sbyte> c, Vector128<sbyte> d)
        => Dp.IsSupported ? Dp.DotProduct(Dp.DotProduct(Vector128<int>.Zero, a, b), c, d) : WidenSum(MulPairs(a, b) + MulPairs(c, d));

    /// <summary><see cref="DotPairs"/> of one run: Σ a·b as 4 int32 lanes (lane layout as there).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<int> DotPair(Vector128<sbyte> a, Vector128<sbyte> b)
        => Dp.IsSupported ? Dp.DotProduct(Vector128<int>.Zero, a, b) : WidenSum(MulPairs(a, b));

    /// <summary>16 packed bytes → (low nibbles, high nibbles), each as 16 bytes in 0..15.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static (Vector128<sbyte> Low, Vector128<sbyte> High) Nibbles128(Vector128<byte> packed)
    {
        var low = Vector128.Create((byte)0x0F);
        return ((packed & low).AsSByte(), (Vector128.ShiftRightLogical(packed, 4) & low).AsSByte());
    }

    /// <summary>
    /// The 16 bits of <paramref name="bits"/> starting at <paramref name="first"/> as 16 bytes of 0x10 (bit set) or 0:
    /// the fifth bit of 16 consecutive Q5_0/Q5_1 weights.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> FifthBits(uint bits, int first)
    {
        uint h = bits >> first;
        var spread = Vector128.Create((ulong)(byte)h * 0x0101010101010101ul, (ulong)(byte)(h >> 8) * 0x0101010101010101ul).AsByte();
        var bit = Vector128.Create(0x8040201008040201ul).AsByte();
        return Vector128.Equals(spread & bit, bit) & Vector128.Create((byte)0x10);
    }
}
