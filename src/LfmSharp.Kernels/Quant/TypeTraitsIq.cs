using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The table entries of the IQ*/TQ* formats (IQ4_NL, IQ4_XS, IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M,
/// TQ1_0, TQ2_0): one <c>add(new(...))</c> per type, as described at the top of TypeTraits.cs. Kept in its own file
/// so those formats land without touching the other entries.
/// </summary>
/// <remarks>
/// Activation formats as ggml-cpu's type_traits_cpu[].vec_dot_type: Q8_0 for IQ4_NL, Q8_K for the rest. Their AVX2
/// dots of the grid and ternary types are bit-identical to the scalar (and so to ggml's generic dot); IQ4_NL/IQ4_XS
/// sum exact integers per block and end it with one fma (the 8-row and GEMM kernels' order) and also have a portable
/// Vector128 twin (ARM64, x64 without AVX2); the other
/// types run the scalar where AVX2 is missing. None of IQ1/IQ2/IQ3 has a reference quantizer here (llama.cpp's need an
/// importance matrix; IQ4_NL and IQ4_XS have one, ggml's no-imatrix search, in IQ4Quantize). IQ4_NL and IQ4_XS have
/// 8-row decode and packed-GEMM kernels (MatVec8IQ4, IQ4Packed); the grid and ternary types decode each row once per
/// batch (<see cref="TypeTraits.Decoder"/>, <see cref="IQDecoded"/>); below a decoder's batch size they run 8-row
/// decode kernels: <see cref="IQ2Simd512"/> (AVX-512 VBMI + GFNI) or <see cref="MatVec8IQ2XXSAvx2"/> (IQ2_XXS) / <see cref="IQ2Simd"/> for IQ2_XXS/XS/S, <see cref="IQ3Simd512"/> (AVX-512 VBMI + GFNI) or <see cref="MatVec8IQ"/> for IQ3_XXS and IQ3_S, <see cref="MatVec8IQ"/> for IQ1_S, IQ1_M,
/// <see cref="MatVec8TQ"/> for TQ1_0/TQ2_0.
/// </remarks>
internal static unsafe class TypeTraitsIq
{
    /// <summary>Calls <paramref name="add"/> once per IQ/TQ type the engine supports.</summary>
    public static void Fill(Action<TypeTraits> add)
    {
        bool avx2 = Simd.Avx2Fma, vnni = VnniDot.IsSupported, zmmQ8 = avx2 && !vnni && Avx512BW.IsSupported;
        // IQ4_NL: blocks shaped like Q4_0's (interleaved as Q4_0). Batches: with AVX-VNNI Q4_0's pairs GEMM on levels
        // v + 128 (less 128·Σa per block), else the packed Q8_0 GEMM on the signed levels (see IQ4Packed).
        add(new(GgmlType.IQ4_NL, GgmlType.Q8_0, &IQ4NL.DequantizeRow, &IQ4NL.DotScalar)
        {
            DotSimd = Simd.Pick(&IQ4NL.DotAvx2, &IQ4NL.DotVector128), FromFloatReference = &IQ4Quantize.QuantizeRowNLReference,
            Layout = InterleaveLayout.Q4_0, Side = avx2 && vnni ? ActivationSide.Q8_0ScalesAndSums128 : ActivationSide.Q8_0Scales,
            // AVX2 without VNNI: the scales of GGUF rows through a ring of scalar copies, not a gather (~1.2x).
            Decode8 = !avx2 ? null : vnni ? &MatVec8IQ4.NL<VnniDot> : &MatVec8IQ4.NLRing,
            Decode8Interleaved = !avx2 ? null : vnni && Avx512F.IsSupported ? &MatVec8IQ4.NLx8Zmm : vnni ? &MatVec8IQ4.NLx8<VnniDot> : &MatVec8IQ4.NLx8<Avx2Dot>,
            Pack8 = !avx2 ? null : vnni ? &IQ4Packed.PackIQ4NLPairs : &IQ4Packed.PackIQ4NL, PackedBlockBytes = IQ4Packed.NLBlockBytes,
            Pack8Interleaved = !avx2 ? null : vnni ? &IQ4Packed.PackIQ4NLx8Pairs : &IQ4Packed.PackIQ4NLx8,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ4_0Pairs<VnniDot> : &PackedGemm.KernelQ8_0Dot4<Avx2Dot>,
            Gemm16 = avx2 && vnni ? &PackedGemm.KernelQ4_0Pairs16<VnniDot> : null,
            // AVX-512BW without AVX-VNNI: 16 rows × 4 tokens in zmm on |level| and sign masks, the sign moved by one XOR
            // and repaid by a stored per-row bias (IQ4NLPackedZmm.cs), instead of Q8_0's zmm kernel's select per byte.
            Gemm16x4 = zmmQ8 ? &IQ4Packed.KernelIQ4NLZmm16 : null,
            Pack16 = zmmQ8 ? &IQ4Packed.PackIQ4NLZmm16 : null, Pack16Interleaved = zmmQ8 ? &IQ4Packed.PackIQ4NLx8Zmm16 : null,
            Packed16BlockBytes = IQ4Packed.NLZmm16BlockBytes,
        });
        // IQ4_XS: 8-row decode over GGUF rows or plain interleaved blocks (MatVec8IQ4XS, else MatVec8IQ4XSAvx2); its own packed GEMM.
        add(new(GgmlType.IQ4_XS, GgmlType.Q8_K, &IQ4XS.DequantizeRow, &IQ4XS.DotScalar)
        {
            DotSimd = Simd.Pick(&IQ4XS.DotAvx2, &IQ4XS.DotVector128), FromFloatReference = &IQ4Quantize.QuantizeRowXSReference,
            Layout = InterleaveLayout.Blocks,
            // AVX-512BW + VBMI: the kernel with the activations arranged once per super-block for 8 rows (MatVec8IQ4XS).
            // AVX2 only: the same idea in ymm (MatVec8IQ4XSAvx2), ~1.47x the generic MatVec8K frame over IQ4XS.BlockSum.
            Decode8 = !avx2 ? null : MatVec8IQ4XS.IsSupported ? &MatVec8IQ4XS.Group : &MatVec8IQ4XSAvx2.Group,
            Decode8Interleaved = !avx2 ? null : MatVec8IQ4XS.IsSupported ? &MatVec8IQ4XS.GroupBlocks : &MatVec8IQ4XSAvx2.GroupBlocks,
            // Batches: with AVX-VNNI the levels packed as kv + 128 against the signed activations (less 128·Σa per
            // sub-block from the bsums: no abs / sign per step), else kv with a's sign moved onto them (maddubs).
            Pack8 = !avx2 ? null : vnni ? &IQ4Packed.PackIQ4XSBiased : &IQ4Packed.PackIQ4XS, PackedBlockBytes = IQ4Packed.XSBlockBytes,
            Pack8Interleaved = !avx2 ? null : vnni ? &IQ4Packed.PackIQ4XSx8Biased : &MatVec8K.PackBlocks<IQ4XS8>,
            Gemm = !avx2 ? null : vnni ? &IQ4Packed.KernelIQ4XSBiased : &IQ4Packed.KernelIQ4XSDot4<Avx2Dot>,
            // AVX-512BW without AVX-VNNI: 16 rows × 4 tokens in zmm, the sign moved by one XOR and the scale multiply as the
            // widening vpmaddwd (IQ4PackedZmm.cs), ~1.5x the ymm kernel.
            Gemm16x4 = zmmQ8 ? &IQ4Packed.KernelIQ4XSZmm16 : null,
            Pack16 = zmmQ8 ? &IQ4Packed.PackIQ4XSZmm16 : null, Pack16Interleaved = zmmQ8 ? &IQ4Packed.PackIQ4XSx8Zmm16 : null,
            Packed16BlockBytes = IQ4Packed.XSZmm16BlockBytes,
        });
        // The batches' IQ2/IQ3 decode: grid points and signs by byte permutes where VBMI and GFNI run (~7 % of an IQ2_M
        // prefill and ~5 % of an IQ3_XXS one was the scalar decode).
        bool pair2 = IQ2DecodePair512.IsSupported, pair3 = IQ3DecodePair512.IsSupported;
        // Prefill on AVX-512 without VNNI: the centered tiles (IQDecodedCentered.cs) by the grids' bounds, no per-group
        // check: IQ2_XXS points sum to ≤ 203 (runs of 8), IQ2_XS/IQ2_S points to ≤ 344 but runs of 4 to ≤ 172, IQ3_XXS
        // levels are even (4..62) and two halved points sum to ≤ 248 (IQDecodedTests checks each against its grid).
        // TQ's 8-row kernels cost ~46 (TQ1_0) and ~20 (TQ2_0) ns per 2048-column row per token against ~400 ns per row
        // to decode a panel, so their batches switch to the decoded tiles later than the grid types' (at 4).
        // TQ1_0's base-3 digits cost ~20 multiplies per row and block where TQ2_0's 2-bit codes cost shifts and masks,
        // so with AVX2 a loaded model holds its TQ1_0 matrices as TQ2_0 (the same weights, scales and bits; +22 % bytes,
        // ~2x the decode kernel's speed); the TQ1_0 kernels below serve matrices used as the file has them.
        add(new(GgmlType.TQ1_0, GgmlType.Q8_K, &TQ1_0.DequantizeRow, &TQ1_0.DotScalar)
        {
            DotSimd = Simd.Pick(&TQ1_0.DotAvx2, null), Decoder = new(&TQ1_0.DecodeBlock) { MinTokens = 8 }, Decode8 = avx2 ? &MatVec8TQ.Group<TQ1Rows> : null,
            LoadAs = avx2 ? GgmlType.TQ2_0 : null, ConvertRow = &TQ1_0.ToTQ2_0,
        });
        add(new(GgmlType.TQ2_0, GgmlType.Q8_K, &TQ2_0.DequantizeRow, &TQ2_0.DotScalar) { DotSimd = Simd.Pick(&TQ2_0.DotAvx2, null), Decoder = new(&TQ2_0.DecodeBlock) { MinTokens = 16 }, Decode8 = avx2 ? &MatVec8TQ.Tq2 : null });
        add(new(GgmlType.IQ2_XXS, GgmlType.Q8_K, &IQ2XXS.DequantizeRow, &IQ2XXS.DotScalar) { DotSimd = Simd.Pick(&IQ2XXS.DotAvx2, null), Decode8 = !avx2 ? null : IQ2Simd512.IsSupported ? &IQ2Simd512.Decode8<IQ2XXSPair> : &MatVec8IQ2XXSAvx2.Group, Decoder = new(&IQ2XXS.DecodeBlock, final: 0.125f) { DecodePair = pair2 ? &IQ2DecodePair512.Decode<IQ2XXSPair> : null, Centered = GroupKind.Centered } });
        add(new(GgmlType.IQ2_XS, GgmlType.Q8_K, &IQ2XS.DequantizeRow, &IQ2XS.DotScalar) { DotSimd = Simd.Pick(&IQ2XS.DotAvx2, null), Decode8 = !avx2 ? null : IQ2Simd512.IsSupported ? &IQ2Simd512.Decode8<IQ2XSPair> : &IQ2Simd.Decode8<IQ2XSBlock>, Decoder = new(&IQ2XS.DecodeBlock, final: 0.125f) { DecodePair = pair2 ? &IQ2DecodePair512.Decode<IQ2XSPair> : null, Centered = GroupKind.CenteredPairs } });
        add(new(GgmlType.IQ2_S, GgmlType.Q8_K, &IQ2S.DequantizeRow, &IQ2S.DotScalar) { DotSimd = Simd.Pick(&IQ2S.DotAvx2, null), Decode8 = !avx2 ? null : IQ2Simd512.IsSupported ? &IQ2Simd512.Decode8<IQ2SPair> : &IQ2Simd.Decode8<IQ2SBlock>, Decoder = new(&IQ2S.DecodeBlock, final: 0.125f) { DecodePair = pair2 ? &IQ2DecodePair512.Decode<IQ2SPair> : null, Centered = GroupKind.CenteredPairs } });
        add(new(GgmlType.IQ3_XXS, GgmlType.Q8_K, &IQ3XXS.DequantizeRow, &IQ3XXS.DotScalar) { DotSimd = Simd.Pick(&IQ3XXS.DotAvx2, null), Decoder = new(&IQ3XXS.DecodeBlock, final: 0.25f) { DecodePair = pair3 ? &IQ3DecodePair512.Decode<IQ3XXSRow> : null, Centered = GroupKind.Centered, Shift = 1 }, Decode8 = !avx2 ? null : IQ3Simd512.IsSupported ? &IQ3Simd512.Decode8<IQ3XXSRow> : &MatVec8IQ.Group<IQ3XXS8> });
        add(new(GgmlType.IQ3_S, GgmlType.Q8_K, &IQ3S.DequantizeRow, &IQ3S.DotScalar) { DotSimd = Simd.Pick(&IQ3S.DotAvx2, null), Decoder = new(&IQ3S.DecodeBlock) { DecodePair = pair3 ? &IQ3DecodePair512.Decode<IQ3SRow> : null }, Decode8 = !avx2 ? null : IQ3Simd512.IsSupported ? &IQ3Simd512.Decode8<IQ3SRow> : &MatVec8IQ.Group<IQ3S8> });
        add(new(GgmlType.IQ1_S, GgmlType.Q8_K, &IQ1S.DequantizeRow, &IQ1S.DotScalar) { DotSimd = Simd.Pick(&IQ1S.DotAvx2, null), Decoder = new(&IQ1S.DecodeBlock, post: IQ1S.Delta), Decode8 = avx2 ? &MatVec8IQ.Group<IQ1S8> : null });
        add(new(GgmlType.IQ1_M, GgmlType.Q8_K, &IQ1M.DequantizeRow, &IQ1M.DotScalar) { DotSimd = Simd.Pick(&IQ1M.DotAvx2, null), Decoder = new(&IQ1M.DecodeBlock, post: IQ1S.Delta), Decode8 = avx2 ? &MatVec8IQ.Group<IQ1M8> : null });
    }
}
