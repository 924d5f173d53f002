using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The stream order of Q4_K / Q6_K super-blocks (<see cref="KStream"/>): what the decode kernels rely on, and the
/// vector conversions against their value-by-value twins.
/// </summary>
public sealed unsafe class KStreamTests
{
    [Fact]
    public void StreamOrderIsAPermutationWhoseDwordsLineUpWithSubBlocks()
    {
        var seen4 = new bool[256];
        var seen6 = new bool[256];
        for (int s = 0; s < 256; s++)
        {
            int n4 = KStream.Q4KNatural(s), n6 = KStream.Q6KNatural(s);
            Assert.False(seen4[n4]);
            Assert.False(seen6[n6]);
            seen4[n4] = seen6[n6] = true;
            int dword = (s & 31) >> 2;
            // Q4_K: dword d of every vector is sub-block d (32 values); Q6_K: of half h, sub-block 8h + d (16 values).
            Assert.Equal(dword, n4 / 32);
            Assert.Equal(8 * (s >> 7) + dword, n6 / 16);
            // A dword keeps 4 consecutive values, so every vpmaddubsw pair stays inside one sub-block.
            Assert.Equal(n4 & ~3, KStream.Q4KNatural(s & ~3));
            Assert.Equal(n6 & ~3, KStream.Q6KNatural(s & ~3));
        }
    }

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ScalarConversionMovesEachValueToItsStreamPosition(bool q6)
    {
        int size = q6 ? 192 : 128;
        var src = RandomBytes(size, q6 ? 6 : 4);
        var stream = new byte[size];
        var back = new byte[size];
        fixed (byte* ps = src, pt = stream, pb = back)
        {
            KStream.Scalar(ps, pt, q6, toStream: true);
            for (int s = 0; s < 256; s++)
            {
                int n = q6 ? KStream.Q6KNatural(s) : KStream.Q4KNatural(s);
                int want = q6 ? KStream.Q6KValue(ps, n) : KStream.Q4KValue(ps, n);
                Assert.Equal(want, q6 ? KStream.Q6KValue(pt, s) : KStream.Q4KValue(pt, s));
            }
            KStream.Scalar(pt, pb, q6, toStream: false);
        }
        Assert.Equal(src, back);
        Assert.NotEqual(src, stream);
    }

    [Avx2Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    [InlineData(true, 4)]
    public void VectorConversionsMatchTheScalarTwins(bool q6, int seed)
    {
        Assert.True(Avx2.IsSupported);
        int size = q6 ? 192 : 128;
        var src = RandomBytes(size, seed);
        var vec = new byte[size];
        var sca = new byte[size];
        var back = new byte[size];
        fixed (byte* ps = src, pv = vec, pc = sca, pb = back)
        {
            if (q6) KStream.Q6KToStream(ps, pv); else KStream.Q4KToStream(ps, pv);
            KStream.Scalar(ps, pc, q6, toStream: true);
            Assert.Equal(sca, vec);
            if (q6) KStream.Q6KFromStream(pv, pb); else KStream.Q4KFromStream(pv, pb);
            Assert.Equal(src, back);
        }

        // Activations: 3 super-blocks of a Q8_K row (d, 256 quants, 16 bsums each).
        var act = RandomBytes(3 * 292, seed + 10);
        var want = new byte[3 * 256];
        var got = new byte[3 * 256];
        fixed (byte* pa = act, pw = want, pg = got)
        {
            KStream.ActivationsScalar(pa, 3, pw, q6);
            if (q6) KStream.Q6KActivations(pa, 3, pg); else KStream.Q4KActivations(pa, 3, pg);
        }
        Assert.Equal(want, got);
    }
}
