using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Tests;

/// <summary>
/// A fact that runs only in the CI legs that switch instruction sets off (scripts/test.sh sets
/// <c>LFMSHARP_ISA_CEILING</c> next to the runtime's knobs) and is reported as skipped elsewhere.
/// </summary>
public sealed class IsaLegFactAttribute : FactAttribute
{
    public IsaLegFactAttribute()
    {
        if (Environment.GetEnvironmentVariable(IsaLegTests.CeilingVariable) is null)
            Skip = $"not a reduced-ISA leg ({IsaLegTests.CeilingVariable} unset)";
    }
}

/// <summary>
/// The reduced-ISA legs are only worth their time if the runtime's knobs really switched the wider paths off: .NET 10
/// renamed them (<c>DOTNET_EnableAVX512F</c> is no longer read; <c>DOTNET_EnableAVX512</c> is), and a knob the runtime
/// ignores leaves a leg silently testing the same paths as the full one on the machines that have AVX-512.
/// </summary>
public sealed class IsaLegTests
{
    public const string CeilingVariable = "LFMSHARP_ISA_CEILING";

    [IsaLegFact]
    public void TheLegsKnobsSwitchedTheWiderInstructionSetsOff()
    {
        string ceiling = Environment.GetEnvironmentVariable(CeilingVariable)!;
        switch (ceiling)
        {
            case "avx2":
                // What an AVX2-only x86 (Haswell .. Zen 3) offers: no AVX-512 of any width, no VEX VNNI.
                Assert.False(Avx512F.IsSupported, "AVX-512 still on: the leg's knob (DOTNET_EnableAVX512=0) was not honoured");
                Assert.False(Vector512.IsHardwareAccelerated, "512-bit vectors still accelerated");
                Assert.False(AvxVnni.IsSupported, "AVX-VNNI still on: DOTNET_EnableAVXVNNI=0 was not honoured");
                break;
            case "none":
                Assert.False(Vector128.IsHardwareAccelerated, "SIMD still on: DOTNET_EnableHWIntrinsic=0 was not honoured");
                Assert.False(Sse2.IsSupported || AdvSimd.IsSupported, "SSE2/AdvSimd still reported");
                break;
            default:
                Assert.Fail($"{CeilingVariable}={ceiling}: expected avx2 or none");
                break;
        }
    }
}
