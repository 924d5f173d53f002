using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>
/// File types a synthetic model can be written in. Float types follow the HF converter (norms and conv kernels stay
/// F32); quantized types follow llama-quantize's per-tensor recipe (see <see cref="SyntheticModel.PlanTensors(ModelShape, SyntheticFileType)"/>).
/// </summary>
public enum SyntheticFileType
{
    /// <summary>All tensors F32.</summary>
    F32,
    /// <summary>Matrices F16 (as the HF converter writes).</summary>
    F16,
    /// <summary>Matrices BF16.</summary>
    BF16,
    /// <summary>llama-quantize Q8_0.</summary>
    Q8_0,
    /// <summary>llama-quantize Q4_0.</summary>
    Q4_0,
    /// <summary>llama-quantize Q4_1.</summary>
    Q4_1,
    /// <summary>llama-quantize Q5_0.</summary>
    Q5_0,
    /// <summary>llama-quantize Q5_1.</summary>
    Q5_1,
    /// <summary>llama-quantize Q4_K_M (Q4_K with Q6_K where it uses it).</summary>
    Q4_K_M,
    /// <summary>llama-quantize Q5_K_M.</summary>
    Q5_K_M,
    /// <summary>llama-quantize Q6_K.</summary>
    Q6_K,
    /// <summary>llama-quantize Q2_K (Q2_K matrices, Q3_K/Q4_K where its recipe says).</summary>
    Q2_K,
    /// <summary>llama-quantize Q3_K_S.</summary>
    Q3_K_S,
    /// <summary>llama-quantize Q3_K_M.</summary>
    Q3_K_M,
    /// <summary>llama-quantize Q3_K_L.</summary>
    Q3_K_L,
    /// <summary>llama-quantize Q4_K_S.</summary>
    Q4_K_S,
    /// <summary>llama-quantize Q5_K_S.</summary>
    Q5_K_S,
    /// <summary>llama-quantize IQ4_NL.</summary>
    IQ4_NL,
    /// <summary>llama-quantize IQ4_XS.</summary>
    IQ4_XS,
}

internal static class SyntheticFileTypes
{
    public static IReadOnlyList<SyntheticFileType> All { get; } = Enum.GetValues<SyntheticFileType>();

    /// <summary>The <c>general.file_type</c> value (llama_ftype).</summary>
    public static uint LlamaFileType(this SyntheticFileType t) => t switch
    {
        SyntheticFileType.F32 => 0,
        SyntheticFileType.F16 => 1,
        SyntheticFileType.Q4_0 => 2,
        SyntheticFileType.Q4_1 => 3,
        SyntheticFileType.Q8_0 => 7,
        SyntheticFileType.Q5_0 => 8,
        SyntheticFileType.Q5_1 => 9,
        SyntheticFileType.Q4_K_M => 15,
        SyntheticFileType.Q5_K_M => 17,
        SyntheticFileType.Q6_K => 18,
        SyntheticFileType.BF16 => 32,
        SyntheticFileType.Q2_K => 10,
        SyntheticFileType.Q3_K_S => 11,
        SyntheticFileType.Q3_K_M => 12,
        SyntheticFileType.Q3_K_L => 13,
        SyntheticFileType.Q4_K_S => 14,
        SyntheticFileType.Q5_K_S => 16,
        SyntheticFileType.IQ4_NL => 25,
        SyntheticFileType.IQ4_XS => 30,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>True when this build can write the file type (its main tensor type has a reference quantizer).</summary>
    public static bool IsWritable(this SyntheticFileType t) => Quantize.IsReferenceSupported(t.DefaultTensorType());

    /// <summary>True for the types produced by llama-quantize (as opposed to the converter's float types).</summary>
    public static bool IsQuantized(this SyntheticFileType t) => t is not (SyntheticFileType.F32 or SyntheticFileType.F16 or SyntheticFileType.BF16);

    /// <summary>The ggml type most 2-D tensors get (llama-quantize's default type for the ftype).</summary>
    public static GgmlType DefaultTensorType(this SyntheticFileType t) => t switch
    {
        SyntheticFileType.F32 => GgmlType.F32,
        SyntheticFileType.F16 => GgmlType.F16,
        SyntheticFileType.BF16 => GgmlType.BF16,
        SyntheticFileType.Q8_0 => GgmlType.Q8_0,
        SyntheticFileType.Q4_0 => GgmlType.Q4_0,
        SyntheticFileType.Q4_1 => GgmlType.Q4_1,
        SyntheticFileType.Q5_0 => GgmlType.Q5_0,
        SyntheticFileType.Q5_1 => GgmlType.Q5_1,
        SyntheticFileType.Q4_K_M => GgmlType.Q4_K,
        SyntheticFileType.Q5_K_M => GgmlType.Q5_K,
        SyntheticFileType.Q6_K => GgmlType.Q6_K,
        SyntheticFileType.Q2_K => GgmlType.Q2_K,
        SyntheticFileType.Q3_K_S or SyntheticFileType.Q3_K_M or SyntheticFileType.Q3_K_L => GgmlType.Q3_K,
        SyntheticFileType.Q4_K_S => GgmlType.Q4_K,
        SyntheticFileType.Q5_K_S => GgmlType.Q5_K,
        SyntheticFileType.IQ4_NL => GgmlType.IQ4_NL,
        SyntheticFileType.IQ4_XS => GgmlType.IQ4_XS,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, null),
    };

    /// <summary>Lower-case name as llama.cpp spells it on the command line (<c>q4_k_m</c>).</summary>
    public static string Name(this SyntheticFileType t) => t.ToString().ToLowerInvariant();

    /// <summary>Parses <c>q4_k_m</c>, <c>Q4_K_M</c>, <c>q4km</c>, <c>f16</c>, ... (case and underscores ignored).</summary>
    public static bool TryParse(string? text, out SyntheticFileType type)
    {
        string key = Normalize(text);
        foreach (var t in All)
        {
            if (Normalize(t.ToString()) == key)
            {
                type = t;
                return true;
            }
        }
        type = default;
        return false;
    }

    public static SyntheticFileType Parse(string text) => TryParse(text, out var t)
        ? t
        : throw new ArgumentException($"unknown file type '{text}' (known: {string.Join(", ", All.Select(Name))})", nameof(text));

    private static string Normalize(string? s) => (s ?? "").Replace("_", "").Replace("-", "").Trim().ToLowerInvariant();
}
