using System.Buffers.Binary;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The SIMD row dots (AVX2 and portable Vector128) against their scalar twins on raw random blocks, including the
/// corners the quantizers never produce: max/min nibbles and fifth bits, −128 and 127 activations, zero, subnormal and
/// large f16 scales. Q4_1/Q5_0/Q5_1 SIMD paths repeat the scalar's float expression and must match it bit for bit; the
/// other block types use the canonical fma-per-block order, so their Vector128 path must equal their AVX2 path bit for
/// bit and both must equal the scalar up to f32 summation rounding. The Vector128 paths are called directly, so they
/// are checked on this AVX2 machine too (and in software where hardware intrinsics are off).
/// </summary>
public sealed unsafe class SimdDotTwinTests
{
    private enum Fill { Random, Max, Min, Extremes, MixedScales }

    private static readonly Fill[] AllFills = Enum.GetValues<Fill>();

    private static readonly GgmlType[] ExactTypes = [GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1];
    private static readonly GgmlType[] CanonicalTypes = [GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K];

    public static TheoryData<GgmlType, int> BlockCases(GgmlType[] types)
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in types)
        {
            int[] counts = GgmlTypes.BlockSize(t) == 32 ? [1, 2, 3, 7, 64, 257] : [1, 2, 3, 8, 33];
            foreach (int nb in counts)
                data.Add(t, nb);
        }
        return data;
    }

    public static TheoryData<GgmlType, int> ExactCases() => BlockCases(ExactTypes);

    public static TheoryData<GgmlType, int> CanonicalCases() => BlockCases(CanonicalTypes);

    public static TheoryData<GgmlType, int> AllBlockCases() => BlockCases([.. ExactTypes, .. CanonicalTypes]);

    // ---- Q4_1 / Q5_0 / Q5_1: bit-identical to the scalar ----

    [Avx2Theory]
    [MemberData(nameof(ExactCases))]
    public void Avx2IsBitIdenticalToScalar(GgmlType type, int nb)
    {
        foreach (var (w, a, _) in Rows(type, nb))
            AssertSameBits(Scalar(type, w, a, nb), Avx2(type, w, a, nb), type, nb);
    }

    [Theory]
    [MemberData(nameof(ExactCases))]
    public void Vector128IsBitIdenticalToScalar(GgmlType type, int nb)
    {
        foreach (var (w, a, _) in Rows(type, nb))
            AssertSameBits(Scalar(type, w, a, nb), Vector128(type, w, a, nb), type, nb);
    }

    // ---- Q4_0 / Q8_0 / Q4_K / Q5_K / Q6_K: canonical order ----

    [Theory]
    [MemberData(nameof(CanonicalCases))]
    public void Vector128MatchesScalarToSummationRounding(GgmlType type, int nb)
    {
        foreach (var (w, a, fill) in Rows(type, nb))
            AssertClose(type, nb, w, a, Scalar(type, w, a, nb), Vector128(type, w, a, nb), fill);
    }

    [Avx2Theory]
    [MemberData(nameof(CanonicalCases))]
    public void Vector128IsBitIdenticalToAvx2(GgmlType type, int nb)
    {
        foreach (var (w, a, _) in Rows(type, nb))
        {
            // The Q4_0/Q8_0 AVX2 kernels (shared with the packed matvec) put the activation second in the maddubs sign
            // trick, which assumes it is not −128; the activation quantizers only produce −127..127.
            if (type is GgmlType.Q4_0 or GgmlType.Q8_0)
                ClampQ8_0(a);
            AssertSameBits(Avx2(type, w, a, nb), Vector128(type, w, a, nb), type, nb);
        }
    }

    public static TheoryData<GgmlType, int> Q5KCases() => BlockCases([GgmlType.Q5_K]);

    /// <summary>The new canonical AVX2 kernel against the scalar (the older ones have their twin tests in SimdTwinTests).</summary>
    [Avx2Theory]
    [MemberData(nameof(Q5KCases))]
    public void Q5KAvx2MatchesScalarToSummationRounding(GgmlType type, int nb)
    {
        foreach (var (w, a, fill) in Rows(type, nb))
            AssertClose(type, nb, w, a, Scalar(type, w, a, nb), Avx2(type, w, a, nb), fill);
    }

    /// <summary>The public dot takes the path the CPU allows (AVX2 → Vector128 → scalar) and returns exactly its result.</summary>
    [Theory]
    [MemberData(nameof(AllBlockCases))]
    public void DotDispatchesToTheBestAvailablePath(GgmlType type, int nb)
    {
        int n = nb * GgmlTypes.BlockSize(type);
        foreach (var (w, a, _) in Rows(type, nb))
        {
            if (type is GgmlType.Q4_0 or GgmlType.Q8_0)
                ClampQ8_0(a);
            float want = Simd.Avx2Fma ? Avx2(type, w, a, nb) : Simd.UseVector128 ? Vector128(type, w, a, nb) : Scalar(type, w, a, nb);
            AssertSameBits(want, VecDot.Row(type, w, a, n), type, nb);
        }
    }

    // ---- F16 / BF16 ----

    public static TheoryData<GgmlType, int> FloatCases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in new[] { GgmlType.F16, GgmlType.BF16 })
            foreach (int n in new[] { 1, 15, 16, 31, 32, 33, 100, 1024, 4099 })
                data.Add(t, n);
        return data;
    }

    [Avx2Theory]
    [MemberData(nameof(FloatCases))]
    public void FloatAvx2MatchesScalarToSummationRounding(GgmlType type, int n)
    {
        foreach (var (w, a) in FloatRows(type, n))
            AssertFloatClose(type, n, w, a, Avx2(type, w, a, n));
    }

    [Theory]
    [MemberData(nameof(FloatCases))]
    public void FloatVector128MatchesScalarToSummationRounding(GgmlType type, int n)
    {
        foreach (var (w, a) in FloatRows(type, n))
            AssertFloatClose(type, n, w, a, Vector128(type, w, a, n));
    }

    [Theory]
    [MemberData(nameof(FloatCases))]
    public void FloatDotDispatchesToTheBestAvailablePath(GgmlType type, int n)
    {
        foreach (var (w, a) in FloatRows(type, n))
        {
            float want = Simd.Avx2Fma ? Avx2(type, w, a, n) : Simd.UseVector128 ? Vector128(type, w, a, n) : Scalar(type, w, a, n);
            AssertSameBits(want, VecDot.Row(type, w, a, n), type, n);
        }
    }

    /// <summary>Inf and NaN (in either row, in the vector body or the tail) come out exactly as from the scalar.</summary>
    [Theory]
    [InlineData(GgmlType.F16, 0x7C00, 5)]      // +Inf in the body
    [InlineData(GgmlType.F16, 0xFC00, 70)]     // −Inf in the tail
    [InlineData(GgmlType.F16, 0x7E00, 40)]     // NaN
    [InlineData(GgmlType.F16, 0x7C01, 33)]     // signalling-pattern NaN
    [InlineData(GgmlType.BF16, 0x7F80, 5)]
    [InlineData(GgmlType.BF16, 0xFF80, 70)]
    [InlineData(GgmlType.BF16, 0x7FC0, 40)]
    public void FloatNonFiniteValuesPropagateLikeTheScalar(GgmlType type, int bits, int at)
    {
        const int n = 71;
        var rng = new Random(bits + at);
        foreach (bool inWeights in new[] { true, false })
        {
            var (w, a) = FloatRows(type, n, rng, extremes: false);
            for (int i = 0; i < n; i++)   // no zeros, so Inf·0 does not decide the answer by accident
                if ((BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(2 * i)) & 0x7FFF) == 0)
                    BinaryPrimitives.WriteUInt16LittleEndian(a.AsSpan(2 * i), type == GgmlType.F16 ? (ushort)0x3C00 : (ushort)0x3F80);
            BinaryPrimitives.WriteUInt16LittleEndian((inWeights ? w : a).AsSpan(2 * at), (ushort)bits);
            float want = Scalar(type, w, a, n);
            Assert.False(float.IsFinite(want));
            AssertSameBits(want, Vector128(type, w, a, n), type, n);
            if (Simd.Avx2Fma)
                AssertSameBits(want, Avx2(type, w, a, n), type, n);
            AssertSameBits(want, VecDot.Row(type, w, a, n), type, n);
        }
    }

    // ---- row builders ----

    /// <summary>One weight row and one activation row per fill pattern, from a seed fixed by type and length.</summary>
    private static IEnumerable<(byte[] W, byte[] A, Fill Fill)> Rows(GgmlType type, int nb)
    {
        var rng = new Random(1000 * (int)type + nb);
        foreach (var fill in AllFills)
            for (int rep = 0; rep < (fill == Fill.Random ? 3 : 1); rep++)
                yield return (WeightRow(type, nb, rng, fill), ActivationRow(QuantTraits.VecDotType(type), nb * GgmlTypes.BlockSize(type), rng, fill), fill);
    }

    private static byte QuantByte(Random rng, Fill fill) => fill switch
    {
        Fill.Max => 0xFF,
        Fill.Min => 0x00,
        Fill.Extremes => (byte)(new[] { 0x00, 0xFF, 0x0F, 0xF0, 0x7F, 0x80, 0x55, 0xAA })[rng.Next(8)],
        _ => (byte)rng.Next(256),
    };

    private static sbyte ActivationByte(Random rng, Fill fill) => fill switch
    {
        Fill.Max => 127,
        Fill.Min => -128,
        Fill.Extremes => (sbyte)(new[] { -128, -127, 127, 0, 1, -1 })[rng.Next(6)],
        _ => (sbyte)rng.Next(-128, 128),
    };

    /// <summary>An f16 scale: mostly ordinary; with mixed scales also zeros, subnormals and values near the f16 maximum.</summary>
    private static ushort HalfScale(Random rng, Fill fill)
    {
        int kind = fill == Fill.MixedScales ? rng.Next(4) : 0;
        ushort sign = (ushort)(rng.Next(2) << 15);
        return kind switch
        {
            0 => BitConverter.HalfToUInt16Bits((Half)((rng.NextDouble() * 2 - 1) * MathF.Pow(10, rng.Next(-3, 1)))),
            1 => sign,                                                        // ±0
            2 => (ushort)(sign | rng.Next(1, 0x400)),                         // subnormal
            _ => (ushort)(sign | BitConverter.HalfToUInt16Bits((Half)(1000 + rng.NextDouble() * 64000))),
        };
    }

    private static byte[] WeightRow(GgmlType type, int nb, Random rng, Fill fill)
    {
        int size = GgmlTypes.TypeSize(type);
        var row = new byte[nb * size];
        for (int i = 0; i < row.Length; i++)
            row[i] = QuantByte(rng, fill);
        int[] halfFields = type switch
        {
            GgmlType.Q4_0 or GgmlType.Q5_0 or GgmlType.Q8_0 => [0],
            GgmlType.Q4_1 or GgmlType.Q5_1 or GgmlType.Q4_K or GgmlType.Q5_K => [0, 2],   // d and m / dmin
            GgmlType.Q6_K => [208],
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        for (int b = 0; b < nb; b++)
            foreach (int f in halfFields)
                BinaryPrimitives.WriteUInt16LittleEndian(row.AsSpan(b * size + f), HalfScale(rng, fill));
        return row;
    }

    private static byte[] ActivationRow(GgmlType act, int n, Random rng, Fill fill)
    {
        var row = new byte[GgmlTypes.RowBytes(act, n)];
        if (act == GgmlType.Q8_K)
        {
            for (int b = 0; b < n / 256; b++)
            {
                var blk = row.AsSpan(b * 292, 292);
                float d = fill == Fill.MixedScales
                    ? (new[] { 0f, 1e-30f, 3e-3f, 1e4f })[rng.Next(4)]
                    : (float)(rng.NextDouble() * 0.02 - 0.01);
                BinaryPrimitives.WriteSingleLittleEndian(blk, d);
                for (int g = 0; g < 16; g++)
                {
                    int sum = 0;   // bsums must agree with the quants: the kernels trust them for the min term
                    for (int l = 0; l < 16; l++)
                    {
                        sbyte q = ActivationByte(rng, fill);
                        blk[4 + 16 * g + l] = (byte)q;
                        sum += q;
                    }
                    BinaryPrimitives.WriteInt16LittleEndian(blk.Slice(260 + 2 * g), (short)sum);
                }
            }
            return row;
        }
        int size = GgmlTypes.TypeSize(act), qs = act == GgmlType.Q8_1 ? 4 : 2;
        for (int b = 0; b < n / 32; b++)
        {
            var blk = row.AsSpan(b * size, size);
            BinaryPrimitives.WriteUInt16LittleEndian(blk, HalfScale(rng, fill));
            if (act == GgmlType.Q8_1)
                BinaryPrimitives.WriteUInt16LittleEndian(blk.Slice(2), HalfScale(rng, fill));   // s (independent of the quants here)
            for (int j = 0; j < 32; j++)
                blk[qs + j] = (byte)ActivationByte(rng, fill);
        }
        return row;
    }

    private static void ClampQ8_0(byte[] a)
    {
        for (int b = 0; b < a.Length / 34; b++)
            for (int j = 0; j < 32; j++)
                if (a[b * 34 + 2 + j] == 0x80)
                    a[b * 34 + 2 + j] = 0x81;
    }

    private static IEnumerable<(byte[] W, byte[] A)> FloatRows(GgmlType type, int n)
    {
        var rng = new Random(n * 7 + (int)type);
        for (int rep = 0; rep < 3; rep++)
            yield return FloatRows(type, n, rng, extremes: false);
        yield return FloatRows(type, n, rng, extremes: true);
    }

    /// <summary>
    /// Two rows of finite values: random bit patterns (F16: any finite value, subnormals and ±65504 included; BF16:
    /// exponents within 2^±40 plus zeros and subnormals), or with <paramref name="extremes"/> only ±max, ±min subnormal and ±0.
    /// </summary>
    private static (byte[] W, byte[] A) FloatRows(GgmlType type, int n, Random rng, bool extremes)
    {
        var w = new byte[2 * n];
        var a = new byte[2 * n];
        foreach (var row in new[] { w, a })
            for (int i = 0; i < n; i++)
                BinaryPrimitives.WriteUInt16LittleEndian(row.AsSpan(2 * i), FloatBits(type, rng, extremes));
        return (w, a);
    }

    private static ushort FloatBits(GgmlType type, Random rng, bool extremes)
    {
        ushort sign = (ushort)(rng.Next(2) << 15);
        if (type == GgmlType.F16)
        {
            if (extremes)
                return (ushort)(sign | (new[] { 0x7BFF, 0x0001, 0x0000, 0x03FF, 0x0400 })[rng.Next(5)]);
            while (true)
            {
                ushort b = (ushort)rng.Next(0x10000);
                if ((b & 0x7C00) != 0x7C00)
                    return b;
            }
        }
        if (extremes)   // large but with f32 products and sums that stay finite
            return (ushort)(sign | (new[] { 0x4F7F, 0x0001, 0x0000, 0x007F, 0x0080 })[rng.Next(5)]);
        int kind = rng.Next(10);
        if (kind == 0) return sign;                                           // ±0
        if (kind == 1) return (ushort)(sign | rng.Next(1, 0x80));             // subnormal
        int exp = 127 + rng.Next(-40, 41);
        return (ushort)(sign | (exp << 7) | rng.Next(0x80));
    }

    // ---- kernels by type ----

    private static float Scalar(GgmlType type, byte[] w, byte[] a, int count)
        => VecDot.RowScalar(type, w, a, type is GgmlType.F16 or GgmlType.BF16 ? count : count * GgmlTypes.BlockSize(type));

    private static float Avx2(GgmlType type, byte[] w, byte[] a, int count)
    {
        fixed (byte* pw = w, pa = a)
        {
            return type switch
            {
                GgmlType.Q4_0 => Q4_0.DotAvx2(pw, pa, count),
                GgmlType.Q4_1 => Q4_1.DotAvx2(pw, pa, count),
                GgmlType.Q5_0 => Q5_0.DotAvx2(pw, pa, count),
                GgmlType.Q5_1 => Q5_1.DotAvx2(pw, pa, count),
                GgmlType.Q8_0 => Q8_0.DotAvx2(pw, pa, count),
                GgmlType.Q4_K => Q4K.DotAvx2(pw, pa, count),
                GgmlType.Q5_K => Q5K.DotAvx2(pw, pa, count),
                GgmlType.Q6_K => Q6K.DotAvx2(pw, pa, count),
                GgmlType.F16 => F16.DotAvx2(pw, pa, count),
                GgmlType.BF16 => BF16.DotAvx2(pw, pa, count),
                _ => throw new ArgumentOutOfRangeException(nameof(type)),
            };
        }
    }

    private static float Vector128(GgmlType type, byte[] w, byte[] a, int count)
    {
        fixed (byte* pw = w, pa = a)
        {
            return type switch
            {
                GgmlType.Q4_0 => Q4_0.DotVector128(pw, pa, count),
                GgmlType.Q4_1 => Q4_1.DotVector128(pw, pa, count),
                GgmlType.Q5_0 => Q5_0.DotVector128(pw, pa, count),
                GgmlType.Q5_1 => Q5_1.DotVector128(pw, pa, count),
                GgmlType.Q8_0 => Q8_0.DotVector128(pw, pa, count),
                GgmlType.Q4_K => Q4K.DotVector128(pw, pa, count),
                GgmlType.Q5_K => Q5K.DotVector128(pw, pa, count),
                GgmlType.Q6_K => Q6K.DotVector128(pw, pa, count),
                GgmlType.F16 => F16.DotVector128(pw, pa, count),
                GgmlType.BF16 => BF16.DotVector128(pw, pa, count),
                _ => throw new ArgumentOutOfRangeException(nameof(type)),
            };
        }
    }

    // ---- comparisons ----

    private static void AssertSameBits(float want, float got, GgmlType type, int count)
    {
        bool same = BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got) || (float.IsNaN(want) && float.IsNaN(got));
        Assert.True(same, $"{type} ({count}): got {got:R}, want {want:R}");
    }

    /// <summary>
    /// |got − want| within f32 summation rounding: (blocks + 8)·4·2^−24 times Σ|w_i·a_i| of the dequantized rows
    /// plus, for Q4_K/Q5_K, |dmin|·63·Σ|a_i| (the min term both kernels subtract separately). Both kernels have the
    /// same exact integers per block; only the float accumulation differs.
    /// </summary>
    private static void AssertClose(GgmlType type, int nb, byte[] w, byte[] a, float want, float got, Fill fill)
    {
        int n = nb * GgmlTypes.BlockSize(type);
        var act = QuantTraits.VecDotType(type);
        var wd = new float[n];
        var ad = new float[n];
        Dequantize.Row(type, w, wd);
        Dequantize.Row(act, a, ad);
        int size = GgmlTypes.TypeSize(type);
        double magnitude = 0;
        for (int i = 0; i < n; i++)
        {
            double offset = type is GgmlType.Q4_K or GgmlType.Q5_K ? Math.Abs((double)BitConverter.ToHalf(w, i / 256 * size + 2)) * 63.0 : 0;
            magnitude += (Math.Abs((double)wd[i]) + offset) * Math.Abs(ad[i]);
        }
        double tol = (nb + 8) * 4 * Math.ScaleB(1.0, -24) * magnitude + 1e-30;
        Assert.True(Math.Abs((double)got - want) <= tol, $"{type} nb={nb} {fill}: got {got:R}, want {want:R} (tol {tol:E2})");
    }

    /// <summary>F16/BF16: products are exact in f32, so only the f32 lane sums (≤ n/16 terms each) differ from the scalar's f64 sum.</summary>
    private static void AssertFloatClose(GgmlType type, int n, byte[] w, byte[] a, float got)
    {
        float want = Scalar(type, w, a, n);
        double magnitude = 0;
        for (int i = 0; i < n; i++)
        {
            ushort wb = BinaryPrimitives.ReadUInt16LittleEndian(w.AsSpan(2 * i)), ab = BinaryPrimitives.ReadUInt16LittleEndian(a.AsSpan(2 * i));
            double wv = type == GgmlType.F16 ? (double)BitConverter.UInt16BitsToHalf(wb) : BitConverter.UInt32BitsToSingle((uint)wb << 16);
            double av = type == GgmlType.F16 ? (double)BitConverter.UInt16BitsToHalf(ab) : BitConverter.UInt32BitsToSingle((uint)ab << 16);
            magnitude += Math.Abs(wv * av);
        }
        double tol = (n / 16 + 8) * 4 * Math.ScaleB(1.0, -24) * magnitude + 1e-44;
        Assert.True(Math.Abs((double)got - want) <= tol, $"{type} n={n}: got {got:R}, want {want:R} (tol {tol:E2})");
    }
}
