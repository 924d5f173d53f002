using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The IQ3 super-block decode of <see cref="IQDecoded"/> on AVX-512 VBMI and GFNI: the same signed grid bytes, integer
/// scales and d_w as <see cref="IQ3XXS.DecodeBlock"/> and <see cref="IQ3S.DecodeBlock"/> (the scalar twins), bit for
/// bit, from <see cref="IIQ3Row.Row"/>'s code planes, sign bytes and scales (<see cref="IQ3Simd512"/>'s matvec kernel).
/// </summary>
/// <remarks>
/// Why: the scalar decode makes each of a row's 64 grid points a load and each sign byte a mask (IQ3_S builds it from
/// the byte), ~5 % of an IQ3_XXS prefill; here each 64 weights are a <c>vpermt2b</c>, a <c>vpmultishiftqb</c>, a
/// <c>vpermb</c> level table, and their signs a spread sign byte, <c>vptestnmb</c> and a blend of g and −g.
/// </remarks>
internal static unsafe class IQ3DecodePair512
{
    /// <summary>True where <see cref="Decode{T}"/> runs (the <see cref="IQ3Simd512"/> instructions).</summary>
    public static bool IsSupported => IQ3Simd512.IsSupported;

    /// <summary>
    /// <see cref="BlockDecoder.DecodePair"/>: the super-blocks at <paramref name="x0"/> and <paramref name="x1"/> as
    /// 512 signed weights at <paramref name="q"/>, 32 scales at <paramref name="ls"/> and two d_w at <paramref name="dw"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode<T>(byte* x0, byte* x1, sbyte* q, short* ls, float* dw) where T : struct, IIQ3Row
    {
        dw[0] = Row<T>(x0, q, ls);
        dw[1] = Row<T>(x1, q + 256, ls + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Row<T>(byte* x, sbyte* q, short* ls) where T : struct, IIQ3Row
    {
        T.Row(x, T.Codes, out var lo, out var hi, out var signs, out var sub);
        var codeControl = Vector512.Create(0x41014000ul, 0x43034202ul, 0x45054404ul, 0x47074606ul,
            0x49094808ul, 0x4B0B4A0Aul, 0x4D0D4C0Cul, 0x4F0F4E0Eul).AsByte();
        var spreadControl = Vector512.Create(0x0000000000000000ul, 0x0101010101010101ul,
            0x0202020202020202ul, 0x0303030303030303ul, 0x0404040404040404ul, 0x0505050505050505ul,
            0x0606060606060606ul, 0x0707070707070707ul).AsByte();
        var shifts = Vector512.Create(0x1916131009060300ul).AsByte();
        for (int k = 0; k < 4; k++)
        {
            // Qword e: the codes of points 16k + 2e and 16k + 2e + 1; byte j of the shift: weight 8e + j's level index.
            var code = Avx512Vbmi.PermuteVar64x8x2(lo, codeControl + Vector512.Create((byte)(16 * k)), hi);
            var g = Avx512Vbmi.PermuteVar64x8(T.Levels, Avx512Vbmi.MultiShift(shifts, code.AsUInt64())).AsSByte();
            var spread = Avx512Vbmi.PermuteVar64x8(signs, spreadControl + Vector512.Create((byte)(8 * k)));
            var positive = Vector512.Equals(spread & IQ2Simd512.BitOfByte, Vector512<byte>.Zero).AsSByte();
            Vector512.ConditionalSelect(positive, g, -g).Store(q + 64 * k);
        }
        // Group 2ib and 2ib + 1 take sub-block ib's ls, which Row put in byte 8·(ib / 2) + ib % 2.
        var pick = Vector512.Create(0x0909080801010000ul, 0x1919181811111010ul, 0, 0, 0, 0, 0, 0).AsByte();
        Avx2.ConvertToVector256Int16(Avx512Vbmi.PermuteVar64x8(sub, pick).GetLower().GetLower()).Store(ls);
        return HalfToSingle(*(ushort*)x);
    }
}
