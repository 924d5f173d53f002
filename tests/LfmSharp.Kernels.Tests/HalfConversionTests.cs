using LfmSharp.Kernels;

namespace LfmSharp.Kernels.Tests;

public sealed class HalfConversionTests
{
    [Fact]
    public void EveryBitPatternWidensExactly()
    {
        var src = new Half[65536 + 5];
        for (int i = 0; i < src.Length; i++)
            src[i] = BitConverter.UInt16BitsToHalf((ushort)i);
        var vec = new float[src.Length];
        var sca = new float[src.Length];
        HalfConversion.Vector256Path(src, vec);
        HalfConversion.Scalar(src, sca);
        for (int i = 0; i < src.Length; i++)
        {
            float want = (float)src[i];
            // Compare bits, except that any NaN is fine for a NaN.
            if (float.IsNaN(want))
                Assert.True(float.IsNaN(vec[i]) && float.IsNaN(sca[i]), $"bits 0x{i & 0xffff:x4}");
            else
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(vec[i]), $"bits 0x{i & 0xffff:x4}: {vec[i]} vs {want}");
        }
    }
}
