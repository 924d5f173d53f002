using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The entries of <see cref="TypeTraits"/>: one statement per type (see the contract at the top of TypeTraits.cs).
/// The ISA choices (AVX2 / VNNI / Vector128 / scalar) are made here, once per process.
/// </summary>
internal static unsafe class TypeTraitsTable
{
    /// <summary>Calls <paramref name="add"/> once per supported type.</summary>
    public static void Fill(Action<TypeTraits> add)
    {
        bool avx2 = Simd.Avx2Fma, vnni = VnniDot.IsSupported, avx512 = avx2 && Avx512BW.IsSupported;
        bool zmmQ8 = avx512 && !vnni;   // Q8_0-block zmm GEMM: where maddubs is the only int8 product (see PackedGemmZmmQ8.cs)

        // Plain float types (count = elements). F32 weights take VectorMath's f32 dot in MatMul.
        add(new(GgmlType.F32, GgmlType.F32, &F32.DequantizeRow, &F32.DotScalar)
        { FromFloatReference = &F32.QuantizeRowReference, FromFloat = &F32.QuantizeRowReference });
        add(new(GgmlType.F16, GgmlType.F16, &F16.DequantizeRow, &F16.DotScalar)
        { DotSimd = Simd.Pick(&F16.DotAvx2, &F16.DotVector128), FromFloatReference = &F16.QuantizeRowReference, FromFloat = &F16.QuantizeRow });
        add(new(GgmlType.BF16, GgmlType.BF16, &BF16.DequantizeRow, &BF16.DotScalar)
        { DotSimd = Simd.Pick(&BF16.DotAvx2, &BF16.DotVector128), FromFloatReference = &BF16.QuantizeRowReference, FromFloat = &BF16.QuantizeRow });

        // Legacy 32-element blocks.
        add(new(GgmlType.Q4_0, GgmlType.Q8_0, &Q4_0.DequantizeRow, &Q4_0.DotScalar)
        {
            DotSimd = Simd.Pick(&Q4_0.DotAvx2, &Q4_0.DotVector128), FromFloatReference = &Q4_0.QuantizeRowReference, Layout = InterleaveLayout.Q4_0,
            Side = ActivationSide.Q8_0ScalesAndSums,
            Decode8 = avx2 ? &Q4_0Group : null, Decode8Interleaved = !avx2 ? null : (avx512 && Gfni.V512.IsSupported && CpuTuning.ZmmDecode) ? &MatVec8Zmm.Q4_0x8 : &Q4_0GroupX8,
            Decode8Tokens = avx2 ? &Q4_0Tokens : null, Decode8TokensInterleaved = avx2 ? &Q4_0TokensX8 : null, MaxMatVecTokens = 8,
            // With VNNI the pairs layout (one activation broadcast per two vpdpbusd; see PackedGemmPairs.cs).
            Pack8 = !avx2 ? null : vnni ? &PackedGemm.PackQ4_0Pairs : &PackedGemm.PackQ4_0, PackedBlockBytes = 288,
            Pack8Interleaved = !avx2 ? null : vnni ? &PackedGemm.PackQ4_0x8Pairs : &PackedGemm.PackQ4_0x8,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ4_0Pairs<VnniDot> : &PackedGemm.KernelQ4_0,
            Gemm16 = avx2 && vnni ? &PackedGemm.KernelQ4_0Pairs16<VnniDot> : null,
            // With AVX-512BW, 16 rows × 4 tokens in zmm vpmaddubsw (PackedGemmZmm.cs): fewer multiply-port ops than ymm VNNI.
            Gemm16x4 = avx512 ? &PackedGemm.KernelQ4_0Zmm16 : null,
            Pack16 = avx512 ? &PackedGemm.PackQ4_0Zmm16 : null, Pack16Interleaved = avx512 ? &PackedGemm.PackQ4_0x8Zmm16 : null,
        });
        add(new(GgmlType.Q4_1, GgmlType.Q8_1, &Q4_1.DequantizeRow, &Q4_1.DotScalar)
        { DotSimd = Simd.Pick(&Q4_1.DotAvx2, &Q4_1.DotVector128), FromFloatReference = &Q4_1.QuantizeRowReference });
        add(new(GgmlType.Q5_0, GgmlType.Q8_0, &Q5_0.DequantizeRow, &Q5_0.DotScalar)
        { DotSimd = Simd.Pick(&Q5_0.DotAvx2, &Q5_0.DotVector128), FromFloatReference = &Q5_0.QuantizeRowReference });
        add(new(GgmlType.Q5_1, GgmlType.Q8_1, &Q5_1.DequantizeRow, &Q5_1.DotScalar)
        { DotSimd = Simd.Pick(&Q5_1.DotAvx2, &Q5_1.DotVector128), FromFloatReference = &Q5_1.QuantizeRowReference });
        add(new(GgmlType.Q8_0, GgmlType.Q8_0, &Q8_0.DequantizeRow, &Q8_0.DotScalar)
        {
            DotSimd = Simd.Pick(&Q8_0.DotAvx2, &Q8_0.DotVector128), FromFloatReference = &Q8_0.QuantizeRowReference, Layout = InterleaveLayout.Q8_0, FromFloat = &Q8_0.QuantizeRow,
            Side = ActivationSide.Q8_0Scales,
            Decode8 = avx2 ? &Q8_0Group : null, Decode8Interleaved = avx2 ? &Q8_0GroupX8 : null,
            Pack8 = avx2 ? &PackedGemm.PackQ8_0 : null, PackedBlockBytes = 288, Pack8Interleaved = avx2 ? &PackedGemm.PackQ8_0x8 : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ8_0Dot4<VnniDot> : &PackedGemm.KernelQ8_0Dot4<Avx2Dot>,
            // AVX-512BW without AVX-VNNI: the maddubs steps in zmm, 16 rows × 4 tokens (PackedGemmZmmQ8.cs), same bits.
            Gemm16x4 = zmmQ8 ? &PackedGemm.KernelQ8_0Zmm16 : null,
            Pack16 = zmmQ8 ? &PackedGemm.PackQ8_0Zmm16 : null, Pack16Interleaved = zmmQ8 ? &PackedGemm.PackQ8_0x8Zmm16 : null,
        });
        add(new(GgmlType.Q8_1, GgmlType.Q8_1, &Q8_1.DequantizeRow, &NoDot)
        { IsWeight = false, FromFloatReference = &Q8_1.QuantizeRowReference, FromFloat = &Q8_1.QuantizeRow });

        // K-quants (256-element super-blocks) against Q8_K.
        add(new(GgmlType.Q2_K, GgmlType.Q8_K, &Q2K.DequantizeRow, &Q2K.DotScalar)
        {
            DotSimd = Simd.Pick(&Q2K.DotAvx2, null), FromFloatReference = &Q2K.QuantizeRowReference, Layout = InterleaveLayout.Blocks,
            // AVX-512BW: the kernel with the activations arranged once per block for 8 rows (MatVec8Q2K); AVX2: MatVec8Q2KAvx2.
            Decode8 = !avx2 ? null : avx512 ? &MatVec8Q2K.Group : &MatVec8Q2KAvx2.Group,
            Decode8Interleaved = !avx2 ? null : avx512 ? &MatVec8Q2K.GroupBlocks : &MatVec8Q2KAvx2.GroupBlocks,
            Pack8 = avx2 ? &PackedGemm.PackQ2K : null, PackedBlockBytes = 2880, Pack8Interleaved = avx2 ? &MatVec8K.PackBlocks<Q2K8> : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ2KDot4<VnniDot> : &PackedGemm.KernelQ2KDot4<Avx2Dot>,
        });
        // Q3_K batches run the packed Q6_K GEMM on blocks rewritten as Q6_K while packing (exact, see Q3K.ToQ6K).
        add(new(GgmlType.Q3_K, GgmlType.Q8_K, &Q3K.DequantizeRow, &Q3K.DotScalar)
        {
            DotSimd = Simd.Pick(&Q3K.DotAvx2, null), FromFloatReference = &Q3K.QuantizeRowReference, Layout = InterleaveLayout.Blocks,
            Decode8 = !avx2 ? null : avx512 ? &MatVec8Q3K.Group : &MatVec8Q3KAvx2.Group,
            Decode8Interleaved = !avx2 ? null : avx512 ? &MatVec8Q3K.GroupBlocks : &MatVec8Q3KAvx2.GroupBlocks,
            Pack8 = avx2 ? &Q3K.PackAsQ6K : null, PackedBlockBytes = 2848, Pack8Interleaved = avx2 ? &MatVec8K.PackBlocks<Q3K8> : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ6KDot4<VnniDot> : &PackedGemm.KernelQ6K,
        });
        add(new(GgmlType.Q4_K, GgmlType.Q8_K, &Q4K.DequantizeRow, &Q4K.DotScalar)
        {
            DotSimd = Simd.Pick(&Q4K.DotAvx2, &Q4K.DotVector128), FromFloatReference = &Q4K.QuantizeRowReference, Layout = InterleaveLayout.Q4K,
            StreamActivations = avx2 ? &KStream.Q4KActivations : null,
            Decode8 = avx2 ? &Q4KGroup : null, Decode8Interleaved = avx2 ? &Q4KGroupX8 : null,
            Pack8 = avx2 ? &PackedGemm.PackQ4K : null, PackedBlockBytes = 2624, Pack8Interleaved = avx2 ? &PackedGemm.PackQ4Kx8 : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ4KDot4<VnniDot> : &PackedGemm.KernelQ4K,
        });
        add(new(GgmlType.Q5_K, GgmlType.Q8_K, &Q5K.DequantizeRow, &Q5K.DotScalar)
        {
            DotSimd = Simd.Pick(&Q5K.DotAvx2, &Q5K.DotVector128), FromFloatReference = &Q5K.QuantizeRowReference, Layout = InterleaveLayout.Blocks,
            // AVX-512BW + VBMI: the kernel with the activations arranged once per super-block for 8 rows (MatVec8Q5K).
            Decode8 = !avx2 ? null : MatVec8Q5K.IsSupported ? &MatVec8Q5K.Group : &MatVec8K.Group<Q5K8>,
            Decode8Interleaved = !avx2 ? null : MatVec8Q5K.IsSupported ? &MatVec8Q5K.GroupBlocks : &MatVec8K.GroupBlocks<Q5K8>,
            Pack8 = avx2 ? &PackedGemm.PackQ5K : null, PackedBlockBytes = 2624, Pack8Interleaved = avx2 ? &MatVec8K.PackBlocks<Q5K8> : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ5KDot4<VnniDot> : &PackedGemm.KernelQ5KDot4<Avx2Dot>,
        });
        add(new(GgmlType.Q6_K, GgmlType.Q8_K, &Q6K.DequantizeRow, &Q6K.DotScalar)
        {
            DotSimd = Simd.Pick(&Q6K.DotAvx2, &Q6K.DotVector128), FromFloatReference = &Q6K.QuantizeRowReference, Layout = InterleaveLayout.Q6K,
            StreamActivations = avx2 ? &KStream.Q6KActivations : null,
            Decode8 = avx2 ? &Q6KGroup : null, Decode8Interleaved = avx2 ? &Q6KGroupX8 : null,
            Pack8 = avx2 ? &PackedGemm.PackQ6K : null, PackedBlockBytes = 2848, Pack8Interleaved = avx2 ? &PackedGemm.PackQ6Kx8 : null,
            Gemm = !avx2 ? null : vnni ? &PackedGemm.KernelQ6KDot4<VnniDot> : &PackedGemm.KernelQ6K,
        });
        add(new(GgmlType.Q8_K, GgmlType.Q8_K, &Q8K.DequantizeRow, &NoDot)
        { IsWeight = false, FromFloatReference = &Q8K.QuantizeRowReference, FromFloat = &Q8K.QuantizeRow });

        TypeTraitsIq.Fill(add);
    }

    private static float NoDot(ReadOnlySpan<byte> w, ReadOnlySpan<byte> a, int nb) => throw new NotSupportedException("not a weight type");

    // Adapters from the common Group8 arguments to each MatVec8 kernel.
    private static void Q4_0Group(in Group8 g) => MatVec8.Q4_0(g.Rows, g.RowBytes, g.Nb, g.Act, g.Scales, g.Sums, g.Y);
    private static void Q4_0GroupX8(in Group8 g) => MatVec8.Q4_0x8(g.Interleaved, g.Nb, g.Act, g.Scales, g.Sums, g.Y, g.Rows, g.RowBytes);
    private static void Q4_0Tokens(in Group8 g, int actRowBytes, int sideStride, int yStride, int n)
        => MatVec8.Q4_0Tokens(g.Rows, g.RowBytes, g.Nb, g.Act, actRowBytes, g.Scales, g.Sums, sideStride, g.Y, yStride, n);
    private static void Q4_0TokensX8(in Group8 g, int actRowBytes, int sideStride, int yStride, int n)
        => MatVec8.Q4_0x8Tokens(g.Interleaved, g.Nb, g.Act, actRowBytes, g.Scales, g.Sums, sideStride, g.Y, yStride, n, g.Rows, g.RowBytes);
    private static void Q8_0Group(in Group8 g) => MatVec8.Q8_0(g.Rows, g.RowBytes, g.Nb, g.Act, g.Scales, g.Sums, g.Y);
    private static void Q8_0GroupX8(in Group8 g) => MatVec8.Q8_0x8(g.Interleaved, g.Nb, g.Act, g.Scales, g.Sums, g.Y, g.Rows, g.RowBytes);
    private static void Q4KGroup(in Group8 g) => MatVec8.Q4K(g.Rows, g.RowBytes, g.Nb, g.Act, g.Scales, g.Sums, g.Y);
    private static void Q4KGroupX8(in Group8 g) => MatVec8.Q4Kx8(g.Interleaved, g.Nb, g.Act, g.Stream, g.Y, g.Rows, g.RowBytes);
    private static void Q6KGroup(in Group8 g) => MatVec8.Q6K(g.Rows, g.RowBytes, g.Nb, g.Act, g.Scales, g.Sums, g.Y);
    private static void Q6KGroupX8(in Group8 g) => MatVec8.Q6Kx8(g.Interleaved, g.Nb, g.Act, g.Stream, g.Y, g.Rows, g.RowBytes);
}
