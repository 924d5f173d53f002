using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>A fact that xunit reports as skipped where the CPU lacks AVX-512BW or the JIT has it disabled.</summary>
public sealed class Avx512FactAttribute : FactAttribute
{
    public Avx512FactAttribute()
    {
        if (!Avx512BW.IsSupported)
            Skip = "AVX-512BW not available here (or disabled via DOTNET_EnableAVX512F/DOTNET_EnableHWIntrinsic)";
    }
}

/// <summary>
/// The integer block sums of Q2_K, Q3_K and Q5_K (each shared by its row dot and the 8-row decode kernel) against the
/// formats' definitions on random and extreme blocks: every SIMD path must give the exact totals.
/// </summary>
public sealed unsafe class KQuantBlockSumTests
{
    [Avx2Fact]
    public void Q3KAvx2BlockSumEqualsTheDefinition() => Check(110, &Q3KAvx2, &Q3KDefinition);

    [Avx512Fact]
    public void Q3KAvx512BlockSumEqualsTheDefinition() => Check(110, &Q3KAvx512, &Q3KDefinition);

    [Avx2Fact]
    public void Q5KAvx2BlockSumEqualsTheDefinition() => Check(176, &Q5KAvx2, &Q5KDefinition);

    [Avx512Fact]
    public void Q5KAvx512BlockSumEqualsTheDefinition() => Check(176, &Q5KAvx512, &Q5KDefinition);

    [Avx2Fact]
    public void Q2KAvx2BlockSumEqualsTheDefinition() => Check(84, &Q2KAvx2, &Q2KDefinition);

    [Avx512Fact]
    public void Q2KAvx512BlockSumEqualsTheDefinition() => Check(84, &Q2KAvx512, &Q2KDefinition);

    private static (long, long) Q2KAvx2(byte* x, byte* y) => (Vector256.Sum(Q2K.BlockSum256(x, y, out var m)), Vector256.Sum(m));

    private static (long, long) Q2KAvx512(byte* x, byte* y) => (Vector256.Sum(Q2K.BlockSum512(x, y, out var m)), Vector256.Sum(m));

    private static (long, long) Q3KAvx2(byte* x, byte* y) => (Vector256.Sum(Q3K.BlockSum256(x, y)), 0);

    private static (long, long) Q3KAvx512(byte* x, byte* y) => (Vector256.Sum(Q3K.BlockSum512(x, y)), 0);

    private static (long, long) Q5KAvx2(byte* x, byte* y) => (Vector256.Sum(Q5K.BlockSum256(x, y, out var m)), Vector256.Sum(m));

    private static (long, long) Q5KAvx512(byte* x, byte* y) => (Vector256.Sum(Q5K.BlockSum512(x, y, out var m)), Vector256.Sum(m));

    /// <summary>Random blocks (bytes of <paramref name="blockBytes"/>) and Q8_K blocks with consistent bsums; trials 0-3 are all-zero / all-one bits against activations at −128 or 127 (the int16 and int32 limits).</summary>
    private static void Check(int blockBytes, delegate*<byte*, byte*, (long, long)> sum, delegate*<byte*, sbyte*, (long, long)> definition)
    {
        var rng = new Random(3);
        byte* x = stackalloc byte[blockBytes];
        byte* y = stackalloc byte[292];
        for (int trial = 0; trial < 200; trial++)
        {
            for (int i = 0; i < blockBytes; i++)
                x[i] = trial < 4 ? (byte)(trial % 2 == 0 ? 0 : 0xFF) : (byte)rng.Next(256);
            sbyte* q = (sbyte*)(y + 4);
            for (int i = 0; i < 256; i++)
                q[i] = trial < 4 ? (sbyte)(trial < 2 ? -128 : 127) : (sbyte)rng.Next(-128, 128);
            short* bsums = (short*)(y + 260);
            for (int j = 0; j < 16; j++)
            {
                int s = 0;
                for (int l = 0; l < 16; l++)
                    s += q[16 * j + l];
                bsums[j] = (short)s;
            }
            var want = definition(x, q);
            var got = sum(x, y);
            Assert.True(want == got, $"trial {trial}: {got} != {want}");
        }
    }

    /// <summary>Σ (sc − 32)·(lo − 4·(1 − h))·a.</summary>
    private static (long, long) Q3KDefinition(byte* x, sbyte* a)
    {
        sbyte* sc = stackalloc sbyte[16];
        Q3K.UnpackScales(x + 96, (uint*)sc);
        long total = 0;
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++)
                {
                    int w = ((x[32 + 32 * c + l] >> (2 * k)) & 3) - (((x[l] >> (4 * c + k)) & 1) != 0 ? 0 : 4);
                    total += (long)(sc[8 * c + 2 * k + l / 16] - 32) * w * a[128 * c + 32 * k + l];
                }
        return (total, 0);
    }

    /// <summary>Σ sc_j·q·a and Σ m_j·Σ a over the 16 sub-blocks of 16 (sc_j, m_j: the low and high nibble of byte j).</summary>
    private static (long, long) Q2KDefinition(byte* x, sbyte* a)
    {
        long total = 0, minTotal = 0;
        for (int i = 0; i < 256; i++)
        {
            int c = i / 128, k = (i / 32) & 3, l = i % 32, j = i / 16;
            int q = (x[16 + 32 * c + l] >> (2 * k)) & 3;
            total += (long)(x[j] & 0x0F) * q * a[i];
            minTotal += (long)(x[j] >> 4) * a[i];
        }
        return (total, minTotal);
    }

    /// <summary>Σ sc_j·(nibble + 16·h)·a and Σ m_j·Σ a over the 8 sub-blocks of 32.</summary>
    private static (long, long) Q5KDefinition(byte* x, sbyte* a)
    {
        Q4K.UnpackScaleMin(x + 4, out ulong scales, out ulong mins);
        long total = 0, minTotal = 0;
        for (int i = 0; i < 256; i++)
        {
            int j = i / 64, hi = (i / 32) & 1, l = i % 32;
            int sub = 2 * j + hi;
            int w = ((x[48 + 32 * j + l] >> (4 * hi)) & 0x0F) + 16 * ((x[16 + l] >> sub) & 1);
            total += (long)(byte)(scales >> (8 * sub)) * w * a[i];
            minTotal += (long)(byte)(mins >> (8 * sub)) * a[i];
        }
        return (total, minTotal);
    }
}
