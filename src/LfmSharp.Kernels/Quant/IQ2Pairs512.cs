using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// IQ2_XXS for <see cref="IQ2Simd512"/>: qword ib of a row's 64 quant bytes holds sub-block ib's 4 grid indices
/// (bytes 0..3) and a1 (4 × 7 sign-index bits, the scale in bits 28..31).
/// </summary>
internal unsafe struct IQ2XXSPair : IIQ2Pair
{
    /// <summary>
    /// gf2p8affineqb matrix mapping a 7-bit sign index (bit 7 ignored) to its ksigns byte: output bits 0..6 copy the
    /// input's, output bit 7 is the parity of input bits 0..6 (qword byte 7 − i is the row of output bit i).
    /// </summary>
    public const ulong KSignsMatrix = 0x010204081020407F;

    /// <summary>The code planes of iq2xxs_grid (<see cref="IQ2Simd512.BuildCodes"/>).</summary>
    internal static readonly byte[] CodeArray = IQ2Simd512.BuildCodes(IQ2Grids.Iq2XxsGrid);

    public static int BlockBytes => 66;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XXS.DotAvx2;

    public static byte* Codes => IQ2Simd512.Pointer(CodeArray);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pair(byte* x0, byte* x1, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi,
        out Vector512<byte> signs, out Vector512<byte> ls0, out Vector512<byte> ls1)
    {
        var v0 = Vector512.Load(x0 + 2);
        var v1 = Vector512.Load(x1 + 2);
        // Bytes 0..3 of every qword of v0, then of v1.
        var pick = Vector512.Create(
            0x0B0A090803020100ul, 0x1B1A191813121110ul, 0x2B2A292823222120ul, 0x3B3A393833323130ul,
            0x4B4A494843424140ul, 0x5B5A595853525150ul, 0x6B6A696863626160ul, 0x7B7A797873727170ul).AsByte();
        var idx = Avx512Vbmi.PermuteVar64x8x2(v0, pick, v1);
        lo = IQ2Simd512.Lookup(codes, idx);
        hi = IQ2Simd512.Lookup(codes + 256, idx);
        // Sign index l of each sub-block: bits 32 + 7l of its qword; ksigns adds the parity bit.
        var signShift = Vector512.Create(0x352E2720352E2720ul).AsByte();
        var f = Avx512Vbmi.PermuteVar64x8x2(Avx512Vbmi.MultiShift(signShift, v0.AsUInt64()), pick, Avx512Vbmi.MultiShift(signShift, v1.AsUInt64()));
        signs = Gfni.V512.GaloisFieldAffineTransform(f, Vector512.Create(KSignsMatrix).AsByte(), 0);
        // ls = 2s + 1 of sub-block ib in byte 8ib (s = bits 60..63 of qword ib; the table ignores the bits above).
        var scaleShift = Vector512.Create(0x000000000000003Cul).AsByte();
        ls0 = Avx512Vbmi.PermuteVar64x8(IQ2Simd512.LsTable, Avx512Vbmi.MultiShift(scaleShift, v0.AsUInt64()));
        ls1 = Avx512Vbmi.PermuteVar64x8(IQ2Simd512.LsTable, Avx512Vbmi.MultiShift(scaleShift, v1.AsUInt64()));
    }

    /// <summary>Sub-block ib's scale sits in byte 8ib and serves both its groups.</summary>
    public static Vector512<byte> GroupScales
        => Vector512.Create(0x1818101008080000ul, 0x3838303028282020ul, 0x5858505048484040ul, 0x7878707068686060ul, 0, 0, 0, 0).AsByte();

    /// <summary>Words 0..15 take byte 16k (sub-block 2k's ls), words 16..31 byte 16k + 8; index 64 is a zero byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> ScaleControl(int k)
    {
        ulong w0 = 0x4000_4000_4000_4000ul + 0x0001_0001_0001_0001ul * (ulong)(16 * k), w1 = w0 + 0x0008_0008_0008_0008ul;
        return Vector512.Create(w0, w0, w0, w0, w1, w1, w1, w1).AsByte();
    }
}

/// <summary>
/// IQ2_XS for <see cref="IQ2Simd512"/>: per group a word (9-bit grid index, 7-bit sign index), scales at byte 66.
/// The grid has 512 points: bit 8 of the index picks the bank.
/// </summary>
internal unsafe struct IQ2XSPair : IIQ2Pair
{
    /// <summary>
    /// gf2p8affineqb matrix from a word's high byte (sign index in bits 1..7) to the ksigns byte: output bits 0..6 are
    /// input bits 1..7, output bit 7 their parity.
    /// </summary>
    public const ulong KSignsMatrix = 0x02040810204080FE;

    /// <summary>The code planes of iq2xs_grid (<see cref="IQ2Simd512.BuildCodes"/>).</summary>
    internal static readonly byte[] CodeArray = IQ2Simd512.BuildCodes(IQ2Grids.Iq2XsGrid);

    public static int BlockBytes => 74;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2XS.DotAvx2;

    public static byte* Codes => IQ2Simd512.Pointer(CodeArray);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pair(byte* x0, byte* x1, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi,
        out Vector512<byte> signs, out Vector512<byte> ls0, out Vector512<byte> ls1)
    {
        var v0 = Vector512.Load(x0 + 2);
        var v1 = Vector512.Load(x1 + 2);
        // The low bytes of the 32 words of v0, then of v1; +1: their high bytes.
        var even = Vector512.Create(
            0x0E0C0A0806040200ul, 0x1E1C1A1816141210ul, 0x2E2C2A2826242220ul, 0x3E3C3A3836343230ul,
            0x4E4C4A4846444240ul, 0x5E5C5A5856545250ul, 0x6E6C6A6866646260ul, 0x7E7C7A7876747270ul).AsByte();
        var idx = Avx512Vbmi.PermuteVar64x8x2(v0, even, v1);
        var high = Avx512Vbmi.PermuteVar64x8x2(v0, even + Vector512<byte>.One, v1);
        var bank = (high.AsUInt16() << 7).AsByte();   // index bit 8 into each byte's bit 7
        lo = Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes, idx), IQ2Simd512.Lookup(codes + 256, idx), bank);
        hi = Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes + 512, idx), IQ2Simd512.Lookup(codes + 768, idx), bank);
        signs = Gfni.V512.GaloisFieldAffineTransform(high, Vector512.Create(KSignsMatrix).AsByte(), 0);
        ls0 = IQ2Simd512.NibbleScales(x0 + 66);
        ls1 = IQ2Simd512.NibbleScales(x1 + 66);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> ScaleControl(int k) => IQ2Simd512.NibbleScaleControl(k);

    public static Vector512<byte> GroupScales => IQ2Simd512.NibbleGroupScales;
}

/// <summary>
/// IQ2_S for <see cref="IQ2Simd512"/>: low index bytes at 2, sign bytes at 34, two high index bits per group at 66,
/// scales at 74. The grid has 1024 points: the two high bits pick the bank.
/// </summary>
internal unsafe struct IQ2SPair : IIQ2Pair
{
    /// <summary>The code planes of iq2s_grid (<see cref="IQ2Simd512.BuildCodes"/>).</summary>
    internal static readonly byte[] CodeArray = IQ2Simd512.BuildCodes(IQ2Grids.Iq2SGrid);

    public static int BlockBytes => 82;

    public static delegate*<byte*, byte*, int, float> RowDot => &IQ2S.DotAvx2;

    public static byte* Codes => IQ2Simd512.Pointer(CodeArray);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Pair(byte* x0, byte* x1, byte* codes, out Vector512<byte> lo, out Vector512<byte> hi,
        out Vector512<byte> signs, out Vector512<byte> ls0, out Vector512<byte> ls1)
    {
        var v0 = Vector512.Load(x0 + 2);
        var v1 = Vector512.Load(x1 + 2);
        var idx = Avx512Vbmi.PermuteVar64x8x2(v0, IQ2Simd512.Halves0, v1);
        signs = Avx512Vbmi.PermuteVar64x8x2(v0, IQ2Simd512.Halves0 + Vector512.Create((byte)32), v1);
        // Qword q (entries 8q..8q+7: sub-blocks 2q', 2q'+1 of row q / 4) gets qh[2q'] | qh[2q'+1] << 8; byte j of the
        // shift then holds entry 8q + j's two high index bits in bits 0..1.
        var qh = Vector128.Create(*(ulong*)(x0 + 66), *(ulong*)(x1 + 66)).ToVector256Unsafe().ToVector512Unsafe().AsByte();
        var qhPairs = Avx512Vbmi.PermuteVar64x8(qh, Vector512.Create(0x0100ul, 0x0302ul, 0x0504ul, 0x0706ul, 0x0908ul, 0x0B0Aul, 0x0D0Cul, 0x0F0Eul).AsByte());
        var bits = Avx512Vbmi.MultiShift(Vector512.Create(0x0E0C0A0806040200ul).AsByte(), qhPairs.AsUInt64()).AsUInt16();
        var bit8 = (bits << 7).AsByte();
        var bit9 = (bits << 6).AsByte();
        lo = Avx512BW.BlendVariable(
            Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes, idx), IQ2Simd512.Lookup(codes + 256, idx), bit8),
            Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes + 512, idx), IQ2Simd512.Lookup(codes + 768, idx), bit8), bit9);
        hi = Avx512BW.BlendVariable(
            Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes + 1024, idx), IQ2Simd512.Lookup(codes + 1280, idx), bit8),
            Avx512BW.BlendVariable(IQ2Simd512.Lookup(codes + 1536, idx), IQ2Simd512.Lookup(codes + 1792, idx), bit8), bit9);
        ls0 = IQ2Simd512.NibbleScales(x0 + 74);
        ls1 = IQ2Simd512.NibbleScales(x1 + 74);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<byte> ScaleControl(int k) => IQ2Simd512.NibbleScaleControl(k);

    public static Vector512<byte> GroupScales => IQ2Simd512.NibbleGroupScales;
}
