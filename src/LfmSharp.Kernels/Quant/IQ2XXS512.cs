using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The 8-row IQ2_XXS decode kernel on AVX-512 VBMI and GFNI: the grid and sign tables are looked up with byte
/// permutes instead of 8-byte loads, two rows' 64 grid entries at a time. Bit-identical to the scalar dot.
/// </summary>
/// <remarks>
/// <para>Why: the AVX2 kernel (<see cref="IQ2Simd.Decode8{T}"/>) spends about 40 instructions per 32 weights, most
/// of them on four grid loads, four sign-table loads and their inserts; that put its decode at ~0.96× llama.cpp's.
/// Here each grid point is a 16-bit code (2 bits per weight: 8, 25, 43), so the 256-entry grid is 2 × 256 bytes that
/// sit in 8 zmm registers, and one pair of rows needs per block:</para>
/// <list type="bullet">
/// <item>the 64 grid indices gathered by one <c>vpermt2b</c>, their code bytes by four <c>vpermt2b</c> and two blends;</item>
/// <item>the 64 sign indices by two <c>vpmultishiftqb</c> and a <c>vpermt2b</c>, completed to ksigns bytes (bit 7 =
/// parity of bits 0..6) by one <c>gf2p8affineqb</c>;</item>
/// <item>per 64 weights: the codes expanded by <c>vpermt2b</c>, <c>vpmultishiftqb</c> and a 64-byte <c>vpermb</c>
/// table, the signs put on the activations by a byte blend of q and −q, <c>vpmaddubsw</c>, <c>vpmaddwd</c> with the
/// two sub-blocks' scales.</item>
/// </list>
/// <para>Input contract: Q8_K quants within ±127 (what <see cref="Q8K.QuantizeRow"/> writes: the block's largest |x|
/// maps to ±127, and Inf/NaN/subnormal blocks give quants in [0, 127]), because −(−128) wraps. The AVX2 kernel and the
/// scalar dot stay exact at −128 and remain the reference.</para>
/// </remarks>
internal static unsafe class IQ2XXS512
{
    /// <summary>True where this kernel runs (AVX-512 VBMI and GFNI on 512-bit vectors).</summary>
    public static bool IsSupported => Avx512Vbmi.IsSupported && Gfni.V512.IsSupported;

    /// <summary>
    /// gf2p8affineqb matrix mapping a 7-bit sign index (bit 7 ignored) to its ksigns byte: output bits 0..6 copy the
    /// input's, output bit 7 is the parity of input bits 0..6 (qword byte 7 − i is the row of output bit i).
    /// </summary>
    public const ulong KSignsMatrix = 0x010204081020407F;

    private static readonly byte[] Codes = BuildCodes();

    /// <summary>The 2-bit code table: bytes [0, 256) the low code bytes of iq2xxs_grid's entries, [256, 512) the high ones.</summary>
    internal static ReadOnlySpan<byte> CodeTable => Codes;

    /// <summary>Code c ∈ {0, 1, 2} of a grid byte (8, 25, 43); weight j of an entry sits at bits 2j..2j+1 of its code.</summary>
    private static byte[] BuildCodes()
    {
        var c = GC.AllocateArray<byte>(512, pinned: true);
        ReadOnlySpan<ulong> grid = IQ2Grids.Iq2XxsGrid;
        for (int i = 0; i < 256; i++)
        {
            int code = 0;
            for (int j = 0; j < 8; j++)
            {
                int v = (int)(grid[i] >> (8 * j)) & 0xFF;
                code |= (v == 8 ? 0 : v == 25 ? 1 : 2) << (2 * j);
            }
            c[i] = (byte)code;
            c[256 + i] = (byte)(code >> 8);
        }
        return c;
    }

    /// <summary>8 GGUF rows · one Q8_K row (<see cref="TypeTraits.Decode8"/>), the float steps of <see cref="IQ2Simd.Decode8{T}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    public static void Decode8(in Group8 g)
    {
        byte* w = g.Rows, a = g.Act;
        int rowBytes = g.RowBytes, nb = g.Nb;
        var sums = stackalloc Vector256<int>[8];
        var acc = Vector256<float>.Zero;
        var special = Vector256<int>.Zero;
        var offs = MatVec8.Offsets(rowBytes);
        byte* next = w + 8L * rowBytes;
        byte* codes = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Codes));
        var t = new Tables(codes);
        for (int b = 0; b < nb; b++)
        {
            byte* x = w + (long)b * 66, ab = a + 292 * b;
            sbyte* q8 = (sbyte*)(ab + 4);
            MatVec8.PrefetchNext(next, 8 * 66, b);
            AssertQ8K(q8);
            var q0 = Vector512.Load(q8);
            var q1 = Vector512.Load(q8 + 64);
            var q2 = Vector512.Load(q8 + 128);
            var q3 = Vector512.Load(q8 + 192);
            var n0 = -q0;
            var n1 = -q1;
            var n2 = -q2;
            var n3 = -q3;
            // One inlined pair sum in a loop (four call sites would each need the tables in registers).
            for (int p = 0; p < 8; p += 2)
            {
                byte* x0 = x + (long)p * rowBytes;
                Pair(x0, x0 + rowBytes, in t, q0, q1, q2, q3, n0, n1, n2, n3, out var s0, out var s1);
                sums[p] = s0.GetLower() + s0.GetUpper();
                sums[p + 1] = s1.GetLower() + s1.GetUpper();
            }
            var tot = Vector256.ConvertToSingle(MatVec8.Totals(sums[0], sums[1], sums[2], sums[3], sums[4], sums[5], sums[6], sums[7]));
            var d = MatVec8.RowHalves(x, offs, ref special) * Vector256.Create(*(float*)ab);
            acc += d * tot;   // two roundings, as the scalar's sumf += d·bsum (no fma)
        }
        (acc * Vector256.Create(0.125f)).Store(g.Y);
        if (MatVec8.HasSpecial(special))
            MatVec8.Exact(&IQ2XXS.DotAvx2, w, rowBytes, nb, a, g.Y);
    }

    /// <summary>The constant vectors of the kernel, loaded once per group.</summary>
    private readonly struct Tables(byte* codes)
    {
        /// <summary>Low / high code bytes of grid entries 0..63, 64..127, 128..191, 192..255.</summary>
        public readonly Vector512<byte> Lo0 = Vector512.Load(codes), Lo1 = Vector512.Load(codes + 64),
            Lo2 = Vector512.Load(codes + 128), Lo3 = Vector512.Load(codes + 192),
            Hi0 = Vector512.Load(codes + 256), Hi1 = Vector512.Load(codes + 320),
            Hi2 = Vector512.Load(codes + 384), Hi3 = Vector512.Load(codes + 448);
    }

    /// <summary>
    /// The block integers of two rows (at <paramref name="x0"/>, <paramref name="x1"/>) as 16 int32 lanes each.
    /// Entry e of the pair (0..63) is group e % 4 of sub-block (e / 4) % 8 of row e / 32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Pair(byte* x0, byte* x1, in Tables t,
        Vector512<sbyte> q0, Vector512<sbyte> q1, Vector512<sbyte> q2, Vector512<sbyte> q3,
        Vector512<sbyte> n0, Vector512<sbyte> n1, Vector512<sbyte> n2, Vector512<sbyte> n3,
        out Vector512<int> s0, out Vector512<int> s1)
    {
        // qword ib of a row's 64 quant bytes: its 4 grid indices (bytes 0..3), then a1 (4 × 7 sign bits, scale in 28..31).
        var v0 = Vector512.Load(x0 + 2);
        var v1 = Vector512.Load(x1 + 2);
        // Bytes 0..3 of every qword of v0, then of v1.
        var pick = Vector512.Create(
            0x0B0A090803020100ul, 0x1B1A191813121110ul, 0x2B2A292823222120ul, 0x3B3A393833323130ul,
            0x4B4A494843424140ul, 0x5B5A595853525150ul, 0x6B6A696863626160ul, 0x7B7A797873727170ul).AsByte();
        var idx = Avx512Vbmi.PermuteVar64x8x2(v0, pick, v1);
        // Entries ≥ 128 (index bit 7) come from the second half of each table.
        var lo = Avx512BW.BlendVariable(Avx512Vbmi.PermuteVar64x8x2(t.Lo0, idx, t.Lo1), Avx512Vbmi.PermuteVar64x8x2(t.Lo2, idx, t.Lo3), idx);
        var hi = Avx512BW.BlendVariable(Avx512Vbmi.PermuteVar64x8x2(t.Hi0, idx, t.Hi1), Avx512Vbmi.PermuteVar64x8x2(t.Hi2, idx, t.Hi3), idx);
        // Sign index l of each sub-block: bits 32 + 7l of its qword; ksigns adds the parity bit.
        var signShift = Vector512.Create(0x352E2720352E2720ul).AsByte();
        var f = Avx512Vbmi.PermuteVar64x8x2(Avx512Vbmi.MultiShift(signShift, v0.AsUInt64()), pick, Avx512Vbmi.MultiShift(signShift, v1.AsUInt64()));
        var ks = Gfni.V512.GaloisFieldAffineTransform(f, Vector512.Create(KSignsMatrix).AsByte(), 0);
        // ls = 2s + 1 of sub-block ib in byte 8ib (s = bits 60..63 of qword ib; the table ignores the bits above).
        var lsTable = Vector512.Create(
            0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul, 0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul,
            0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul, 0x0F0D0B0907050301ul, 0x1F1D1B1917151311ul).AsByte();
        var scaleShift = Vector512.Create(0x000000000000003Cul).AsByte();
        var ls0 = Avx512Vbmi.PermuteVar64x8(lsTable, Avx512Vbmi.MultiShift(scaleShift, v0.AsUInt64()));
        var ls1 = Avx512Vbmi.PermuteVar64x8(lsTable, Avx512Vbmi.MultiShift(scaleShift, v1.AsUInt64()));
        s0 = Quad(lo, hi, ks, ls0, 0, q0, n0) + Quad(lo, hi, ks, ls0, 1, q1, n1)
           + Quad(lo, hi, ks, ls0, 2, q2, n2) + Quad(lo, hi, ks, ls0, 3, q3, n3);
        s1 = Quad(lo, hi, ks, ls1, 4, q0, n0) + Quad(lo, hi, ks, ls1, 5, q1, n1)
           + Quad(lo, hi, ks, ls1, 6, q2, n2) + Quad(lo, hi, ks, ls1, 7, q3, n3);
    }

    /// <summary>
    /// Σ ls·(g·s·q) over the pair's entries 8k..8k+7 (two sub-blocks of one row, 64 weights) against the activations
    /// <paramref name="q"/> (and their negations <paramref name="n"/>) of those sub-blocks, as 16 int32 lanes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Quad(Vector512<byte> lo, Vector512<byte> hi, Vector512<byte> ks, Vector512<byte> ls, int k,
        Vector512<sbyte> q, Vector512<sbyte> n)
    {
        var k8 = Vector512.Create((byte)(8 * k));
        // Qword e: the code of entry 8k + e in its bytes 0 (low) and 1 (high); byte j of the shift picks bits 2j...
        var code = Avx512Vbmi.PermuteVar64x8x2(lo, Vector512.Create(0x4000400040004000ul, 0x4101410141014101ul,
            0x4202420242024202ul, 0x4303430343034303ul, 0x4404440444044404ul, 0x4505450545054505ul,
            0x4606460646064606ul, 0x4707470747074707ul).AsByte() + k8, hi);
        var sel = Avx512Vbmi.MultiShift(Vector512.Create(0x0E0C0A0806040200ul).AsByte(), code.AsUInt64());
        // ... whose low 2 bits a 64-byte table maps to the grid value.
        var grid = Avx512Vbmi.PermuteVar64x8(Vector512.Create(0x002B1908002B1908ul).AsByte(), sel);
        // Byte 8e + j: bit j of ksigns byte 8k + e says whether weight j of that entry is negative.
        var spread = Avx512Vbmi.PermuteVar64x8(ks, Vector512.Create(0x0000000000000000ul, 0x0101010101010101ul,
            0x0202020202020202ul, 0x0303030303030303ul, 0x0404040404040404ul, 0x0505050505050505ul,
            0x0606060606060606ul, 0x0707070707070707ul).AsByte() + k8);
        var bit = Vector512.Create(0x8040201008040201ul).AsByte();
        var signed = Vector512.ConditionalSelect(Vector512.Equals(spread & bit, bit).AsSByte(), n, q);
        var pairs = Avx512BW.MultiplyAddAdjacent(grid, signed);
        // Words 0..15 scale sub-block 2(k % 4), words 16..31 the next one: ls byte 8ib zero-extended (index 64 = a zero byte).
        ulong w0 = 0x4000_4000_4000_4000ul + 0x0001_0001_0001_0001ul * (ulong)(16 * (k & 3)), w1 = w0 + 0x0008_0008_0008_0008ul;
        var scales = Avx512Vbmi.PermuteVar64x8x2(ls, Vector512.Create(w0, w0, w0, w0, w1, w1, w1, w1).AsByte(), Vector512<byte>.Zero);
        return Avx512BW.MultiplyAddAdjacent(pairs, scales.AsInt16());
    }

    /// <summary>Debug check of the input contract: no quant is −128.</summary>
    [Conditional("DEBUG")]
    private static void AssertQ8K(sbyte* q8)
    {
        for (int i = 0; i < 256; i++)
            Debug.Assert(q8[i] != -128, "IQ2XXS512 needs Q8_K quants within ±127");
    }
}
