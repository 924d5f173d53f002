using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using Xunit.Abstractions;

namespace LfmSharp.Oracle.Tests.Quant;

/// <summary>
/// Our IQ4_NL / IQ4_XS quantizers against ggml's, through the "noavx" ggml-base LLamaSharp ships (no FMA contraction,
/// so ggml's C is plain IEEE single precision): <c>ggml_quantize_chunk</c> without an imatrix (what llama-quantize
/// runs) must give the same bytes, row by row, on random rows and on the corners of the scale search.
/// </summary>
public sealed class IQ4QuantizeOracleTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(GgmlType.IQ4_NL, 256)]
    [InlineData(GgmlType.IQ4_NL, 288)]   // 9 blocks: a row of 32·k that is not a multiple of 256 (LFM2's fallback rows)
    [InlineData(GgmlType.IQ4_NL, 32)]
    [InlineData(GgmlType.IQ4_XS, 256)]
    [InlineData(GgmlType.IQ4_XS, 1024)]
    public void QuantizerGivesGgmlQuantizeChunkBytes(GgmlType type, int rowLength)
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var chunk = ggml.Base<QuantizeChunkFn>("ggml_quantize_chunk");
        long rowBytes = GgmlTypes.RowBytes(type, rowLength);
        int checkedRows = 0;
        foreach (var (name, values) in Datasets(rowLength))
        {
            int rows = values.Length / rowLength;
            byte[] ours = new byte[rows * rowBytes], theirs = new byte[ours.Length];
            for (int r = 0; r < rows; r++)
                Quantize.RowReference(type, values.AsSpan(r * rowLength, rowLength), ours.AsSpan((int)(r * rowBytes), (int)rowBytes));
            nuint written = chunk((int)type, values, theirs, 0, rows, rowLength, IntPtr.Zero);
            Assert.Equal((nuint)ours.Length, written);
            for (int r = 0; r < rows; r++)
            {
                var o = ours.AsSpan((int)(r * rowBytes), (int)rowBytes);
                var t = theirs.AsSpan((int)(r * rowBytes), (int)rowBytes);
                int at = o.CommonPrefixLength(t);
                Assert.True(at == o.Length, $"{type} row {rowLength} '{name}' row {r}: byte {at} is 0x{(at < o.Length ? o[at] : 0):X2}, ggml 0x{(at < t.Length ? t[at] : 0):X2}");
                checkedRows++;
            }
        }
        output.WriteLine($"{type} rows of {rowLength}: {checkedRows} rows byte-identical to ggml_quantize_chunk");
    }

    [Fact]
    public void IQ4XSMatchesGgmlReferenceRowQuantizer()
    {
        if (!NoAvxGgml.TryLoad(output, out var ggml))
            return;
        var reference = ggml.Base<QuantizeRowFn>("quantize_row_iq4_xs_ref");
        foreach (var (name, values) in Datasets(256))
        {
            byte[] ours = new byte[GgmlTypes.RowBytes(GgmlType.IQ4_XS, values.Length)], theirs = new byte[ours.Length];
            Quantize.RowReference(GgmlType.IQ4_XS, values, ours);
            reference(values, theirs, values.Length);
            Assert.True(ours.AsSpan().SequenceEqual(theirs), $"IQ4_XS '{name}': differs from quantize_row_iq4_xs_ref");
        }
    }

    [Fact]
    public void QuantizedRowsDequantizeCloseToTheInput()
    {
        // Independent of ggml: the search must pick a sensible scale (a wrong sign or level order would still be
        // "deterministic"). IQ4 keeps normal data within a few percent of its RMS.
        var rng = new Random(3);
        float[] x = new float[4096];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
        foreach (var type in new[] { GgmlType.IQ4_NL, GgmlType.IQ4_XS })
        {
            byte[] q = new byte[GgmlTypes.RowBytes(type, x.Length)];
            float[] y = new float[x.Length];
            Quantize.RowReference(type, x, q);
            Dequantize.Row(type, q, y);
            double err = 0, sig = 0;
            for (int i = 0; i < x.Length; i++)
            {
                err += (x[i] - y[i]) * (double)(x[i] - y[i]);
                sig += x[i] * (double)x[i];
            }
            double rel = Math.Sqrt(err / sig);
            output.WriteLine($"{type}: relative RMS error {rel:F4}");
            Assert.InRange(rel, 0.01, 0.15);
        }
    }

    /// <summary>Fixed-seed rows: normal data at several scales plus the corners of ggml's search and of f16 d.</summary>
    private static IEnumerable<(string Name, float[] Values)> Datasets(int rowLength)
    {
        var rng = new Random(4242 + rowLength);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
        int n = rowLength * Math.Max(1, 8192 / rowLength);
        float[] Gen(Func<int, float> f) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = f(i); return a; }
        yield return ("normal", Gen(_ => (float)Normal()));
        yield return ("normal*0.02 (weights)", Gen(_ => (float)(Normal() * 0.02)));
        yield return ("all zeros", Gen(_ => 0f));
        yield return ("zero sub-blocks", Gen(i => (i / 32) % 3 == 1 ? 0f : (float)Normal()));
        yield return ("tiny 1e-6", Gen(_ => (float)(Normal() * 1e-6)));
        yield return ("tiny 1e-13 (x² near underflow)", Gen(_ => (float)(Normal() * 1e-13)));
        yield return ("around GROUP_MAX_EPS", Gen(i => (float)(Normal() * ((i / 32) % 2 == 0 ? 5e-16 : 2e-15))));
        yield return ("large 1e4", Gen(_ => (float)(Normal() * 1e4)));
        yield return ("huge 1e9 (f16 d overflows)", Gen(_ => (float)(Normal() * 1e9)));
        yield return ("one outlier per block", Gen(i => i % 32 == 7 ? (float)(Normal() * 50) : (float)(Normal() * 0.1)));
        yield return ("negative-dominant", Gen(_ => (float)(-Math.Abs(Normal()) + 0.1 * Normal())));
        yield return ("positive only", Gen(_ => (float)rng.NextDouble()));
        yield return ("small integers (ties)", Gen(_ => rng.Next(-8, 8)));
        yield return ("heavy tails", Gen(_ => (float)(Normal() * Math.Exp(3 * Normal()))));
        yield return ("sub-blocks of mixed scale", Gen(i => (float)(Normal() * Math.Pow(10, (i / 32) % 5 - 2))));
        yield return ("cos (test-quantize-fns)", Gen(i => (float)(0.1 + 2.0f * MathF.Cos(i))));
    }

    // size_t ggml_quantize_chunk(enum ggml_type, const float * src, void * dst, int64_t start, int64_t nrows,
    //                            int64_t n_per_row, const float * imatrix)
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate nuint QuantizeChunkFn(int type, float[] src, [Out] byte[] dst, long start, long nrows, long nPerRow, IntPtr imatrix);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate void QuantizeRowFn(float[] x, [Out] byte[] y, long k);
}
