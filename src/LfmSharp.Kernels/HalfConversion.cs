using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels;

/// <summary>
/// f16 → f32 widening of a span (exact for every bit pattern): the F16 KV cache is read through this.
/// </summary>
public static class HalfConversion
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
        int i = 0;
        for (; i + 16 <= src.Length; i += 16)
        {
            var h = Vector256.LoadUnsafe(ref ps, (nuint)i);
            Widen(Vector256.WidenLower(h)).StoreUnsafe(ref pd, (nuint)i);
            Widen(Vector256.WidenUpper(h)).StoreUnsafe(ref pd, (nuint)(i + 8));
        }
        for (; i < src.Length; i++)
            dst[i] = (float)src[i];
    }

    // Placing the 15 exponent+mantissa bits at the f32 mantissa top and multiplying by 2^112 rebiases the exponent
    // (15 → 127) and turns f16 subnormals into normal f32s in one exact multiply; Inf/NaN are patched separately.
    private static Vector256<float> Widen(Vector256<uint> h)
    {
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var em = h & Vector256.Create(0x7fffu);
        var shifted = em << 13;
        var finite = (shifted.AsSingle() * Vector256.Create(BitConverter.UInt32BitsToSingle((127u + 112u) << 23))).AsUInt32();
        var infNan = shifted | Vector256.Create(0x7f800000u);
        var bits = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7c00u)), infNan, finite);
        return (bits | sign).AsSingle();
    }
}
