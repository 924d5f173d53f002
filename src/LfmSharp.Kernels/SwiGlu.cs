using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels;

/// <summary>
/// SwiGLU gate: effectively computes dst[i] = silu(gate[i]) · up[i], silu(a) = a / (1 + e^(−a)).
/// Shapes: gate, up, dst are [n]; dst may alias either input.
/// </summary>
internal static class SwiGlu
{
    public static void Apply(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dst)
    {
        if (gate.Length != up.Length || gate.Length != dst.Length)
            throw new ArgumentException($"SwiGlu: lengths differ (gate {gate.Length}, up {up.Length}, dst {dst.Length}).");
        if (Vector256.IsHardwareAccelerated)
            Vector256Path(gate, up, dst);
        else
            Scalar(gate, up, dst);
    }

    internal static void Scalar(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dst)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            dst[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

    internal static void Vector256Path(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> dst)
    {
        ref float pg = ref MemoryMarshal.GetReference(gate);
        ref float pu = ref MemoryMarshal.GetReference(up);
        ref float pd = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        var one = Vector256<float>.One;
        for (; i + 8 <= gate.Length; i += 8)
        {
            var g = Vector256.LoadUnsafe(ref pg, (nuint)i);
            var silu = g / (one + Vector256.Exp(-g));
            (silu * Vector256.LoadUnsafe(ref pu, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < gate.Length; i++)
        {
            float g = gate[i];
            dst[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
