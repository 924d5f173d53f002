using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>Bad lengths and unsupported types fail loudly with a message naming the problem, never silently.</summary>
public class QuantArgumentTests
{
    public static TheoryData<GgmlType> Supported() => new()
    {
        GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
        GgmlType.Q8_0, GgmlType.Q8_1, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q8_K,
    };

    [Theory]
    [MemberData(nameof(Supported))]
    public void DequantizeRejectsPartialBlocksAndShortDestination(GgmlType t)
    {
        int bs = GgmlTypes.BlockSize(t), ts = GgmlTypes.TypeSize(t);
        var e1 = Assert.Throws<ArgumentException>(() => Dequantize.Row(t, new byte[2 * ts + 1], new float[4 * bs]));
        Assert.Contains(t.ToString(), e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Dequantize.Row(t, new byte[2 * ts], new float[2 * bs - 1]));
        Assert.Contains("too small", e2.Message);
        Dequantize.Row(t, new byte[2 * ts], new float[2 * bs + 5]); // extra room is fine
        Dequantize.Row(t, ReadOnlySpan<byte>.Empty, Span<float>.Empty);
    }

    [Theory]
    [MemberData(nameof(Supported))]
    public void QuantizeRejectsPartialBlocksAndShortDestination(GgmlType t)
    {
        int bs = GgmlTypes.BlockSize(t), ts = GgmlTypes.TypeSize(t);
        if (bs > 1)
        {
            var e1 = Assert.Throws<ArgumentException>(() => Quantize.RowReference(t, new float[bs + 1], new byte[4 * ts]));
            Assert.Contains("block size", e1.Message);
        }
        var e2 = Assert.Throws<ArgumentException>(() => Quantize.RowReference(t, new float[2 * bs], new byte[2 * ts - 1]));
        Assert.Contains("too small", e2.Message);
    }

    [Theory]
    [InlineData(GgmlType.MXFP4)]
    [InlineData(GgmlType.F64)]
    [InlineData(GgmlType.I8)]
    [InlineData((GgmlType)4)] // removed Q4_2
    public void UnsupportedTypesThrowNotSupportedNamingTheType(GgmlType t)
    {
        string name = GgmlTypes.Name(t);
        Assert.Contains(name, Assert.Throws<NotSupportedException>(() => Dequantize.Row(t, Array.Empty<byte>(), Array.Empty<float>())).Message);
        Assert.Contains(name, Assert.Throws<NotSupportedException>(() => Quantize.RowReference(t, Array.Empty<float>(), Array.Empty<byte>())).Message);
        Assert.Contains(name, Assert.Throws<NotSupportedException>(() => QuantTraits.VecDotType(t)).Message);
        Assert.Contains(name, Assert.Throws<NotSupportedException>(() => VecDot.Row(t, Array.Empty<byte>(), Array.Empty<byte>(), 0)).Message);
        Assert.False(Dequantize.IsSupported(t));
    }

    [Fact]
    public void ActivationFormatsOnlyForQuantizeRow()
    {
        // Q4_0 is a weight format: the matmul never quantizes activations to it.
        Assert.Throws<NotSupportedException>(() => Quantize.Row(GgmlType.Q4_0, new float[32], new byte[18]));
    }

    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_1)]
    [InlineData(GgmlType.Q4_K)]
    [InlineData(GgmlType.F16)]
    public void DotRejectsBadLengths(GgmlType t)
    {
        GgmlType a = QuantTraits.VecDotType(t);
        int bs = GgmlTypes.BlockSize(t);
        int n = 2 * Math.Max(bs, 32);
        var w = new byte[GgmlTypes.RowBytes(t, n)];
        var x = new byte[GgmlTypes.RowBytes(a, n)];
        if (bs > 1)
            Assert.Contains("multiple", Assert.Throws<ArgumentException>(() => VecDot.Row(t, w, x, n - 1)).Message);
        Assert.Throws<ArgumentException>(() => VecDot.Row(t, w, x, -bs));
        Assert.Throws<ArgumentException>(() => VecDot.Row(t, w.AsSpan(0, w.Length - 1), x, n));
        Assert.Throws<ArgumentException>(() => VecDot.Row(t, w, x.AsSpan(0, x.Length - 1), n));
        Assert.Equal(0f, VecDot.Row(t, w, x, 0));
    }

    [Fact]
    public void VecDotTypesAreGgmlsTable()
    {
        // ggml-cpu type_traits_cpu[].vec_dot_type.
        Assert.Equal(GgmlType.F32, QuantTraits.VecDotType(GgmlType.F32));
        Assert.Equal(GgmlType.F16, QuantTraits.VecDotType(GgmlType.F16));
        Assert.Equal(GgmlType.BF16, QuantTraits.VecDotType(GgmlType.BF16));
        Assert.Equal(GgmlType.Q8_0, QuantTraits.VecDotType(GgmlType.Q4_0));
        Assert.Equal(GgmlType.Q8_1, QuantTraits.VecDotType(GgmlType.Q4_1));
        Assert.Equal(GgmlType.Q8_0, QuantTraits.VecDotType(GgmlType.Q5_0));
        Assert.Equal(GgmlType.Q8_1, QuantTraits.VecDotType(GgmlType.Q5_1));
        Assert.Equal(GgmlType.Q8_0, QuantTraits.VecDotType(GgmlType.Q8_0));
        Assert.Equal(GgmlType.Q8_K, QuantTraits.VecDotType(GgmlType.Q4_K));
        Assert.Equal(GgmlType.Q8_K, QuantTraits.VecDotType(GgmlType.Q5_K));
        Assert.Equal(GgmlType.Q8_K, QuantTraits.VecDotType(GgmlType.Q6_K));
    }

    [Fact]
    public void ComputeSupportedTypesAreExactlyTheOnesWithADotProduct()
    {
        // GgmlTypes.IsComputeSupported is what the model loader checks; it must promise no more and no less than
        // what VecDot and Dequantize can do.
        foreach (GgmlType t in Enum.GetValues<GgmlType>())
        {
            bool hasDot = true;
            try { QuantTraits.VecDotType(t); }
            catch (NotSupportedException) { hasDot = false; }
            Assert.True(GgmlTypes.IsComputeSupported(t) == hasDot, $"{t}: IsComputeSupported {GgmlTypes.IsComputeSupported(t)}, dot {hasDot}");
            if (hasDot)
                Assert.True(Dequantize.IsSupported(t), t.ToString());
        }
    }
}
