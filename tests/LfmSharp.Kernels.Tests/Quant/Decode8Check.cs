using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The frame shared by the AVX-512 super-block decode tests (<see cref="MatVec8IQ4XSTests"/>, <see cref="MatVec8Q5KTests"/>):
/// 8 rows of <c>nb</c> blocks per trial, filled by the test, copied to the <see cref="InterleaveLayout.Blocks"/> layout;
/// the row dot must equal the test's canonical order written from the format, and both kernels (GGUF rows, blocks copy)
/// the row dot's bits (NaN for NaN).
/// </summary>
internal static unsafe class Decode8Check
{
    /// <summary>The format's canonical dot of one GGUF row against Q8_K activations, written in the test.</summary>
    public delegate float CanonicalDot(ReadOnlySpan<byte> row, ReadOnlySpan<byte> act, int nb);

    public static void Run(int blockBytes, int nb, int seed, Action<byte[], byte[], int, int, Random> fill, CanonicalDot canonical,
        delegate*<byte*, byte*, int, float> rowDot, delegate*<in Group8, void> rows, delegate*<in Group8, void> blocks)
    {
        int rowBytes = nb * blockBytes;
        var rng = new Random(seed);
        var w = new byte[8 * rowBytes];
        var il = new byte[8 * rowBytes];
        var act = new byte[nb * 292];
        var y = new float[8];
        for (int trial = 0; trial < 200; trial++)
        {
            fill(w, act, nb, trial, rng);
            for (int b = 0; b < nb; b++)
                for (int r = 0; r < 8; r++)
                    w.AsSpan(r * rowBytes + b * blockBytes, blockBytes).CopyTo(il.AsSpan((8 * b + r) * blockBytes));
            var want = new float[8];
            fixed (byte* pw = w, pi = il, pa = act)
            fixed (float* py = y)
            {
                for (int r = 0; r < 8; r++)
                {
                    want[r] = rowDot(pw + r * rowBytes, pa, nb);
                    Assert.True(SameBits(canonical(w.AsSpan(r * rowBytes, rowBytes), act, nb), want[r]), $"trial {trial} row {r}: the row dot is not the canonical order");
                }
                var g = new Group8 { Rows = pw, RowBytes = rowBytes, Interleaved = pi, Nb = nb, Act = pa, Y = py };
                for (int layout = 0; layout < 2; layout++)
                {
                    Array.Fill(y, 12345f);
                    if (layout == 0) rows(in g); else blocks(in g);
                    for (int r = 0; r < 8; r++)
                        Assert.True(SameBits(want[r], y[r]), $"nb {nb} trial {trial} row {r} ({(layout == 0 ? "rows" : "blocks")}): {y[r]:R} vs {want[r]:R}");
                }
            }
        }
    }

    /// <summary>Equal bits, or both NaN.</summary>
    public static bool SameBits(float a, float b)
        => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));
}
