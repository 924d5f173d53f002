using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Scalar helpers shared by the block formats: ggml's rounding and half/bfloat conversions, plus argument checks.
/// Every float operation here is single precision with one rounding per operation, as in ggml's C built without
/// -ffast-math and without FMA contraction (ggml-base is compiled for baseline x86-64); keep it that way, or the
/// reference quantizers stop reproducing llama-quantize's bytes.
/// </summary>
internal static class QuantMath
{
    /// <summary>
    /// ggml's <c>nearest_int</c>: adding 1.5·2^23 pushes the fraction out of the mantissa, so the FPU's
    /// round-to-nearest-even does the rounding. Valid for |x| ≤ 4194303 (ggml asserts that); outside it the result
    /// is garbage but never throws, like the C.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int NearestInt(float x)
    {
        float v = x + 12582912f;
        int i = BitConverter.SingleToInt32Bits(v);
        return (i & 0x007fffff) - 0x00400000;
    }

    /// <summary>f32 → f16 bits, round to nearest even (what GGML_FP32_TO_FP16 and F16C's vcvtps2ph both do).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half ToHalf(float x) => (Half)x;

    /// <summary>f16 → f32, exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromHalf(Half h) => (float)h;

    /// <summary>
    /// f16 bits → f32, exact for every bit pattern (the SIMD kernels' per-block scale conversion; same value as
    /// <see cref="FromHalf"/>). The 15 exponent+mantissa bits placed at the top of an f32 mantissa, times 2^112,
    /// rebias the exponent (15 → 127) and normalise f16 subnormals in one exact multiply; Inf/NaN take the rare branch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits)
    {
        uint em = bits & 0x7fffu;
        if (em >= 0x7c00u)
            return (float)BitConverter.UInt16BitsToHalf(bits);
        // ±2^112 carrying the sign: no data-dependent branch (scale signs are random).
        float factor = BitConverter.UInt32BitsToSingle(0x77800000u | ((bits & 0x8000u) << 16));
        return BitConverter.UInt32BitsToSingle(em << 13) * factor;
    }

    /// <summary>
    /// f32 → bf16 bits exactly like ggml_compute_fp32_to_bf16: NaN is kept and made quiet, everything else rounds to
    /// nearest even on the top 16 bits (subnormals are not flushed; older ggml flushed them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBFloat16Bits(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        if ((u & 0x7fffffffu) > 0x7f800000u)
            return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
    }

    /// <summary>bf16 bits → f32, exact (the bits are the top half of an f32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBFloat16Bits(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Reinterprets whole blocks of <paramref name="bytes"/> as <typeparamref name="TBlock"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<TBlock> Blocks<TBlock>(ReadOnlySpan<byte> bytes, int count) where TBlock : unmanaged
        => MemoryMarshal.Cast<byte, TBlock>(bytes.Slice(0, count * Unsafe.SizeOf<TBlock>()));

    /// <inheritdoc cref="Blocks{TBlock}(ReadOnlySpan{byte}, int)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Span<TBlock> Blocks<TBlock>(Span<byte> bytes, int count) where TBlock : unmanaged
        => MemoryMarshal.Cast<byte, TBlock>(bytes.Slice(0, count * Unsafe.SizeOf<TBlock>()));

    // ---- argument checks (shared so every format words its errors the same way) ----

    /// <summary>Dequantize: <paramref name="srcBytes"/> must be whole blocks, <paramref name="dstLength"/> must hold them. Returns the block count.</summary>
    public static int CheckDequantize(GgmlType type, int srcBytes, int dstLength)
    {
        int typeSize = GgmlTypes.TypeSize(type);
        int blockSize = GgmlTypes.BlockSize(type);
        if (srcBytes % typeSize != 0)
            throw new ArgumentException($"{type} source is {srcBytes} bytes, which is not a whole number of {typeSize}-byte blocks.", "src");
        int blocks = srcBytes / typeSize;
        if ((long)blocks * blockSize > dstLength)
            throw new ArgumentException($"{type} destination too small: {blocks} blocks dequantize to {(long)blocks * blockSize} floats but dst holds {dstLength}.", "dst");
        return blocks;
    }

    /// <summary>Quantize: <paramref name="srcLength"/> must be a multiple of the block size, <paramref name="dstBytes"/> must hold the blocks. Returns the block count.</summary>
    public static int CheckQuantize(GgmlType type, int srcLength, int dstBytes)
    {
        int typeSize = GgmlTypes.TypeSize(type);
        int blockSize = GgmlTypes.BlockSize(type);
        if (srcLength % blockSize != 0)
            throw new ArgumentException($"{srcLength} values is not a multiple of the {type} block size {blockSize}.", "src");
        int blocks = srcLength / blockSize;
        if ((long)blocks * typeSize > dstBytes)
            throw new ArgumentException($"{type} destination too small: {blocks} blocks need {(long)blocks * typeSize} bytes but dst holds {dstBytes}.", "dst");
        return blocks;
    }

    /// <summary>Dot: n must be a non-negative multiple of the block size and both rows must hold n elements. Returns the block count.</summary>
    public static int CheckDot(GgmlType weightType, GgmlType activationType, int weightBytes, int activationBytes, int n)
    {
        int blockSize = GgmlTypes.BlockSize(weightType);
        if (n < 0 || n % blockSize != 0)
            throw new ArgumentException($"n = {n} is not a non-negative multiple of the {weightType} block size {blockSize}.", nameof(n));
        long wNeed = GgmlTypes.RowBytes(weightType, n);
        if (weightBytes < wNeed)
            throw new ArgumentException($"{weightType} weight row is {weightBytes} bytes; {n} elements need {wNeed}.", "weightRow");
        long aNeed = GgmlTypes.RowBytes(activationType, n);
        if (activationBytes < aNeed)
            throw new ArgumentException($"{activationType} activation row is {activationBytes} bytes; {n} elements need {aNeed}.", "activationRow");
        return n / blockSize;
    }
}
