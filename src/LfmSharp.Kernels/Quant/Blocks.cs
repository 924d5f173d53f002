using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LfmSharp.Kernels.Quant;

// Fixed block layouts, byte for byte as ggml-common.h declares them (little-endian, no padding).
// GGUF tensor data is an array of these blocks, so a row of n elements is n / BlockSize blocks laid end to end.
// The sizes are asserted by the tests (the C# twin of ggml's static_assert(sizeof(block_q4_0) == ...)).
// "f16" fields are IEEE binary16 (System.Half).

/// <summary>Q4_0: 32 weights, y = (q - 8)·d with 4-bit q. Low nibbles hold weights 0..15, high nibbles 16..31. 18 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4_0
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 18;

    /// <summary>Scale.</summary>
    public Half D;
    /// <summary>[16] two 4-bit quants per byte.</summary>
    public Bytes16 Qs;
}

/// <summary>Q4_1: 32 weights, y = q·d + m with 4-bit q. Same nibble order as Q4_0. 20 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4_1
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 20;

    public Half D;
    /// <summary>Minimum (offset).</summary>
    public Half M;
    /// <summary>[16] two 4-bit quants per byte.</summary>
    public Bytes16 Qs;
}

/// <summary>Q5_0: 32 weights, y = (q - 16)·d with 5-bit q; bit 4 of weight j is bit j of the little-endian u32 <see cref="Qh"/>. 22 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5_0
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 22;

    public Half D;
    /// <summary>[4] fifth bits, read as one little-endian u32.</summary>
    public Bytes4 Qh;
    /// <summary>[16] low 4 bits, two per byte.</summary>
    public Bytes16 Qs;
}

/// <summary>Q5_1: 32 weights, y = q·d + m with 5-bit q (bit layout as Q5_0). 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5_1
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 24;

    public Half D;
    public Half M;
    /// <summary>[4] fifth bits, read as one little-endian u32.</summary>
    public Bytes4 Qh;
    /// <summary>[16] low 4 bits, two per byte.</summary>
    public Bytes16 Qs;
}

/// <summary>Q8_0: 32 weights, y = q·d with signed 8-bit q. Also the activation format for Q4_0/Q5_0/Q8_0 dot products. 34 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8_0
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 34;

    public Half D;
    /// <summary>[32] signed quants.</summary>
    public SBytes32 Qs;
}

/// <summary>Q8_1: 32 values, y = q·d, plus s = d·Σq. Activation format for Q4_1/Q5_1 dot products. 36 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8_1
{
    public const int BlockSize = 32;
    public const int SizeInBytes = 36;

    public Half D;
    /// <summary>d · sum(qs), rounded to f16.</summary>
    public Half S;
    /// <summary>[32] signed quants.</summary>
    public SBytes32 Qs;
}

/// <summary>
/// Q4_K: super-block of 256 = 8 sub-blocks of 32; y = d·sc·q − dmin·m with 6-bit sc/m packed in <see cref="Scales"/>
/// (see get_scale_min_k4). 144 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ4K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 144;

    /// <summary>Super-block scale for the quantized scales.</summary>
    public Half D;
    /// <summary>Super-block scale for the quantized mins.</summary>
    public Half DMin;
    /// <summary>[12] eight 6-bit scales and eight 6-bit mins.</summary>
    public Bytes12 Scales;
    /// <summary>[128] 4-bit quants: chunk c (64 weights) uses bytes 32c..32c+31, low nibbles first.</summary>
    public Bytes128 Qs;
}

/// <summary>Q5_K: as Q4_K plus one high bit per weight in <see cref="Qh"/>. 176 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ5K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 176;

    public Half D;
    public Half DMin;
    /// <summary>[12] eight 6-bit scales and eight 6-bit mins.</summary>
    public Bytes12 Scales;
    /// <summary>[32] fifth bits: bit 2c of qh[l] for weight 64c+l, bit 2c+1 for weight 64c+32+l.</summary>
    public Bytes32 Qh;
    /// <summary>[128] low 4 bits.</summary>
    public Bytes128 Qs;
}

/// <summary>Q6_K: 16 sub-blocks of 16 with int8 scales; y = d·scale·(q − 32), 6-bit q. Note d comes last. 210 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ6K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 210;

    /// <summary>[128] low 4 bits.</summary>
    public Bytes128 Ql;
    /// <summary>[64] high 2 bits, four weights per byte.</summary>
    public Bytes64 Qh;
    /// <summary>[16] signed 8-bit sub-block scales.</summary>
    public SBytes16 Scales;
    /// <summary>Super-block scale.</summary>
    public Half D;
}

/// <summary>
/// Q2_K: 16 sub-blocks of 16 with a 4-bit scale and a 4-bit min each; y = d·(sc &amp; 15)·q − dmin·(sc » 4), 2-bit q.
/// 84 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ2K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 84;

    /// <summary>[16] sub-block scale (low nibble) and min (high nibble).</summary>
    public Bytes16 Scales;
    /// <summary>[64] 2-bit quants: chunk c (128 weights) uses bytes 32c..32c+31, bits 2k..2k+1 for weights 128c+32k+l.</summary>
    public Bytes64 Qs;
    /// <summary>Super-block scale for the quantized scales.</summary>
    public Half D;
    /// <summary>Super-block scale for the quantized mins.</summary>
    public Half DMin;
}

/// <summary>
/// Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (−32 offset); y = d·(sc − 32)·(q − 4·(1 − h)), where q is 2 bits
/// in <see cref="Qs"/> and h the high bit in <see cref="HMask"/>. 110 bytes.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ3K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 110;

    /// <summary>[32] high bits: bit m of hmask[l] belongs to weight 32m + l.</summary>
    public Bytes32 HMask;
    /// <summary>[64] low 2 bits, laid out as in <see cref="BlockQ2K.Qs"/>.</summary>
    public Bytes64 Qs;
    /// <summary>[12] sixteen 6-bit scales (low nibbles in bytes 0..7, top 2 bits in bytes 8..11).</summary>
    public Bytes12 Scales;
    /// <summary>Super-block scale.</summary>
    public Half D;
}

/// <summary>Q8_K: activation-only format for K-quant dot products; f32 scale, 256 int8 quants, 16 sums of 16. 292 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockQ8K
{
    public const int BlockSize = 256;
    public const int SizeInBytes = 292;

    /// <summary>Scale (f32, unlike every other block).</summary>
    public float D;
    /// <summary>[256] signed quants.</summary>
    public SBytes256 Qs;
    /// <summary>[16] sum of each group of 16 quants (lets K-quant dots apply the mins without touching qs).</summary>
    public Int16x16 BSums;
}

/// <summary>Fixed 4-byte buffer inside a block.</summary>
[InlineArray(4)]
internal struct Bytes4 { private byte _e0; }

/// <summary>Fixed 12-byte buffer inside a block.</summary>
[InlineArray(12)]
internal struct Bytes12 { private byte _e0; }

/// <summary>Fixed 16-byte buffer inside a block.</summary>
[InlineArray(16)]
internal struct Bytes16 { private byte _e0; }

/// <summary>Fixed 32-byte buffer inside a block.</summary>
[InlineArray(32)]
internal struct Bytes32 { private byte _e0; }

/// <summary>Fixed 64-byte buffer inside a block.</summary>
[InlineArray(64)]
internal struct Bytes64 { private byte _e0; }

/// <summary>Fixed 128-byte buffer inside a block.</summary>
[InlineArray(128)]
internal struct Bytes128 { private byte _e0; }

/// <summary>Fixed 16 signed bytes inside a block.</summary>
[InlineArray(16)]
internal struct SBytes16 { private sbyte _e0; }

/// <summary>Fixed 32 signed bytes inside a block.</summary>
[InlineArray(32)]
internal struct SBytes32 { private sbyte _e0; }

/// <summary>Fixed 256 signed bytes inside a block.</summary>
[InlineArray(256)]
internal struct SBytes256 { private sbyte _e0; }

/// <summary>Fixed 16 little-endian int16 values inside a block.</summary>
[InlineArray(16)]
internal struct Int16x16 { private short _e0; }
