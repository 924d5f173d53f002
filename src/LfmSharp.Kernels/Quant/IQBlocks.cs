using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LfmSharp.Kernels.Quant;

// The i-quant and ternary block layouts, byte for byte as ggml-common.h declares them (little-endian, no padding);
// BlockLayoutTests asserts sizes and offsets. Grid indices and sign indices point into the tables of IQTables,
// IQ2Grids and IQ1Grid.

/// <summary>IQ4_NL: 32 weights, y = d·kvalues_iq4nl[q] with 4-bit q, nibble order as Q4_0. 18 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ4NL
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 32;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 18;

    /// <summary>Scale.</summary>
    public Half D;
    /// <summary>[16] two 4-bit level indices per byte: low nibbles weights 0..15, high nibbles 16..31.</summary>
    public Bytes16 Qs;
}

/// <summary>IQ4_XS: 256 weights in 8 sub-blocks of 32, y = d·(ls − 32)·kvalues_iq4nl[q] with a 6-bit ls per sub-block. 136 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ4XS
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 136;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>High 2 bits of the 8 sub-block scales (bits 2j..2j+1 for sub-block j).</summary>
    public ushort ScalesH;
    /// <summary>[4] low 4 bits of the sub-block scales, two per byte (even sub-block in the low nibble).</summary>
    public Bytes4 ScalesL;
    /// <summary>[128] level indices: sub-block j uses bytes 16j..16j+15, low nibbles first.</summary>
    public Bytes128 Qs;
}

/// <summary>TQ1_0: 256 ternary weights in base-3 digits, 5 per byte in <see cref="Qs"/> and 4 per byte in <see cref="Qh"/>; y = d·(t − 1). 54 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockTQ1_0
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 54;

    /// <summary>[48] five trits per byte, stored as a fixed-point fraction (digit n = top bits of byte·3^n·3).</summary>
    public Bytes48 Qs;
    /// <summary>[4] four trits per byte (the last 16 weights).</summary>
    public Bytes4 Qh;
    /// <summary>Scale (last, as in ggml).</summary>
    public Half D;
}

/// <summary>TQ2_0: 256 ternary weights as 2-bit codes q, y = d·(q − 1). 66 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockTQ2_0
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 66;

    /// <summary>[64] four codes per byte: weight 128h + 32l + m is bits 2l..2l+1 of byte 32h + m.</summary>
    public Bytes64 Qs;
    /// <summary>Super-block scale (f16).</summary>
    public Half D;
}

/// <summary>IQ2_XXS: 256 weights; per 32, four 8-bit grid indices, four 7-bit sign indices and a 4-bit scale. 66 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ2XXS
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 66;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[32] per sub-block of 32: two u32, the first the 4 grid indices, the second 4×7 sign bits and the scale on top.</summary>
    public UInt16x32 Qs;
}

/// <summary>IQ2_XS: 256 weights; per 8, a u16 of 9-bit grid index and 7-bit sign index; 4-bit scales per 16. 74 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ2XS
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 74;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[32] grid index (low 9 bits) and sign index (high 7 bits) of each group of 8.</summary>
    public UInt16x32 Qs;
    /// <summary>[8] two 4-bit scales per sub-block of 32.</summary>
    public Bytes8 Scales;
}

/// <summary>IQ2_S: 256 weights; per 8, a 10-bit grid index and 8 explicit sign bits; 4-bit scales per 16. 82 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ2S
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 82;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[64] low 8 bits of the 32 grid indices, then the 32 sign bytes.</summary>
    public Bytes64 Qs;
    /// <summary>[8] high 2 bits of the grid indices, four per byte.</summary>
    public Bytes8 Qh;
    /// <summary>[8] two 4-bit scales per sub-block of 32.</summary>
    public Bytes8 Scales;
}

/// <summary>IQ3_XXS: 256 weights; per 4, an 8-bit grid index; per 32, a u32 of 4×7 sign bits and a 4-bit scale. 98 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ3XXS
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 98;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[96] 64 grid indices, then 8 u32 of signs and scale.</summary>
    public Bytes96 Qs;
}

/// <summary>IQ3_S: 256 weights; per 4, a 9-bit grid index; explicit sign bits; 4-bit scales per 32. 110 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ3S
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 110;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[64] low 8 bits of the grid indices.</summary>
    public Bytes64 Qs;
    /// <summary>[8] the ninth bits, one byte per sub-block of 32.</summary>
    public Bytes8 Qh;
    /// <summary>[32] one sign bit per weight.</summary>
    public Bytes32 Signs;
    /// <summary>[4] two 4-bit scales per byte (sub-blocks 2k, 2k+1).</summary>
    public Bytes4 Scales;
}

/// <summary>IQ1_S: 256 weights; per 8, an 11-bit index into the ternary grid; per 32, a 3-bit scale and a delta sign. 50 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ1S
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 50;

    /// <summary>Super-block scale (f16).</summary>
    public Half D;
    /// <summary>[32] low 8 bits of the grid indices.</summary>
    public Bytes32 Qs;
    /// <summary>[8] per sub-block of 32: 4×3 high index bits, the 3-bit scale (bits 12..14), the delta sign (bit 15).</summary>
    public UInt16x8 Qh;
}

/// <summary>IQ1_M: 256 weights; per 8, an 11-bit grid index and a delta sign; 3-bit scales per 16; the f16 super-scale is spread over the top nibbles of <see cref="Scales"/>. 56 bytes.</summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
internal struct BlockIQ1M
{
    /// <summary>Weights per block.</summary>
    public const int BlockSize = 256;
    /// <summary>Bytes per block (ggml-common.h's static_assert).</summary>
    public const int SizeInBytes = 56;

    /// <summary>[32] low 8 bits of the grid indices.</summary>
    public Bytes32 Qs;
    /// <summary>[16] per group of 8: 3 high index bits and the delta sign, a nibble each.</summary>
    public Bytes16 Qh;
    /// <summary>[8] as four u16: 4×3-bit scales in the low 12 bits, one nibble of the f16 super-scale on top.</summary>
    public Bytes8 Scales;
}

/// <summary>Fixed 8-byte buffer inside a block.</summary>
[InlineArray(8)]
internal struct Bytes8 { private byte _e0; }

/// <summary>Fixed 48-byte buffer inside a block.</summary>
[InlineArray(48)]
internal struct Bytes48 { private byte _e0; }

/// <summary>Fixed 96-byte buffer inside a block.</summary>
[InlineArray(96)]
internal struct Bytes96 { private byte _e0; }

/// <summary>Fixed 8 little-endian u16 values inside a block.</summary>
[InlineArray(8)]
internal struct UInt16x8 { private ushort _e0; }

/// <summary>Fixed 32 little-endian u16 values inside a block.</summary>
[InlineArray(32)]
internal struct UInt16x32 { private ushort _e0; }
