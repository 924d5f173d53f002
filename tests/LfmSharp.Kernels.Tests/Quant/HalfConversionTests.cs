using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// Scale fields are f16, so every quantizer depends on f32 → f16 rounding. Oracle: a port of ggml's portable
/// ggml_compute_fp32_to_fp16 (the FP16 library's bit trick, round to nearest even) compared over every exponent.
/// BF16 against hand-worked cases of ggml_compute_fp32_to_bf16.
/// </summary>
public class HalfConversionTests
{
    private static readonly float s_scaleToInf = MathF.ScaleB(1f, 112);   // 0x1.0p+112f
    private static readonly float s_scaleToZero = MathF.ScaleB(1f, -110); // 0x1.0p-110f

    private static ushort GgmlFp32ToFp16(float f)
    {
        float scaleToInf = s_scaleToInf, scaleToZero = s_scaleToZero;
        float @base = (MathF.Abs(f) * scaleToInf) * scaleToZero;
        uint w = BitConverter.SingleToUInt32Bits(f);
        uint shl1W = w + w;
        uint sign = w & 0x80000000u;
        uint bias = shl1W & 0xFF000000u;
        if (bias < 0x71000000u) bias = 0x71000000u;
        @base = BitConverter.UInt32BitsToSingle((bias >> 1) + 0x07800000u) + @base;
        uint bits = BitConverter.SingleToUInt32Bits(@base);
        uint expBits = (bits >> 13) & 0x00007C00u;
        uint mantissaBits = bits & 0x00000FFFu;
        uint nonsign = expBits + mantissaBits;
        return (ushort)((sign >> 16) | (shl1W > 0xFF000000u ? 0x7E00u : nonsign));
    }

    [Fact]
    public void F16RoundingMatchesGgml()
    {
        var rng = new Random(3);
        var x = new float[200_000];
        for (int i = 0; i < x.Length; i++)
            x[i] = BitConverter.Int32BitsToSingle(rng.Next() ^ (rng.Next(2) << 31));
        for (int i = 0; i < 20_000; i++) // dense around the f16 subnormal / normal boundary and the ties there
            x[i] = BitConverter.Int32BitsToSingle(0x33000000 + i * 1021);
        x[0] = 65520f;      // rounds to +inf in f16
        x[1] = 65519.996f;  // largest that stays finite
        x[2] = -0f;
        var bytes = new byte[x.Length * 2];
        F16.QuantizeRowReference(x, bytes);
        for (int i = 0; i < x.Length; i++)
        {
            if (float.IsNaN(x[i]))
                continue; // NaN payloads are not specified
            ushort ours = BitConverter.ToUInt16(bytes, 2 * i);
            Assert.True(ours == GgmlFp32ToFp16(x[i]), $"{x[i]:R}: ours 0x{ours:X4}, ggml 0x{GgmlFp32ToFp16(x[i]):X4}");
        }
    }

    [Theory]
    [InlineData(0x3F800000u, (ushort)0x3F80)] // 1.0
    [InlineData(0x3F808000u, (ushort)0x3F80)] // tie, even stays
    [InlineData(0x3F818000u, (ushort)0x3F82)] // tie, odd rounds up
    [InlineData(0x3F808001u, (ushort)0x3F81)] // above the tie
    [InlineData(0xBF7FFFFFu, (ushort)0xBF80)] // carries into the exponent
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)] // max float rounds to inf
    [InlineData(0x00018000u, (ushort)0x0002)] // subnormal kept (current ggml does not flush)
    [InlineData(0x7FC00001u, (ushort)0x7FC0)] // quiet NaN keeps its top bits
    [InlineData(0x7F800001u, (ushort)0x7FC0)] // signalling NaN made quiet (| 64)
    public void BF16RoundingMatchesGgml(uint bits, ushort expected)
    {
        var bytes = new byte[2];
        BF16.QuantizeRowReference(new[] { BitConverter.UInt32BitsToSingle(bits) }, bytes);
        Assert.Equal(expected, BitConverter.ToUInt16(bytes));
        var back = new float[1];
        BF16.DequantizeRow(bytes, back);
        Assert.Equal((uint)expected << 16, BitConverter.SingleToUInt32Bits(back[0]));
    }
}
