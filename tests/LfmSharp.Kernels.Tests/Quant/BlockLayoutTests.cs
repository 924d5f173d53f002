using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>The C# twin of ggml-common.h's static_asserts: every block struct has exactly ggml's size and field offsets.</summary>
public class BlockLayoutTests
{
    [Fact]
    public void BlockSizesMatchGgml()
    {
        Assert.Equal(18, Unsafe.SizeOf<BlockQ4_0>());
        Assert.Equal(20, Unsafe.SizeOf<BlockQ4_1>());
        Assert.Equal(22, Unsafe.SizeOf<BlockQ5_0>());
        Assert.Equal(24, Unsafe.SizeOf<BlockQ5_1>());
        Assert.Equal(34, Unsafe.SizeOf<BlockQ8_0>());
        Assert.Equal(36, Unsafe.SizeOf<BlockQ8_1>());
        Assert.Equal(84, Unsafe.SizeOf<BlockQ2K>());
        Assert.Equal(110, Unsafe.SizeOf<BlockQ3K>());
        Assert.Equal(144, Unsafe.SizeOf<BlockQ4K>());
        Assert.Equal(176, Unsafe.SizeOf<BlockQ5K>());
        Assert.Equal(210, Unsafe.SizeOf<BlockQ6K>());
        Assert.Equal(292, Unsafe.SizeOf<BlockQ8K>());
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, typeof(BlockQ4_0))]
    [InlineData(GgmlType.Q4_1, typeof(BlockQ4_1))]
    [InlineData(GgmlType.Q5_0, typeof(BlockQ5_0))]
    [InlineData(GgmlType.Q5_1, typeof(BlockQ5_1))]
    [InlineData(GgmlType.Q8_0, typeof(BlockQ8_0))]
    [InlineData(GgmlType.Q8_1, typeof(BlockQ8_1))]
    [InlineData(GgmlType.Q2_K, typeof(BlockQ2K))]
    [InlineData(GgmlType.Q3_K, typeof(BlockQ3K))]
    [InlineData(GgmlType.Q4_K, typeof(BlockQ4K))]
    [InlineData(GgmlType.Q5_K, typeof(BlockQ5K))]
    [InlineData(GgmlType.Q6_K, typeof(BlockQ6K))]
    [InlineData(GgmlType.Q8_K, typeof(BlockQ8K))]
    public void StructAgreesWithTypeTable(GgmlType type, Type block)
    {
        Assert.Equal(GgmlTypes.TypeSize(type), Marshal.SizeOf(block));
        Assert.Equal(GgmlTypes.TypeSize(type), (int)block.GetField("SizeInBytes")!.GetValue(null)!);
        Assert.Equal(GgmlTypes.BlockSize(type), (int)block.GetField("BlockSize")!.GetValue(null)!);
    }

    [Fact]
    public void FieldOffsetsMatchGgml()
    {
        // The fields whose position is easiest to get wrong: Q6_K's trailing d, Q8_K's bsums after 256 quants,
        // and the K-quant qs after 12 scale bytes (and Q5_K's qh).
        Assert.Equal(208, (int)Marshal.OffsetOf<BlockQ6K>(nameof(BlockQ6K.D)));
        Assert.Equal(192, (int)Marshal.OffsetOf<BlockQ6K>(nameof(BlockQ6K.Scales)));
        Assert.Equal(260, (int)Marshal.OffsetOf<BlockQ8K>(nameof(BlockQ8K.BSums)));
        Assert.Equal(16, (int)Marshal.OffsetOf<BlockQ4K>(nameof(BlockQ4K.Qs)));
        Assert.Equal(16, (int)Marshal.OffsetOf<BlockQ5K>(nameof(BlockQ5K.Qh)));
        Assert.Equal(48, (int)Marshal.OffsetOf<BlockQ5K>(nameof(BlockQ5K.Qs)));
        Assert.Equal(6, (int)Marshal.OffsetOf<BlockQ5_0>(nameof(BlockQ5_0.Qs)));
        Assert.Equal(8, (int)Marshal.OffsetOf<BlockQ5_1>(nameof(BlockQ5_1.Qs)));
        Assert.Equal(4, (int)Marshal.OffsetOf<BlockQ8_1>(nameof(BlockQ8_1.Qs)));
    }
}
