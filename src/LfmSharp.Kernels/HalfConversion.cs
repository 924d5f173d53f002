using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels;

/// <summary>
/// f16 → f32 widening of a span (exact for every bit pattern): the F16 KV cache is read through this.
/// </summary>
internal static class HalfConversion
{
    public static void ToSingle(ReadOnlySpan<Half> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"HalfConversion: dst length {dst.Length} < src length {src.Length}.", nameof(dst));
        if (Vector256.IsHardwareAccelerated && src.Length >= 16)
            Vector256Path(src, dst);
        else
            Scalar(src, dst);
    }

    internal static void Scalar(ReadOnlySpan<Half> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++)
            dst[i] = (float)src[i];
    }

    internal static void Vector256Path(ReadOnlySpan<Half> src, Span<float> dst)
    {
        ref ushort ps = ref MemoryMarshal.GetReference(MemoryMarshal.Cast<Half, ushort>(src));
        ref float pd = ref MemoryMarshal.GetReference(dst);
        var expMask = Vector256.Create((ushort)0x7c00);
        int i = 0;
        for (; i + 16 <= src.Length; i += 16)
        {
            var h = Vector256.LoadUnsafe(ref ps, (nuint)i);
            var e = h & expMask;
            if ((Vector256.Equals(e, Vector256<ushort>.Zero) | Vector256.Equals(e, expMask)) == Vector256<ushort>.Zero)
            {
                // All 16 normal (the usual case for cache rows): placing the bits and rebiasing the exponent is exact.
                WidenNormal(Vector256.WidenLower(h)).StoreUnsafe(ref pd, (nuint)i);
                WidenNormal(Vector256.WidenUpper(h)).StoreUnsafe(ref pd, (nuint)(i + 8));
            }
            else
            {
                Widen(Vector256.WidenLower(h)).StoreUnsafe(ref pd, (nuint)i);
                Widen(Vector256.WidenUpper(h)).StoreUnsafe(ref pd, (nuint)(i + 8));
            }
        }
        for (; i < src.Length; i++)
            dst[i] = (float)src[i];
    }

    /// <summary>
    /// Normal f16 values (exponent 1–30) only: an arithmetic shift of the value in the top half moves exponent and
    /// mantissa into place and copies the sign into bits 31–28, the mask keeps bit 31, and an integer add rebiases
    /// the exponent (15 → 127) without reaching the sign bit.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WidenNormal(Vector256<uint> h) =>
        ((((h << 16).AsInt32() >> 3) & Vector256.Create(unchecked((int)0x8FFFE000))) + Vector256.Create(112 << 23)).AsSingle();

    private static Vector256<float> Widen(Vector256<uint> h)
    {
        var finite = FromTopHalves((h << 16).AsInt32()).AsUInt32();
        var em = h & Vector256.Create(0x7fffu);
        var infNan = ((em << 13) | Vector256.Create(0x7f800000u)) | ((h & Vector256.Create(0x8000u)) << 16);
        return Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7c00u)), infNan, finite).AsSingle();
    }

    /// <summary>2^-14, the smallest normal f16.</summary>
    private const float MinNormalHalf = 1f / 16384;

    /// <summary>
    /// Finite f16 values in the top 16 bits of each lane as f32, exact, without ever forming an f32 subnormal: an
    /// arithmetic shift places the exponent and mantissa bits where an f32 keeps them, an integer add rebiases the
    /// exponent (15 → 127), and an f16 subnormal m·2^-24 is built as 2^-14 + m·2^-24 with 2^-14 then subtracted
    /// (exact). The shorter way — multiplying the placed bits by 2^112 — has an f32 subnormal operand for every f16
    /// subnormal, and x86 cores take a microcode assist (on the order of 100 cycles) for each such multiply: quantized
    /// block scales (Q6_K's d is usually an f16 subnormal), small F16 weights and near-zero KV cache entries all hit it.
    /// Inf/NaN (exponent 31) come out as wrong finite values; callers handle them separately.
    /// </summary>
    /// <remarks>
    /// On x86 the choice between the two needs no compare — 7 operations instead of 10, which the decode kernels spend
    /// once per block (IQ4_NL's ymm decode ~5 % less time per block on Zen 4). With mag = e &lt;&lt; 23 | m &lt;&lt; 13 (f16
    /// exponent e, mantissa m, value v): normal = f32(mag + 112 &lt;&lt; 23) is v for e ≥ 1 and 2^-15 + v/2 for e = 0;
    /// small = f32(mag + 113 &lt;&lt; 23) − 2^-14 is v for e = 0 (exact, Sterbenz) and 2v − 2^-14 ≥ v for e ≥ 1 (as v ≥
    /// 2^-14; rounding keeps it ≥ the representable v). So the smaller of the two is v in every case, e = 31 gives the
    /// compare form's finite value (normal), and no operand or result is an f32 subnormal.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> FromTopHalves(Vector256<int> t)
    {
        var mag = (t >> 3) & Vector256.Create(0x0FFFE000);                     // e << 23 | m << 13
        if (Avx.IsSupported)
        {
            var normal = (mag + Vector256.Create(112 << 23)).AsSingle();
            var small = (mag + Vector256.Create(113 << 23)).AsSingle() - Vector256.Create(MinNormalHalf);
            return (Avx.Min(normal, small).AsInt32() | (t & Vector256.Create(int.MinValue))).AsSingle();
        }
        var sub = Vector256.Equals(mag & Vector256.Create(0x0F800000), Vector256<int>.Zero);
        var u = mag + Vector256.Create(112 << 23) + (sub & Vector256.Create(1 << 23));
        var f = u.AsSingle() - (sub & Vector256.Create(113 << 23)).AsSingle();
        return (f.AsInt32() | (t & Vector256.Create(int.MinValue))).AsSingle();
    }

    /// <summary>The Vector512 twin of <see cref="FromTopHalves(Vector256{int})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> FromTopHalves(Vector512<int> t)
    {
        var mag = Vector512.ShiftRightArithmetic(t, 3) & Vector512.Create(0x0FFFE000);
        if (Avx512F.IsSupported)
        {
            var normal = (mag + Vector512.Create(112 << 23)).AsSingle();
            var small = (mag + Vector512.Create(113 << 23)).AsSingle() - Vector512.Create(MinNormalHalf);
            return (Avx512F.Min(normal, small).AsInt32() | (t & Vector512.Create(int.MinValue))).AsSingle();
        }
        var sub = Vector512.Equals(mag & Vector512.Create(0x0F800000), Vector512<int>.Zero);
        var u = mag + Vector512.Create(112 << 23) + (sub & Vector512.Create(1 << 23));
        var f = u.AsSingle() - (sub & Vector512.Create(113 << 23)).AsSingle();
        return (f.AsInt32() | (t & Vector512.Create(int.MinValue))).AsSingle();
    }

    /// <summary>The Vector128 twin of <see cref="FromTopHalves(Vector256{int})"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> FromTopHalves(Vector128<int> t)
    {
        var mag = Vector128.ShiftRightArithmetic(t, 3) & Vector128.Create(0x0FFFE000);
        if (Sse.IsSupported)
        {
            var normal = (mag + Vector128.Create(112 << 23)).AsSingle();
            var small = (mag + Vector128.Create(113 << 23)).AsSingle() - Vector128.Create(MinNormalHalf);
            return (Sse.Min(normal, small).AsInt32() | (t & Vector128.Create(int.MinValue))).AsSingle();
        }
        var sub = Vector128.Equals(mag & Vector128.Create(0x0F800000), Vector128<int>.Zero);
        var u = mag + Vector128.Create(112 << 23) + (sub & Vector128.Create(1 << 23));
        var f = u.AsSingle() - (sub & Vector128.Create(113 << 23)).AsSingle();
        return (f.AsInt32() | (t & Vector128.Create(int.MinValue))).AsSingle();
    }
}
