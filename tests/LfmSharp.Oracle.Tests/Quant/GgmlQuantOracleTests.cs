using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Quant;

/// <summary>
/// llama.cpp itself as the oracle for the block formats: LLamaSharp.Backend.Cpu ships ggml's shared libraries, which
/// export the reference quantizers (quantize_row_*_ref), the dequantizers and the portable dot products
/// (ggml_vec_dot_*_generic). Our scalar ports must give the same bytes and the same float bits.
/// Uses the "noavx" x86-64 build: there the C compiler has no FMA instructions, so the generic dot products are the
/// plain C semantics our scalar twins follow (the avx2 build contracts a*b+c into FMA, which moves the last bit).
/// </summary>
public sealed class GgmlQuantOracleTests(ITestOutputHelper output)
{
    private const int N = 256 * 32; // 8192 values: 256 Q4_0 blocks, 32 Q4_K super-blocks per dataset

    public static TheoryData<GgmlType> QuantTypes() => new()
    {
        GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0, GgmlType.Q8_1,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K,
    };

    public static TheoryData<GgmlType> WeightTypes() => new()
    {
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q8_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K,
    };

    [Theory]
    [MemberData(nameof(QuantTypes))]
    public void ReferenceQuantizerAndDequantizerMatchGgml(GgmlType type)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var quantize = ggml.Base<QuantizeRowFn>($"quantize_row_{CName(type)}_ref");
        var dequantize = type == GgmlType.Q8_1 ? null : ggml.Base<DequantizeRowFn>($"dequantize_row_{CName(type)}");
        int blockBytes = GgmlTypes.TypeSize(type);

        foreach (var (name, x) in Datasets())
        {
            byte[] ours = new byte[GgmlTypes.RowBytes(type, N)];
            byte[] theirs = new byte[ours.Length];
            Quantize.RowReference(type, x, ours);
            quantize(x, theirs, N);

            for (int b = 0; b < ours.Length / blockBytes; b++)
            {
                var o = ours.AsSpan(b * blockBytes, blockBytes);
                var t = theirs.AsSpan(b * blockBytes, blockBytes);
                // ggml leaves a Q8_K all-zero block's bsums unwritten; compare d and qs only there.
                if (type == GgmlType.Q8_K && BitConverter.ToSingle(t) == 0f) { o = o[..260]; t = t[..260]; }
                Assert.True(o.SequenceEqual(t), $"{type} {name}: block {b} differs from quantize_row_{CName(type)}_ref");
            }

            if (dequantize is null)
                continue;
            float[] ourValues = new float[N], theirValues = new float[N];
            Dequantize.Row(type, theirs, ourValues);
            dequantize(theirs, theirValues, N);
            for (int i = 0; i < N; i++)
                Assert.True(BitConverter.SingleToInt32Bits(ourValues[i]) == BitConverter.SingleToInt32Bits(theirValues[i]),
                    $"{type} {name}: value {i} dequantizes to {ourValues[i]:R}, ggml gives {theirValues[i]:R}");
        }
    }

    [Theory]
    [MemberData(nameof(WeightTypes))]
    public void DotProductMatchesGgmlGeneric(GgmlType weightType)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        GgmlType actType = QuantTraits.VecDotType(weightType);
        string fn = weightType switch
        {
            GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => $"ggml_vec_dot_{CName(weightType)}", // no _generic twin; noavx = scalar
            _ => $"ggml_vec_dot_{CName(weightType)}_{CName(actType)}_generic",
        };
        var dot = ggml.Cpu<VecDotFn>(fn);

        var sets = Datasets().ToList();
        for (int s = 0; s < sets.Count; s++)
        {
            float[] w = sets[s].Values, a = sets[(s + 1) % sets.Count].Values;
            byte[] wq = new byte[GgmlTypes.RowBytes(weightType, N)];
            byte[] aq = new byte[GgmlTypes.RowBytes(actType, N)];
            Quantize.RowReference(weightType, w, wq);
            Quantize.Row(actType, a, aq);
            foreach (int n in new[] { 256, 1024, N })
            {
                // The scalar twin is bit-identical to ggml's generic code; the SIMD paths sum in another order.
                float ours = VecDot.RowScalar(weightType, wq, aq, n);
                dot(n, out float theirs, 0, wq, 0, aq, 0, 1);
                Assert.True(BitConverter.SingleToInt32Bits(ours) == BitConverter.SingleToInt32Bits(theirs),
                    $"{weightType} {sets[s].Name} n={n}: ours {ours:R}, {fn} {theirs:R}");
                float fast = VecDot.Row(weightType, wq, aq, n);
                Assert.True(MathF.Abs(fast - theirs) <= 1e-5f * (1 + MathF.Abs(theirs)), $"{weightType} n={n}: dispatched {fast:R} vs {theirs:R}");
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q8_0, "quantize_row_q8_0")]
    [InlineData(GgmlType.Q8_1, "quantize_row_q8_1")]
    [InlineData(GgmlType.Q8_K, "quantize_row_q8_K")]
    public void ActivationQuantizerMatchesGgmlCpu(GgmlType type, string fn)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var quantize = ggml.Cpu<QuantizeRowFn>(fn);
        foreach (var (name, x) in Datasets())
        {
            byte[] ours = new byte[GgmlTypes.RowBytes(type, N)];
            byte[] theirs = new byte[ours.Length];
            Quantize.Row(type, x, ours);
            quantize(x, theirs, N);
            if (type == GgmlType.Q8_K)
                for (int b = 0; b < N / 256; b++)
                    if (BitConverter.ToSingle(theirs.AsSpan(b * 292)) == 0f)
                        theirs.AsSpan(b * 292 + 260, 32).CopyTo(ours.AsSpan(b * 292 + 260)); // unwritten bsums, see above
            Assert.True(ours.AsSpan().SequenceEqual(theirs), $"{type} {name}: differs from ggml-cpu {fn}");
        }
    }

    [Fact]
    public void HalfAndBFloat16RowsMatchGgml()
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var rng = new Random(7);
        float[] x = new float[1 << 18];
        for (int i = 0; i < x.Length; i++)
            x[i] = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31)); // every exponent, incl. inf/NaN/subnormal
        for (int i = 0; i < 8192; i++)
            x[i] = BitConverter.Int32BitsToSingle(0x33000000 + i * 97); // around and below the f16 subnormal range

        foreach (var (type, fn) in new[] { (GgmlType.F16, "ggml_fp32_to_fp16_row"), (GgmlType.BF16, "ggml_fp32_to_bf16_row_ref") })
        {
            byte[] ours = new byte[x.Length * 2];
            ushort[] theirs = new ushort[x.Length];
            Quantize.RowReference(type, x, ours);
            ggml.Base<HalfRowFn>(fn)(x, theirs, x.Length);
            var o = MemoryMarshal.Cast<byte, ushort>(ours);
            for (int i = 0; i < x.Length; i++)
                if (!float.IsNaN(x[i])) // NaN payloads differ between converters and carry no meaning
                    Assert.True(o[i] == theirs[i], $"{type}: {x[i]:R} (0x{BitConverter.SingleToUInt32Bits(x[i]):X8}) → ours 0x{o[i]:X4}, ggml 0x{theirs[i]:X4}");
        }
    }

    private static string CName(GgmlType t) => t switch
    {
        GgmlType.Q2_K => "q2_K",
        GgmlType.Q3_K => "q3_K",
        GgmlType.Q4_K => "q4_K",
        GgmlType.Q5_K => "q5_K",
        GgmlType.Q6_K => "q6_K",
        GgmlType.Q8_K => "q8_K",
        _ => t.ToString().ToLowerInvariant(),
    };

    /// <summary>Fixed-seed data that hits the quantizers' corner cases: signs, zeros, ties, heavy tails, tiny and large scales.</summary>
    private static IEnumerable<(string Name, float[] Values)> Datasets()
    {
        var rng = new Random(12345);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        float[] Gen(Func<int, float> f) { var a = new float[N]; for (int i = 0; i < N; i++) a[i] = f(i); return a; }
        yield return ("normal", Gen(_ => (float)Normal()));
        yield return ("normal*0.02", Gen(_ => (float)(Normal() * 0.02)));
        yield return ("cos (test-quantize-fns)", Gen(i => (float)(0.1 + 2.0f * MathF.Cos(i))));
        yield return ("positive", Gen(_ => (float)rng.NextDouble()));
        yield return ("negative", Gen(_ => -(float)rng.NextDouble()));
        yield return ("small integers (ties)", Gen(_ => rng.Next(-8, 8)));
        yield return ("sparse", Gen(_ => rng.NextDouble() < 0.9 ? 0f : (float)Normal()));
        yield return ("zero blocks and groups", Gen(i => (i / 256) % 3 == 0 || (i / 16) % 5 == 0 ? 0f : (float)Normal()));
        yield return ("heavy tails", Gen(_ => (float)(Normal() * Math.Exp(3 * Normal()))));
        yield return ("tiny", Gen(_ => (float)(Normal() * 1e-6)));
        yield return ("large", Gen(_ => (float)(Normal() * 1000)));
    }

    // ggml's C signatures; blittable arrays are pinned and passed as pointers, so native writes land in them.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void QuantizeRowFn(float[] x, [Out] byte[] y, long k);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void HalfRowFn(float[] x, [Out] ushort[] y, long k);
}
