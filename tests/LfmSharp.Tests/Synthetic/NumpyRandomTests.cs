using System.Runtime.InteropServices;
using System.Text;
using LfmSharp.Synthetic;

namespace LfmSharp.Tests.Synthetic;

/// <summary>The NumPy-compatible RNG pieces against values printed by NumPy 1.24 / zlib.</summary>
public class NumpyRandomTests
{
    [Fact]
    public void Crc32_MatchesZlib()
    {
        // zlib.crc32(b"token_embd.weight"), zlib.crc32(b"")
        Assert.Equal(1301669772u, Crc32.Compute(Encoding.UTF8.GetBytes("token_embd.weight")));
        Assert.Equal(0u, Crc32.Compute([]));
        // The standard CRC-32 check value.
        Assert.Equal(0xCBF43926u, Crc32.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void SeedSequenceAndPcg64_MatchNumpy()
    {
        // numpy.random.SeedSequence([42, 1301669772]).generate_state(4, numpy.uint64)
        var ss = new NumpySeedSequence(42, 1301669772);
        Assert.Equal([7220148469927198404UL, 8755809812926934868UL, 3877210785757964185UL, 8266567435610445832UL], ss.GenerateState64(4));
        // numpy.random.PCG64(that).random_raw(3)
        var rng = new Pcg64(ss);
        Assert.Equal(9661764307463514010UL, rng.NextUInt64());
        Assert.Equal(17551418374394469847UL, rng.NextUInt64());
        Assert.Equal(9602862567129527657UL, rng.NextUInt64());
    }

    [Fact]
    public void SeedSequence_SplitsLargeIntsAndFoldsLongEntropyLikeNumpy()
    {
        // A seed above 2^32 becomes two words; six words exceed the pool of four (numpy 1.24 output).
        Assert.Equal([18224931404792227996UL, 1492905930482752107UL, 11645552633659384973UL, 7101629405089672786UL],
            new NumpySeedSequence(123456789012, 7).GenerateState64(4));
        Assert.Equal([11778172056588285136UL, 18281699200023148781UL, 18354453652805242515UL, 13383209423340403004UL],
            new NumpySeedSequence(0, 1, 2, 3, 4, 5).GenerateState64(4));
        var rng = new Pcg64(new NumpySeedSequence(123456789012, 7));
        var z = new float[4];
        NumpyNormal.Fill(ref rng, z);
        Assert.Equal([-0.8085275292396545f, 0.04014001041650772f, -0.8161940574645996f, -0.11951187998056412f], z);
    }

    [Fact]
    public void StandardNormal_MatchesNumpy()
    {
        // numpy.random.default_rng([42, 1301669772]).standard_normal(5, dtype=numpy.float32)
        var rng = new Pcg64(new NumpySeedSequence(42, 1301669772));
        var z = new float[5];
        NumpyNormal.Fill(ref rng, z);
        Assert.Equal([-0.9250583f, -0.75485057f, -0.33767733f, 0.38856766f, 0.91695476f], z);
    }

    [Fact]
    public void ZigguratTables_MatchNumpysStoredTables()
    {
        // Entries of numpy/random/src/distributions/ziggurat_constants.h (ki_float, wi_float, fi_float).
        Assert.Equal(0x007799ECu, NumpyNormal.Ki[0]);
        Assert.Equal(0u, NumpyNormal.Ki[1]);
        Assert.Equal(0x006045F5u, NumpyNormal.Ki[2]);
        Assert.Equal(0x007F754Bu, NumpyNormal.Ki[157]);
        Assert.Equal(0x007F5CB3u, NumpyNormal.Ki[100]);
        Assert.Equal(0x0078D2D2u, NumpyNormal.Ki[255]);
        Assert.Equal(4.66198677960027669255e-07f, NumpyNormal.Wi[0]);
        Assert.Equal(2.56588335019207033255e-08f, NumpyNormal.Wi[1]);
        Assert.Equal(4.35608969373823260746e-07f, NumpyNormal.Wi[255]);
        Assert.Equal(1.0f, NumpyNormal.Fi[0]);
        Assert.Equal(9.77101701267671596263e-01f, NumpyNormal.Fi[1]);
        Assert.Equal(1.26028593049859797236e-03f, NumpyNormal.Fi[255]);
    }

    [Fact]
    public void Log1pf_IsFaithfulEverywhereAndEqualsGlibcWhereGlibcUsesFdlibm()
    {
        // The tail of the ziggurat evaluates log1pf(-u) for u = k / 2^24. Our emulation of fdlibm's algorithm must be
        // within one ulp of the true value for these inputs, and identical to the C library's log1pf on glibc
        // releases that still use fdlibm's algorithm (up to 2.40; the fixtures were made with 2.36).
        bool compareWithLibc = GlibcUsesFdlibmLog1pf();
        int unfaithful = 0, differences = 0, firstBad = -1;
        // A stride coprime to 2 visits every bit pattern of the low bits; ~2.4 M of the 16.8 M inputs keep the test fast.
        for (int k = 0; k < 1 << 24; k += 7)
        {
            float u = k * (1.0f / 16777216.0f);
            float ours = NumpyNormal.FdlibmLog1pf(-u);
            float nearest = (float)Math.Log(1.0 - u);
            if (ours != nearest && ours != MathF.BitDecrement(nearest) && ours != MathF.BitIncrement(nearest))
            {
                unfaithful++;
                firstBad = firstBad < 0 ? k : firstBad;
            }
            if (compareWithLibc && BitConverter.SingleToInt32Bits(ours) != BitConverter.SingleToInt32Bits(Libm.log1pf(-u)))
            {
                differences++;
                firstBad = firstBad < 0 ? k : firstBad;
            }
        }
        Assert.True(unfaithful == 0 && differences == 0, $"{unfaithful} results off by more than one ulp, {differences} differ from libm; first at k = {firstBad}");
    }

    private static bool GlibcUsesFdlibmLog1pf()
    {
        if (!OperatingSystem.IsLinux())
            return false;
        try
        {
            string v = Marshal.PtrToStringAnsi(Libm.gnu_get_libc_version()) ?? "";
            return Version.TryParse(v, out var ver) && ver.Major == 2 && ver.Minor <= 40;
        }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    }

    private static class Libm
    {
        [DllImport("libm.so.6")]
        public static extern float log1pf(float x);

        [DllImport("libc.so.6")]
        public static extern IntPtr gnu_get_libc_version();
    }
}
