using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The Q8_0-block <see cref="PackedGemm"/> kernel for AVX-512BW machines without AVX-VNNI: 16 rows × 4 tokens in zmm
/// registers, used by Q8_0 (IQ4_NL has its own, <see cref="IQ4Packed.KernelIQ4NLZmm16"/>, whose levels are never −128).
/// </summary>
/// <remarks>
/// <para>
/// The arithmetic per row and token is <see cref="KernelQ8_0Dot4{TDot}"/>'s with <see cref="Avx2Dot"/>: |w| against the
/// activation with w's sign moved onto it, vpmaddubsw, then vpmaddwd by ones into int32 each step (pair sums reach
/// 32,512, so no two steps share an int16 lane), and per block convert(total) · (dw·da) fused into the accumulator. The
/// block totals are exact, so the bits are that kernel's. AVX-512 has no vpsignb; the sign moves by a per-byte select
/// between the broadcast activation and the broadcast of its negated copy (made once per block; the mask is w &lt; 0,
/// shared by the 4 tokens).
/// </para>
/// <para>
/// Packed layout per block of 32 for 16 rows (576 B): for step s = 0..7 a zmm at 64s whose low half is step s of the
/// first 8-row group's 288-byte Q8_0 packed block (dword r: quants 4s..4s+3 of row r) and whose high half is the second
/// group's; then the 16 row scales as f32 (the two groups' 8 each). The halves are written by the 8-row packers
/// themselves, so the bytes (and the scale conversions) are theirs.
/// </para>
/// </remarks>
internal static unsafe partial class PackedGemm
{
    /// <summary>
    /// One block of the 16-row zmm layout from the two groups' 288-byte packed blocks <paramref name="g0"/> and
    /// <paramref name="g1"/> (steps at 32s, scales at 256).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Join16(byte* g0, byte* g1, byte* dst)
    {
        for (int s = 0; s < 8; s++)
            Vector512.Create(Vector256.Load(g0 + 32 * s), Vector256.Load(g1 + 32 * s)).Store(dst + 64 * s);
        Vector512.Create(Vector256.Load(g0 + 256), Vector256.Load(g1 + 256)).Store(dst + 512);
    }

    /// <summary>Packs 16 GGUF rows (rowBytes apart, nb blocks) with an 8-row packer of 288-byte blocks, joined per block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pack16Q8(delegate*<byte*, int, int, byte*, void> pack8, int blockBytes, byte* w, int rowBytes, int nb, byte* dst)
    {
        byte* tmp = stackalloc byte[2 * 288];
        long second = 8L * rowBytes;
        for (int b = 0; b < nb; b++, dst += Zmm16BlockBytes)
        {
            byte* x = w + (long)b * blockBytes;
            pack8(x, rowBytes, 1, tmp);
            pack8(x + second, rowBytes, 1, tmp + 288);
            Join16(tmp, tmp + 288, dst);
        }
    }

    /// <summary>As <see cref="Pack16Q8"/> from two interleaved groups (the second <paramref name="groupBytes"/> after the first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pack16Q8x8(delegate*<byte*, int, byte*, void> pack8, int blockBytes, byte* g, int groupBytes, int nb, byte* dst)
    {
        byte* tmp = stackalloc byte[2 * 288];
        for (int b = 0; b < nb; b++, dst += Zmm16BlockBytes)
        {
            byte* x = g + (long)b * 8 * blockBytes;
            pack8(x, 1, tmp);
            pack8(x + groupBytes, 1, tmp + 288);
            Join16(tmp, tmp + 288, dst);
        }
    }

    /// <summary>Packs rows r0..r0+15 of a Q8_0 matrix in the zmm layout (see <see cref="KernelQ8_0Zmm16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ8_0Zmm16(byte* w, int rowBytes, int nb, byte* dst) => Pack16Q8(&PackQ8_0, 34, w, rowBytes, nb, dst);

    /// <summary><see cref="PackQ8_0Zmm16"/> from two consecutive interleaved groups: the same packed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackQ8_0x8Zmm16(byte* g, int groupBytes, int nb, byte* dst) => Pack16Q8x8(&PackQ8_0x8, 34, g, groupBytes, nb, dst);

    /// <summary>
    /// One token's step: |w| · (a with w's sign: the broadcast of <paramref name="a"/> or of its negated copy
    /// <paramref name="na"/>, picked per byte by <paramref name="neg"/>), pair sums widened to int32 and added to <paramref name="acc"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> SignedStep(Vector512<int> acc, Vector512<byte> aw, Vector512<sbyte> neg, byte* a, byte* na)
    {
        var sa = Vector512.ConditionalSelect(neg, Vector512.Create(*(int*)na).AsSByte(), Vector512.Create(*(int*)a).AsSByte());
        return acc + Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(aw, sa), Vector512.Create((short)1));
    }

    /// <summary>The 32 quants at <paramref name="a"/> negated (wrapping, as vpsignb does) at <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Negate32(byte* a, byte* dst) => (Vector256<sbyte>.Zero - Vector256.Load((sbyte*)a)).Store((sbyte*)dst);

    /// <summary>
    /// Q8_0-block weights (zmm layout) × Q8_0 activations, 16 rows × 4 tokens: outputs <c>Y0</c>..<c>Y3</c> are the 16
    /// rows of tokens 0..3, with the bits of <see cref="KernelQ8_0Dot4{TDot}"/> on each 8-row half.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelQ8_0Zmm16(byte* pk, int nb, in TokenTile t)
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        float* d0 = t.D0, d1 = t.D1, d2 = t.D2, d3 = t.D3;
        // Each block's activations negated once (4 × 32 bytes), so a step's signed activation is one select of two
        // broadcasts rather than a negate and a select per token.
        byte* n = stackalloc byte[4 * 32];
        for (int b = 0; b < nb; b++, pk += Zmm16BlockBytes, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            Negate32(a0, n);
            Negate32(a1, n + 32);
            Negate32(a2, n + 64);
            Negate32(a3, n + 96);
            Vector512<int> i0 = default, i1 = default, i2 = default, i3 = default;
            for (int s = 0; s < 32; s += 4)
            {
                var w = Vector512.Load((sbyte*)(pk + 16 * s));
                var aw = Avx512BW.Abs(w);
                var neg = Vector512.LessThan(w, Vector512<sbyte>.Zero);
                i0 = SignedStep(i0, aw, neg, a0 + s, n + s);
                i1 = SignedStep(i1, aw, neg, a1 + s, n + 32 + s);
                i2 = SignedStep(i2, aw, neg, a2 + s, n + 64 + s);
                i3 = SignedStep(i3, aw, neg, a3 + s, n + 96 + s);
            }
            var dw = Vector512.Load((float*)(pk + 512));
            acc0 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i0), dw * Vector512.Create(d0[b]), acc0);
            acc1 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i1), dw * Vector512.Create(d1[b]), acc1);
            acc2 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i2), dw * Vector512.Create(d2[b]), acc2);
            acc3 = Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(i3), dw * Vector512.Create(d3[b]), acc3);
        }
        acc0.Store(t.Y0);
        acc1.Store(t.Y1);
        acc2.Store(t.Y2);
        acc3.Store(t.Y3);
    }
}
