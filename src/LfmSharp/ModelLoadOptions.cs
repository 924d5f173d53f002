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
}
