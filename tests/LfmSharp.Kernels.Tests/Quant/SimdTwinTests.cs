using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>A fact that xunit reports as skipped (not passed) where the CPU lacks AVX2+FMA or the JIT has it disabled.</summary>
public sealed class Avx2FactAttribute : FactAttribute
{
    public Avx2FactAttribute()
    {
        if (!(Avx2.IsSupported && Fma.IsSupported))
            Skip = "AVX2/FMA not available here (or disabled via DOTNET_EnableAVX2/DOTNET_EnableHWIntrinsic)";
    }
}

/// <inheritdoc cref="Avx2FactAttribute"/>
public sealed class Avx2TheoryAttribute : TheoryAttribute
{
    public Avx2TheoryAttribute()
    {
        if (!(Avx2.IsSupported && Fma.IsSupported))
            Skip = "AVX2/FMA not available here (or disabled via DOTNET_EnableAVX2/DOTNET_EnableHWIntrinsic)";
    }
}

/// <summary>
/// Every SIMD path against its scalar twin. Activation quantizers must be byte-identical (their math is exact
/// rounding of the same f32 products); integer dots must agree to float-summation rounding (the per-block integer
/// sums are exact in both, only the order of the f32 accumulation differs).
/// </summary>
public sealed unsafe class SimdTwinTests
{
    [Fact]
    public void HalfToSingleIsExactForEveryBitPattern()
    {
        for (int b = 0; b <= 0xffff; b++)
        {
            float want = (float)BitConverter.UInt16BitsToHalf((ushort)b);
            float got = QuantMath.HalfToSingle((ushort)b);
            Assert.True(BitConverter.SingleToUInt32Bits(want) == BitConverter.SingleToUInt32Bits(got), $"bits 0x{b:x4}: {got} != {want}");
        }
    }

    /// <summary>Q8_0 dequantization (the Q8_0 KV cache's read) vectorized vs scalar: the same bits for every scale
    /// bit pattern (subnormal, zero, Inf, NaN included) and every quant value.</summary>
    [Fact]
    public void Q8_0DequantizeVectorEqualsScalar()
    {
        const int nb = 4096;
        var src = new byte[nb * 34];
        var rng = new Random(8);
        rng.NextBytes(src);
        for (int i = 0; i < nb; i++)
            BitConverter.TryWriteBytes(src.AsSpan(i * 34, 2), (ushort)(i * 16 + rng.Next(16)));   // d sweeps all f16 patterns
        var vec = new float[nb * 32];
        var sca = new float[nb * 32];
        fixed (byte* ps = src)
        fixed (float* pv = vec)
            Q8_0.DequantizeVector256(ps, nb, pv);
        Q8_0.DequantizeScalar(src, nb, sca);
        for (int i = 0; i < vec.Length; i++)
            Assert.True(BitConverter.SingleToUInt32Bits(vec[i]) == BitConverter.SingleToUInt32Bits(sca[i]) || (float.IsNaN(vec[i]) && float.IsNaN(sca[i])),
                $"value {i}: {vec[i]} vs {sca[i]}");
    }

    /// <summary>Rows meant to break a quantizer: exact rounding ties, ±max pairs, zeros, subnormals, huge and tiny blocks.</summary>
    private static float[] Adversarial(int n, int seed)
    {
        var rng = new Random(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1) * MathF.Pow(10, rng.Next(-6, 4));
        for (int b = 0; b + 32 <= n; b += 32)
        {
            switch ((b / 32) % 8)
            {
                case 0: // amax 127 → d = 1, so k + 0.5 are exact ties for roundf
                    x[b] = 127f;
                    for (int i = 1; i < 32; i++) x[b + i] = (i - 16) + 0.5f;
                    break;
                case 1: // equal magnitudes of both signs: the first one must win in Q8_K
                    x[b + 3] = -5f; x[b + 9] = 5f; x[b + 20] = -5f;
                    for (int i = 0; i < 32; i++) if (i is not (3 or 9 or 20)) x[b + i] = (float)rng.NextDouble();
                    break;
                case 2: // all zero
                    for (int i = 0; i < 32; i++) x[b + i] = 0f;
                    break;
                case 3: // subnormal values
                    for (int i = 0; i < 32; i++) x[b + i] = (float)(rng.NextDouble() - 0.5) * 1e-39f;
                    break;
                case 4: // negative zero and one value
                    for (int i = 0; i < 32; i++) x[b + i] = -0f;
                    x[b + 31] = -3e-3f;
                    break;
                case 5: // just below a tie after scaling
                    x[b] = 127f;
                    for (int i = 1; i < 32; i++) x[b + i] = BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits((i - 16) + 0.5f) - 1);
                    break;
            }
        }
        return x;
    }

    [Avx2Theory]
    [InlineData(32)]
    [InlineData(256)]
    [InlineData(4096)]
    public void Q8_0QuantizeRowAvx2IsByteIdentical(int n)
    {
        for (int seed = 0; seed < 4; seed++)
        {
            float[] x = Adversarial(n, seed);
            var want = new byte[GgmlTypes.RowBytes(GgmlType.Q8_0, n)];
            var got = new byte[want.Length];
            Q8_0.QuantizeRowReference(x, want);
            fixed (float* px = x)
            fixed (byte* pg = got)
                Q8_0.QuantizeRowAvx2(px, pg, n / 32);
            Assert.Equal(want, got);
        }
    }

    [Avx2Theory]
    [InlineData(256)]
    [InlineData(2048)]
    public void Q8KQuantizeRowAvx2IsByteIdentical(int n)
    {
        for (int seed = 0; seed < 4; seed++)
        {
            float[] x = Adversarial(n, seed);
            var want = new byte[GgmlTypes.RowBytes(GgmlType.Q8_K, n)];
            var got = new byte[want.Length];
            Q8K.QuantizeRowReference(x, want);
            fixed (float* px = x)
            fixed (byte* pg = got)
                Q8K.QuantizeRowAvx2(px, pg, n / 256);
            Assert.Equal(want, got);
        }
    }

    [Avx2Fact]
    public void QuantizersSendNonFiniteBlocksThroughTheReference()
    {
        float[] x = Adversarial(512, 9);
        x[5] = float.NaN;
        x[40] = float.PositiveInfinity;
        x[300] = float.NegativeInfinity;
        var tiny = Adversarial(1024, 10);
        for (int i = 512; i < 768; i++)
            tiny[i] = (float)(i % 7 - 3) * 1e-40f;   // a whole Q8_K block of subnormals: 127/max overflows
        x = [.. x, .. tiny];
        foreach (var t in new[] { GgmlType.Q8_0, GgmlType.Q8_K })
        {
            var want = new byte[GgmlTypes.RowBytes(t, x.Length)];
            var got = new byte[want.Length];
            Quantize.RowReference(t, x, want);
            fixed (float* px = x)
            fixed (byte* pg = got)
            {
                if (t == GgmlType.Q8_0)
                    Q8_0.QuantizeRowAvx2(px, pg, x.Length / 32);
                else
                    Q8K.QuantizeRowAvx2(px, pg, x.Length / 256);
            }
            Assert.Equal(want, got);
        }
    }

    public static TheoryData<GgmlType, int> DotCases()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q8_0 })
            foreach (int blocks in new[] { 1, 2, 3, 64, 257 })
                data.Add(t, blocks * 32);
        foreach (var t in new[] { GgmlType.Q4_K, GgmlType.Q6_K })
            foreach (int blocks in new[] { 1, 2, 8, 33 })
                data.Add(t, blocks * 256);
        return data;
    }

    [Avx2Theory]
    [MemberData(nameof(DotCases))]
    public void DotAvx2MatchesScalar(GgmlType type, int n)
    {
        var act = QuantTraits.VecDotType(type);
        var rng = new Random(n + (int)type);
        for (int trial = 0; trial < 4; trial++)
        {
            float[] w = Adversarial(n, rng.Next());
            float[] a = new float[n];
            for (int i = 0; i < n; i++)
                a[i] = (float)(rng.NextDouble() * 2 - 1) * (trial == 3 ? 1e4f : 1f);
            if (trial == 2)
                for (int i = 0; i < n; i++) w[i] = 0.3f + 0.01f * (float)rng.NextDouble();   // one-signed: large K-quant mins
            var wq = new byte[GgmlTypes.RowBytes(type, n)];
            var aq = new byte[GgmlTypes.RowBytes(act, n)];
            Quantize.RowReference(type, w, wq);
            Quantize.RowReference(act, a, aq);
            int nb = n / GgmlTypes.BlockSize(type);

            float scalar = type switch
            {
                GgmlType.Q4_0 => Q4_0.DotScalar(wq, aq, nb),
                GgmlType.Q8_0 => Q8_0.DotScalar(wq, aq, nb),
                GgmlType.Q4_K => Q4K.DotScalar(wq, aq, nb),
                _ => Q6K.DotScalar(wq, aq, nb),
            };
            float simd;
            fixed (byte* pw = wq, pa = aq)
            {
                simd = type switch
                {
                    GgmlType.Q4_0 => Q4_0.DotAvx2(pw, pa, nb),
                    GgmlType.Q8_0 => Q8_0.DotAvx2(pw, pa, nb),
                    GgmlType.Q4_K => Q4K.DotAvx2(pw, pa, nb),
                    _ => Q6K.DotAvx2(pw, pa, nb),
                };
            }
            double magnitude = AbsDot(type, act, wq, aq, n);
            double tol = (nb + 8) * 4 * Math.ScaleB(1.0, -24) * magnitude + 1e-30;
            Assert.True(Math.Abs(simd - scalar) <= tol, $"{type} n={n} trial {trial}: simd {simd:R} scalar {scalar:R} (tol {tol:E2})");
        }
    }

    /// <summary>
    /// Σ |w_i·a_i| of the dequantized rows, plus for K-quants Σ |a_i| times the block's largest offset term (dmin·63 for
    /// Q4_K, 32·|d|·128 for Q6_K), which both kernels subtract separately: the scale of the float rounding any
    /// summation order can cause.
    /// </summary>
    private static double AbsDot(GgmlType type, GgmlType act, byte[] wq, byte[] aq, int n)
    {
        var wd = new float[n];
        var ad = new float[n];
        Dequantize.Row(type, wq, wd);
        Dequantize.Row(act, aq, ad);
        double s = 0;
        for (int i = 0; i < n; i++)
        {
            double offset = type switch
            {
                GgmlType.Q4_K => Math.Abs((float)BitConverter.ToHalf(wq, i / 256 * 144 + 2)) * 63.0,
                GgmlType.Q6_K => Math.Abs((float)BitConverter.ToHalf(wq, i / 256 * 210 + 208)) * 32.0 * 128.0,
                _ => 0,
            };
            s += (Math.Abs((double)wd[i]) + offset) * Math.Abs(ad[i]);
        }
        return s;
    }
}
