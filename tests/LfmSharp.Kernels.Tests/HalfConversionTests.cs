using System.Runtime.Intrinsics;
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

    /// <summary>
    /// The subnormal-free conversion the quantized kernels use for block scales (and F16 dots): every finite f16 bit
    /// pattern, ±0 and subnormals included, in all three widths, gives exactly the f32 of <see cref="Half"/>.
    /// </summary>
    [Fact]
    public void TopHalvesWidenEveryFiniteValueExactly()
    {
        for (int i = 0; i < 65536; i += 8)
        {
            var t = Vector256.Create(i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7) << 16;
            var wide = HalfConversion.FromTopHalves(t);
            var lo = HalfConversion.FromTopHalves(t.GetLower());
            var hi = HalfConversion.FromTopHalves(t.GetUpper());
            var widest = HalfConversion.FromTopHalves(Vector512.Create(t, t));
            for (int k = 0; k < 8; k++)
            {
                var h = BitConverter.UInt16BitsToHalf((ushort)(i + k));
                if (!Half.IsFinite(h))
                    continue;
                int want = BitConverter.SingleToInt32Bits((float)h);
                Assert.True(want == BitConverter.SingleToInt32Bits(wide.GetElement(k)), $"256-bit, bits 0x{i + k:x4}: {wide.GetElement(k)} vs {(float)h}");
                float narrow = k < 4 ? lo.GetElement(k) : hi.GetElement(k - 4);
                Assert.True(want == BitConverter.SingleToInt32Bits(narrow), $"128-bit, bits 0x{i + k:x4}: {narrow} vs {(float)h}");
                Assert.True(want == BitConverter.SingleToInt32Bits(widest.GetElement(k + 8)), $"512-bit, bits 0x{i + k:x4}: {widest.GetElement(k + 8)} vs {(float)h}");
            }
        }
    }
}
