using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// IQ4_NL and IQ4_XS quantizers without an importance matrix: the bytes llama-quantize writes, i.e. ggml's
/// <c>quantize_iq4_nl</c> / <c>quantize_iq4_xs</c> (what <c>ggml_quantize_chunk</c> runs) with quant_weights NULL.
/// Both go through one sub-block search (ggml's <c>quantize_row_iq4_nl_impl</c> with ntry = 7).
/// </summary>
/// <remarks>
/// Written from ggml's algorithm; every float operation is single precision in the C's order (see
/// <see cref="QuantMath"/>), so the scale search takes the same branches and the result is bit-identical.
/// ggml's <c>quantize_row_iq4_nl_ref</c> is a different, search-free variant (ntry = −1, used by ggml-cpu's
/// from_float); llama-quantize does not use it, so it is not reproduced here.
/// </remarks>
internal static class IQ4Quantize
{
    // ggml's ntry: the scale search tries id = (itry + kv[0]) / max for itry in −7..7 besides the first guess.
    private const int Tries = 7;
    private const int SubBlock = 32;

    /// <summary>
    /// IQ4_NL rows as llama-quantize writes them (ggml's quantize_iq4_nl, no imatrix). src.Length must be a multiple
    /// of 32 and dst must hold src.Length/32 blocks of 18 bytes; otherwise <see cref="ArgumentException"/>.
    /// </summary>
    public static void QuantizeRowNLReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        int nb = CheckQuantize(GgmlType.IQ4_NL, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ4NL>(dst, nb);
        Span<byte> levels = stackalloc byte[SubBlock];
        for (int i = 0; i < nb; i++)
        {
            ref BlockIQ4NL y = ref blocks[i];
            ReadOnlySpan<float> x = src.Slice(SubBlock * i, SubBlock);
            // One 32-weight block is its own super-block: d is the searched scale itself, and the levels are
            // chosen again against it (the search only kept the scale).
            float d = SearchScale(x, levels);
            y.D = ToHalf(d);
            float id = d != 0f ? 1f / d : 0f;
            for (int j = 0; j < SubBlock; j++)
                levels[j] = (byte)BestIndex(id * x[j]);
            Pack(levels, y.Qs);
        }
    }

    /// <summary>
    /// IQ4_XS rows as llama-quantize writes them (ggml's quantize_iq4_xs / quantize_row_iq4_xs_ref, no imatrix).
    /// src.Length must be a multiple of 256 and dst must hold src.Length/256 blocks of 136 bytes; otherwise
    /// <see cref="ArgumentException"/>.
    /// </summary>
    public static void QuantizeRowXSReference(ReadOnlySpan<float> src, Span<byte> dst)
    {
        const int subBlocks = BlockIQ4XS.BlockSize / SubBlock;
        int nb = CheckQuantize(GgmlType.IQ4_XS, src.Length, dst.Length);
        var blocks = Blocks<BlockIQ4XS>(dst, nb);
        Span<byte> levels = stackalloc byte[BlockIQ4XS.BlockSize];
        Span<float> scales = stackalloc float[subBlocks];
        for (int i = 0; i < nb; i++)
        {
            ref BlockIQ4XS y = ref blocks[i];
            ReadOnlySpan<float> x = src.Slice(BlockIQ4XS.BlockSize * i, BlockIQ4XS.BlockSize);
            float maxScale = 0f, amaxScale = 0f;
            for (int ib = 0; ib < subBlocks; ib++)
            {
                scales[ib] = SearchScale(x.Slice(SubBlock * ib, SubBlock), levels.Slice(SubBlock * ib, SubBlock));
                float a = MathF.Abs(scales[ib]);
                if (a > amaxScale)
                {
                    amaxScale = a;
                    maxScale = scales[ib];
                }
            }

            // The super-block scale maps the largest sub-block scale to −32, the end of the 6-bit range; each
            // sub-block keeps l = round(scale/d) clamped to [−32, 31] (stored +32) and re-picks its levels for d·l.
            // With an all-zero super-block maxScale is 0 and d is −0 (stored as f16 0x8000, as ggml does).
            float d = -maxScale / 32;
            y.D = ToHalf(d);
            float id = d != 0f ? 1f / d : 0f;
            ushort scalesH = 0;
            Span<byte> scalesL = y.ScalesL;
            for (int ib = 0; ib < subBlocks; ib++)
            {
                int l = Math.Clamp(NearestInt(id * scales[ib]), -32, 31);
                float dl = d * l;
                float idl = dl != 0f ? 1f / dl : 0f;
                ReadOnlySpan<float> xb = x.Slice(SubBlock * ib, SubBlock);
                Span<byte> lb = levels.Slice(SubBlock * ib, SubBlock);
                for (int j = 0; j < SubBlock; j++)
                    lb[j] = (byte)BestIndex(idl * xb[j]);
                l += 32;
                if (ib % 2 == 0)
                    scalesL[ib / 2] = (byte)(l & 0xF);
                else
                    scalesL[ib / 2] |= (byte)((l & 0xF) << 4);
                scalesH |= (ushort)((l >> 4) << (2 * ib));
            }
            y.ScalesH = scalesH;
            Pack(levels, y.Qs);
        }
    }

    /// <summary>
    /// The best scale for one 32-weight sub-block under weights x² (ggml's choice without an imatrix): a first guess
    /// mapping the largest-magnitude value to the top level, then 15 candidates mapping it to kv[0] + itry, keeping
    /// the scale that maximises (Σw·q·x)²/Σw·q². Writes the first guess's levels to <paramref name="levels"/> (ggml
    /// keeps them; callers re-pick). A sub-block whose |x| stays under 1e-15 gets scale 0 and its levels untouched.
    /// </summary>
    private static float SearchScale(ReadOnlySpan<float> xb, Span<byte> levels)
    {
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        float amax = 0f, max = 0f;
        for (int j = 0; j < SubBlock; j++)
        {
            float ax = MathF.Abs(xb[j]);
            if (ax > amax)
            {
                amax = ax;
                max = xb[j];
            }
        }
        if (amax < 1e-15f) // GROUP_MAX_EPS
            return 0f;

        float d = -max / kv[0];
        float id = 1f / d;
        float sumqx = 0f, sumq2 = 0f;
        for (int j = 0; j < SubBlock; j++)
        {
            int l = BestIndex(id * xb[j]);
            levels[j] = (byte)l;
            float q = kv[l], w = xb[j] * xb[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = sumq2 > 0f ? sumqx / sumq2 : 0f;
        float best = d * sumqx;
        for (int itry = -Tries; itry <= Tries; itry++)
        {
            id = (itry + kv[0]) / max;
            sumqx = sumq2 = 0f;
            for (int j = 0; j < SubBlock; j++)
            {
                float q = kv[BestIndex(id * xb[j])], w = xb[j] * xb[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if (sumq2 > 0f && sumqx * sumqx > best * sumq2)
            {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        return d;
    }

    /// <summary>
    /// ggml's best_index_int8 over kvalues_iq4nl: the nearest level by bisection, ties going to the upper level
    /// (x − kv[mu−1] &lt; kv[mu] − x picks the lower one only when strictly closer). NaN falls to the top level.
    /// </summary>
    private static int BestIndex(float x)
    {
        ReadOnlySpan<sbyte> kv = IQTables.KValuesIq4Nl;
        if (x <= kv[0])
            return 0;
        if (x >= kv[15])
            return 15;
        int ml = 0, mu = 15;
        while (mu - ml > 1)
        {
            int mav = (ml + mu) / 2;
            if (x < kv[mav])
                mu = mav;
            else
                ml = mav;
        }
        return x - kv[mu - 1] < kv[mu] - x ? mu - 1 : mu;
    }

    /// <summary>Two level indices per byte: weight j of each 32-group in the low nibble, weight 16 + j in the high one.</summary>
    private static void Pack(ReadOnlySpan<byte> levels, Span<byte> qs)
    {
        for (int g = 0; g < levels.Length / SubBlock; g++)
            for (int j = 0; j < 16; j++)
                qs[16 * g + j] = (byte)(levels[SubBlock * g + j] | (levels[SubBlock * g + 16 + j] << 4));
    }
}
