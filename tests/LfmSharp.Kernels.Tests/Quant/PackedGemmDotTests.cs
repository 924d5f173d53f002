using System.Runtime.Intrinsics.X86;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>A theory that xunit reports as skipped where the CPU lacks AVX-VNNI (or the JIT has it switched off).</summary>
public sealed class VnniTheoryAttribute : TheoryAttribute
{
    public VnniTheoryAttribute()
    {
        if (!(AvxVnni.IsSupported && Fma.IsSupported))
            Skip = "AVX-VNNI not available here (or disabled via DOTNET_EnableAVXVNNI)";
    }
}

/// <summary>
/// The packed GEMM kernels written over <see cref="IByteDot"/> (the AVX-VNNI path) against the vpmaddubsw kernels:
/// the same packed weights and activations must give the same bits, with the AVX2 stand-in everywhere and with
/// vpdpbusd where the CPU has it.
/// </summary>
public sealed unsafe class PackedGemmDotTests
{
    private const int Cols = 512, Blocks = Cols / 32;

    [Avx2Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void Avx2StandInGivesTheMaddubsKernelsBits(GgmlType type) => Compare(type, vnni: false);

    [VnniTheory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.Q6_K)]
    public void VnniGivesTheMaddubsKernelsBits(GgmlType type) => Compare(type, vnni: true);

    /// <summary>The Q4_0 pairs layout and kernel (one 8-byte activation broadcast per two steps) against the maddubs kernel.</summary>
    [Avx2Fact]
    public void Q4_0PairsKernelWithTheAvx2StandInGivesTheMaddubsKernelsBits() => Compare(GgmlType.Q4_0, vnni: false, pairs: true);

    /// <inheritdoc cref="Q4_0PairsKernelWithTheAvx2StandInGivesTheMaddubsKernelsBits"/>
    [VnniTheory]
    [InlineData(GgmlType.Q4_0)]
    public void Q4_0PairsKernelWithVnniGivesTheMaddubsKernelsBits(GgmlType type) => Compare(type, vnni: true, pairs: true);

    private static void Compare(GgmlType type, bool vnni, bool pairs = false)
    {
        var rng = new Random((int)type);
        int rowBytes = (int)GgmlTypes.RowBytes(type, Cols);
        bool kQuant = type is GgmlType.Q4_K or GgmlType.Q6_K;
        var w = GC.AllocateArray<byte>(8 * rowBytes, pinned: true);
        var row = new float[Cols];
        for (int r = 0; r < 8; r++)
        {
            for (int i = 0; i < Cols; i++)
                row[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 29 == 0 ? 6 : 1);
            Quantize.RowReference(type, row, w.AsSpan(r * rowBytes, rowBytes));
        }
        if (type == GgmlType.Q8_0)
        {
            // −128 is a valid Q8_0 byte (the quantizer never writes it): |w| = 128 is the widest u8 operand.
            for (int r = 0; r < 8; r++)
                for (int b = 0; b < Blocks; b += 3)
                    w[r * rowBytes + b * 34 + 2 + (r + b) % 32] = 0x80;
        }

        // Four tokens of Q8_0 (Q8_K for the K-quants) activations, their f32 block scales and (Q4_0) 8·Σq per block;
        // one token is all ±1 (Q8_0: ±127; Q8_K: −128 and 127).
        var actType = kQuant ? GgmlType.Q8_K : GgmlType.Q8_0;
        int actRow = (int)GgmlTypes.RowBytes(actType, Cols);
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        var d = GC.AllocateArray<float>(4 * Blocks, pinned: true);
        var sums = GC.AllocateArray<int>(4 * Blocks, pinned: true);
        for (int t = 0; t < 4; t++)
        {
            for (int i = 0; i < Cols; i++)
                row[i] = t == 3 ? (i % 2 == 0 ? 1f : -1f) : (float)(rng.NextDouble() * 2 - 1);
            var a = act.AsSpan(t * actRow, actRow);
            Quantize.Row(actType, row, a);
            for (int b = 0; b < Blocks && !kQuant; b++)
            {
                d[t * Blocks + b] = QuantMath.HalfToSingle(BitConverter.ToUInt16(a.Slice(b * 34, 2)));
                int s = 0;
                for (int k = 0; k < 32; k++)
                    s += (sbyte)a[b * 34 + 2 + k];
                sums[t * Blocks + b] = 8 * s;
            }
        }

        var pk = GC.AllocateArray<byte>(PackedGemm.PackedBytes(type, Cols), pinned: true);
        var pk2 = GC.AllocateArray<byte>(PackedGemm.PackedBytes(type, Cols), pinned: true);
        var want = new float[32];
        var got = new float[32];
        fixed (byte* pw = w, pp = pk, pp2 = pk2, pa = act)
        fixed (float* pd = d, py = want, pg = got)
        fixed (int* ps = sums)
        {
            int nb = Cols / GgmlTypes.BlockSize(type);
            switch (type)
            {
                case GgmlType.Q4_0: PackedGemm.PackQ4_0(pw, rowBytes, nb, pp); break;
                case GgmlType.Q8_0: PackedGemm.PackQ8_0(pw, rowBytes, nb, pp); break;
                case GgmlType.Q4_K: PackedGemm.PackQ4K(pw, rowBytes, nb, pp); break;
                default: PackedGemm.PackQ6K(pw, rowBytes, nb, pp); break;
            }
            var reference = TokenTiles.Consecutive(pa, actRow, Blocks, pd, ps, py, 8);
            var tile = TokenTiles.Consecutive(pa, actRow, Blocks, pd, ps, pg, 8);
            switch (type)
            {
                case GgmlType.Q4_0 when pairs:
                    PackedGemm.KernelQ4_0(pp, nb, reference);
                    PackedGemm.PackQ4_0Pairs(pw, rowBytes, nb, pp2);
                    if (vnni) PackedGemm.KernelQ4_0Pairs<VnniDot>(pp2, nb, tile); else PackedGemm.KernelQ4_0Pairs<Avx2Dot>(pp2, nb, tile);
                    break;
                case GgmlType.Q4_0:
                    PackedGemm.KernelQ4_0(pp, nb, reference);
                    if (vnni) PackedGemm.KernelQ4_0Dot4<VnniDot>(pp, nb, tile); else PackedGemm.KernelQ4_0Dot4<Avx2Dot>(pp, nb, tile);
                    break;
                case GgmlType.Q8_0:
                    // The maddubs kernel of Q8_0 is the Avx2Dot instance itself, so only VNNI has a twin to check.
                    PackedGemm.KernelQ8_0Dot4<Avx2Dot>(pp, nb, reference);
                    PackedGemm.KernelQ8_0Dot4<VnniDot>(pp, nb, tile);
                    break;
                case GgmlType.Q4_K:
                    PackedGemm.KernelQ4K(pp, nb, reference);
                    if (vnni) PackedGemm.KernelQ4KDot4<VnniDot>(pp, nb, tile); else PackedGemm.KernelQ4KDot4<Avx2Dot>(pp, nb, tile);
                    break;
                default:
                    PackedGemm.KernelQ6K(pp, nb, reference);
                    if (vnni) PackedGemm.KernelQ6KDot4<VnniDot>(pp, nb, tile); else PackedGemm.KernelQ6KDot4<Avx2Dot>(pp, nb, tile);
                    break;
            }
        }
        Assert.Contains(want, v => v != 0f);
        for (int i = 0; i < 32; i++)
            Assert.True(BitConverter.SingleToInt32Bits(want[i]) == BitConverter.SingleToInt32Bits(got[i]), $"token {i / 8} row {i % 8}: {got[i]:R} vs {want[i]:R}");
    }

    /// <summary>
    /// The 16-row × 2-token Q4_0 kernel over two packed groups against the maddubs 8 × 4 kernel on each group: the same
    /// bits per row and token (with vpdpbusd where the CPU has it, else the AVX2 stand-in).
    /// </summary>
    [Avx2Fact]
    public void Q4_0SixteenRowKernelGivesTheMaddubsKernelsBitsForBothGroups()
    {
        var rng = new Random(16);
        int rowBytes = (int)GgmlTypes.RowBytes(GgmlType.Q4_0, Cols), actRow = (int)GgmlTypes.RowBytes(GgmlType.Q8_0, Cols);
        var w = GC.AllocateArray<byte>(16 * rowBytes, pinned: true);
        var row = new float[Cols];
        for (int r = 0; r < 16; r++)
        {
            for (int i = 0; i < Cols; i++)
                row[i] = (float)(rng.NextDouble() * 2 - 1) * (i % 23 == 0 ? 5 : 1);
            Quantize.RowReference(GgmlType.Q4_0, row, w.AsSpan(r * rowBytes, rowBytes));
        }
        var act = GC.AllocateArray<byte>(4 * actRow, pinned: true);
        var d = GC.AllocateArray<float>(4 * Blocks, pinned: true);
        var sums = GC.AllocateArray<int>(4 * Blocks, pinned: true);
        for (int t = 0; t < 4; t++)
        {
            for (int i = 0; i < Cols; i++)
                row[i] = t == 1 ? (i % 3 == 0 ? -1f : 1f) : (float)(rng.NextDouble() * 2 - 1);
            var a = act.AsSpan(t * actRow, actRow);
            Quantize.Row(GgmlType.Q8_0, row, a);
            for (int b = 0; b < Blocks; b++)
            {
                d[t * Blocks + b] = QuantMath.HalfToSingle(BitConverter.ToUInt16(a.Slice(b * 34, 2)));
                int s = 0;
                for (int k = 0; k < 32; k++)
                    s += (sbyte)a[b * 34 + 2 + k];
                sums[t * Blocks + b] = 8 * s;
            }
        }
        int bytes = PackedGemm.PackedBytes(GgmlType.Q4_0, Cols);
        var pk = GC.AllocateArray<byte>(2 * bytes, pinned: true);
        var pairs = GC.AllocateArray<byte>(2 * bytes, pinned: true);
        var want = new float[64];
        var got = new float[32];
        fixed (byte* pw = w, pp = pk, pq = pairs, pa = act)
        fixed (float* pd = d, py = want, pg = got)
        fixed (int* ps = sums)
        {
            for (int grp = 0; grp < 2; grp++)
            {
                PackedGemm.PackQ4_0(pw + grp * 8 * rowBytes, rowBytes, Blocks, pp + grp * bytes);
                PackedGemm.PackQ4_0Pairs(pw + grp * 8 * rowBytes, rowBytes, Blocks, pq + grp * bytes);
                PackedGemm.KernelQ4_0(pp + grp * bytes, Blocks, TokenTiles.Consecutive(pa, actRow, Blocks, pd, ps, py + 32 * grp, 8));   // [group][token][row]
            }
            var tile = new PackedGemm.TokenTile
            {
                A0 = pa, A1 = pa + actRow, D0 = pd, D1 = pd + Blocks, S0 = ps, S1 = ps + Blocks,
                Y0 = pg, Y1 = pg + 8, Y2 = pg + 16, Y3 = pg + 24,
            };
            if (VnniDot.IsSupported) PackedGemm.KernelQ4_0Pairs16<VnniDot>(pq, Blocks, tile); else PackedGemm.KernelQ4_0Pairs16<Avx2Dot>(pq, Blocks, tile);
        }
        for (int i = 0; i < 32; i++)
        {
            int token = (i / 8) % 2, grp = i / 16, r = i % 8;
            float expected = want[32 * grp + 8 * token + r];
            Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got[i]), $"token {token} row {8 * grp + r}: {got[i]:R} vs {expected:R}");
        }
        Assert.Contains(got, v => v != 0f);
    }
}
