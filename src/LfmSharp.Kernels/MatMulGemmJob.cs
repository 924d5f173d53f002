using System.Runtime.CompilerServices;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Kernels;

/// <summary>The batched (prefill) part of <see cref="MatMul"/>: the packed GEMM's work items.</summary>
internal static unsafe partial class MatMul
{
    /// <summary>Batched quantized matmul over 8-row groups with the packed AVX2 kernels (see <see cref="PackedGemm"/>).</summary>
    internal sealed class GemmJob : IParallelWork
    {
        public WeightMatrix W;
        public nint Y, Act, Packed, Scales, Sums;
        public int Tokens, ActRowBytes, PackedStride, SideStride;

        /// <summary>Work items are pairs of groups, run by the type's 16-row × 4-token (<see cref="TypeTraits.Gemm16x4"/>) or 16-row × 2-token kernel (<see cref="TypeTraits.Gemm16"/>).</summary>
        public bool Sixteen;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            byte* pk = (byte*)Packed + (long)thread * PackedStride;
            // Results of a tile go to a small buffer first when the group is the ragged last one.
            float* tail = stackalloc float[2 * PackedGemm.Rows * PackedGemm.Tokens];
            for (int g = start; g < end; g++)
            {
                if (!Sixteen)
                {
                    Group(g, pk, tail);
                }
                else if ((g + 1) * 2 * PackedGemm.Rows > W.Rows)
                {
                    Group(2 * g, pk, tail);
                    if ((2 * g + 1) * PackedGemm.Rows < W.Rows)
                        Group(2 * g + 1, pk, tail);
                }
                else
                {
                    Pair(g, pk, tail);
                }
            }
        }

        /// <summary>Packs the 8 rows from <paramref name="r0"/> at <paramref name="pk"/>.</summary>
        private void Pack(int r0, int nb, byte* pk)
        {
            var w = W;
            var k = w.Kernels!;
            if (w.Interleaved != null)
                k.Pack8Interleaved(w.Interleaved + (long)r0 * w.RowBytes, nb, pk);
            else
                k.Pack8(w.Data + (long)r0 * w.RowBytes, w.RowBytes, nb, pk);
        }

        /// <summary>Rows 16g..16g+15 (two whole groups) for every token, two tokens per kernel call.</summary>
        private void Pair(int g, byte* pk, float* tail)
        {
            var w = W;
            var k = w.Kernels!;
            int rows = w.Rows, tokens = Tokens, nb = w.Columns / GgmlTypes.BlockSize(w.Type);
            int r0 = g * 2 * PackedGemm.Rows;
            if (k.Gemm16x4 != null)
            {
                Pair4(r0, nb, pk, tail);
                return;
            }
            Pack(r0, nb, pk);
            Pack(r0 + PackedGemm.Rows, nb, pk + (long)nb * k.PackedBlockBytes);
            float* y = (float*)Y;
            for (int t0 = 0; t0 < tokens; t0 += 2)
            {
                // An odd last token is paired with itself; the duplicate's results land in `tail` and are dropped.
                int t1 = Math.Min(t0 + 1, tokens - 1);
                float* y0 = y + (long)t0 * rows + r0;
                float* y1 = t1 > t0 ? y + (long)t1 * rows + r0 : tail;
                var tile = new PackedGemm.TokenTile
                {
                    A0 = (byte*)Act + (long)t0 * ActRowBytes, A1 = (byte*)Act + (long)t1 * ActRowBytes,
                    D0 = (float*)Scales + (long)t0 * SideStride, D1 = (float*)Scales + (long)t1 * SideStride,
                    S0 = (int*)Sums + (long)t0 * SideStride, S1 = (int*)Sums + (long)t1 * SideStride,
                    Y0 = y0, Y1 = y1, Y2 = y0 + PackedGemm.Rows, Y3 = y1 + PackedGemm.Rows,
                };
                k.Gemm16(pk, nb, tile);
            }
        }

        /// <summary>Rows r0..r0+15 for every token with the type's 16-row × 4-token kernel (<see cref="TypeTraits.Gemm16x4"/>).</summary>
        private void Pair4(int r0, int nb, byte* pk, float* tail)
        {
            var w = W;
            var k = w.Kernels!;
            if (w.Interleaved != null)
                k.Pack16Interleaved(w.Interleaved + (long)r0 * w.RowBytes, PackedGemm.Rows * w.RowBytes, nb, pk);
            else
                k.Pack16(w.Data + (long)r0 * w.RowBytes, w.RowBytes, nb, pk);
            for (int t0 = 0; t0 < Tokens; t0 += PackedGemm.Tokens)
                k.Gemm16x4(pk, nb, Tile(t0, r0, 2 * PackedGemm.Rows, tail));
        }

        /// <summary>Rows 8g..8g+7 (fewer at a ragged end) for every token.</summary>
        private void Group(int g, byte* pk, float* tail)
        {
            var w = W;
            var k = w.Kernels!;
            int n = w.Columns, rows = w.Rows, tokens = Tokens, nb = n / GgmlTypes.BlockSize(w.Type);
            float* y = (float*)Y;
            byte* act = (byte*)Act;
            int r0 = g * PackedGemm.Rows;
            if (r0 + PackedGemm.Rows > rows)
            {
                // Fewer than 8 rows left: plain row dots.
                for (int r = r0; r < rows; r++)
                {
                    var wr = new ReadOnlySpan<byte>(w.Data + (long)r * w.RowBytes, w.RowBytes);
                    for (int t = 0; t < tokens; t++)
                        y[(long)t * rows + r] = VecDot.Row(w.Type, wr, new ReadOnlySpan<byte>(act + (long)t * ActRowBytes, ActRowBytes), n);
                }
                return;
            }
            Pack(r0, nb, pk);
            for (int t0 = 0; t0 < tokens; t0 += PackedGemm.Tokens)
                k.Gemm(pk, nb, Tile(t0, r0, PackedGemm.Rows, tail));
        }

        /// <summary>
        /// The 4-token tile from token <paramref name="t0"/> for the <paramref name="tileRows"/> rows from
        /// <paramref name="r0"/>. A ragged last tile repeats its last token; the duplicates' results go to
        /// <paramref name="tail"/> (room for 4 × <paramref name="tileRows"/>) and are dropped.
        /// </summary>
        private PackedGemm.TokenTile Tile(int t0, int r0, int tileRows, float* tail)
        {
            int tt = Math.Min(PackedGemm.Tokens, Tokens - t0);
            var tile = new PackedGemm.TokenTile();
            for (int i = 0; i < PackedGemm.Tokens; i++)
            {
                int t = t0 + Math.Min(i, tt - 1);
                byte* a = (byte*)Act + (long)t * ActRowBytes;
                float* d = (float*)Scales + (long)t * SideStride;
                int* s = (int*)Sums + (long)t * SideStride;
                float* yt = i < tt ? (float*)Y + (long)t * W.Rows + r0 : tail + tileRows * i;
                switch (i)
                {
                    case 0: tile.A0 = a; tile.D0 = d; tile.S0 = s; tile.Y0 = yt; break;
                    case 1: tile.A1 = a; tile.D1 = d; tile.S1 = s; tile.Y1 = yt; break;
                    case 2: tile.A2 = a; tile.D2 = d; tile.S2 = s; tile.Y2 = yt; break;
                    default: tile.A3 = a; tile.D3 = d; tile.S3 = s; tile.Y3 = yt; break;
                }
            }
            return tile;
        }
    }
}
