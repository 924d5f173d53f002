using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The TQ1_0 / TQ2_0 SIMD paths: the AVX2 and AVX-512BW block sums (which drop the +1 offset through the Q8_K bsums)
/// against the formats' definition in long arithmetic, the 8-row decode kernel against the scalar row dot bit for bit
/// (Inf/NaN scales included), the SIMD super-block decoders against their scalar twins, and matmuls of 1–3 tokens
/// (one 8-row group next to ragged rows, plain and fused SwiGLU) against the row dots. The suite's AVX2-only and
/// no-SIMD legs run the other paths.
/// </summary>
public sealed unsafe class TernaryKernelTests
{
    public static TheoryData<GgmlType> Types() => [GgmlType.TQ1_0, GgmlType.TQ2_0];

    [Avx2Theory]
    [MemberData(nameof(Types))]
    public void Avx2BlockSumEqualsTheDefinition(GgmlType type) => CheckBlockSums(type, wide: false);

    [Avx512Fact]
    public void Tq1Avx512BlockSumEqualsTheDefinition() => CheckBlockSums(GgmlType.TQ1_0, wide: true);

    [Avx512Fact]
    public void Tq2Avx512BlockSumEqualsTheDefinition() => CheckBlockSums(GgmlType.TQ2_0, wide: true);

    [Avx2Theory]
    [MemberData(nameof(Types))]
    public void EightRowKernelHasTheScalarRowDotsBits(GgmlType type)
    {
        var k = TypeTraits.For(type);
        Assert.True(k.Decode8 != null, $"{type} has no 8-row kernel");
        var rng = new Random(31 + (int)type);
        int size = GgmlTypes.TypeSize(type);
        foreach (int nb in new[] { 1, 3, 8 })
            foreach (var fill in Fills)
                foreach (bool mixed in new[] { false, true })
                {
                    // 9 rows so the next-group prefetch reads memory of the array.
                    var w = new byte[9 * nb * size];
                    for (int r = 0; r < 9; r++)
                        Weights(type, nb, rng, fill, mixed).CopyTo(w, r * nb * size);
                    if (fill == Fill.Extremes && mixed)
                        SetScale(type, w.AsSpan(3 * nb * size + (nb - 1) * size, size), 0x7C00);   // +Inf: the exact fallback
                    var a = Activations(GgmlType.Q8_K, 256 * nb, rng, symmetric: false, mixed);
                    CheckGroup(k, k.Decode8, w, a, nb, size, $"{type} nb={nb} {fill} mixed={mixed}");
                    // The generic kernel too: TQ2_0's table entry takes it only without AVX-512BW.
                    delegate*<in Group8, void> generic = type == GgmlType.TQ1_0 ? &MatVec8TQ.Group<TQ1Rows> : &MatVec8TQ.Group<TQ2Rows>;
                    CheckGroup(k, generic, w, a, nb, size, $"{type} generic nb={nb} {fill} mixed={mixed}");
                }
    }

    [Fact]
    public void Tq1DecodeBlockEqualsItsScalarTwin()
    {
        var rng = new Random(5);
        var scratch = new sbyte[256];
        var want = new sbyte[256];
        short* ls = stackalloc short[16], lsWant = stackalloc short[16];
        foreach (var fill in Fills)
        {
            var w = Weights(GgmlType.TQ1_0, 1, rng, fill, mixedScales: true);
            fixed (byte* pw = w)
            fixed (sbyte* q = scratch, qw = want)
            {
                float d = TQ1_0.DecodeBlock(pw, q, ls), dw = TQ1_0.DecodeBlockScalar(pw, qw, lsWant);
                Assert.Equal(BitConverter.SingleToInt32Bits(dw), BitConverter.SingleToInt32Bits(d));
                Assert.Equal(want, scratch);
                Assert.True(new Span<short>(ls, 16).SequenceEqual(new Span<short>(lsWant, 16)));
            }
        }
    }

    [Fact]
    public void Tq2DecodeBlockGivesTheCodesLessOne()
    {
        var rng = new Random(6);
        var scratch = new sbyte[256];
        short* ls = stackalloc short[16];
        foreach (var fill in Fills)
        {
            var w = Weights(GgmlType.TQ2_0, 1, rng, fill, mixedScales: true);
            fixed (byte* pw = w)
            fixed (sbyte* q = scratch)
                TQ2_0.DecodeBlock(pw, q, ls);
            for (int j = 0; j < 256; j++)
                Assert.Equal((w[32 * (j / 128) + j % 32] >> (2 * (j % 128 / 32)) & 3) - 1, scratch[j]);
            for (int g = 0; g < 16; g++)
                Assert.Equal(1, ls[g]);
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void DecodeMatMulsEqualTheRowDots(GgmlType type)
    {
        const int rows = 21, cols = 768;
        var rng = new Random(17 + (int)type);
        int nb = cols / 256, rowBytes = nb * GgmlTypes.TypeSize(type);
        var gate = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        var up = GC.AllocateArray<byte>(rows * rowBytes, pinned: true);
        for (int r = 0; r < rows; r++)
        {
            Weights(type, nb, rng, Fill.Random, mixedScales: r % 4 == 1).CopyTo(gate.AsSpan(r * rowBytes));
            Weights(type, nb, rng, Fill.Random, mixedScales: r % 5 == 2).CopyTo(up.AsSpan(r * rowBytes));
        }
        var x = new float[3 * cols];
        for (int i = 0; i < x.Length; i++)
            x[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 89 == 0 ? 40f : 1f);
        using var pool = new KernelThreadPool(2);
        var ws = new MatMulWorkspace(pool, 3, cols);
        fixed (byte* pg = gate, pu = up)
        {
            var wg = new WeightMatrix(type, rows, cols, pg);
            var wu = new WeightMatrix(type, rows, cols, pu);
            for (int tokens = 1; tokens <= 3; tokens++)
            {
                var xt = x.AsSpan(0, tokens * cols);
                var want = new float[tokens * rows];
                var wantUp = new float[tokens * rows];
                var got = new float[tokens * rows];
                MatMul.Reference(wg, xt, want, MatMulPrecision.LlamaCpp);
                MatMul.Compute(wg, xt, got, ws);
                Assert.True(Bits(want).SequenceEqual(Bits(got)), $"{type}: {tokens} tokens differ from the row dots");

                MatMul.Reference(wu, xt, wantUp, MatMulPrecision.LlamaCpp);
                SwiGlu.Apply(want, wantUp, want);
                var upScratch = new float[tokens * rows];
                MatMul.ComputeSwiGlu(wg, wu, xt, got, upScratch, ws);
                Assert.True(Bits(wantUp).SequenceEqual(Bits(upScratch)), $"{type}: fused up, {tokens} tokens");
                for (int i = 0; i < got.Length; i++)
                    Assert.True(MathF.Abs(want[i] - got[i]) <= 1e-5f * MathF.Max(1f, MathF.Abs(want[i])), $"{type}: fused SwiGLU [{i}] {got[i]} vs {want[i]}");
            }
        }
    }

    private static ReadOnlySpan<byte> Bits(float[] v) => MemoryMarshal.AsBytes(v.AsSpan());

    private static void CheckGroup(TypeTraits k, delegate*<in Group8, void> kernel, byte[] w, byte[] a, int nb, int size, string what)
    {
        var y = new float[8];
        fixed (byte* pw = w, pa = a)
        fixed (float* py = y)
        {
            var g = new Group8 { Rows = pw, RowBytes = nb * size, Nb = nb, Act = pa, Y = py };
            kernel(g);
        }
        for (int r = 0; r < 8; r++)
        {
            float want = k.DotScalar(w.AsSpan(r * nb * size, nb * size), a, nb);
            Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(y[r]) || (float.IsNaN(want) && float.IsNaN(y[r])),
                $"{what} row {r}: got {y[r]:R}, want {want:R}");
        }
    }

    /// <summary>Every fill against activations over the full int8 range (−128 included): the SIMD lanes' total equals Σ (t − 1)·a.</summary>
    private static void CheckBlockSums(GgmlType type, bool wide)
    {
        var rng = new Random(wide ? 900 : 800);
        int size = GgmlTypes.TypeSize(type);
        var blocks = new List<byte[]>();
        foreach (var fill in Fills)
            for (int i = 0; i < 4; i++)
                blocks.Add(Weights(type, 1, rng, fill, mixedScales: false));
        var acts = new List<byte[]>();
        for (int i = 0; i < 6; i++)
            acts.Add(Activations(GgmlType.Q8_K, 256, rng, symmetric: false, mixedScales: false));
        acts.Add(Extreme(-128));
        acts.Add(Extreme(127));
        foreach (var x in blocks)
            foreach (var y in acts)
            {
                long want = Definition(type, x, y);
                fixed (byte* px = x, py = y)
                {
                    Vector256<int> s = (type, wide) switch
                    {
                        (GgmlType.TQ1_0, false) => TQ1_0.BlockSum256(px, py),
                        (GgmlType.TQ1_0, true) => TQ1_0.BlockSum512(px, py),
                        (_, false) => TQ2_0.BlockSum256(px, py),
                        _ => Tq2Wide(px, py),
                    };
                    long got = 0;
                    for (int l = 0; l < 8; l++)
                        got += s[l];
                    Assert.Equal(want, got);
                }
            }
    }

    /// <summary>The 8-row kernel's AVX-512 block sum with its activation vectors built as the kernel builds them.</summary>
    private static Vector256<int> Tq2Wide(byte* x, byte* y)
    {
        sbyte* q8 = (sbyte*)(y + 4);
        return MatVec8TQ.Tq2Sum(x, Vector512.Create(Vector256.Load(q8), Vector256.Load(q8 + 128)), Vector512.Create(Vector256.Load(q8 + 32), Vector256.Load(q8 + 160)),
            Vector512.Create(Vector256.Load(q8 + 64), Vector256.Load(q8 + 192)), Vector512.Create(Vector256.Load(q8 + 96), Vector256.Load(q8 + 224)),
            Vector256.Load((short*)(y + 260)));
    }

    /// <summary>Σ (t − 1)·a from the format's dequantizer with d = 1 (exact in f32) and the block's quants.</summary>
    private static long Definition(GgmlType type, byte[] x, byte[] y)
    {
        var one = (byte[])x.Clone();
        SetScale(type, one, 0x3C00);
        var v = new float[256];
        TypeTraits.For(type).ToFloat(one, v);
        long sum = 0;
        for (int j = 0; j < 256; j++)
            sum += (long)v[j] * (sbyte)y[4 + j];
        return sum;
    }

    /// <summary>A Q8_K block whose quants are all <paramref name="q"/> (bsums to match).</summary>
    private static byte[] Extreme(sbyte q)
    {
        var blk = new byte[292];
        BinaryPrimitives.WriteSingleLittleEndian(blk, 0.5f);
        blk.AsSpan(4, 256).Fill((byte)q);
        for (int g = 0; g < 16; g++)
            BinaryPrimitives.WriteInt16LittleEndian(blk.AsSpan(260 + 2 * g), (short)(16 * q));
        return blk;
    }
}
