using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The choices of the decode kernels that depend on the CPU's microarchitecture rather than its instruction sets,
/// decided once per process from CPUID, here only (the type table and the kernels read these fields).
/// </summary>
/// <remarks>
/// Measured on two AMD EPYCs, 1.2B shape, 2 threads, tg64 in alternated runs:
/// <list type="bullet">
/// <item>Zen 5 (family 1Ah: 512-bit datapaths, two cores pull 55–65 GB/s): prefetching the interleaved stream 4 KiB
/// ahead gave decode +7–12 % (Q4_0 / Q4_K_M / Q6_K / Q8_0), and the zmm decode kernels beat their ymm forms.</item>
/// <item>Zen 4 (family 19h: 512-bit ops run as two 256-bit halves, ~33 GB/s for both cores together): the same
/// prefetch cost 10–30 % (Q4_K_M 28–30 → 23 tok/s with it, Q6_K 22–24 → 17–22; a plain 1 GiB read with one
/// prefetch 1–4 KiB ahead per 128 B dropped from ~29 to ~22 GB/s), and the ymm kernels of Q4_0 and Q4_K beat the zmm
/// ones (Q4_K_M 28–30 → 33–40 tok/s, Q4_0 33–36 → 37–38).</item>
/// </list>
/// Other CPUs were not measured: they get no software prefetch (the hardware's prefetchers alone, as llama.cpp's
/// decode kernels) and the zmm kernels wherever AVX-512 is present. The kernels over GGUF rows read 8 rows that lie a
/// row apart (8 streams per group) and keep <see cref="MatVec8.PrefetchNext"/> everywhere.
/// <c>LFMSHARP_PREFETCH=0|1</c> and <c>LFMSHARP_ZMM_DECODE=0|1</c> override the choices (for benchmarks).
/// </remarks>
internal static class CpuTuning
{
    private static readonly string s_vendor = Vendor();
    private static readonly int s_family = Family();

    /// <summary>True where the interleaved decode kernels prefetch ahead of their stream (<see cref="MatVec8.InterleavedLead"/>).</summary>
    public static readonly bool StreamPrefetch = DecidePrefetch(Environment.GetEnvironmentVariable("LFMSHARP_PREFETCH"), s_vendor, s_family);

    /// <summary>
    /// True where the Q4_0 and Q4_K decode kernels take their 512-bit forms (given AVX-512); false on CPUs that split
    /// 512-bit operations in two, where the ymm forms decode faster.
    /// </summary>
    public static readonly bool ZmmDecode = DecideZmmDecode(Environment.GetEnvironmentVariable("LFMSHARP_ZMM_DECODE"), s_vendor, s_family);

    /// <summary>The prefetch policy: an override of "0" / "1" wins; else prefetch on AMD family 1Ah and later only.</summary>
    internal static bool DecidePrefetch(string? setting, string vendor, int family)
        => Override(setting) ?? (vendor == "AuthenticAMD" && family >= 0x1A);

    /// <summary>The zmm decode policy: an override of "0" / "1" wins; else all but AMD family 19h (Zen 4, the first AMD with AVX-512).</summary>
    internal static bool DecideZmmDecode(string? setting, string vendor, int family)
        => Override(setting) ?? !(vendor == "AuthenticAMD" && family == 0x19);

    private static bool? Override(string? setting) => setting switch
    {
        "0" => false,
        "1" => true,
        _ => null,
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
