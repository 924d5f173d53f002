namespace LfmSharp.Kernels.Quant;

// ================================================================================================================
// One kernel record per weight type (ggml-cpu's type_traits_cpu[] plus the repack tensor_traits), filled ONCE per
// process for this machine's ISA (AVX2 → Vector128 → scalar is decided here, never inferred from buffer lengths),
// and bound to every WeightMatrix when the weights are loaded (WeightMatrix.Kernels). Every dispatcher
// (VecDot.Row, Dequantize.Row, Quantize.Row/RowReference, QuantTraits.VecDotType, MatMul) reads this table.
//
// CONTRACT for adding a type (e.g. the IQ*/TQ* files): write one self-contained static class per format with
//   * a size-asserted block struct ([StructLayout(Sequential, Pack = 1)], SizeInBytes const, tested),
//   * public static void DequantizeRow(ReadOnlySpan<byte> src, Span<float> dst)
//       — whole blocks in src, bit-identical to ggml's dequantize_row_*; validate with QuantMath.CheckDequantize,
//   * internal static float DotScalar(ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int nb)
//       — nb = BLOCKS (elements for F16/BF16/F32), arguments already checked by the caller; bit-identical to
//         ggml_vec_dot_<w>_<act>_generic (plain C order, no FMA contraction),
//   * optionally internal static float DotAvx2(byte* w, byte* a, int nb) and DotVector128(byte* w, byte* a, int nb)
//       — SIMD twins (exact integer block sums, may round differently in the float accumulation; tested against
//         DotScalar with a tolerance),
//   * optionally public static void QuantizeRowReference(ReadOnlySpan<float> src, Span<byte> dst) (quantize_row_*_ref),
// then add ONE line to Build() below: Add(new(GgmlType.X, vecDot: GgmlType.Y, &X.DequantizeRow, &X.DotScalar)
// { DotSimd = Simd.Pick(&X.DotAvx2, &X.DotVector128), FromFloatReference = &X.QuantizeRowReference }).
// The optional fast paths (Decode8: an 8-row decode kernel over GGUF rows — MatVec8K.Group<T> gives one to a
// K-quant from its BlockSum; Layout + Decode8Interleaved: an 8-row interleaved layout (InterleaveLayout.Blocks
// needs no code) with its decode kernel; Gemm: a packed 8-row × 4-token prefill kernel) are MatMul-internal and may stay
// null: MatMul then uses DotSimd (or DotScalar) per row, which is always correct.
// ================================================================================================================

/// <summary>
/// Everything the engine does with one ggml weight type: its activation (vec-dot) format, its row dequantizer,
/// quantizers, scalar and SIMD row dots, and the optional 8-row decode / interleave / packed-GEMM kernels.
/// One immutable instance per type, from <see cref="TypeTraits.For"/>.
/// </summary>
internal sealed unsafe class TypeTraits
{
    /// <summary>A record with the required members; the optional kernels are set with object initialisers.</summary>
    public TypeTraits(GgmlType type, GgmlType vecDot,
        delegate*<ReadOnlySpan<byte>, Span<float>, void> toFloat,
        delegate*<ReadOnlySpan<byte>, ReadOnlySpan<byte>, int, float> dotScalar)
    {
        Type = type;
        VecDotType = vecDot;
        BlockSize = GgmlTypes.BlockSize(type);
        TypeSize = GgmlTypes.TypeSize(type);
        ToFloat = toFloat;
        DotScalar = dotScalar;
    }

    /// <summary>The weight type this record describes.</summary>
    public GgmlType Type { get; }

    /// <summary>Elements per block.</summary>
    public int BlockSize { get; }

    /// <summary>Bytes per block.</summary>
    public int TypeSize { get; }

    /// <summary>The activation format rows of this type are dotted against (ggml's vec_dot_type).</summary>
    public GgmlType VecDotType { get; }

    /// <summary>Exact dequantization of whole blocks (ggml's to_float); validates its arguments.</summary>
    public delegate*<ReadOnlySpan<byte>, Span<float>, void> ToFloat { get; }

    /// <summary>The scalar row dot (count in blocks, arguments checked by the caller), bit-identical to ggml's generic dot.</summary>
    public delegate*<ReadOnlySpan<byte>, ReadOnlySpan<byte>, int, float> DotScalar { get; }

    /// <summary>The SIMD row dot this machine runs (AVX2, else Vector128), or null where only <see cref="DotScalar"/> exists.</summary>
    public delegate*<byte*, byte*, int, float> DotSimd { get; init; }

    /// <summary>llama.cpp's reference quantizer (quantize_row_*_ref), or null where the engine has none.</summary>
    public delegate*<ReadOnlySpan<float>, Span<byte>, void> FromFloatReference { get; init; }

    /// <summary>For activation formats: the quantizer a matmul uses on its input rows (ggml-cpu's from_float); else null.</summary>
    public delegate*<ReadOnlySpan<float>, Span<byte>, void> FromFloat { get; init; }

    /// <summary>True when rows of this type can be weights of a matmul (it has a dot against an activation format).</summary>
    public bool IsWeight { get; init; } = true;

    /// <summary>8-row decode kernel over GGUF-order rows (AVX2 only), or null.</summary>
    public delegate*<in Group8, void> Decode8 { get; init; }

    /// <summary>8-row decode kernel over the interleaved copy (AVX2 only), or null where the type has no interleaved layout.</summary>
    public delegate*<in Group8, void> Decode8Interleaved { get; init; }

    /// <summary>Several tokens per pass of an 8-row decode kernel (GGUF rows, interleaved rows), or null (one token at a time).</summary>
    public delegate*<in Group8, int, int, int, int, void> Decode8Tokens { get; init; }

    /// <inheritdoc cref="Decode8Tokens"/>
    public delegate*<in Group8, int, int, int, int, void> Decode8TokensInterleaved { get; init; }

    /// <summary>
    /// Largest batch the 8-row decode kernels take before the packed GEMM runs: 3 unless the entry says more (a type with
    /// a <see cref="Decoder"/> switches to the decoded batch path at <see cref="BlockDecoder.MinTokens"/> instead).
    /// </summary>
    public int MaxMatVecTokens { get; init; } = PackedGemm.Tokens - 1;

    /// <summary>What the 8-row kernels need next to the quantized activation row.</summary>
    public ActivationSide Side { get; init; }

    /// <summary>
    /// For the interleaved decode kernel: writes an activation row's quants (nb blocks) in the order the interleaved
    /// weights are stored (one byte per column), or null where the kernel reads the activation row as it is.
    /// </summary>
    public delegate*<byte*, int, byte*, void> StreamActivations { get; init; }

    /// <summary>Packs 8 GGUF rows (rowBytes apart, nb blocks) for the GEMM kernel, or null where the type has no packed GEMM.</summary>
    public delegate*<byte*, int, int, byte*, void> Pack8 { get; init; }

    /// <summary>Packs one 8-row group of the interleaved copy (nb blocks) for the GEMM kernel, or null.</summary>
    public delegate*<byte*, int, byte*, void> Pack8Interleaved { get; init; }

    /// <summary>Bytes <see cref="Pack8"/> writes per block of 8 rows (at most <see cref="PackedGemm.MaxPackedBytesPerColumn"/> per column).</summary>
    public int PackedBlockBytes { get; init; }

    /// <summary>The packed 8-row × 4-token kernel this machine runs (VNNI or AVX2), or null.</summary>
    public delegate*<byte*, int, in PackedGemm.TokenTile, void> Gemm { get; init; }

    /// <summary>
    /// For the grid and ternary types: the super-block decoder that lets a batch decode each weight row once and dot it
    /// with every token (<see cref="IQDecoded"/>), or null.
    /// </summary>
    public BlockDecoder? Decoder { get; init; }

    /// <summary>
    /// Optional 16-row × 2-token kernel over two consecutive packed groups (the second nb·<see cref="PackedBlockBytes"/>
    /// bytes after the first; see <see cref="PackedGemm.KernelQ4_0Pairs16{TDot}"/>), with the same bits per output as
    /// <see cref="Gemm"/>; null where the type has none.
    /// </summary>
    public delegate*<byte*, int, in PackedGemm.TokenTile, void> Gemm16 { get; init; }

    /// <summary>
    /// Optional 16-row × 4-token kernel with its own packed layout (<see cref="Pack16"/>; see
    /// <see cref="PackedGemm.KernelQ4_0Zmm16"/>), preferred to <see cref="Gemm16"/> and with the same bits per output; null
    /// where the type or machine has none.
    /// </summary>
    public delegate*<byte*, int, in PackedGemm.TokenTile, void> Gemm16x4 { get; init; }

    /// <summary>Packs 16 GGUF rows (rowBytes apart, nb blocks) for <see cref="Gemm16x4"/> (nb·<see cref="Packed16BlockBytes"/> bytes).</summary>
    public delegate*<byte*, int, int, byte*, void> Pack16 { get; init; }

    /// <summary>Packs two consecutive interleaved groups (the second the given bytes after the first; nb blocks) for <see cref="Gemm16x4"/>.</summary>
    public delegate*<byte*, int, int, byte*, void> Pack16Interleaved { get; init; }

    /// <summary>
    /// Bytes <see cref="Pack16"/> writes per block of 16 rows: 2·<see cref="PackedBlockBytes"/> unless the type's zmm
    /// layout says otherwise (at most <see cref="PackedGemm.MaxPackedBytesPerColumn"/> per column).
    /// </summary>
    public int Packed16BlockBytes { get => _packed16BlockBytes != 0 ? _packed16BlockBytes : 2 * PackedBlockBytes; init => _packed16BlockBytes = value; }

    private readonly int _packed16BlockBytes;

    /// <summary>The type's 8-row interleaved layout (<see cref="Interleaved8"/>; the same on every machine), or None.</summary>
    public InterleaveLayout Layout { get; init; }

    /// <summary>
    /// The type whose kernels this machine would rather run the matrix with, converted at load time without loss
    /// (<see cref="ConvertRow"/>; the same weights, scales and row-dot bits), or null to keep the file's rows.
    /// </summary>
    public GgmlType? LoadAs { get; init; }

    /// <summary>Writes arg 2 blocks of a row of this type (arg 0) as <see cref="LoadAs"/> blocks (arg 1); set with <see cref="LoadAs"/>.</summary>
    public delegate*<byte*, byte*, int, void> ConvertRow { get; init; }

    /// <summary>True when the type has an 8-row interleaved layout (<see cref="Interleaved8"/>) and kernels that read it.</summary>
    public bool Interleaves => Decode8Interleaved != null;

    /// <summary>True when the type has a packed 8-row × 4-token GEMM (AVX2 only).</summary>
    public bool HasGemm => Pack8 != null && Gemm != null;

    /// <summary>True when an AVX2 8-row decode kernel handles this type (batches take its packed GEMM where it has one).</summary>
    public bool Grouped => Decode8 != null;

    /// <summary>The record of <paramref name="type"/>; <see cref="NotSupportedException"/> naming the type when the engine has none.</summary>
    public static TypeTraits For(GgmlType type)
    {
        uint id = (uint)type;
        return id < (uint)s_table.Length && s_table[id] is { } t ? t : throw QuantTraits.Unsupported(type, "for compute");
    }

    /// <summary>The record of <paramref name="type"/>, or null.</summary>
    public static TypeTraits? TryFor(GgmlType type) => (uint)type < (uint)s_table.Length ? s_table[(uint)type] : null;

    /// <summary>The record of a weight type; <see cref="NotSupportedException"/> when it cannot be a matmul weight.</summary>
    public static TypeTraits ForWeight(GgmlType type)
    {
        var t = TryFor(type);
        return t is { IsWeight: true } ? t : throw QuantTraits.Unsupported(type, "as a matmul weight");
    }

    private static readonly TypeTraits?[] s_table = Build();

    private static TypeTraits?[] Build()
    {
        var table = new TypeTraits?[64];
        void Add(TypeTraits t) => table[(int)t.Type] = t;
        TypeTraitsTable.Fill(Add);
        return table;
    }
}

/// <summary>What the grouped (8-row) kernels read next to a quantized activation row.</summary>
internal enum ActivationSide
{
    /// <summary>Nothing beyond the row.</summary>
    None,
    /// <summary>Q8_0 rows: each block's scale as f32.</summary>
    Q8_0Scales,
    /// <summary>Q8_0 rows: each block's scale as f32 and 8·Σq (the −8 offset of Q4_0 weights).</summary>
    Q8_0ScalesAndSums,
    /// <summary>
    /// Q8_0 rows: each block's scale as f32 and 128·Σq (the +128 bias of IQ4_NL levels stored as unsigned bytes for
    /// the VNNI pairs GEMM, see <see cref="IQ4Packed.PackIQ4NLPairs"/>).
    /// </summary>
    Q8_0ScalesAndSums128,
}

/// <summary>The arguments of an 8-row decode kernel for one token (pointers known good).</summary>
internal unsafe struct Group8
{
    /// <summary>The group's first GGUF row.</summary>
    public byte* Rows;
    /// <summary>Bytes per GGUF row.</summary>
    public int RowBytes;
    /// <summary>The group in the interleaved copy (null when there is none).</summary>
    public byte* Interleaved;
    /// <summary>Blocks per row.</summary>
    public int Nb;
    /// <summary>The token's activation row in the vec-dot format.</summary>
    public byte* Act;
    /// <summary>Q8_0 side data (per-block f32 scales and 8·Σq or 128·Σq, see <see cref="ActivationSide"/>), or null.</summary>
    public float* Scales;
    /// <inheritdoc cref="Scales"/>
    public int* Sums;
    /// <summary>The token's KStream-order quants, or null.</summary>
    public byte* Stream;
    /// <summary>Where the 8 outputs go (consecutive).</summary>
    public float* Y;
}
