using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// TQ1_0 rows (<see cref="BlockTQ1_0"/>): ternary weights, 1.6875 bits each, y = d·(t − 1) with t in {0, 1, 2}.
/// A byte holds its base-3 digits as a fixed-point fraction: digit n is ((byte·3^n mod 256)·3) » 8. Dot products run
/// against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class TQ1_0
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.TQ1_0;

    private static ReadOnlySpan<byte> Pow3 => [1, 3, 9, 27, 81, 243];

    /// <summary>
    /// Weight order, as ggml's dequantize_row_tq1_0: digit n of qs[m] (m &lt; 32) is weight 32n + m; digit n of
    /// qs[32 + m] (m &lt; 16) is weight 160 + 16n + m; digit n of qh[j] is weight 240 + 4n + j.
    /// src: [blocks × 54] bytes; dst: at least [blocks × 256] floats. Bit-identical to ggml.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockTQ1_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockTQ1_0 b = ref blocks[i];
            float d = FromHalf(b.D);
            ReadOnlySpan<byte> qs = b.Qs, qh = b.Qh;
            Span<float> y = dst.Slice(256 * i, 256);
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++)
                    y[32 * n + m] = (Digit(qs[m], n) - 1) * d;
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++)
                    y[160 + 16 * n + m] = (Digit(qs[32 + m], n) - 1) * d;
            for (int n = 0; n < 4; n++)
                for (int j = 0; j < 4; j++)
                    y[240 + 4 * n + j] = (Digit(qh[j], n) - 1) * d;
        }
    }

    /// <summary>Base-3 digit <paramref name="n"/> of a packed byte: ((uint8)(q·3^n)·3) » 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Digit(byte q, int n) => ((byte)(q * Pow3[n]) * 3) >> 8;

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_tq1_0_q8_K_generic: the exact integer Σ (t − 1)·a per block, then
    /// sumf += sum·(d_w·d_a). weightRow: [n/256 × 54] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/>, bit-identical to it. Digits come from 16-bit multiplies: with a byte
    /// placed in the high half of a u16, mullo by 3^n leaves (byte·3^n mod 256) there, and mulhi by 3 then yields
    /// ((that)·3) » 8; even and odd bytes take one pass each. Products use the abs/sign maddubs trick (exact).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 54 * i, y = a + 292 * i;
            sbyte* q8 = (sbyte*)(y + 4);
            var acc = Vector256<int>.Zero;
            var q = Vector256.Load(x);
            for (int n = 0; n < 5; n++)
                acc += TernaryDot(Digits(q, Vector256.Create((short)Pow3[n])), Vector256.Load(q8 + 32 * n));

            // qs[32..48) twice, digits (0, 1), (2, 3) → weights 160..223; then digit 4 with qh's 16 digits → 224..255.
            var q16 = Vector128.Load(x + 32);
            var q2 = Vector256.Create(q16, q16);
            acc += TernaryDot(Digits(q2, Vector256.Create(Vector128.Create((short)1), Vector128.Create((short)3))), Vector256.Load(q8 + 160));
            acc += TernaryDot(Digits(q2, Vector256.Create(Vector128.Create((short)9), Vector128.Create((short)27))), Vector256.Load(q8 + 192));
            var qh = Vector128.Create(*(uint*)(x + 48)).AsByte();   // the 4 qh bytes, repeated for digits 0..3
            var last = Vector256.Create(q16, qh);
            var pow = Vector256.Create(Vector128.Create((short)81), Vector128.Create((short)1, 1, 3, 3, 9, 9, 27, 27));
            acc += TernaryDot(Digits(last, pow), Vector256.Load(q8 + 224));

            sumf += Simd.HorizontalSum(acc) * (HalfToSingle(*(ushort*)(x + 52)) * *(float*)y);
        }
        return sumf;
    }

    /// <summary>Digit per byte of <paramref name="q"/>, with <paramref name="pow"/> the 3^n of each u16 lane (both of its bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Digits(Vector256<byte> q, Vector256<short> pow)
    {
        var u = q.AsUInt16();
        var three = Vector256.Create((ushort)3);
        var even = Avx2.MultiplyHigh(Avx2.MultiplyLow(Avx2.ShiftLeftLogical(u, 8), pow.AsUInt16()), three);
        var odd = Avx2.MultiplyHigh(Avx2.MultiplyLow(u & Vector256.Create((ushort)0xFF00), pow.AsUInt16()), three);
        return (even | Avx2.ShiftLeftLogical(odd, 8)).AsByte();
    }

    /// <summary>Σ (t − 1)·a over 32 digits t ∈ {0, 1, 2} as 8 int32 lanes (exact for every activation byte).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> TernaryDot(Vector256<byte> t, Vector256<sbyte> act)
    {
        var v = (t - Vector256.Create((byte)1)).AsSByte();
        var p = Avx2.MultiplyAddAdjacent(Avx2.Abs(act), Avx2.Sign(v, act));
        return Avx2.MultiplyAddAdjacent(p, Vector256.Create((short)1));
    }

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: bytes t − 1 in the weight order of <see cref="DequantizeRow"/>, all ls 1.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 32; m++)
                q[32 * n + m] = (sbyte)(Digit(x[m], n) - 1);
        for (int n = 0; n < 5; n++)
            for (int m = 0; m < 16; m++)
                q[160 + 16 * n + m] = (sbyte)(Digit(x[32 + m], n) - 1);
        for (int n = 0; n < 4; n++)
            for (int j = 0; j < 4; j++)
                q[240 + 4 * n + j] = (sbyte)(Digit(x[48 + j], n) - 1);
        new Span<short>(ls, 16).Fill(1);
        return HalfToSingle(*(ushort*)(x + 52));
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockTQ1_0>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<byte> qs = x[i].Qs, qh = x[i].Qh;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int sum = 0;
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 32; m++)
                    sum += (Digit(qs[m], n) - 1) * q8[32 * n + m];
            for (int n = 0; n < 5; n++)
                for (int m = 0; m < 16; m++)
                    sum += (Digit(qs[32 + m], n) - 1) * q8[160 + 16 * n + m];
            for (int n = 0; n < 4; n++)
                for (int j = 0; j < 4; j++)
                    sum += (Digit(qh[j], n) - 1) * q8[240 + 4 * n + j];
            sumf += sum * (FromHalf(x[i].D) * y[i].D);
        }
        return sumf;
    }
}

/// <summary>
/// TQ2_0 rows (<see cref="BlockTQ2_0"/>): ternary weights as 2-bit codes, y = d·(q − 1). Dot products run against
/// <see cref="Q8K"/>.
/// </summary>
internal static unsafe class TQ2_0
{
    /// <summary>The ggml type of these rows.</summary>
    public const GgmlType Type = GgmlType.TQ2_0;

    /// <summary>
    /// y[128h + 32l + m] = (((qs[32h + m] » 2l) &amp; 3) − 1)·d. src: [blocks × 66] bytes; dst: at least
    /// [blocks × 256] floats. Bit-identical to ggml's dequantize_row_tq2_0.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockTQ2_0>(src, nb);
        for (int i = 0; i < nb; i++)
        {
            float d = FromHalf(blocks[i].D);
            ReadOnlySpan<byte> qs = blocks[i].Qs;
            Span<float> y = dst.Slice(256 * i, 256);
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++)
                        y[128 * h + 32 * l + m] = (((qs[32 * h + m] >> (2 * l)) & 3) - 1) * d;
        }
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_tq2_0_q8_K_generic: the exact integer Σ (q − 1)·a per block, then
    /// sumf += sum·(d_a·d_w). weightRow: [n/256 × 66] bytes; q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>AVX2 twin of <see cref="DotScalar"/>, bit-identical to it (the same exact block integer, the same float steps).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float sumf = 0f;
        var three = Vector256.Create((byte)3);
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + 66 * i, y = a + 292 * i;
            sbyte* q8 = (sbyte*)(y + 4);
            var acc = Vector256<int>.Zero;
            for (int h = 0; h < 2; h++)
            {
                var q = Vector256.Load(x + 32 * h).AsUInt16();
                for (int l = 0; l < 4; l++)
                {
                    var codes = Vector256.ShiftRightLogical(q, 2 * l).AsByte() & three;
                    acc += TQ1_0.TernaryDot(codes, Vector256.Load(q8 + 128 * h + 32 * l));
                }
            }
            sumf += Simd.HorizontalSum(acc) * (*(float*)y * HalfToSingle(*(ushort*)(x + 64)));
        }
        return sumf;
    }

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: bytes q − 1 (2-bit codes), all ls 1.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        ulong* dst = (ulong*)q;
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 4; l++)
                for (int m = 0; m < 4; m++)
                {
                    // Codes 0..3 per byte; + 0x7F then ^ 0x80 gives code − 1 as a signed byte without carries.
                    ulong c = (*(ulong*)(x + 32 * h + 8 * m) >> (2 * l)) & 0x0303030303030303ul;
                    dst[16 * h + 4 * l + m] = (c + 0x7F7F7F7F7F7F7F7Ful) ^ 0x8080808080808080ul;
                }
        new Span<short>(ls, 16).Fill(1);
        return HalfToSingle(*(ushort*)(x + 64));
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks (ggml's generic loop, bit for bit).</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockTQ2_0>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        float sumf = 0f;
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<byte> qs = x[i].Qs;
            ReadOnlySpan<sbyte> q8 = y[i].Qs;
            int sumi = 0;
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++)
                        sumi += q8[128 * h + 32 * l + m] * (((qs[32 * h + m] >> (2 * l)) & 3) - 1);
            float d = y[i].D * FromHalf(x[i].D);
            sumf += sumi * d;
        }
        return sumf;
    }
}
