using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The IQ4_XS <see cref="PackedGemm"/> kernel for AVX-512BW machines without AVX-VNNI: 16 rows × 4 tokens in zmm
/// registers (<see cref="KernelIQ4XSZmm16"/>).
/// </summary>
/// <remarks>
/// <para>
/// Per row and token the integer of a super-block is Σ_j (ls_j − 32)·Σ level·a over the 8 sub-blocks, as in
/// <see cref="KernelIQ4XSDot4{TDot}"/> and <see cref="IQ4XS.DotAvx2"/>, and it ends with the same
/// acc = fma(convert(isum), d_w·d_a, acc), so the bits are theirs. The steps differ: vpmaddubsw takes |level| against
/// the activation with the level's sign moved on, and AVX-512 has no vpsignb, so the activation is XORed with the
/// level's sign mask instead — for a negative level a becomes ~a = −a − 1, so each step adds level·a − |level| for
/// those bytes. That bias depends on the weights only: Σ_j (ls_j − 32)·Σ_{level &lt; 0} |level| per row is stored with
/// the block and the int32 lanes start at it, so the total is exact. One XOR (with an embedded broadcast of the
/// activation) per token and step, where a negated copy and a select would need two broadcasts and a copy of the mask.
/// </para>
/// <para>
/// The int16 pair sums go straight into int32 by vpmaddwd with the sub-block scale as int16: the multiply that widens
/// is the one that scales (no vpmulld). Bounds: pair sums reach 2·127·128 = 32,512 (no saturation, for every a in
/// [−128, 127] since ~a stays in range, so unlike the ymm kernel's vpsignb this is exact at a = −128 too), scales lie
/// in [−32, 31], and the super-block total stays below 256·127·128·32 + the bias &lt; 2³¹.
/// </para>
/// <para>
/// Multiplies bound it on Zen 4 (a zmm multiply takes both halves of a 256-bit multiply unit): two per token and step
/// (vpmaddubsw, vpmaddwd), next to two simple ops (XOR, add); ~1.5× the ymm kernel in-process.
/// </para>
/// <para>
/// Packed layout per super-block of 16 rows (<see cref="XSZmm16BlockBytes"/>): 64 steps of 128 B — a zmm of |level|
/// (dword r: levels 4s..4s+3 of row r; sub-block j is steps 8j..8j+7) and a zmm of the matching sign masks (0xFF where
/// the level is negative); then per sub-block the 16 rows' ls − 32 as int16 pairs (both words of dword r, vpmaddwd's
/// operand; 8 × 64 B), the 16 rows' d_w as f32, and the 16 rows' bias as int32. The levels, scales and d come from
/// <see cref="PackIQ4XS"/>'s 8-row bytes, so the lookups and scale conversions are that packer's.
/// </para>
/// </remarks>
internal static unsafe partial class IQ4Packed
{
    /// <summary>Packed bytes per IQ4_XS super-block of 16 rows in the zmm layout: steps 8192, scales 512, d 64, bias 64.</summary>
    public const int XSZmm16BlockBytes = 64 * 128 + 512 + 64 + 64;

    /// <summary>Packs rows r0..r0+15 of an IQ4_XS matrix (rowBytes apart) in the zmm layout (see <see cref="KernelIQ4XSZmm16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4XSZmm16(byte* w, int rowBytes, int nb, byte* dst)
    {
        byte* tmp = stackalloc byte[2 * XSBlockBytes];
        long second = 8L * rowBytes;
        for (int b = 0; b < nb; b++, dst += XSZmm16BlockBytes)
        {
            byte* x = w + (long)b * 136;
            PackIQ4XS(x, rowBytes, 1, tmp);
            PackIQ4XS(x + second, rowBytes, 1, tmp + XSBlockBytes);
            JoinXS(tmp, tmp + XSBlockBytes, dst);
        }
    }

    /// <summary>
    /// <see cref="PackIQ4XSZmm16"/> from two consecutive groups of the interleaved block copy (block b of 8 rows side by
    /// side; the second group <paramref name="groupBytes"/> after the first): the same packed bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4XSx8Zmm16(byte* g, int groupBytes, int nb, byte* dst)
    {
        byte* tmp = stackalloc byte[2 * XSBlockBytes];
        for (int b = 0; b < nb; b++, dst += XSZmm16BlockBytes)
        {
            byte* x = g + (long)b * 8 * 136;
            PackIQ4XS(x, 136, 1, tmp);
            PackIQ4XS(x + groupBytes, 136, 1, tmp + XSBlockBytes);
            JoinXS(tmp, tmp + XSBlockBytes, dst);
        }
    }

    /// <summary>One super-block of the zmm layout from the two 8-row groups' <see cref="PackIQ4XS"/> blocks.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void JoinXS(byte* g0, byte* g1, byte* dst)
    {
        var bias = Vector512<int>.Zero;
        for (int j = 0; j < 8; j++)
        {
            // The 8-row scales are int32 in [−32, 31]: the low word repeated in both halves is the int16 pair vpmaddwd wants.
            var sc = Vector512.Create(Vector256.Load((int*)(g0 + 2048) + 8 * j), Vector256.Load((int*)(g1 + 2048) + 8 * j));
            var lo = sc & Vector512.Create(0xFFFF);
            (lo | (lo << 16)).Store((int*)(dst + 8192 + 64 * j));
            var neg = Vector512<int>.Zero;   // Σ |level| over the sub-block's negative levels, per row
            for (int s = 8 * j; s < 8 * j + 8; s++)
            {
                var v = Vector512.Create(Vector256.Load((sbyte*)(g0 + 32 * s)), Vector256.Load((sbyte*)(g1 + 32 * s)));
                var m = Vector512.LessThan(v, Vector512<sbyte>.Zero);
                Vector512.Abs(v).Store((sbyte*)(dst + 128 * s));
                m.Store((sbyte*)(dst + 128 * s + 64));
                var n = (Vector512.Abs(v) & m).AsByte();
                neg += Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(n, Vector512<sbyte>.One), Vector512<short>.One);
            }
            bias += neg * sc;
        }
        Vector512.Create(Vector256.Load(g0 + 2304), Vector256.Load(g1 + 2304)).Store(dst + 8704);
        bias.Store((int*)(dst + 8768));
    }

    /// <summary>
    /// IQ4_XS (zmm layout) × Q8_K, 16 rows × 4 tokens: outputs <c>Y0</c>..<c>Y3</c> are the 16 rows of tokens 0..3, each
    /// with the bits of <see cref="IQ4XS.DotAvx2"/> (and of <see cref="KernelIQ4XSDot4{TDot}"/> for activations in ±127).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelIQ4XSZmm16(byte* pk, int nb, in PackedGemm.TokenTile t)
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0, a1 = t.A1, a2 = t.A2, a3 = t.A3;
        for (int b = 0; b < nb; b++, pk += XSZmm16BlockBytes, a0 += 292, a1 += 292, a2 += 292, a3 += 292)
        {
            var i0 = Vector512.Load((int*)(pk + 8768));   // the rows' bias (see the remarks)
            Vector512<int> i1 = i0, i2 = i0, i3 = i0;
            byte* v = pk;
            for (int j = 0; j < 8; j++)
            {
                var sc = Vector512.Load((short*)(pk + 8192 + 64 * j));
                int o = 4 + 32 * j;
                for (int s = 0; s < 32; s += 4, v += 128)
                {
                    var aw = Vector512.Load(v);
                    var m = Vector512.Load((int*)(v + 64));
                    i0 = XorStep(i0, aw, m, sc, a0 + o + s);
                    i1 = XorStep(i1, aw, m, sc, a1 + o + s);
                    i2 = XorStep(i2, aw, m, sc, a2 + o + s);
                    i3 = XorStep(i3, aw, m, sc, a3 + o + s);
                }
            }
            var d = Vector512.Load((float*)(pk + 8704));
            acc0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), d * Vector512.Create(*(float*)a0), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), d * Vector512.Create(*(float*)a1), acc1);
            acc2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), d * Vector512.Create(*(float*)a2), acc2);
            acc3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i3), d * Vector512.Create(*(float*)a3), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }

    /// <summary>
    /// One token's step: |level| · (the broadcast quads at <paramref name="a"/> XOR the levels' sign masks
    /// <paramref name="m"/>), pair sums times the rows' sub-block scales <paramref name="sc"/> into int32, added to <paramref name="acc"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> XorStep(Vector512<int> acc, Vector512<byte> aw, Vector512<int> m, Vector512<short> sc, byte* a)
    {
        var sa = (m ^ Vector512.Create(*(int*)a)).AsSByte();
        return acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(aw, sa), sc);
    }
}
