using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>Runs only where the zmm decode kernels can (AVX-512BW and 512-bit GFNI; with <c>vnni</c> also AVX-VNNI).</summary>
public sealed class Avx512GfniFactAttribute : FactAttribute
{
    public Avx512GfniFactAttribute(bool vnni = false)
    {
        if (!Avx512BW.IsSupported || !Gfni.V512.IsSupported || (vnni && !AvxVnni.IsSupported))
            Skip = "AVX-512BW with 512-bit GFNI (and AVX-VNNI) not available here (or disabled)";
    }
}

/// <summary>
/// The zmm Q4_0 decode kernel (<see cref="MatVec8Zmm.Q4_0x8"/>) and IQ4_NL's two-block one
/// (<see cref="MatVec8IQ4.NLx8Zmm"/>) against the row dots (DotAvx2, the engine's canonical order) and the one-block
/// kernels, bit for bit: random and extreme blocks (all nibbles 0 or 15 against activations of −127 or 127: Q8_0 rows
/// never hold −128, where Q4_0's row dot wraps), even and odd block counts (the two-block loop and the one-block
/// tail), subnormal and zero scales, and Inf / NaN scales (the exact fallback).
/// </summary>
public sealed unsafe class MatVec8ZmmTests
{
    [Avx512GfniFact]
    public void Q4_0DecodeGivesTheRowDotsBits()
        => Check(GgmlType.Q4_0, 8, &MatVec8Zmm.Q4_0x8, &Q4_0x8Ymm, &Q4_0.DotAvx2);

    /// <summary>IQ4_NL's two-block VNNI kernel (same layout; its activation side is 128·Σa per block).</summary>
    [Avx512GfniFact(vnni: true)]
    public void IQ4NLDecodeGivesTheRowDotsBits()
        => Check(GgmlType.IQ4_NL, 128, &MatVec8IQ4.NLx8Zmm, &MatVec8IQ4.NLx8<VnniDot>, &IQ4NL.DotAvx2);

    private static void Q4_0x8Ymm(in Group8 g) => MatVec8.Q4_0x8(g.Interleaved, g.Nb, g.Act, g.Scales, g.Sums, g.Y, g.Rows, g.RowBytes);

    /// <summary>
    /// <paramref name="kernel"/> against the row dot and <paramref name="ymm"/> (the one-block kernel) on 8 rows of
    /// <paramref name="type"/> (f16 d + 16 nibble bytes per block); the activation side holds each block's f32 scale
    /// and <paramref name="sumScale"/>·Σa.
    /// </summary>
    private static void Check(GgmlType type, int sumScale, delegate*<in Group8, void> kernel, delegate*<in Group8, void> ymm, delegate*<byte*, byte*, int, float> rowDot)
    {
        var rng = new Random(11);
        foreach (int nb in new[] { 1, 2, 3, 5, 8, 64 })
        {
            int rowBytes = 18 * nb;
            var w = new byte[8 * rowBytes];
            var il = new byte[8 * rowBytes];
            var act = new byte[34 * nb];
            var scales = new float[nb];
            var sums = new int[nb];
            var y = new float[8];
            var yOld = new float[8];
            for (int trial = 0; trial < 60; trial++)
            {
                Fill(w, act, nb, trial, rng);
                for (int b = 0; b < nb; b++)
                {
                    scales[b] = QuantMath.HalfToSingle(BitConverter.ToUInt16(act, 34 * b));
                    int s = 0;
                    for (int i = 0; i < 32; i++)
                        s += (sbyte)act[34 * b + 2 + i];
                    sums[b] = sumScale * s;
                }
                fixed (byte* pw = w, pi = il, pa = act)
                fixed (float* ps = scales)
                fixed (int* pq = sums)
                fixed (float* py = y, po = yOld)
                {
                    Interleaved8.PackGroup(type, pw, rowBytes, nb, pi);
                    var g = new Group8 { Rows = pw, RowBytes = rowBytes, Interleaved = pi, Nb = nb, Act = pa, Scales = ps, Sums = pq, Y = py };
                    kernel(in g);
                    var gOld = g with { Y = po };
                    ymm(in gOld);
                    for (int r = 0; r < 8; r++)
                    {
                        float want = rowDot(pw + r * rowBytes, pa, nb);
                        Assert.True(Same(want, y[r]), $"{type} nb {nb} trial {trial} row {r}: {y[r]:R} vs row dot {want:R}");
                        Assert.True(Same(yOld[r], y[r]), $"{type} nb {nb} trial {trial} row {r}: {y[r]:R} vs one-block kernel {yOld[r]:R}");
                    }
                }
            }
        }
    }

    private static bool Same(float a, float b) => BitConverter.SingleToInt32Bits(a) == BitConverter.SingleToInt32Bits(b) || (float.IsNaN(a) && float.IsNaN(b));

    /// <summary>
    /// Trials 0-3: every quant byte 0x00 or 0xFF against activations of all −127 or all 127; then random. Weight scales
    /// random finite f16 (trials 4-9 also subnormal and zero ones), trial 10 one Inf, trial 11 one NaN.
    /// </summary>
    private static void Fill(byte[] w, byte[] act, int nb, int trial, Random rng)
    {
        for (int i = 0; i < w.Length; i++)
            w[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
        for (int o = 0; o < w.Length; o += 18)
        {
            int h = trial is >= 4 and < 10 && rng.Next(3) == 0 ? rng.Next(0x400) : rng.Next(0x7C00);   // subnormal / zero, or any finite
            BitConverter.TryWriteBytes(w.AsSpan(o), (ushort)(h | rng.Next(2) << 15));
        }
        if (trial == 10)
            BitConverter.TryWriteBytes(w.AsSpan(18 * rng.Next(w.Length / 18)), (ushort)0x7C00);
        if (trial == 11)
            BitConverter.TryWriteBytes(w.AsSpan(18 * rng.Next(w.Length / 18)), (ushort)0x7E01);
        for (int b = 0; b < nb; b++)
        {
            BitConverter.TryWriteBytes(act.AsSpan(34 * b), (ushort)(0x1000 + rng.Next(0x2000)));
            for (int i = 0; i < 32; i++)
                act[34 * b + 2 + i] = (byte)(trial < 4 ? (trial < 2 ? -127 : 127) : rng.Next(-127, 128));
        }
    }
}
