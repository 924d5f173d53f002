using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The IQ4_NL <see cref="PackedGemm"/> kernel for AVX-512BW machines without AVX-VNNI: 16 rows × 4 tokens in zmm
/// registers (<see cref="KernelIQ4NLZmm16"/>), <see cref="KernelIQ4XSZmm16"/>'s sign trick on Q8_0-sized blocks.
/// </summary>
/// <remarks>
/// <para>
/// Per row and token the integer of a block of 32 is Σ level·a, as in <see cref="IQ4NL.DotAvx2"/>, and it ends with the
/// same acc = fma(convert(isum), d_w·d_a, acc) (<see cref="PackedGemm.KernelQ8_0Zmm16"/>'s order), so the bits are that
/// dot's. vpmaddubsw takes the stored |level| against the broadcast activation XORed with the level's stored sign mask:
/// for a negative level a becomes ~a = −a − 1, so each such product is short by exactly |level|. That shortfall depends
/// on the weights only — Σ_{level &lt; 0} |level| per row and block — and is stored with the block; the int32 lanes start
/// at it, so the total is exact. Per token and step that is one XOR with an embedded broadcast, where the Q8_0 kernel
/// selects per byte between the broadcast activation and a broadcast negated copy (two broadcasts, and the negated
/// copies made per block).
/// </para>
/// <para>
/// Bounds: IQ4_NL's levels lie in [−127, 113] (never −128), so |level| ≤ 127 fits the unsigned side and the pair sums
/// reach 2·127·128 = 32,512 &lt; 32,767 for every a in [−128, 127] (~a stays in range): no saturation, and unlike the
/// Q8_0 kernel's negated copy (−(−128) wraps) this is exact at a = −128 too. Q8_0 keeps its own kernel: its −128 weights
/// have no |w| in a byte's signed range next to ~a = 127.
/// </para>
/// <para>
/// Packed layout per block of 32 for 16 rows (<see cref="NLZmm16BlockBytes"/>): 8 steps of 128 B — a zmm of |level|
/// (dword r: levels 4s..4s+3 of row r) and a zmm of the matching sign masks (0xFF where the level is negative) — then the
/// 16 rows' d_w as f32 and the 16 rows' bias as int32.
/// </para>
/// </remarks>
internal static unsafe partial class IQ4Packed
{
    /// <summary>Packed bytes per IQ4_NL block of 16 rows in the zmm layout: steps 1024, d 64, bias 64.</summary>
    public const int NLZmm16BlockBytes = 8 * 128 + 64 + 64;

    /// <summary>Packs rows r0..r0+15 of an IQ4_NL matrix (rowBytes apart) in the zmm layout (see <see cref="KernelIQ4NLZmm16"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NLZmm16(byte* w, int rowBytes, int nb, byte* dst)
    {
        var kv = IQ4XS.LevelTable();
        long rb = rowBytes;
        for (int b = 0; b < nb; b++, dst += NLZmm16BlockBytes)
        {
            byte* x = w + b * 18L, y = x + 8 * rb;
            float* d = (float*)(dst + 1024);
            for (int r = 0; r < 8; r++)
            {
                d[r] = HalfToSingle(*(ushort*)(x + r * rb));
                d[8 + r] = HalfToSingle(*(ushort*)(y + r * rb));
            }
            StoreNLZmm(
                Levels(x + 2, kv), Levels(x + rb + 2, kv), Levels(x + 2 * rb + 2, kv), Levels(x + 3 * rb + 2, kv),
                Levels(x + 4 * rb + 2, kv), Levels(x + 5 * rb + 2, kv), Levels(x + 6 * rb + 2, kv), Levels(x + 7 * rb + 2, kv),
                Levels(y + 2, kv), Levels(y + rb + 2, kv), Levels(y + 2 * rb + 2, kv), Levels(y + 3 * rb + 2, kv),
                Levels(y + 4 * rb + 2, kv), Levels(y + 5 * rb + 2, kv), Levels(y + 6 * rb + 2, kv), Levels(y + 7 * rb + 2, kv), dst);
        }
    }

    /// <summary>
    /// <see cref="PackIQ4NLZmm16"/> from two consecutive groups of the interleaved copy (<see cref="InterleaveLayout.Q4_0"/>;
    /// the second <paramref name="groupBytes"/> after the first): the same packed bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackIQ4NLx8Zmm16(byte* g, int groupBytes, int nb, byte* dst)
    {
        var kv = IQ4XS.LevelTable();
        for (int b = 0; b < nb; b++, dst += NLZmm16BlockBytes)
        {
            byte* x = g + b * 144L, y = x + groupBytes;
            float* d = (float*)(dst + 1024);
            for (int r = 0; r < 8; r++)
            {
                d[r] = HalfToSingle(((ushort*)x)[r]);
                d[8 + r] = HalfToSingle(((ushort*)y)[r]);
            }
            // Row r's 16 quant bytes: the low half of slot r (rows 0..3), the high half of slot r−4 (rows 4..7).
            StoreNLZmm(
                Levels(x + 16, kv), Levels(x + 48, kv), Levels(x + 80, kv), Levels(x + 112, kv),
                Levels(x + 32, kv), Levels(x + 64, kv), Levels(x + 96, kv), Levels(x + 128, kv),
                Levels(y + 16, kv), Levels(y + 48, kv), Levels(y + 80, kv), Levels(y + 112, kv),
                Levels(y + 32, kv), Levels(y + 64, kv), Levels(y + 96, kv), Levels(y + 128, kv), dst);
        }
    }

    /// <summary>
    /// One block's steps and bias from the 32 levels of rows 0..7 (<paramref name="a0"/>..<paramref name="a7"/>) and rows
    /// 8..15 (<paramref name="b0"/>..<paramref name="b7"/>), as <see cref="StoreSteps"/>; the bias at 1088.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreNLZmm(Vector256<int> a0, Vector256<int> a1, Vector256<int> a2, Vector256<int> a3,
        Vector256<int> a4, Vector256<int> a5, Vector256<int> a6, Vector256<int> a7,
        Vector256<int> b0, Vector256<int> b1, Vector256<int> b2, Vector256<int> b3,
        Vector256<int> b4, Vector256<int> b5, Vector256<int> b6, Vector256<int> b7, byte* dst)
        => StoreSteps(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7, dst).Store((int*)(dst + 1088));

    /// <summary>
    /// IQ4_NL (zmm layout) × Q8_0, 16 rows × 4 tokens: outputs <c>Y0</c>..<c>Y3</c> are the 16 rows of tokens 0..3, each
    /// with the bits of <see cref="IQ4NL.DotAvx2"/> (and of <see cref="PackedGemm.KernelQ8_0Zmm16"/> for activations in ±127).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void KernelIQ4NLZmm16(byte* pk, int nb, in PackedGemm.TokenTile t)
    {
        Vector512<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        byte* a0 = t.A0 + 2, a1 = t.A1 + 2, a2 = t.A2 + 2, a3 = t.A3 + 2;
        float* d0 = t.D0, d1 = t.D1, d2 = t.D2, d3 = t.D3;
        var ones = Vector512.Create((short)1);
        for (int b = 0; b < nb; b++, pk += NLZmm16BlockBytes, a0 += 34, a1 += 34, a2 += 34, a3 += 34)
        {
            var i0 = Vector512.Load((int*)(pk + 1088));   // the rows' bias (see the remarks)
            Vector512<int> i1 = i0, i2 = i0, i3 = i0;
            for (int s = 0; s < 32; s += 4)
            {
                byte* v = pk + 32 * s;
                var aw = Vector512.Load(v);
                var m = Vector512.Load((int*)(v + 64));
                i0 = XorStep(i0, aw, m, ones, a0 + s);
                i1 = XorStep(i1, aw, m, ones, a1 + s);
                i2 = XorStep(i2, aw, m, ones, a2 + s);
                i3 = XorStep(i3, aw, m, ones, a3 + s);
            }
            var dw = Vector512.Load((float*)(pk + 1024));
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
