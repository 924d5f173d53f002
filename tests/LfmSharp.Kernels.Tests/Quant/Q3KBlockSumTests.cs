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
/// Q3_K's integer block sum (shared by its row dot and the 8-row decode kernel) against the format's definition,
/// Σ (sc − 32)·(lo − 4·(1 − h))·a, on random and extreme blocks: both SIMD paths must give the exact total.
/// </summary>
public sealed unsafe class Q3KBlockSumTests
{
    [Avx2Fact]
    public void Avx2BlockSumEqualsTheDefinition() => Check(&Q3K.BlockSum256);

    [Avx512Fact]
    public void Avx512BlockSumEqualsTheDefinition() => Check(&Q3K.BlockSum512);

    private static void Check(delegate*<byte*, byte*, Vector256<int>> sum)
    {
        var rng = new Random(3);
        byte* x = stackalloc byte[110];
        byte* y = stackalloc byte[292];
        for (int trial = 0; trial < 200; trial++)
        {
            // Trials 0-3: all-zero / all-one bits against activations at −128 or 127 (the int16 and int32 limits).
            for (int i = 0; i < 110; i++)
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
            long want = Definition(x, q);
            long got = Vector256.Sum(sum(x, y));
            Assert.True(want == got, $"trial {trial}: {got} != {want}");
        }
    }

    private static long Definition(byte* x, sbyte* a)
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
        return total;
    }
}
