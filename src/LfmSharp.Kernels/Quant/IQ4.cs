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
    /// AVX2 twin of <see cref="DotScalar"/> in Q8_0's canonical order (<see cref="Q8_0.DotAvx2"/>): the exact block
    /// integer (<see cref="BlockSum"/>: levels looked up with vpshufb, products through the abs/sign maddubs trick with
    /// the activation as the unsigned side, exact for −128), then acc = fma(sum, d_w·d_a, acc) block by block — the
    /// steps of the 8-row decode kernel (<see cref="MatVec8IQ4"/>) and of the packed Q8_0 GEMM IQ4_NL batches run on,
    /// so all three give the same bits. Differs from the scalar's sum only by f32 rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        var kv = IQ4XS.LevelTable();
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 18 * i, y = a + 34 * i;
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(BlockSum(x, y, kv)), Scale(x, y), acc);
        }
        return acc;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: the same exact block integers (levels by
    /// table lookup, products widened before any addition), the same fma per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        var kv = Vector128.Create(IQTables.KValuesIq4Nl);
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 18 * i, y = a + 34 * i;
            acc = MathF.FusedMultiplyAdd(BlockSum128(x, y, kv), Scale(x, y), acc);
        }
        return acc;
    }

    /// <summary>One block's exact Σ kv[q]·a (Vector128).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int BlockSum128(byte* x, byte* y, Vector128<sbyte> kv) => Vector128.Sum(IQ4XS.LevelDot128(Vector128.Load(x + 2), (sbyte*)(y + 2), kv));

    /// <summary>d_w·d_a of one block pair.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Scale(byte* x, byte* y) => HalfToSingle(*(ushort*)x) * HalfToSingle(*(ushort*)y);

    /// <summary>One block's Σ kv[q]·a as 8 int32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y, Vector256<sbyte> kv)
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
    /// AVX2 twin of <see cref="DotScalar"/> in the K-quants' canonical order: per super-block the exact integer
    /// Σ_j (ls_j − 32)·Σ kv[q]·a (<see cref="BlockSum"/>; |total| &lt; 2^28), then acc = fma(total, d_w·d_a, acc) —
    /// the steps of the 8-row decode kernels (<see cref="MatVec8IQ4XSAvx2"/>, <see cref="MatVec8IQ4XS"/>) and of the packed GEMM
    /// (<see cref="IQ4Packed.KernelIQ4XSDot4{TDot}"/>), so all three give the same bits. Differs from the scalar's
    /// per-sub-block float sum only by f32 rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        var kv = LevelTable();
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 136 * i, y = a + 292 * i;
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(BlockSum(x, y, kv)), HalfToSingle(*(ushort*)x) * *(float*)y, acc);
        }
        return acc;
    }

    /// <summary>
    /// One super-block's exact Σ_j (ls_j − 32)·Σ kv[q]·a against a Q8_K block, as 8 int32 lanes: the scale is applied
    /// by the vpmaddwd that widens each sub-block's int16 pair sums (|pair| ≤ 2·128·127, |scale| ≤ 32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y, Vector256<sbyte> kv)
    {
        var s = Scales(*(ushort*)(x + 2), *(uint*)(x + 4));
        var s16 = (s & Vector256.Create(0xFFFF)) | (s << 16);   // lane j: ls_j − 32 in both int16 halves
        byte* qs = x + 8;
        sbyte* q8 = (sbyte*)(y + 4);
        var sum = Vector256<int>.Zero;
        for (int j = 0; j < 8; j++)
        {
            var act = Vector256.Load(q8 + 32 * j);
            var levels = Avx2.Shuffle(kv, Simd.Nibbles(Vector128.Load(qs + 16 * j)).AsSByte());
            var p = Avx2.MultiplyAddAdjacent(Avx2.Abs(act), Avx2.Sign(levels, act));
            sum += Avx2.MultiplyAddAdjacent(p, Avx2.PermuteVar8x32(s16, Vector256.Create(j)).AsInt16());
        }
        return sum;
    }

    /// <summary>
    /// Portable Vector128 twin of <see cref="DotAvx2"/>, bit-identical to it: the same exact super-block integer, the
    /// same fma per super-block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotVector128(byte* w, byte* a, int nb)
    {
        var kv = Vector128.Create(IQTables.KValuesIq4Nl);
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 136 * i, y = a + 292 * i;
            byte* qs = x + 8;
            sbyte* q8 = (sbyte*)(y + 4);
            ushort h = *(ushort*)(x + 2);
            int total = 0;
            for (int j = 0; j < 8; j++)
                total += (Scale(h, x[4 + j / 2], j) - 32) * SubBlock(qs + 16 * j, q8 + 32 * j, kv);
            acc = MathF.FusedMultiplyAdd(total, HalfToSingle(*(ushort*)x) * *(float*)y, acc);
        }
        return acc;
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
