using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace LfmSharp.Kernels;

/// <summary>
/// Element-wise float ops and the f32 dot product used by every f32 path (F32 matmul, attention).
/// Each op: a validating entry, a <c>Scalar</c> reference, and a vector path (the dot: one body for Vector256 and Vector512).
/// </summary>
internal static class VectorMath
{
    /// <summary>Effectively computes Σ a[i]·b[i] in f32. Lengths must match.</summary>
    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"Dot: lengths differ ({a.Length} vs {b.Length}).");
        if (Vector512.IsHardwareAccelerated && a.Length >= 64)
            return DotVector<Float512, Vector512<float>>(a, b);
        if (Vector256.IsHardwareAccelerated && a.Length >= 32)
            return DotVector<Float256, Vector256<float>>(a, b);
        return DotScalar(a, b);
    }

    internal static float DotScalar(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += a[i] * b[i];
        return sum;
    }

    /// <summary>The vector path at one width (<see cref="Float256"/>, <see cref="Float512"/>); tests call each width directly.</summary>
    internal static float DotVector<TWidth, TVec>(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        where TWidth : struct, IFloatVector<TVec> where TVec : struct
    {
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        int n = a.Length, i = 0, w = TWidth.Lanes;
        // Four independent accumulators hide the FMA latency.
        TVec s0 = default, s1 = default, s2 = default, s3 = default;
        for (; i + 4 * w <= n; i += 4 * w)
        {
            s0 = TWidth.MultiplyAdd(TWidth.LoadUnsafe(ref pa, (nuint)i), TWidth.LoadUnsafe(ref pb, (nuint)i), s0);
            s1 = TWidth.MultiplyAdd(TWidth.LoadUnsafe(ref pa, (nuint)(i + w)), TWidth.LoadUnsafe(ref pb, (nuint)(i + w)), s1);
            s2 = TWidth.MultiplyAdd(TWidth.LoadUnsafe(ref pa, (nuint)(i + 2 * w)), TWidth.LoadUnsafe(ref pb, (nuint)(i + 2 * w)), s2);
            s3 = TWidth.MultiplyAdd(TWidth.LoadUnsafe(ref pa, (nuint)(i + 3 * w)), TWidth.LoadUnsafe(ref pb, (nuint)(i + 3 * w)), s3);
        }
        for (; i + w <= n; i += w)
            s0 = TWidth.MultiplyAdd(TWidth.LoadUnsafe(ref pa, (nuint)i), TWidth.LoadUnsafe(ref pb, (nuint)i), s0);
        float sum = TWidth.Sum(TWidth.Add(TWidth.Add(s0, s1), TWidth.Add(s2, s3)));
        for (; i < n; i++)
            sum += Unsafe.Add(ref pa, i) * Unsafe.Add(ref pb, i);
        return sum;
    }

    /// <summary>dst[i] = a[i] + b[i]. dst may alias a or b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => Elementwise<AddOp>(a, b, dst, nameof(Add));

    /// <summary>dst[i] = a[i] · b[i]. dst may alias a or b.</summary>
    public static void Multiply(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => Elementwise<MultiplyOp>(a, b, dst, nameof(Multiply));

    /// <summary>dst[i] = a[i] ∘ b[i] for the operation <typeparamref name="TOp"/>: 8 at a time, then the tail.</summary>
    private static void Elementwise<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst, string op) where TOp : struct, IElementwise
    {
        CheckBinary(a, b, dst, op);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float pa = ref MemoryMarshal.GetReference(a);
            ref float pb = ref MemoryMarshal.GetReference(b);
            ref float pd = ref MemoryMarshal.GetReference(dst);
            for (; i + 8 <= a.Length; i += 8)
                TOp.Apply(Vector256.LoadUnsafe(ref pa, (nuint)i), Vector256.LoadUnsafe(ref pb, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < a.Length; i++)
            dst[i] = TOp.Apply(a[i], b[i]);
    }

    private interface IElementwise
    {
        static abstract float Apply(float a, float b);
        static abstract Vector256<float> Apply(Vector256<float> a, Vector256<float> b);
    }

    private readonly struct AddOp : IElementwise
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Apply(float a, float b) => a + b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a + b;
    }

    private readonly struct MultiplyOp : IElementwise
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Apply(float a, float b) => a * b;
        [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Apply(Vector256<float> a, Vector256<float> b) => a * b;
    }

    /// <summary>dst[i] += a · x[i] (axpy), the f32 accumulation step of attention's weighted sum of values.</summary>
    public static void MultiplyAdd(ReadOnlySpan<float> x, float a, Span<float> dst)
    {
        if (x.Length != dst.Length)
            throw new ArgumentException($"MultiplyAdd: lengths differ ({x.Length} vs {dst.Length}).");
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float px = ref MemoryMarshal.GetReference(x);
            ref float pd = ref MemoryMarshal.GetReference(dst);
            var va = Vector256.Create(a);
            for (; i + 8 <= x.Length; i += 8)
                Vector256.MultiplyAddEstimate(Vector256.LoadUnsafe(ref px, (nuint)i), va, Vector256.LoadUnsafe(ref pd, (nuint)i)).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < x.Length; i++)
            dst[i] += a * x[i];
    }

    /// <summary>Index of the largest value; ties go to the lowest index (llama.cpp greedy sampling).</summary>
    public static int ArgMax(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty)
            throw new ArgumentException("ArgMax of an empty span.", nameof(x));
        int best = 0;
        for (int i = 1; i < x.Length; i++)
        {
            if (x[i] > x[best])
                best = i;
        }
        return best;
    }

    private static void CheckBinary(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst, string op)
    {
        if (a.Length != b.Length || a.Length != dst.Length)
            throw new ArgumentException($"{op}: lengths differ ({a.Length}, {b.Length}, {dst.Length}).");
    }
}
