using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The decoded batch path of the grid and ternary types (<see cref="IQDecoded"/>): each block integer on the
/// AVX-512, AVX2 and scalar paths equals the scalar twin's, the decoded row dot is bit-identical to the type's scalar
/// row dot (extreme scales and the full activation range included), and a batched matmul equals the per-row dots for
/// batches 1–21. The suite also runs with AVX-512 and with all intrinsics off, which exercises the other paths.
/// </summary>
public sealed unsafe class IQDecodedTests
{
    private static readonly GgmlType[] Decoded =
    [
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S,
        GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
    ];

    public static TheoryData<GgmlType> DecodedTypes() => [.. Decoded];

    [Theory]
    [MemberData(nameof(DecodedTypes))]
    public void Every_block_integer_path_equals_the_scalar_and_the_row_dot_bits_are_the_scalar_dots(GgmlType type)
    {
        var k = TypeTraits.For(type);
        Assert.NotNull(k.Decoder);
        var rng = new Random(77 + (int)type);
        const int nb = 3, tokens = 5;
        int size = GgmlTypes.TypeSize(type);
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                var w = Weights(type, nb, rng, fill, mixed);
                var acts = new byte[tokens][];
                for (int t = 0; t < tokens; t++)
                    acts[t] = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: false, mixed);
                var act = acts.SelectMany(a => a).ToArray();
                var scratch = new byte[nb * IQDecoded.BlockBytes];
                var y = new float[tokens];
                fixed (byte* pw = w, pa = act, ps = scratch)
                fixed (float* py = y)
                {
                    IQDecoded.Row(k.Decoder!, pw, size, nb, pa, 292 * nb, tokens, ps, py, 1);
                    for (int t = 0; t < tokens; t++)
                    {
                        float want = k.DotScalar(w, acts[t], nb);
                        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[t]),
                            $"{type} {fill} mixed={mixed} token {t}: got {y[t]:R}, want {want:R}");
                        for (int b = 0; b < nb; b++)
                        {
                            byte* d = ps + b * IQDecoded.BlockBytes;
                            sbyte* a = (sbyte*)(pa + 292 * (nb * t + b) + 4);
                            int isum = IQDecoded.BlockDotScalar(d, a);
                            if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
                                Assert.Equal(isum, IQDecoded.BlockDotAvx2(d, a));
                            if (IQDecoded.Use512)
                                Assert.Equal(isum, IQDecoded.BlockDot512(d, a));
                        }
                    }
                }
            }
    }

    [Theory]
    [MemberData(nameof(DecodedTypes))]
    public void A_batched_matmul_equals_the_per_row_dots_for_batches_1_to_21(GgmlType type)
    {
        const int rows = 13, cols = 512;
        var rng = new Random(5 + (int)type);
        int nb = cols / 256;
        var bytes = GC.AllocateArray<byte>(rows * nb * GgmlTypes.TypeSize(type), pinned: true);
        for (int r = 0; r < rows; r++)
            Weights(type, nb, rng, Fill.Random, mixedScales: r % 3 == 0).CopyTo(bytes.AsSpan(r * nb * GgmlTypes.TypeSize(type)));
        var x = new float[21 * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 97 == 0 ? 50f : 1f);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 21, cols);
        fixed (byte* p = bytes)
        {
            var w = new WeightMatrix(type, rows, cols, p);
            for (int tokens = 1; tokens <= 21; tokens++)
            {
                var xt = x.AsSpan(0, tokens * cols);
                var want = new float[tokens * rows];
                var got = new float[tokens * rows];
                MatMul.Reference(w, xt, want, MatMulPrecision.LlamaCpp);
                MatMul.Compute(w, xt, got, ws);
                Assert.True(MemoryMarshal.AsBytes(want.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(got.AsSpan())), $"{type}: batch {tokens} differs from the row dots");
            }
        }
    }
}
