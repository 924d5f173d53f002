using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>The packed-GEMM tests' token tiles: 4 consecutive tokens of one batch.</summary>
internal static unsafe class TokenTiles
{
    /// <summary>
    /// Tokens 0..3: activation rows <paramref name="actRow"/> bytes apart from <paramref name="a"/>, per-token side
    /// tables (<paramref name="d"/>, <paramref name="s"/>; null where the kernel reads none) <paramref name="nb"/>
    /// entries apart, outputs <paramref name="rows"/> floats apart from <paramref name="y"/>.
    /// </summary>
    public static PackedGemm.TokenTile Consecutive(byte* a, int actRow, int nb, float* d, int* s, float* y, int rows) => new()
    {
        A0 = a, A1 = a + actRow, A2 = a + 2 * actRow, A3 = a + 3 * actRow,
        D0 = d, D1 = d + nb, D2 = d + 2 * nb, D3 = d + 3 * nb,
        S0 = s, S1 = s + nb, S2 = s + 2 * nb, S3 = s + 3 * nb,
        Y0 = y, Y1 = y + rows, Y2 = y + 2 * rows, Y3 = y + 3 * rows,
    };
}
