using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

// The SIMD block sums of the ternary formats. Both follow ggml's AVX2 dots: a weight is stored as t ∈ {0, 1, 2}
// (TQ2_0's 2-bit code may also be 3) and means t − 1, so Σ (t − 1)·a = Σ t·a − Σ a, where Σ a is the sum of the Q8_K
// block's bsums. Σ t·a is one vpmaddubsw per 32 (64 on AVX-512) weights (unsigned t times signed a, pair sums at most
// 3·128·2 = 768, no saturation), accumulated in int16 lanes (at most 8 steps, so 6144, minus the bsums still inside
// int16) and widened once per block. The integer is exact, so the row dots keep the scalar's float steps and bits.

/// <summary>The AVX2 / AVX-512BW paths of <see cref="TQ1_0"/>.</summary>
internal static unsafe partial class TQ1_0
{
    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it: the exact block integer (<see cref="BlockSum"/>),
    /// then sumf += sum·(d_w·d_a) in the scalar's order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 54 * i, y = a + 292 * i;
            sumf += Simd.HorizontalSum(BlockSum(x, y)) * (HalfToSingle(*(ushort*)(x + 52)) * *(float*)y);
        }
        return sumf;
    }

    /// <summary>Σ (t − 1)·a of one block against one Q8_K block, spread over 8 int32 lanes (exact; AVX-512BW where the JIT has it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y) => Avx512BW.IsSupported ? BlockSum512(x, y) : BlockSum256(x, y);

    /// <summary>
    /// AVX2 block sum. Passes of 32 digits: qs[0..32) with 3^0..3^4 (weights 0..159); qs[32..48) twice with (1, 3)
    /// and (9, 27) (weights 160..223); qs[32..48) with 81 next to qh's 4 bytes repeated with 1, 3, 9, 27 (224..255).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum256(byte* x, byte* y)
    {
        sbyte* q8 = (sbyte*)(y + 4);
        var q = Vector256.Load(x);
        var acc = Avx2.MultiplyAddAdjacent(Digits(q, Vector256.Create((short)1)), Vector256.Load(q8));
        acc += Avx2.MultiplyAddAdjacent(Digits(q, Vector256.Create((short)3)), Vector256.Load(q8 + 32));
        acc += Avx2.MultiplyAddAdjacent(Digits(q, Vector256.Create((short)9)), Vector256.Load(q8 + 64));
        acc += Avx2.MultiplyAddAdjacent(Digits(q, Vector256.Create((short)27)), Vector256.Load(q8 + 96));
        acc += Avx2.MultiplyAddAdjacent(Digits(q, Vector256.Create((short)81)), Vector256.Load(q8 + 128));
        var q16 = Vector128.Load(x + 32);
        var q2 = Vector256.Create(q16, q16);
        acc += Avx2.MultiplyAddAdjacent(Digits(q2, Vector256.Create(Vector128.Create((short)1), Vector128.Create((short)3))), Vector256.Load(q8 + 160));
        acc += Avx2.MultiplyAddAdjacent(Digits(q2, Vector256.Create(Vector128.Create((short)9), Vector128.Create((short)27))), Vector256.Load(q8 + 192));
        var last = Vector256.Create(q16, Vector128.Create(*(uint*)(x + 48)).AsByte());
        var pow = Vector256.Create(Vector128.Create((short)81), Vector128.Create((short)1, 1, 3, 3, 9, 9, 27, 27));
        acc += Avx2.MultiplyAddAdjacent(Digits(last, pow), Vector256.Load(q8 + 224));
        acc -= Vector256.Load((short*)(y + 260));
        return Avx2.MultiplyAddAdjacent(acc, Vector256.Create((short)1));
    }

    /// <summary>
    /// AVX-512BW block sum: four passes of 64 digits whose weights are a[0..64), [64..128), [128..192), [192..256) in
    /// order — qs[0..32) with (1 | 3) and (9 | 27); qs[0..32) with 81 next to qs[32..48) with 1 and 3; qs[32..48) with 9,
    /// 27, 81 next to qh's 4 bytes repeated with 1, 3, 9, 27.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum512(byte* x, byte* y)
    {
        sbyte* q8 = (sbyte*)(y + 4);
        var lo = Avx512F.BroadcastVector256ToVector512((ulong*)x).AsByte();     // qs[0..32) twice
        var mid = Avx512F.BroadcastVector128ToVector512((uint*)(x + 32)).AsByte();   // qs[32..48) four times
        var c = Avx512F.InsertVector256(mid, Vector256.Load(x), 0);
        var d = Avx512F.InsertVector128(mid, Vector128.Create(*(uint*)(x + 48)).AsByte(), 3);
        var acc = Avx512BW.MultiplyAddAdjacent(Digits(lo, Pow512(1, 1, 3, 3)), Vector512.Load(q8));
        acc += Avx512BW.MultiplyAddAdjacent(Digits(lo, Pow512(9, 9, 27, 27)), Vector512.Load(q8 + 64));
        acc += Avx512BW.MultiplyAddAdjacent(Digits(c, Pow512(81, 81, 1, 3)), Vector512.Load(q8 + 128));
        var powD = Vector512.Create(Vector256.Create(Vector128.Create((short)9), Vector128.Create((short)27)),
            Vector256.Create(Vector128.Create((short)81), Vector128.Create((short)1, 1, 3, 3, 9, 9, 27, 27)));
        acc += Avx512BW.MultiplyAddAdjacent(Digits(d, powD), Vector512.Load(q8 + 192));
        var s = acc.GetLower() + acc.GetUpper() - Vector256.Load((short*)(y + 260));
        return Avx2.MultiplyAddAdjacent(s, Vector256.Create((short)1));
    }

    /// <summary>A u16 vector whose 128-bit lanes hold <paramref name="p0"/> .. <paramref name="p3"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Pow512(short p0, short p1, short p2, short p3)
        => Vector512.Create(Vector256.Create(Vector128.Create(p0), Vector128.Create(p1)), Vector256.Create(Vector128.Create(p2), Vector128.Create(p3)));

    /// <summary>
    /// Digit per byte of <paramref name="q"/>, with <paramref name="pow"/> the 3^n of each u16 lane (both its bytes):
    /// ((byte·3^n mod 256)·3) » 8. A 16-bit multiply puts (byte·3^n mod 256) in the high byte of a lane with a zero low
    /// byte — for the even byte by multiplying the whole lane by 3^n·256, for the odd one after masking the even off —
    /// and vpmulhuw by 3 then leaves the digit in the low byte.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Digits(Vector256<byte> q, Vector256<short> pow)
    {
        var u = q.AsUInt16();
        var p = pow.AsUInt16();
        var three = Vector256.Create((ushort)3);
        var even = Avx2.MultiplyHigh(Avx2.MultiplyLow(u, p << 8), three);
        var odd = Avx2.MultiplyHigh(Avx2.MultiplyLow(u & Vector256.Create((ushort)0xFF00), p), three);
        return (even | (odd << 8)).AsByte();
    }

    /// <inheritdoc cref="Digits(Vector256{byte}, Vector256{short})"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<byte> Digits(Vector512<byte> q, Vector512<short> pow)
    {
        var u = q.AsUInt16();
        var p = pow.AsUInt16();
        var three = Vector512.Create((ushort)3);
        var even = Avx512BW.MultiplyHigh(Avx512BW.MultiplyLow(u, p << 8), three);
        var odd = Avx512BW.MultiplyHigh(Avx512BW.MultiplyLow(u & Vector512.Create((ushort)0xFF00), p), three);
        return (even | (odd << 8)).AsByte();
    }

    /// <summary>
    /// Super-block decode for <see cref="IQDecoded"/>: bytes t − 1 in the weight order of <see cref="DequantizeRow"/>,
    /// all ls 1 (the AVX2 digits where the JIT has AVX2, else <see cref="DecodeBlockScalar"/>; the same bytes).
    /// </summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        if (!Avx2.IsSupported)
            return DecodeBlockScalar(x, q, ls);
        var one = Vector256.Create((byte)1);
        var v = Vector256.Load(x);
        (Digits(v, Vector256.Create((short)1)) - one).Store((byte*)q);
        (Digits(v, Vector256.Create((short)3)) - one).Store((byte*)q + 32);
        (Digits(v, Vector256.Create((short)9)) - one).Store((byte*)q + 64);
        (Digits(v, Vector256.Create((short)27)) - one).Store((byte*)q + 96);
        (Digits(v, Vector256.Create((short)81)) - one).Store((byte*)q + 128);
        var q16 = Vector128.Load(x + 32);
        var q2 = Vector256.Create(q16, q16);
        (Digits(q2, Vector256.Create(Vector128.Create((short)1), Vector128.Create((short)3))) - one).Store((byte*)q + 160);
        (Digits(q2, Vector256.Create(Vector128.Create((short)9), Vector128.Create((short)27))) - one).Store((byte*)q + 192);
        var last = Vector256.Create(q16, Vector128.Create(*(uint*)(x + 48)).AsByte());
        var pow = Vector256.Create(Vector128.Create((short)81), Vector128.Create((short)1, 1, 3, 3, 9, 9, 27, 27));
        (Digits(last, pow) - one).Store((byte*)q + 224);
        Vector256.Create((short)1).Store(ls);
        return HalfToSingle(*(ushort*)(x + 52));
    }
}

/// <summary>The AVX2 / AVX-512BW paths of <see cref="TQ2_0"/>.</summary>
internal static unsafe partial class TQ2_0
{
    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (the same exact block integer, the same float steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 66 * i, y = a + 292 * i;
            sumf += Simd.HorizontalSum(BlockSum256(x, y)) * (*(float*)y * HalfToSingle(*(ushort*)(x + 64)));
        }
        return sumf;
    }

    /// <summary>
    /// AVX2 block sum: weight 128h + 32l + m is bits 2l..2l+1 of qs[32h + m], so each 32-byte half gives 4 runs of 32.
    /// The row dot uses it on AVX-512 machines too (a zmm twin with vpsrlvw ran slower on Zen 5); the 8-row kernel has
    /// its own zmm path (<see cref="MatVec8TQ.Tq2"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum256(byte* x, byte* y)
    {
        sbyte* q8 = (sbyte*)(y + 4);
        var three = Vector256.Create((byte)3);
        var q0 = Vector256.Load(x).AsUInt16();
        var q1 = Vector256.Load(x + 32).AsUInt16();
        var acc = Avx2.MultiplyAddAdjacent(q0.AsByte() & three, Vector256.Load(q8));
        acc += Avx2.MultiplyAddAdjacent((q0 >> 2).AsByte() & three, Vector256.Load(q8 + 32));
        acc += Avx2.MultiplyAddAdjacent((q0 >> 4).AsByte() & three, Vector256.Load(q8 + 64));
        acc += Avx2.MultiplyAddAdjacent((q0 >> 6).AsByte() & three, Vector256.Load(q8 + 96));
        acc += Avx2.MultiplyAddAdjacent(q1.AsByte() & three, Vector256.Load(q8 + 128));
        acc += Avx2.MultiplyAddAdjacent((q1 >> 2).AsByte() & three, Vector256.Load(q8 + 160));
        acc += Avx2.MultiplyAddAdjacent((q1 >> 4).AsByte() & three, Vector256.Load(q8 + 192));
        acc += Avx2.MultiplyAddAdjacent((q1 >> 6).AsByte() & three, Vector256.Load(q8 + 224));
        acc -= Vector256.Load((short*)(y + 260));
        return Avx2.MultiplyAddAdjacent(acc, Vector256.Create((short)1));
    }
}
