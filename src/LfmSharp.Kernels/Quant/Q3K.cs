using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// Q3_K rows (<see cref="BlockQ3K"/>): super-blocks of 256 weights (16 sub-blocks of 16) in 110 bytes,
/// y = d·(sc − 32)·q with q = 2 low bits − 4·(1 − high bit) in −4..3. Dot products run against <see cref="Q8K"/>.
/// </summary>
internal static unsafe class Q3K
{
    public const GgmlType Type = GgmlType.Q3_K;

    /// <summary>
    /// Weight 128c + 32k + l (c = 0..1, k = 0..3, l = 0..31) is bits 2k..2k+1 of qs[32c + l] minus 4 unless bit 4c + k
    /// of hmask[l] is set; its scale is 6-bit value 8c + 2k + (l ≥ 16) minus 32. src: [blocks × 110] bytes; dst: at
    /// least [blocks × 256] floats. Bit-identical to ggml's dequantize_row_q3_K.
    /// </summary>
    public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
    {
        int nb = CheckDequantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ3K>(src, nb);
        Span<sbyte> scales = stackalloc sbyte[16];
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ3K b = ref blocks[i];
            float dAll = FromHalf(b.D);
            UnpackScales(b.Scales, scales);
            ReadOnlySpan<byte> qs = b.Qs;
            ReadOnlySpan<byte> hm = b.HMask;
            Span<float> y = dst.Slice(i * 256, 256);
            int o = 0, s = 0, m = 1;
            for (int c = 0; c < 2; c++)
            {
                ReadOnlySpan<byte> q = qs.Slice(32 * c, 32);
                for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                {
                    for (int half = 0; half < 2; half++)
                    {
                        float dl = dAll * (scales[s++] - 32);
                        for (int l = 16 * half; l < 16 * half + 16; l++)
                            y[o++] = dl * (((q[l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
                    }
                }
            }
        }
    }

    /// <summary>The sixteen 6-bit scales (0..63, before the −32) of a block, as ggml's kmask shuffle gives them.</summary>
    internal static void UnpackScales(ReadOnlySpan<byte> packed, Span<sbyte> scales)
    {
        if (packed.Length < 12 || scales.Length < 16)
            throw new ArgumentException("Q3_K scales: 12 packed bytes in, 16 scales out.");
        fixed (byte* p = packed)
        fixed (sbyte* s = scales)
            UnpackScales(p, (uint*)s);
    }

    /// <summary>
    /// The sixteen 6-bit scales of the 12 bytes at <paramref name="p"/> as four dwords (bytes = scales 0..15): the low
    /// nibbles of bytes 0..7 then their high nibbles, each with two bits of bytes 8..11 on top — ggml's kmask1/kmask2
    /// sequence on whole dwords (a per-scale loop was a third of Q3_K decode).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void UnpackScales(byte* p, uint* s) => ScaleDwords(p).Store(s);

    /// <summary>The scales of <see cref="UnpackScales(byte*, uint*)"/> as one vector (bytes = scales 0..15, before the −32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<uint> ScaleDwords(byte* p)
    {
        // Two qwords (one vmovq and one vpinsrq; four dword inserts from general registers cost more vector ops).
        const ulong nib = 0x0F0F0F0F0F0F0F0F, two = 0x0303030303030303;
        ulong lo = Unsafe.ReadUnaligned<ulong>(p);
        uint hi = Unsafe.ReadUnaligned<uint>(p + 8);
        ulong h0 = hi | (ulong)(hi >> 2) << 32, h1 = hi >> 4 | (ulong)(hi >> 6) << 32;
        return Vector128.Create((lo & nib) | (h0 & two) << 4, (lo >> 4 & nib) | (h1 & two) << 4).AsUInt32();
    }

    /// <summary>
    /// llama.cpp's quantize_row_q3_K_ref (llama-quantize's Q3_K without an imatrix): per sub-block of 16 a
    /// make_q3_quants fit (nmax 4, rmse refinement), the scales quantized to 6 bits against the largest |scale|, then
    /// every weight re-quantized to −4..3 against the rounded scales. src: [blocks × 256] floats; dst: at least
    /// [blocks × 110] bytes.
    /// </summary>
    public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(Type, src.Length, dst.Length);
        var blocks = Blocks<BlockQ3K>(dst, nb);
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        for (int i = 0; i < nb; i++)
        {
            ReadOnlySpan<float> x = src.Slice(i * 256, 256);
            ref BlockQ3K y = ref blocks[i];
            float maxScale = 0f, amax = 0f;
            for (int j = 0; j < 16; j++)
            {
                scales[j] = MakeQ3Quants(16, 4, x.Slice(16 * j, 16), L.Slice(16 * j, 16));
                float scale = MathF.Abs(scales[j]);
                if (scale > amax) { amax = scale; maxScale = scales[j]; }
            }

            Span<byte> sc = y.Scales;
            sc.Clear();
            if (maxScale != 0f)
            {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++)
                {
                    sbyte l8 = (sbyte)NearestInt(iscale * scales[j]);
                    int l = Math.Max(-32, Math.Min(31, (int)l8)) + 32;
                    if (j < 8)
                        sc[j] = (byte)(l & 0xF);
                    else
                        sc[j - 8] |= (byte)((l & 0xF) << 4);
                    l >>= 4;
                    sc[j % 4 + 8] |= (byte)(l << (2 * (j / 4)));
                }
                y.D = ToHalf(1f / iscale);
            }
            else
            {
                y.D = ToHalf(0f);
            }

            float dAll = FromHalf(y.D);
            for (int j = 0; j < 16; j++)
            {
                int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
                s = (sbyte)((s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32);
                float d = dAll * s;
                if (d == 0f)
                    continue;
                for (int ii = 0; ii < 16; ii++)
                {
                    int l = NearestInt(x[16 * j + ii] / d);
                    L[16 * j + ii] = (sbyte)(Math.Max(-4, Math.Min(3, l)) + 4);
                }
            }

            Span<byte> hmask = y.HMask;
            hmask.Clear();
            int m = 0;
            byte hm = 1;
            for (int j = 0; j < 256; j++)
            {
                if (L[j] > 3)
                {
                    hmask[m] |= hm;
                    L[j] -= 4;
                }
                if (++m == 32)
                {
                    m = 0;
                    hm <<= 1;
                }
            }
            Span<byte> qs = y.Qs;
            for (int j = 0; j < 256; j += 128)
                for (int l = 0; l < 32; l++)
                    qs[j / 4 + l] = (byte)((byte)L[j + l] | ((byte)L[j + l + 32] << 2) | ((byte)L[j + l + 64] << 4) | ((byte)L[j + l + 96] << 6));
        }
    }

    /// <summary>
    /// make_q3_quants with do_rmse: symmetric levels −nmax..nmax−1 from the max-|x| fit, then up to 5 rounds of
    /// per-weight moves (weights x²) that raise Σlx²/Σl²; L gets the level + nmax. Returns the scale.
    /// </summary>
    private static float MakeQ3Quants(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < KQuantMath.GroupMaxEps)
        {
            L[..n].Clear();
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++)
        {
            int changed = 0;
            for (int i = 0; i < n; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = NearestInt(x[i] * sl2 / slx);
                    newL = Math.Max(-nmax, Math.Min(nmax - 1, newL));
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0)
                break;
        }
        for (int i = 0; i < n; i++)
            L[i] += (sbyte)nmax;
        return suml2 > 0f ? sumlx / suml2 : 0f;
    }

    /// <summary>
    /// Σ w[i]·a[i] like ggml_vec_dot_q3_K_q8_K_generic: 8 int32 lanes (element index mod 8) of Σ (sc − 32)·q·a per
    /// super-block, scaled by d·d_a into 8 float lanes that are added up at the end. weightRow: [n/256 × 110] bytes;
    /// q8KRow: [n/256 × 292] bytes.
    /// </summary>
    public static float Dot(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int n)
    {
        int nb = CheckDot(Type, GgmlType.Q8_K, weightRow.Length, q8KRow.Length, n);
        return Simd.Dot(weightRow, q8KRow, nb, &DotAvx2, null, &DotScalar);
    }

    /// <summary>Scalar reference of <see cref="Dot"/> over <paramref name="nb"/> blocks, arguments already checked.</summary>
    internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> q8KRow, int nb)
    {
        var x = Blocks<BlockQ3K>(weightRow, nb);
        var y = Blocks<BlockQ8K>(q8KRow, nb);
        Span<sbyte> aux8 = stackalloc sbyte[256];
        Span<sbyte> scales = stackalloc sbyte[16];
        Span<float> sums = stackalloc float[8];
        Span<int> aux32 = stackalloc int[8];
        sums.Clear();
        for (int i = 0; i < nb; i++)
        {
            ref readonly BlockQ3K xb = ref x[i];
            ref readonly BlockQ8K yb = ref y[i];
            ReadOnlySpan<byte> q3 = xb.Qs;
            ReadOnlySpan<byte> hm = xb.HMask;
            ReadOnlySpan<sbyte> q8 = yb.Qs;
            int a = 0, m = 1;
            for (int c = 0; c < 2; c++)
                for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                    for (int l = 0; l < 32; l++)
                        aux8[a++] = (sbyte)(((q3[32 * c + l] >> shift) & 3) - ((hm[l] & m) != 0 ? 0 : 4));
            UnpackScales(xb.Scales, scales);
            aux32.Clear();
            for (int j = 0; j < 16; j++)
            {
                int s = scales[j] - 32;
                for (int l = 0; l < 16; l++)
                    aux32[l & 7] += s * (short)(q8[16 * j + l] * aux8[16 * j + l]);
            }
            float d = FromHalf(xb.D) * yb.D;
            for (int l = 0; l < 8; l++)
                sums[l] += d * aux32[l];
        }
        float sumf = 0f;
        for (int l = 0; l < 8; l++)
            sumf += sums[l];
        return sumf;
    }

    /// <summary>
    /// AVX2 twin of <see cref="DotScalar"/> in the engine's canonical order: the exact integer Σ (sc − 32)·q·a of a
    /// super-block (<see cref="BlockSum"/>: (lo | 4h)·a by maddubs, madd by the scales, less 4·Σ sc·bsum), then
    /// acc = fma(isum, d·d_a, acc). Differs from the generic order only by rounding.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static float DotAvx2(byte* w, byte* a, int nb)
    {
        float acc = 0f;
        for (int i = 0; i < nb; i++)
        {
            byte* x = w + i * 110, y = a + i * 292;
            var sumi = BlockSum(x, y);
            float d = HalfToSingle(*(ushort*)(x + 108)) * *(float*)y;
            acc = MathF.FusedMultiplyAdd(Simd.HorizontalSum(sumi), d, acc);
        }
        return acc;
    }

    /// <summary>
    /// The exact Σ (sc − 32)·q·a of one super-block (x: the Q3_K block, y: the Q8_K block) in 8 int32 lanes — the
    /// integer part shared by <see cref="DotAvx2"/> and the 8-row decode kernel (<see cref="MatVec8K"/>). Only the
    /// block's integer total matters to both (they sum the lanes exactly), so the AVX-512 path may spread it over the
    /// lanes differently.
    /// </summary>
    /// <remarks>
    /// q = lo − 4·(1 − h) is written as v − 4 with v = lo | 4h in 0..7, so Σ sc·q·a = Σ sc·v·a − 4·Σ_j sc_j·bsum_j
    /// (the Q8_K block's sums per 16): one unsigned maddubs per run instead of two and a subtract, and the offset is
    /// one madd per block. |maddubs pair| ≤ 2·7·128 fits int16.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum(byte* x, byte* y)
        => Avx512BW.IsSupported ? BlockSum512(x, y) : BlockSum256(x, y);

    /// <summary>The AVX2 <see cref="BlockSum"/>: one 32-weight run per step.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum256(byte* x, byte* y)
    {
        var three = Vector256.Create((byte)3);
        var four = Vector256.Create((byte)4);
        // Scales − 32 as int16, both halves: [s0..s7 | s0..s7] and [s8..s15 | s8..s15]; a run k of chunk c takes
        // scale 8c + 2k in its low 128 bits and 8c + 2k + 1 in its high ones (vpshufb broadcasts).
        var all = Avx2.ConvertToVector256Int16(ScaleDwords(x + 96).AsSByte() - Vector128.Create((sbyte)32));
        var offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), all);
        var halves = (Avx2.Permute2x128(all, all, 0x00), Avx2.Permute2x128(all, all, 0x11));
        var hm = Vector256.Load(x).AsUInt16();
        sbyte* q8 = (sbyte*)(y + 4);
        var sumi = Vector256<int>.Zero;
        for (int c = 0; c < 2; c++)
        {
            var q = Vector256.Load(x + 32 + 32 * c).AsUInt16();
            var sc = (c == 0 ? halves.Item1 : halves.Item2).AsByte();
            for (int k = 0; k < 4; k++)
            {
                // Bit 4c + k of each hmask byte to bit 2 (16-bit shifts: the mask drops what crosses a byte).
                int s = 4 * c + k - 2;
                var h = (s < 0 ? Vector256.ShiftLeft(hm, -s) : Vector256.ShiftRightLogical(hm, s)).AsByte() & four;
                var v = (Vector256.ShiftRightLogical(q, 2 * k).AsByte() & three) | h;
                var p = Avx2.MultiplyAddAdjacent(v, Vector256.Load(q8 + 128 * c + 32 * k));
                sumi += Avx2.MultiplyAddAdjacent(p, Avx2.Shuffle(sc, PairShuffle(k)).AsInt16());
            }
        }
        return sumi - Avx2.ShiftLeftLogical(offset, 2);
    }

    /// <summary>
    /// The AVX-512 <see cref="BlockSum"/>: two runs per step (runs 2j and 2j + 1 of a chunk are 64 consecutive
    /// activations; their quants are one 32-byte vector shifted by [2·2j | 2·2j + 2]), the scales picked per 128-bit
    /// lane by one vpermw.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<int> BlockSum512(byte* x, byte* y)
    {
        var all = Avx2.ConvertToVector256Int16(ScaleDwords(x + 96).AsSByte() - Vector128.Create((sbyte)32));
        var offset = Avx2.MultiplyAddAdjacent(Vector256.Load((short*)(y + 4 + 256)), all);
        var scales = Vector512.Create(all, all);
        var hm = Vector256.Load(x).AsUInt16();
        var hz = Vector512.Create(hm, hm);
        var oneLane = Vector512.Create(Vector256<ushort>.Zero, Vector256<ushort>.One);
        // hmask bits (0, 1), (2, 3), (4, 5), (6, 7) to bit 2 of the low and high 256 bits.
        var h0 = Avx512BW.ShiftLeftLogicalVariable(hz, Vector512.Create(Vector256.Create((ushort)2), Vector256<ushort>.One));
        var h1 = Avx512BW.ShiftRightLogicalVariable(hz, oneLane);
        sbyte* q8 = (sbyte*)(y + 4);
        var q0 = Vector256.Load(x + 32).AsUInt16();
        var q1 = Vector256.Load(x + 64).AsUInt16();
        var two = Vector512.Create(Vector256<ushort>.Zero, Vector256.Create((ushort)2));
        var t0 = Avx512BW.ShiftRightLogicalVariable(Vector512.Create(q0, q0), two);
        var t1 = Avx512BW.ShiftRightLogicalVariable(Vector512.Create(q1, q1), two);
        var sumi = Run512(t0, h0, q8, scales, 0, Vector512<int>.Zero);
        sumi = Run512(Vector512.ShiftRightLogical(t0, 4), h1, q8 + 64, scales, 4, sumi);
        sumi = Run512(t1, Vector512.ShiftRightLogical(h1, 2), q8 + 128, scales, 8, sumi);
        sumi = Run512(Vector512.ShiftRightLogical(t1, 4), Vector512.ShiftRightLogical(h1, 4), q8 + 192, scales, 12, sumi);
        return sumi.GetLower() + sumi.GetUpper() - Avx2.ShiftLeftLogical(offset, 2);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static Vector512<int> Run512(Vector512<ushort> lo, Vector512<ushort> h, sbyte* a, Vector512<short> scales, int first, Vector512<int> sumi)
        {
            var v = (lo.AsByte() & Vector512.Create((byte)3)) | (h.AsByte() & Vector512.Create((byte)4));
            var p = Avx512BW.MultiplyAddAdjacent(v, Vector512.Load(a));
            var idx = Vector512.Create(
                Vector256.Create(Vector128.Create((short)first), Vector128.Create((short)(first + 1))),
                Vector256.Create(Vector128.Create((short)(first + 2)), Vector128.Create((short)(first + 3))));
            return sumi + Avx512BW.MultiplyAddAdjacent(p, Avx512BW.PermuteVar32x16(scales, idx));
        }
    }

    /// <summary>vpshufb control: int16 lane 2k of the source in every low-half lane, lane 2k + 1 in every high-half lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<byte> PairShuffle(int k)
    {
        ushort lo = (ushort)(4 * k | (4 * k + 1) << 8), hi = (ushort)((4 * k + 2) | (4 * k + 3) << 8);
        return Vector256.Create(Vector128.Create(lo), Vector128.Create(hi)).AsByte();
    }

    /// <summary>
    /// Rewrites one Q3_K block at <paramref name="x"/> as the Q6_K block of the same values at <paramref name="q6k"/>:
    /// Q6_K stores d·scale·(q − 32) with int8 scales per 16 and 6-bit q, so scale = sc − 32 and q = q3 + 32 are exact.
    /// The integer sums a Q6_K kernel forms, Σ scale·(q − 32)·a, are then those of Q3_K, and its float steps are the
    /// same as <see cref="DotAvx2"/>'s: the packed Q6_K GEMM computes Q3_K rows bit-identically to it.
    /// </summary>
    internal static void ToQ6K(byte* x, byte* q6k)
    {
        sbyte* v = stackalloc sbyte[256];
        byte* qs = x + 32;
        for (int c = 0; c < 2; c++)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++)
                    v[128 * c + 32 * k + l] = (sbyte)(((qs[32 * c + l] >> (2 * k)) & 3) - (((x[l] >> (4 * c + k)) & 1) != 0 ? 0 : 4) + 32);
        for (int h = 0; h < 2; h++)
        {
            byte* ql = q6k + 64 * h, qh = q6k + 128 + 32 * h;
            sbyte* y = v + 128 * h;
            for (int l = 0; l < 32; l++)
            {
                int a = y[l], b = y[l + 32], c = y[l + 64], d = y[l + 96];
                ql[l] = (byte)((a & 0xF) | ((c & 0xF) << 4));
                ql[l + 32] = (byte)((b & 0xF) | ((d & 0xF) << 4));
                qh[l] = (byte)((a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((d >> 4) << 6));
            }
        }
        UnpackScales(x + 96, (uint*)(q6k + 192));
        for (int j = 0; j < 16; j++)
            ((sbyte*)q6k)[192 + j] -= 32;
        *(ushort*)(q6k + 208) = *(ushort*)(x + 108);
    }

    /// <summary>
    /// Packs 8 Q3_K rows (<paramref name="rowBytes"/> apart, <paramref name="nb"/> blocks) for the packed Q6_K GEMM
    /// kernels, block by block through <see cref="ToQ6K"/>: the same packed bytes as the Q6_K rows of equal values.
    /// </summary>
    internal static void PackAsQ6K(byte* w, int rowBytes, int nb, byte* dst)
    {
        byte* tmp = stackalloc byte[8 * 210];
        for (int b = 0; b < nb; b++)
        {
            for (int r = 0; r < 8; r++)
                ToQ6K(w + (long)r * rowBytes + b * 110, tmp + 210 * r);
            PackedGemm.PackQ6K(tmp, 210, 1, dst + (long)b * 2848);
        }
    }
}
