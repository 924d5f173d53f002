using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels;

/// <summary>
/// The f32 vector operations a kernel needs, at one width. A kernel written once, generic over a struct
/// implementing this (as the packed GEMM kernels are over <c>IByteDot</c>), is compiled by the JIT once per width
/// with every call inlined: the same instructions as a hand-written copy per width, without the copies.
/// </summary>
/// <typeparam name="TVec">The vector type (<see cref="Vector128{T}"/>, <see cref="Vector256{T}"/>, <see cref="Vector512{T}"/> of float).</typeparam>
internal unsafe interface IFloatVector<TVec> where TVec : struct
{
    /// <summary>Floats per vector.</summary>
    static abstract int Lanes { get; }
    static abstract TVec Load(float* p);
    static abstract TVec LoadUnsafe(ref float p, nuint index);
    static abstract void Store(TVec v, float* p);
    static abstract TVec Broadcast(float x);
    static abstract TVec Add(TVec a, TVec b);
    /// <summary>a·b + c, fused where the hardware has it (<c>MultiplyAddEstimate</c>).</summary>
    static abstract TVec MultiplyAdd(TVec a, TVec b, TVec c);
    static abstract float Sum(TVec v);
    /// <summary>[Σa0, Σa1, Σa2, Σa3]: the lane sums of four vectors, with the ISA's horizontal adds where it has them.</summary>
    static abstract Vector128<float> Sum4(TVec a0, TVec a1, TVec a2, TVec a3);
}

/// <summary>4-wide (SSE, ARM64 AdvSimd).</summary>
internal readonly unsafe struct Float128 : IFloatVector<Vector128<float>>
{
    public static int Lanes => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> LoadUnsafe(ref float p, nuint index) => Vector128.LoadUnsafe(ref p, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> v, float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector128<float> v) => Vector128.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector128<float> a0, Vector128<float> a1, Vector128<float> a2, Vector128<float> a3)
    {
        if (AdvSimd.Arm64.IsSupported)
            return AdvSimd.Arm64.AddPairwise(AdvSimd.Arm64.AddPairwise(a0, a1), AdvSimd.Arm64.AddPairwise(a2, a3));
        if (Sse3.IsSupported)
            return Sse3.HorizontalAdd(Sse3.HorizontalAdd(a0, a1), Sse3.HorizontalAdd(a2, a3));
        return Vector128.Create(Vector128.Sum(a0), Vector128.Sum(a1), Vector128.Sum(a2), Vector128.Sum(a3));
    }
}

/// <summary>8-wide (AVX2).</summary>
internal readonly unsafe struct Float256 : IFloatVector<Vector256<float>>
{
    public static int Lanes => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> LoadUnsafe(ref float p, nuint index) => Vector256.LoadUnsafe(ref p, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> v, float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector256<float> v) => Vector256.Sum(v);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        if (Avx.IsSupported)
        {
            // Per 128-bit lane hadd(a, b) = [a0+a1, a2+a3, b0+b1, b2+b3]: twice gives each vector's lane sum, in order.
            var h = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
            return h.GetLower() + h.GetUpper();
        }
        return Vector128.Create(Vector256.Sum(a0), Vector256.Sum(a1), Vector256.Sum(a2), Vector256.Sum(a3));
    }
}

/// <summary>16-wide (AVX-512).</summary>
internal readonly unsafe struct Float512 : IFloatVector<Vector512<float>>
{
    public static int Lanes => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> LoadUnsafe(ref float p, nuint index) => Vector512.LoadUnsafe(ref p, index);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> v, float* p) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.MultiplyAddEstimate(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Sum(Vector512<float> v) => Vector512.Sum(v);

    /// <summary>Each vector folded to 8 lanes, then <see cref="Float256.Sum4"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Sum4(Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3) =>
        Float256.Sum4(a0.GetLower() + a0.GetUpper(), a1.GetLower() + a1.GetUpper(), a2.GetLower() + a2.GetUpper(), a3.GetLower() + a3.GetUpper());
}
