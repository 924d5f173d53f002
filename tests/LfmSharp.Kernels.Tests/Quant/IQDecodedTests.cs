using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using static LfmSharp.Testing.IQuantRows;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// The decoded batch path of the grid and ternary types (<see cref="IQDecoded"/>): a decoded panel of 7 or 16 rows against
/// 2 or 9 tokens gives bits equal to the type's scalar row dot (extreme scales and the full activation range included,
/// blocks across a chunk boundary), the AVX-512 (both), AVX2 and scalar tile kernels give the same 16 sums bit for bit, and a
/// batched matmul equals the per-row dots for batches 1–21. The suite also runs AVX2-only and with all intrinsics off,
/// which sends <see cref="IQDecoded.Panel"/> through the other tile kernels.
/// </summary>
public sealed unsafe class IQDecodedTests
{
    private static readonly GgmlType[] Decoded =
    [
        GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.IQ2_XXS, GgmlType.IQ2_XS, GgmlType.IQ2_S,
        GgmlType.IQ3_XXS, GgmlType.IQ3_S, GgmlType.IQ1_S, GgmlType.IQ1_M,
    ];

    public static TheoryData<GgmlType> DecodedTypes() => [.. Decoded];

    // 9 blocks: one full chunk of 8 and a ragged one.
    private const int Nb = 9;

    [Theory]
    [MemberData(nameof(DecodedTypes))]
    public void A_decoded_panel_gives_the_bits_of_the_scalar_row_dots(GgmlType type)
    {
        var k = TypeTraits.For(type);
        Assert.NotNull(k.Decoder);
        var rng = new Random(77 + (int)type);
        int size = GgmlTypes.TypeSize(type), rowBytes = Nb * size, actRowBytes = 292 * Nb;
        foreach (var fill in Fills)
            foreach (bool mixed in new[] { false, true })
            {
                int count = mixed ? 7 : 16, tokens = mixed ? 9 : 2;
                var w = new byte[count * rowBytes];
                for (int r = 0; r < count; r++)
                    Weights(type, Nb, rng, fill, mixed).CopyTo(w, r * rowBytes);
                var act = new byte[tokens * actRowBytes];
                for (int t = 0; t < tokens; t++)
                    Activations(GgmlType.Q8_K, 256 * Nb, rng, symmetric: false, mixed).CopyTo(act, t * actRowBytes);
                var y = new float[tokens * count];
                using var buffer = new Aligned(IQDecoded.WorkspaceBytes(1, 256 * Nb, tokens));
                fixed (byte* pw = w, pa = act)
                fixed (float* py = y)
                {
                    float* table = (float*)buffer.P;
                    byte* xact = buffer.P + IQDecoded.TableBytes(256 * Nb, tokens);
                    IQDecoded.ScaleTable(pa, actRowBytes, tokens, Nb, table);
                    if (IQDecoded.Use512)
                        IQDecoded.InterleaveActivations(pa, actRowBytes, tokens, Nb, xact);
                    IQDecoded.Panel(k.Decoder!, pw, rowBytes, count, size, Nb, pa, actRowBytes, IQDecoded.Use512 ? xact : null, tokens, table,
                        xact + IQDecoded.InterleavedBytes(256 * Nb, tokens), py, count);
                }
                for (int r = 0; r < count; r++)
                    for (int t = 0; t < tokens; t++)
                    {
                        float want = k.DotScalar(w.AsSpan(r * rowBytes, rowBytes), act.AsSpan(t * actRowBytes, actRowBytes), Nb);
                        float got = y[t * count + r];
                        Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(got),
                            $"{type} {fill} mixed={mixed} row {r} token {t}: got {got:R}, want {want:R}");
                    }
            }
    }

    [Theory]
    [MemberData(nameof(DecodedTypes))]
    public void The_avx512_avx2_and_scalar_tiles_give_the_same_bits(GgmlType type)
    {
        var k = TypeTraits.For(type);
        var rng = new Random(31 + (int)type);
        int size = GgmlTypes.TypeSize(type), rowBytes = Nb * size, actRowBytes = 292 * Nb;
        foreach (var fill in Fills)
        {
            var w = new byte[IQDecoded.Rows * rowBytes];
            for (int r = 0; r < IQDecoded.Rows; r++)
                Weights(type, Nb, rng, fill, mixedScales: r % 2 == 1).CopyTo(w, r * rowBytes);
            var act = new byte[IQDecoded.Tokens * actRowBytes];
            for (int t = 0; t < IQDecoded.Tokens; t++)
                Activations(GgmlType.Q8_K, 256 * Nb, rng, symmetric: t == 0, mixedScales: true).CopyTo(act, t * actRowBytes);
            var start = new float[16];
            for (int j = 0; j < 16; j++)
                start[j] = (float)(rng.NextDouble() * 2 - 1);
            using var buffer = new Aligned(2 * IQDecoded.GroupBlockBytes * Nb + 64 * Nb + 2 * 64 + 256 * Nb * IQDecoded.Tokens);
            byte* g = buffer.P, gi = g + IQDecoded.GroupBlockBytes * Nb;
            float* table = (float*)(gi + IQDecoded.GroupBlockBytes * Nb), want = table + 16 * Nb, got = want + 16;
            byte* xact = (byte*)(got + 16);
            fixed (byte* pw = w, pa = act)
            {
                bool unit = IQDecoded.DecodeGroup(k.Decoder!, pw, rowBytes, IQDecoded.Rows, size, Nb, g, interleave: false) == GroupKind.Unit;
                var kind = IQDecoded.DecodeGroup(k.Decoder!, pw, rowBytes, IQDecoded.Rows, size, Nb, gi, interleave: true);
                if (type is GgmlType.TQ1_0 or GgmlType.TQ2_0)
                    Assert.Equal(IQDecoded.Use512, unit);
                // IQ3_S's grid (1..15) and IQ1's bytes (8·g ± 1) are always within ±16: never the wide tile on AVX-512.
                if (type is GgmlType.IQ3_S or GgmlType.IQ1_S or GgmlType.IQ1_M && IQDecoded.Use512)
                    Assert.NotEqual(GroupKind.Wide, kind);
                // The types whose formats bound their runs take the decoder's centered layout, every group.
                if (k.Decoder!.Centered != GroupKind.Wide && IQDecoded.Use512)
                    Assert.Equal(k.Decoder.Centered, kind);
                IQDecoded.ScaleTable(pa, actRowBytes, IQDecoded.Tokens, Nb, table);
                byte* a1 = pa + actRowBytes, a2 = a1 + actRowBytes, a3 = a2 + actRowBytes;
                start.CopyTo(new Span<float>(want, 16));
                IQDecoded.TileScalar(g, Nb, pa, a1, a2, a3, k.Decoder!.Post, want);
                if (System.Runtime.Intrinsics.X86.Avx2.IsSupported)
                {
                    start.CopyTo(new Span<float>(got, 16));
                    IQDecoded.TileAvx2(g, Nb, pa, a1, a2, a3, table, k.Decoder.Post, got);
                    AssertSameBits(type, fill, "AVX2", want, got);
                }
                if (IQDecoded.Use512)
                {
                    start.CopyTo(new Span<float>(got, 16));
                    IQDecoded.Tile512(g, Nb, pa, a1, a2, a3, table, k.Decoder.Post, got);
                    AssertSameBits(type, fill, "AVX-512", want, got);
                }
                if (unit)
                {
                    start.CopyTo(new Span<float>(got, 16));
                    IQDecoded.Tile512Unit(g, Nb, pa, a1, a2, a3, table, k.Decoder.Post, got);
                    AssertSameBits(type, fill, "AVX-512 unit scales", want, got);
                }
                if (kind is GroupKind.Small or GroupKind.Centered or GroupKind.CenteredPairs)
                {
                    IQDecoded.InterleaveActivations(pa, actRowBytes, IQDecoded.Tokens, Nb, xact);
                    start.CopyTo(new Span<float>(got, 16));
                    byte* x1 = xact + 256 * Nb, x2 = x1 + 256 * Nb, x3 = x2 + 256 * Nb;
                    if (kind == GroupKind.Small)
                        IQDecoded.Tile512Small(gi, Nb, xact, x1, x2, x3, table, k.Decoder.Post, got);
                    else if (kind == GroupKind.Centered)
                        IQDecoded.Tile512Centered(gi, Nb, xact, x1, x2, x3, table, k.Decoder.Post, got);
                    else
                        IQDecoded.Tile512CenteredPairs(gi, Nb, xact, x1, x2, x3, table, k.Decoder.Post, got);
                    AssertSameBits(type, fill, $"AVX-512 {kind}", want, got);
                }
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Interleave_equals_its_scalar_twin_in_place_or_not(bool flip)
    {
        var rng = new Random(flip ? 3 : 4);
        using var buffer = new Aligned(4 * 256);
        byte* src = buffer.P, want = src + 256, got = want + 256, inPlace = got + 256;
        rng.NextBytes(new Span<byte>(src, 256));
        new Span<byte>(src, 256).CopyTo(new Span<byte>(inPlace, 256));
        IQDecoded.InterleaveScalar(src, want, flip);
        IQDecoded.Interleave(src, got, flip);
        IQDecoded.Interleave(inPlace, inPlace, flip);
        Assert.True(new Span<byte>(want, 256).SequenceEqual(new Span<byte>(got, 256)));
        Assert.True(new Span<byte>(want, 256).SequenceEqual(new Span<byte>(inPlace, 256)));
        // Byte p of run e (8 bytes) lands at 64·(p / 2) + 2·e + p % 2: int16 lane e of step p / 2.
        for (int e = 0; e < 32; e++)
            for (int p = 0; p < 8; p++)
                Assert.Equal((byte)(src[8 * e + p] ^ (flip ? 0x80 : 0)), want[64 * (p / 2) + 2 * e + p % 2]);
    }

    [Fact]
    public void The_declared_centered_layouts_fit_every_grid_point()
    {
        // A centered lane sums Σ q·a over a run of 8 (Centered) or 4 (CenteredPairs) weights; with |a| ≤ 128 that fits
        // int16 where Σ|q| ≤ 255. Runs are whole 8-byte IQ2 points (or their halves) and pairs of 4-byte IQ3 points.
        Assert.Equal(GroupKind.Centered, TypeTraits.For(GgmlType.IQ2_XXS).Decoder!.Centered);
        Assert.Equal(0, TypeTraits.For(GgmlType.IQ2_XXS).Decoder!.Shift);
        foreach (ulong p in IQ2Grids.Iq2XxsGrid)
            Assert.True(ByteSum(p, 0, 8) <= IQDecoded.LaneMagnitude);
        foreach (var type in new[] { GgmlType.IQ2_XS, GgmlType.IQ2_S })
        {
            Assert.Equal(GroupKind.CenteredPairs, TypeTraits.For(type).Decoder!.Centered);
            Assert.Equal(0, TypeTraits.For(type).Decoder!.Shift);
        }
        foreach (ulong p in IQ2Grids.Iq2XsGrid.ToArray().Concat(IQ2Grids.Iq2SGrid.ToArray()))
            Assert.True(ByteSum(p, 0, 4) <= IQDecoded.LaneMagnitude && ByteSum(p, 4, 4) <= IQDecoded.LaneMagnitude);
        // IQ3_XXS: halves of even levels (exact), doubled scales; two halved points per run.
        Assert.Equal(GroupKind.Centered, TypeTraits.For(GgmlType.IQ3_XXS).Decoder!.Centered);
        Assert.Equal(1, TypeTraits.For(GgmlType.IQ3_XXS).Decoder!.Shift);
        int max = 0;
        foreach (uint p in IQTables.Iq3XxsGrid)
        {
            for (int j = 0; j < 4; j++)
                Assert.Equal(0u, (p >> (8 * j)) & 1);
            max = Math.Max(max, ByteSum(p, 0, 4) / 2);
        }
        Assert.True(2 * max <= IQDecoded.LaneMagnitude);
    }

    private static int ByteSum(ulong point, int first, int count)
    {
        int sum = 0;
        for (int j = first; j < first + count; j++)
            sum += (int)((point >> (8 * j)) & 0xFF);
        return sum;
    }

    [Fact]
    public void IQ1_shifted_bytes_equal_the_byte_loop_for_any_grid_bytes()
    {
        var rng = new Random(9);
        sbyte* got = stackalloc sbyte[8];
        for (int i = 0; i < 4096; i++)
        {
            ulong grid = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
            int delta = i % 2 == 0 ? 1 : -1;
            IQ1S.Shifted(grid, delta, got);
            for (int j = 0; j < 8; j++)
                Assert.Equal((sbyte)(8 * (sbyte)(grid >> (8 * j)) + delta), got[j]);
        }
    }

    [Fact]
    public void A_decoder_takes_batches_from_4_tokens_unless_it_asks_for_fewer_but_never_below_2()
    {
        Assert.Equal(IQDecoded.MinTokens, new BlockDecoder(&TQ2_0.DecodeBlock).MinTokens);
        Assert.Equal(3, new BlockDecoder(&TQ2_0.DecodeBlock) { MinTokens = 3 }.MinTokens);
        Assert.Equal(IQDecoded.SmallestMinTokens, new BlockDecoder(&TQ2_0.DecodeBlock) { MinTokens = 1 }.MinTokens);
    }

    private static void AssertSameBits(GgmlType type, Fill fill, string path, float* want, float* got)
    {
        for (int j = 0; j < 16; j++)
            Assert.True(BitConverter.SingleToInt32Bits(want[j]) == BitConverter.SingleToInt32Bits(got[j]),
                $"{type} {fill} {path} lane {j}: got {got[j]:R}, want {want[j]:R}");
    }

    /// <summary>Native memory with a 64-byte aligned start, as the workspace gives the tiles.</summary>
    private sealed class Aligned(long bytes) : IDisposable
    {
        private readonly void* _p = NativeMemory.AlignedAlloc((nuint)bytes, 64);

        public byte* P => (byte*)_p;

        public void Dispose() => NativeMemory.AlignedFree(_p);
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
