using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// IQ4_NL rows (<see cref="BlockIQ4NL"/>): blocks of 32 weights, y = d·kvalues_iq4nl[q]. Dot products run against
/// <see cref="Q8_0"/> (ggml's vec_dot_type for IQ4_NL).
/// </summary>
internal static unsafe class IQ4NL
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ4_NL;

    /// <summary>
    /// y[32b + j] = d·kv[qs[j] &amp; 15], y[32b + 16 + j] = d·kv[qs[j] » 4] (kv = kvalues_iq4nl).
    /// src: [blocks × 18] bytes; dst: at least [blocks × 32] floats. Bit-identical to ggml's dequantize_row_iq4_nl.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ4NL>(src, nb);
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockIQ4NL b = ref blocks[i];
            float d = FromHalf(b.D);
            ReadOnlySpan<byte> qs = b.Qs;
            Span<float> y = dst.Slice(32 * i, 32);
            for (int j = 0; j < 16; j++)
            {
                y[j] = d * kv[qs[j] & 0xF];
                y[j + 16] = d * kv[qs[j] >> 4];
            }
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq4_nl_q8_0_generic: per block the exact integer Σ kv[q]·a, then
    /// sumf += (d_a·d_w)·sum in block order. weightRow: [n/32 × 18] bytes; q8Row: [n/32 × 34] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8Row, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_0, weightRow.Length, q8Row.Length, n);
        return Simd.Dot(weightRow, q8Row, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the engine's canonical order: the same exact block integers (levels
    /// looked up with vpshufb, products through the abs/sign maddubs trick with the activation as the unsigned side,
    /// exact for −128), four blocks' sums reduced together and scaled by their d_a·d_w in one fma into four float lanes,
    /// summed at the end. Differs from the scalar's block-order sum only by f32 rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        var kv = IQ4XS.LevelTable();
        var acc = Vector128<float>.Zero;
        int i = 0;
        for (; i + 4 <= nb; i += 4)
        {
            byte* x = w + 18 * i, y = a + 34 * i;
            var sums = IQ4XS.Sum4(BlockSum(x, y, kv), BlockSum(x + 18, y + 34, kv), BlockSum(x + 36, y + 68, kv), BlockSum(x + 54, y + 102, kv));
            var dx = Vector128.Create(*(ushort*)x, *(ushort*)(x + 18), *(ushort*)(x + 36), (uint)*(ushort*)(x + 54));
            var dy = Vector128.Create(*(ushort*)y, *(ushort*)(y + 34), *(ushort*)(y + 68), (uint)*(ushort*)(y + 102));
            var d = HalfToSingle4(dy) * HalfToSingle4(dx);
            acc = Fma.MultiplyAdd(d, Sse2.ConvertToVector128Single(sums), acc);
        }
        float sumf = Vector128.Sum(acc);
        for (; i < nb; i++)
            sumf = MathF.FusedMultiplyAdd(Scale(w + 18 * i, a + 34 * i), Simd.HorizontalSum(BlockSum(w + 18 * i, a + 34 * i, kv)), sumf);
        return sumf;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: the same exact block integers (levels by
    /// table lookup, products widened before any addition), the same four-block fma and final sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        var kv = Vector128.Create(IQTables.KValuesIq4Nl);
        var acc = Vector128<float>.Zero;
        int i = 0;
        for (; i + 4 <= nb; i += 4)
        {
            byte* x = w + 18 * i, y = a + 34 * i;
            var sums = Vector128.Create(BlockSum128(x, y, kv), BlockSum128(x + 18, y + 34, kv), BlockSum128(x + 36, y + 68, kv), BlockSum128(x + 54, y + 102, kv));
            var dx = Vector128.Create(*(ushort*)x, *(ushort*)(x + 18), *(ushort*)(x + 36), (uint)*(ushort*)(x + 54));
            var dy = Vector128.Create(*(ushort*)y, *(ushort*)(y + 34), *(ushort*)(y + 68), (uint)*(ushort*)(y + 102));
            acc = Vector128.FusedMultiplyAdd(HalfToSingle4(dy) * HalfToSingle4(dx), Vector128.ConvertToSingle(sums), acc);
        }
        float sumf = Vector128.Sum(acc);
        for (; i < nb; i++)
            sumf = MathF.FusedMultiplyAdd(Scale(w + 18 * i, a + 34 * i), BlockSum128(w + 18 * i, a + 34 * i, kv), sumf);
        return sumf;
    }

    /// <summary>One block's exact Σ kv[q]·a (Vector128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BlockSum128(byte* x, byte* y, Vector128<sbyte> kv) => Vector128.Sum(IQ4XS.LevelDot128(Vector128.Load(x + 2), (sbyte*)(y + 2), kv));

    /// <summary>
    /// Four f16 bit patterns (one per u32 lane) to f32, the same values as <see cref="QuantMath.HalfToSingle"/> (the same
    /// exact multiply by 2^112); a lane with Inf/NaN sends all four through the scalar conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> HalfToSingle4(Vector128<uint> bits)
    {
        var em = bits & Vector128.Create(0x7fffu);
        if (Vector128.GreaterThanOrEqualAny(em, Vector128.Create(0x7c00u)))
            return Vector128.Create(HalfToSingle((ushort)bits.GetElement(0)), HalfToSingle((ushort)bits.GetElement(1)),
                                    HalfToSingle((ushort)bits.GetElement(2)), HalfToSingle((ushort)bits.GetElement(3)));
        var factor = (Vector128.Create(0x77800000u) | ((bits & Vector128.Create(0x8000u)) << 16)).AsSingle();
        return (em << 13).AsSingle() * factor;
    }

    /// <summary>d_a·d_w of one block pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* x, byte* y) => HalfToSingle(*(ushort*)y) * HalfToSingle(*(ushort*)x);

    /// <summary>One block's Σ kv[q]·a as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockSum(byte* x, byte* y, Vector256<sbyte> kv)
        => IQ4XS.LevelDot(Vector128.Load(x + 2), Vector256.Load((sbyte*)(y + 2)), kv);

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8Row, int nb)
    {
        var x = Blocks<BlockIQ4NL>(weightRow, nb);
        var y = Blocks<BlockQ8_0>(q8Row, nb);
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        float sumf = 0f;
        for (int ib = 0; ib < nb; ib++)
        {
            float d = FromHalf(y[ib].D) * FromHalf(x[ib].D);
            ReadOnlySpan<byte> qs = x[ib].Qs;
            ReadOnlySpan<sbyte> q8 = y[ib].Qs;
            int sumi1 = 0, sumi2 = 0;
            for (int j = 0; j < 16; j++)
            {
                sumi1 += q8[j] * kv[qs[j] & 0xF];
                sumi2 += q8[j + 16] * kv[qs[j] >> 4];
            }
            sumf += d * (sumi1 + sumi2);
        }
        return sumf;
    }
}

/// <summary>
/// IQ4_XS rows (<see cref="BlockIQ4XS"/>): super-blocks of 256 weights with 6-bit sub-block scales,
/// y = d·(ls − 32)·kvalues_iq4nl[q]. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class IQ4XS
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.IQ4_XS;

    /// <summary>
    /// For sub-block j with ls = (scales_l nibble j) | (2 bits j of scales_h) « 4: y = (d·(ls − 32))·kv[q].
    /// src: [blocks × 136] bytes; dst: at least [blocks × 256] floats. Bit-identical to ggml's dequantize_row_iq4_xs.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ4XS>(src, nb);
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockIQ4XS b = ref blocks[i];
            float d = FromHalf(b.D);
            ReadOnlySpan<byte> qs = b.Qs;
            for (int ib = 0; ib < 8; ib++)
            {
                float dl = d * (Scale(b.ScalesH, b.ScalesL[ib / 2], ib) - 32);
                ReadOnlySpan<byte> q = qs.Slice(16 * ib, 16);
                Span<float> y = dst.Slice(256 * i + 32 * ib, 32);
                for (int j = 0; j < 16; j++)
                {
                    y[j] = dl * kv[q[j] & 0xF];
                    y[j + 16] = dl * kv[q[j] >> 4];
                }
            }
        }
    }

    /// <summary>The 6-bit scale of sub-block <paramref name="ib"/> (<paramref name="low"/> = scales_l[ib / 2]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Scale(ushort scalesH, byte low, int ib) => ((low >> (4 * (ib & 1))) & 0xF) | (((scalesH >> (2 * ib)) & 3) << 4);

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_iq4_xs_q8_K_generic: per sub-block of 32 the exact integer Σ kv[q]·a, then
    /// sumf += (d_w·d_a·(ls − 32))·sum in sub-block order. weightRow: [n/256 × 136] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, &DotVector128, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the canonical order: exact sub-block integers as in
    /// <see cref="IQ4NL.DotAvx2"/>, then per super-block one fma of the 8 sums by d_w·d_a·(ls − 32) into 8 float lanes,
    /// summed at the end. Differs from the scalar only by f32 rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        var kv = LevelTable();
        var acc = Vector256<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 136 * i, y = a + 292 * i;
            byte* qs = x + 8;
            sbyte* q8 = (sbyte*)(y + 4);
            var lo = Sum4(LevelDot(Vector128.Load(qs), Vector256.Load(q8), kv), LevelDot(Vector128.Load(qs + 16), Vector256.Load(q8 + 32), kv),
                LevelDot(Vector128.Load(qs + 32), Vector256.Load(q8 + 64), kv), LevelDot(Vector128.Load(qs + 48), Vector256.Load(q8 + 96), kv));
            var hi = Sum4(LevelDot(Vector128.Load(qs + 64), Vector256.Load(q8 + 128), kv), LevelDot(Vector128.Load(qs + 80), Vector256.Load(q8 + 160), kv),
                LevelDot(Vector128.Load(qs + 96), Vector256.Load(q8 + 192), kv), LevelDot(Vector128.Load(qs + 112), Vector256.Load(q8 + 224), kv));
            float d4d8 = HalfToSingle(*(ushort*)x) * *(float*)y;
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Scales(*(ushort*)(x + 2), *(uint*)(x + 4))) * Vector256.Create(d4d8),
                Avx.ConvertToVector256Single(Vector256.Create(lo, hi)), acc);
        }
        return Simd.HorizontalSum(acc);
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: the same exact sub-block integers, the
    /// same per-lane fmas in two 4-lane halves, and <see cref="Simd.HorizontalSum(Vector256{float})"/>'s final order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        var kv = Vector128.Create(IQTables.KValuesIq4Nl);
        var accLo = Vector128<float>.Zero;
        var accHi = Vector128<float>.Zero;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 136 * i, y = a + 292 * i;
            byte* qs = x + 8;
            sbyte* q8 = (sbyte*)(y + 4);
            var lo = Vector128.Create(SubBlock(qs, q8, kv), SubBlock(qs + 16, q8 + 32, kv), SubBlock(qs + 32, q8 + 64, kv), SubBlock(qs + 48, q8 + 96, kv));
            var hi = Vector128.Create(SubBlock(qs + 64, q8 + 128, kv), SubBlock(qs + 80, q8 + 160, kv), SubBlock(qs + 96, q8 + 192, kv), SubBlock(qs + 112, q8 + 224, kv));
            var d = Vector128.Create(HalfToSingle(*(ushort*)x) * *(float*)y);
            ushort h = *(ushort*)(x + 2);
            uint l = *(uint*)(x + 4);
            var lsLo = Vector128.Create(Scale(h, (byte)l, 0), Scale(h, (byte)l, 1), Scale(h, (byte)(l >> 8), 2), Scale(h, (byte)(l >> 8), 3)) - Vector128.Create(32);
            var lsHi = Vector128.Create(Scale(h, (byte)(l >> 16), 4), Scale(h, (byte)(l >> 16), 5), Scale(h, (byte)(l >> 24), 6), Scale(h, (byte)(l >> 24), 7)) - Vector128.Create(32);
            accLo = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(lsLo) * d, Vector128.ConvertToSingle(lo), accLo);
            accHi = Vector128.FusedMultiplyAdd(Vector128.ConvertToSingle(lsHi) * d, Vector128.ConvertToSingle(hi), accHi);
        }
        var s = accLo + accHi;
        return (s.GetElement(0) + s.GetElement(2)) + (s.GetElement(1) + s.GetElement(3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int SubBlock(byte* qs, sbyte* q8, Vector128<sbyte> kv) => Vector128.Sum(LevelDot128(Vector128.Load(qs), q8, kv));

    /// <summary>
    /// Σ kv[q]·a over 32 weights (16 packed bytes, low nibbles first) as 4 int32 lanes, exact for every activation byte
    /// (|kv·a| ≤ 127·128: one <see cref="Simd.MulPairs"/> pair sum fits int16, two would not, so each half is widened
    /// on its own).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<int> LevelDot128(Vector128<byte> packed, sbyte* act, Vector128<sbyte> kv)
    {
        var (low, high) = Simd.Nibbles128(packed);
        return Simd.DotPair(Lookup(kv, low), Vector128.Load(act)) + Simd.DotPair(Lookup(kv, high), Vector128.Load(act + 16));
    }

    /// <summary>table[idx] per byte for indices 0..15: pshufb (SSSE3), tbl (ARM64), else the portable shuffle.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<sbyte> Lookup(Vector128<sbyte> table, Vector128<sbyte> idx)
        => Ssse3.IsSupported ? Ssse3.Shuffle(table, idx)
         : AdvSimd.Arm64.IsSupported ? AdvSimd.Arm64.VectorTableLookup(table.AsByte(), idx.AsByte()).AsSByte()
         : Vector128.Shuffle(table, idx);

    /// <summary>The 8 sub-block scales ls − 32 of a block (scales_h, scales_l as a u32) as int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Scales(ushort h, uint l)
    {
        // Lane j: nibble j of scales_l, then bits 2j..2j+1 of scales_h above it.
        var lowNibbles = Avx2.ShiftRightLogicalVariable(Vector256.Create(l), Vector256.Create(0u, 4, 8, 12, 16, 20, 24, 28)) & Vector256.Create(0xFu);
        var highBits = Avx2.ShiftRightLogicalVariable(Vector256.Create((uint)h), Vector256.Create(0u, 2, 4, 6, 8, 10, 12, 14)) & Vector256.Create(3u);
        return (lowNibbles | (highBits << 4)).AsInt32() - Vector256.Create(32);
    }

    /// <summary>kvalues_iq4nl in both 128-bit lanes, for vpshufb.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<sbyte> LevelTable()
    {
        var t = Vector128.Create(IQTables.KValuesIq4Nl);
        return Vector256.Create(t, t);
    }

    /// <summary>
    /// Σ kv[q]·a over 32 weights (16 packed bytes: low nibbles first) as 8 int32 lanes. The activation is the unsigned
    /// side of maddubs (|a| ≤ 128, levels ≥ −127), so every input byte, −128 included, gives the exact sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> LevelDot(Vector128<byte> packed, Vector256<sbyte> act, Vector256<sbyte> kv)
    {
        var levels = Avx2.Shuffle(kv, Simd.Nibbles(packed).AsSByte());
        var p = Avx2.MultiplyAddAdjacent(Avx2.Abs(act), Avx2.Sign(levels, act));
        return Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
    }

    /// <summary>The lane sums of four int32×8 vectors, in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<int> Sum4(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3)
    {
        var h = Avx2.HorizontalAdd(Avx2.HorizontalAdd(v0, v1), Avx2.HorizontalAdd(v2, v3));
        return h.GetLower() + h.GetUpper();
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockIQ4XS>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        float sumf = 0f;
        for (int ibl = 0; ibl < nb; ibl++)
        {
            ref readonly BlockIQ4XS xb = ref x[ibl];
            float d4d8 = FromHalf(xb.D) * y[ibl].D;
            ReadOnlySpan<byte> qs = xb.Qs;
            ReadOnlySpan<sbyte> q8 = y[ibl].Qs;
            for (int ib = 0; ib < 8; ib++)
            {
                float dl = d4d8 * (Scale(xb.ScalesH, xb.ScalesL[ib / 2], ib) - 32);
                int sumi1 = 0, sumi2 = 0;
                for (int j = 0; j < 16; j++)
                {
                    sumi1 += q8[32 * ib + j] * kv[qs[16 * ib + j] & 0xF];
                    sumi2 += q8[32 * ib + j + 16] * kv[qs[16 * ib + j] >> 4];
                }
                sumf += dl * (sumi1 + sumi2);
            }
        }
        return sumf;
    }
}
