using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The IQ2 super-block decode of <see cref="IQDecoded"/> on AVX-512 VBMI and GFNI, two rows at a time: the same
/// signed grid bytes, integer scales and d_w as <see cref="IQ2XXS.DecodeBlock"/>, <see cref="IQ2XS.DecodeBlock"/> and
/// <see cref="IQ2S.DecodeBlock"/> (the scalar twins), bit for bit.
/// </summary>
/// <remarks>
/// Why: the scalar decode looks up 32 grid points and 32 sign masks per row (IQ2_S also builds each mask from its
/// sign byte) and was ~7 % of an IQ2_M prefill. Here a pair of rows' 64 points come from <see cref="IIQ2Pair.Pair"/>
/// (the code planes and sign bytes of <see cref="IQ2Simd512"/>'s matvec kernel), and each 64 weights are expanded by
/// <c>vpermt2b</c> + <c>vpmultishiftqb</c> + a <c>vpermb</c> table, their signs by a spread sign byte, <c>vptestnmb</c>
/// and a byte blend of g and −g.
/// </remarks>
internal static unsafe class IQ2DecodePair512
{
    /// <summary>True where <see cref="Decode{T}"/> runs (the <see cref="IQ2Simd512"/> instructions).</summary>
    public static bool IsSupported => IQ2Simd512.IsSupported;

    /// <summary>
    /// Decodes the super-blocks at <paramref name="x0"/> and <paramref name="x1"/>: 512 signed weights at
    /// <paramref name="q"/> (row 0, then row 1), their 32 group scales ls at <paramref name="ls"/> (16 per row, as the
    /// scalar decode writes them) and the two d_w at <paramref name="dw"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Decode<T>(byte* x0, byte* x1, sbyte* q, short* ls, float* dw) where T : struct, IIQ2Pair
    {
        T.Pair(x0, x1, T.Codes, out var lo, out var hi, out var signs, out var ls0, out var ls1);
        var codeControl = Vector512.Create(0x4000400040004000ul, 0x4101410141014101ul,
            0x4202420242024202ul, 0x4303430343034303ul, 0x4404440444044404ul, 0x4505450545054505ul,
            0x4606460646064606ul, 0x4707470747074707ul).AsByte();
        var spreadControl = Vector512.Create(0x0000000000000000ul, 0x0101010101010101ul,
            0x0202020202020202ul, 0x0303030303030303ul, 0x0404040404040404ul, 0x0505050505050505ul,
            0x0606060606060606ul, 0x0707070707070707ul).AsByte();
        var shifts = Vector512.Create(0x0E0C0A0806040200ul).AsByte();
        var values = Vector512.Create(0x002B1908002B1908ul).AsByte();
        for (int k = 0; k < 8; k++)
        {
            // Qword e: the 16-bit code of entry 8k + e; byte j of the shift: weight j's 2-bit code, then its magnitude.
            var k8 = Vector512.Create((byte)(8 * k));
            var code = Avx512Vbmi.PermuteVar64x8x2(lo, codeControl + k8, hi);
            var g = Avx512Vbmi.PermuteVar64x8(values, Avx512Vbmi.MultiShift(shifts, code.AsUInt64())).AsSByte();
            var spread = Avx512Vbmi.PermuteVar64x8(signs, spreadControl + k8);
            var positive = Vector512.Equals(spread & IQ2Simd512.BitOfByte, Vector512<byte>.Zero).AsSByte();
            Vector512.ConditionalSelect(positive, g, -g).Store(q + 64 * k);
        }
        // Row 0's 16 ls bytes, then row 1's, zero-extended to words.
        Avx512BW.ConvertToVector512Int16(Avx512Vbmi.PermuteVar64x8x2(ls0, T.GroupScales, ls1).GetLower()).Store(ls);
        dw[0] = HalfToSingle(*(ushort*)x0);
        dw[1] = HalfToSingle(*(ushort*)x1);
    }
}
