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
        for (int b = 0; b < nb; b++, dst += XSZmm16BlockBytes)
        {
            byte* x = w + (long)b * 136;
            PackXSZmm(x, x + 8L * rowBytes, rowBytes, dst);
        }
    }

    /// <summary>
    /// <see cref="PackIQ4XSZmm16"/> from two consecutive groups of the interleaved block copy (block b of 8 rows side by
    /// side; the second group <paramref name="groupBytes"/> after the first): the same packed bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4XSx8Zmm16(byte* g, int groupBytes, int nb, byte* dst)
    {
        for (int b = 0; b < nb; b++, dst += XSZmm16BlockBytes)
        {
            byte* x = g + (long)b * 8 * 136;
            PackXSZmm(x, x + groupBytes, 136, dst);
        }
    }

    /// <summary>
    /// One super-block of the zmm layout from the blocks of rows 0..7 at <paramref name="x0"/> and rows 8..15 at
    /// <paramref name="x1"/> (each <paramref name="stride"/> apart): <see cref="PackIQ4XS"/>'s lookups, transposes and
    /// scale fields, for 16 rows at once and without its intermediate bytes (packing is ~5% of a 512-token batch).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PackXSZmm(byte* x0, byte* x1, long stride, byte* dst)
    {
        var kv = IQ4XS.LevelTable();
        var sh = Vector512<int>.Zero;   // scales_h of the 16 rows
        var sl = Vector512<int>.Zero;   // scales_l (4 bytes: sub-block j in bits 4j..4j+3)
        float* d = (float*)(dst + 8704);
        for (int r = 0; r < 16; r++)
        {
            byte* xr = (r < 8 ? x0 : x1) + (r & 7) * stride;
            d[r] = QuantMath.HalfToSingle(*(ushort*)xr);
            sh = sh.WithElement(r, (int)*(ushort*)(xr + 2));
            sl = sl.WithElement(r, *(int*)(xr + 4));
        }
        var bias = Vector512<int>.Zero;
        for (int j = 0; j < 8; j++)
        {
            var sc = (((sl >>> (4 * j)) & Vector512.Create(0xF)) | (((sh >>> (2 * j)) & Vector512.Create(3)) << 4)) - Vector512.Create(32);
            // ls − 32 in [−32, 31]: the low word repeated in both halves is the int16 pair vpmaddwd wants.
            var lo = sc & Vector512.Create(0xFFFF);
            (lo | (lo << 16)).Store((int*)(dst + 8192 + 64 * j));
            int q = 8 + 16 * j;
            Vector256<int> a0 = Levels(x0 + q, kv), a1 = Levels(x0 + stride + q, kv), a2 = Levels(x0 + 2 * stride + q, kv), a3 = Levels(x0 + 3 * stride + q, kv);
            Vector256<int> a4 = Levels(x0 + 4 * stride + q, kv), a5 = Levels(x0 + 5 * stride + q, kv), a6 = Levels(x0 + 6 * stride + q, kv), a7 = Levels(x0 + 7 * stride + q, kv);
            Vector256<int> b0 = Levels(x1 + q, kv), b1 = Levels(x1 + stride + q, kv), b2 = Levels(x1 + 2 * stride + q, kv), b3 = Levels(x1 + 3 * stride + q, kv);
            Vector256<int> b4 = Levels(x1 + 4 * stride + q, kv), b5 = Levels(x1 + 5 * stride + q, kv), b6 = Levels(x1 + 6 * stride + q, kv), b7 = Levels(x1 + 7 * stride + q, kv);
            bias += StoreSteps(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, dst + 1024 * j) * sc;
        }
        bias.Store((int*)(dst + 8768));
    }

    /// <summary>
    /// The 8 steps of 32 levels of 16 rows (rows 0..7: <paramref name="a0"/>..<paramref name="a7"/>, one row's 8 dwords
    /// each; rows 8..15: <paramref name="b0"/>..<paramref name="b7"/>) at dst + 128·s after two 8×8 dword transposes, as
    /// <see cref="StoreStep"/>; returns each row's Σ |level| over its negative levels. Shared by the IQ4_XS and IQ4_NL packers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> StoreSteps(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3,
        Vector256<int> a4, Vector256<int> a5, Vector256<int> a6, Vector256<int> a7,
        Vector256<int> b0, Vector256<int> b1, Vector256<int> b2, Vector256<int> b3,
        Vector256<int> b4, Vector256<int> b5, Vector256<int> b6, Vector256<int> b7, byte* dst)
    {
        KStream.Transpose8x8(ref a0, ref a1, ref a2, ref a3, ref a4, ref a5, ref a6, ref a7);
        KStream.Transpose8x8(ref b0, ref b1, ref b2, ref b3, ref b4, ref b5, ref b6, ref b7);
        return StoreStep(a0, b0, dst) + StoreStep(a1, b1, dst + 128) + StoreStep(a2, b2, dst + 256) + StoreStep(a3, b3, dst + 384)
            + StoreStep(a4, b4, dst + 512) + StoreStep(a5, b5, dst + 640) + StoreStep(a6, b6, dst + 768) + StoreStep(a7, b7, dst + 896);
    }

    /// <summary>
    /// Stores one step (levels of rows 0..7 in <paramref name="lo"/>, rows 8..15 in <paramref name="hi"/>) as |level| and
    /// sign masks; returns each row's Σ |level| over its negative levels (the bias, before the scale).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> StoreStep(Vector256<int> lo, Vector256<int> hi, byte* dst)
    {
        var v = Vector512.Create(lo, hi).AsSByte();
        var m = Vector512.LessThan(v, Vector512<sbyte>.Zero);
        var abs = Vector512.Abs(v);
        abs.Store((sbyte*)dst);
        m.Store((sbyte*)(dst + 64));
        var n = (abs & m).AsByte();
        return Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(n, Vector512<sbyte>.One), Vector512<short>.One);
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
