using LfmSharp.Kernels;

namespace LfmSharp;

/// <summary>Options for <see cref="LanguageModel.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Threads for the kernels, the calling thread included. Null = one per logical processor.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// How quantized weights are multiplied: <see cref="MatMulPrecision.LlamaCpp"/> (default; activations
    /// quantized like llama.cpp, integer dots) or <see cref="MatMulPrecision.Float"/> (dequantize, f32 math).
    /// </summary>
    public MatMulPrecision Precision { get; init; } = MatMulPrecision.LlamaCpp;

    /// <summary>
    /// Copy Q4_0, Q8_0, Q4_K and Q6_K weight matrices at load time into the 8-row interleaved layout the AVX2 kernels stream
    /// (default true; used only where those kernels run). Decode reads the same number of bytes with fewer
    /// instructions. The copy is read with file reads, not through the memory map, so it replaces the mapped pages in
    /// resident memory instead of adding to them; loading reads those tensors once more. False keeps every weight in
    /// the map (fastest load, pages shared with other processes mapping the same file). TQ1_0 matrices are converted
    /// the same way to TQ2_0 blocks (the same weights and logits; ~1.7x the decode speed of a TQ1_0 model for 22 % more
    /// bytes in those matrices, see TypeTraits.LoadAs).
    /// </summary>
    public bool RepackWeights { get; init; } = true;

    /// <summary>
    /// Jinja chat-template source to use instead of the GGUF's <c>tokenizer.chat_template</c> (llama.cpp's
    /// <c>--chat-template-file</c>). Null: the file's own template.
    /// </summary>
    public string? ChatTemplate { get; init; }
}
