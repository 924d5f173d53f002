using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

public sealed class CpuTuningTests
{
    [Theory]
    [InlineData(null, "AuthenticAMD", 0x1A, true)]    // Zen 5: measured faster with the lead
    [InlineData(null, "AuthenticAMD", 0x1B, true)]
    [InlineData(null, "AuthenticAMD", 0x19, false)]   // Zen 3 / Zen 4: measured slower on Zen 4
    [InlineData(null, "GenuineIntel", 6, false)]      // not measured: the hardware's prefetchers alone
    [InlineData(null, "", 0, false)]                  // not x86
    [InlineData("0", "AuthenticAMD", 0x1A, false)]    // the override wins both ways
    [InlineData("1", "GenuineIntel", 6, true)]
    [InlineData("yes", "AuthenticAMD", 0x19, false)]  // anything else is no override
    public void TheLeadIsTakenOnlyWhereItWasMeasuredToHelp(string? setting, string vendor, int family, bool expected)
        => Assert.Equal(expected, CpuTuning.DecidePrefetch(setting, vendor, family));

    [Theory]
    [InlineData(null, "AuthenticAMD", 0x19, false)]   // Zen 4: 512-bit ops in two halves, the ymm kernels were faster
    [InlineData(null, "AuthenticAMD", 0x1A, true)]    // Zen 5
    [InlineData(null, "GenuineIntel", 6, true)]       // Intel's AVX-512 parts
    [InlineData("1", "AuthenticAMD", 0x19, true)]     // the override wins both ways
    [InlineData("0", "AuthenticAMD", 0x1A, false)]
    public void TheZmmDecodeKernelsRunExceptOnZen4(string? setting, string vendor, int family, bool expected)
        => Assert.Equal(expected, CpuTuning.DecideZmmDecode(setting, vendor, family));

    [Fact]
    public void TheCpuIsReadFromCpuid()
    {
        if (!X86Base.IsSupported)
        {
            Assert.Equal("", CpuTuning.Vendor());
            Assert.Equal(0, CpuTuning.Family());
            return;
        }
        // Every x86-64 CPU reports a 12-character vendor and a family of 6 (Intel) or 0Fh and above (AMD's 0Fh + ext).
        string vendor = CpuTuning.Vendor();
        Assert.Equal(12, vendor.Length);
        Assert.All(vendor, c => Assert.InRange(c, ' ', '~'));
        int family = CpuTuning.Family();
        Assert.True(family == 6 || family >= 0xF, $"family {family:X}");
        string? cpuinfo = File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : null;
        if (cpuinfo is not null)
        {
            Assert.Contains($"vendor_id\t: {vendor}", cpuinfo, StringComparison.Ordinal);
            Assert.Contains($"cpu family\t: {family}\n", cpuinfo, StringComparison.Ordinal);
        }
    }
}
