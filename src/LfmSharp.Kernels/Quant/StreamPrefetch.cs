using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Whether the 8-row decode kernels over an interleaved copy prefetch their own weight stream
/// <see cref="MatVec8.InterleavedLead"/> bytes ahead. Decided once per process from the CPU, here only.
/// </summary>
/// <remarks>
/// An interleaved copy is one sequential stream per group, which the hardware prefetchers follow on their own. On
/// Zen 5 (AMD family 1Ah), whose two cores pull 55–65 GB/s, the extra requests kept more lines in flight: decode
/// +7–12 % (Q4_0 / Q4_K_M / Q6_K / Q8_0). On Zen 4 (family 19h, ~33 GB/s for both cores together) the same
/// requests cost 10–30 % of decode (1.2B shape, 2 threads: Q4_K_M 27 → 34 tok/s, Q6_K 19 → 24–30 without them), and a
/// plain read of 1 GiB with one prefetch 1–4 KiB ahead per 128 B dropped from ~29 to ~22 GB/s. Other CPUs were not
/// measured and get the hardware's behaviour, as llama.cpp's decode kernels do. The kernels over GGUF rows read 8 rows
/// that lie a row apart (8 streams per group) and keep <see cref="MatVec8.PrefetchNext"/> everywhere.
/// <c>LFMSHARP_PREFETCH=0|1</c> overrides the choice (for benchmarks).
/// </remarks>
internal static class StreamPrefetch
{
    /// <summary>True where the interleaved decode kernels prefetch ahead of their stream.</summary>
    public static readonly bool Enabled = Decide(Environment.GetEnvironmentVariable("LFMSHARP_PREFETCH"), Vendor(), Family());

    /// <summary>The policy: an override of "0" / "1" wins; else prefetch on AMD family 1Ah and later only.</summary>
    internal static bool Decide(string? setting, string vendor, int family) => setting switch
    {
        "0" => false,
        "1" => true,
        _ => vendor == "AuthenticAMD" && family >= 0x1A,
    };

    /// <summary>The CPUID vendor string ("AuthenticAMD", "GenuineIntel"), or "" off x86.</summary>
    internal static string Vendor()
    {
        if (!X86Base.IsSupported)
            return "";
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<int> words = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(System.Runtime.InteropServices.MemoryMarshal.AsBytes(words));
    }

    /// <summary>The CPUID display family (base family, plus the extended family when the base is 0Fh), or 0 off x86.</summary>
    internal static int Family()
    {
        if (!X86Base.IsSupported)
            return 0;
        int eax = X86Base.CpuId(1, 0).Eax;
        int family = (eax >> 8) & 0xF;
        return family == 0xF ? family + ((eax >> 20) & 0xFF) : family;
    }
}
