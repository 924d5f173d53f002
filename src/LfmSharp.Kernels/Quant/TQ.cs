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
internal static unsafe partial class TQ1_0
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

    /// <summary>Scalar reference of <see cref="DecodeBlock"/>: bytes t − 1 in the weight order of <see cref="DequantizeRow"/>, all ls 1.</summary>
    internal static float DecodeBlockScalar(byte* x, sbyte* q, short* ls)
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

    /// <summary>
    /// Writes <paramref name="nb"/> blocks of a TQ1_0 row as TQ2_0 blocks (<see cref="TypeTraits.LoadAs"/>): digit t of
    /// each weight becomes its 2-bit code (weight 128h + 32l + m in bits 2l of qs[32h + m]) and d is copied, so each
    /// block keeps its weights, scale and block integer, and TQ2_0's row dot, sumf += isum·(d_a·d_w), has TQ1_0's bits
    /// (isum·(d_w·d_a): a product of two floats rounds the same either way round).
    /// </summary>
    internal static void ToTQ2_0(byte* src, byte* dst, int nb)
    {
        sbyte* q = stackalloc sbyte[256];
        short* ls = stackalloc short[16];
        var one = Vector256.Create((byte)1);
        for (int i = 0; i < nb; i++, src += 54, dst += 66)
        {
            DecodeBlock(src, q, ls);
            for (int h = 0; h < 2; h++)
            {
                byte* t = (byte*)q + 128 * h;
                var code = (Vector256.Load(t) + one) | ((Vector256.Load(t + 32) + one) << 2)
                    | ((Vector256.Load(t + 64) + one) << 4) | ((Vector256.Load(t + 96) + one) << 6);
                code.Store(dst + 32 * h);
            }
            *(ushort*)(dst + 64) = *(ushort*)(src + 52);
        }
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
internal static unsafe partial class TQ2_0
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

    /// <summary>Super-block decode for <see cref="IQDecoded"/>: bytes q − 1 (2-bit codes) in weight order, all ls 1.</summary>
    internal static float DecodeBlock(byte* x, sbyte* q, short* ls)
    {
        if (Avx2.IsSupported)
        {
            var three = Vector256.Create((byte)3);
            for (int h = 0; h < 2; h++)
            {
                var v = Vector256.Load(x + 32 * h).AsUInt16();
                for (int l = 0; l < 4; l++)
                    (((v >> (2 * l)).AsByte() & three) - Vector256<byte>.One).Store((byte*)q + 128 * h + 32 * l);
            }
            Vector256.Create((short)1).Store(ls);
            return HalfToSingle(*(ushort*)(x + 64));
        }
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
