using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>
/// Per-row operations by weight type, in one place: which activation format a weight type dots against,
/// quantizing an activation row to it, the row·row dot, and dequantizing a weight row.
/// </summary>
internal static class RowOps
{
    /// <summary>The format activations are converted to before dotting with a row of <paramref name="weightType"/> (ggml's vec_dot_type).</summary>
    public static GgmlType VecDotType(GgmlType weightType) => weightType switch
    {
        GgmlType.F32 => GgmlType.F32,
        GgmlType.F16 => GgmlType.F16,
        _ => throw Unsupported(weightType),
    };

    /// <summary>Converts one activation row (floats) to <paramref name="vecDotType"/> bytes.</summary>
    public static void QuantizeActivations(GgmlType vecDotType, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (vecDotType)
        {
            case GgmlType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(dst);
                for (int i = 0; i < src.Length; i++)
                    h[i] = (Half)src[i];
                break;
            default:
                throw Unsupported(vecDotType);
        }
    }

    /// <summary>Σ w·a over one row of <paramref name="weightType"/> against an activation row in its vec-dot format.</summary>
    public static float Dot(GgmlType weightType, ReadOnlySpan<byte> weightRow, ReadOnlySpan<byte> activationRow, int n)
    {
        switch (weightType)
        {
            case GgmlType.F16:
                var w = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(weightRow);
                var a = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(activationRow);
                float sum = 0;
                for (int i = 0; i < n; i++)
                    sum += (float)w[i] * (float)a[i];
                return sum;
            default:
                throw Unsupported(weightType);
        }
    }

    /// <summary>Exact dequantization of one weight row to floats.</summary>
    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case GgmlType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(src).CopyTo(dst);
                break;
            case GgmlType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(src);
                for (int i = 0; i < h.Length; i++)
                    dst[i] = (float)h[i];
                break;
            default:
                throw Unsupported(type);
        }
    }

    private static NotSupportedException Unsupported(GgmlType type) =>
        new($"ggml type {GgmlTypes.Name(type)} is not supported for matrix multiplication.");
}
