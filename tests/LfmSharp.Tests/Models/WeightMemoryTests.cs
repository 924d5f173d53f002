using System.Globalization;
using LfmSharp.Models;

namespace LfmSharp.Tests.Models;

public sealed unsafe class WeightMemoryTests
{
    [Fact]
    public void LargeBlocksAreHugePageAlignedAndLandOnHugePagesWhereTheSystemAllowsThem()
    {
        const long size = 16L << 20;
        byte* p = WeightMemory.Allocate(size);
        try
        {
            new Span<byte>(p, (int)size).Fill(0x5A);   // touch every page
            Assert.Equal(0x5A, p[size - 1]);
            if (!OperatingSystem.IsLinux())
                return;
            Assert.Equal(0, (long)p % (2 << 20));
            // With THP "always" or "madvise" (not "never") the kernel backs the advised range with 2 MiB pages.
            const string thp = "/sys/kernel/mm/transparent_hugepage/enabled";
            if (!File.Exists(thp) || File.ReadAllText(thp).Contains("[never]", StringComparison.Ordinal))
                return;
            Assert.True(HugeKiBAt((nint)p) >= 2048, "no AnonHugePages in the block's mapping (/proc/self/smaps)");
        }
        finally
        {
            WeightMemory.Free(p);
        }
    }

    [Fact]
    public void SmallBlocksAreCacheLineAligned()
    {
        byte* p = WeightMemory.Allocate(4096);
        try
        {
            Assert.Equal(0, (long)p % 64);
        }
        finally
        {
            WeightMemory.Free(p);
        }
    }

    /// <summary>AnonHugePages (KiB) of the /proc/self/smaps mapping that holds <paramref name="address"/>.</summary>
    private static long HugeKiBAt(nint address)
    {
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal), space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && long.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long start)
                && long.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out long end))
                inside = start <= address && address < end;
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(14).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        }
        return 0;
    }
}
