using System.Runtime.CompilerServices;
using static LfmSharp.Kernels.Quant.QuantMath;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// The scale searches behind the K-quant reference quantizers (ggml-quants.c make_qx_quants / make_qkx2_quants) and
/// the 6-bit scale/min packing shared by Q4_K and Q5_K. Each expression keeps ggml's operand order and f32 types:
/// the search picks between candidates by comparing float error sums, so one reordered addition can flip a choice
/// and change the output bytes.
/// </summary>
internal static class KQuantMath
{
    /// <summary>Below this max |x| a group counts as all zeros (GROUP_MAX_EPS).</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// make_qx_quants(n, nmax, x, L, rmse_type = 1, qw = NULL): symmetric quantization to [−nmax, nmax−1] with
    /// weights x², trying 18 scales around nmax/max and keeping the best weighted least-squares one.
    /// Writes L[i] = l + nmax (so 0..2·nmax−1) and returns the scale.
    /// </summary>
    public static float MakeQxQuantsRmse1(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0f, amax = 0f;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L.Slice(0, n).Clear();
            return 0f;
        }

        float iscale = -nmax / max;
        float sumlx = 0f, suml2 = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * x[i]);
            l = Math.Max(-nmax, Math.Min(nmax - 1, l));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0f ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0)
                continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * x[i]);
                l = Math.Max(-nmax, Math.Min(nmax - 1, l));
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0f && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < n; i++)
                {
                    int l = NearestInt(iscale * x[i]);
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, l)));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>
    /// make_qkx2_quants: asymmetric quantization x ≈ scale·L − theMin with L in [0, nmax], starting from the min/max
    /// fit and trying nstep+1 alternative scales (iscale = (rmin + rdelta·is + nmax)/(max − min)), each refined by
    /// weighted least squares. Returns the scale; theMin is returned as a positive offset (−min).
    /// laux: scratch of n bytes.
    /// </summary>
    public static float MakeQkx2Quants(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights,
        Span<byte> L, out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        float min = x[0];
        float max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L.Slice(0, n).Clear();
            theMin = -min;
            return 0f;
        }

        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0f;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        if (nstep < 1)
        {
            theMin = -min;
            return scale;
        }

        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0f, sumL2 = 0f, sumXL = 0f;
            for (int i = 0; i < n; i++)
            {
                int l = NearestInt(iscale * (x[i] - min));
                l = Math.Max(0, Math.Min(nmax, l));
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0f;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    curError += weights[i] * diff;
                }
                if (curError < bestError)
                {
                    laux.Slice(0, n).CopyTo(L);
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>
    /// get_scale_min_k4: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of a Q4_K/Q5_K block.
    /// j &lt; 4: low 6 bits of bytes j and j+4; j ≥ 4: low/high nibble of byte j+4 plus the top 2 bits of bytes j−4 / j.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GetScaleMinK4(int j, ReadOnlySpan<byte> q, out int scale, out int min)
    {
        if (j < 4)
        {
            scale = q[j] & 63;
            min = q[j + 4] & 63;
        }
        else
        {
            scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    /// <summary>Inverse of <see cref="GetScaleMinK4"/> for all 8 sub-blocks; ls/lm are 0..63.</summary>
    public static void PackScaleMinK4(ReadOnlySpan<byte> ls, ReadOnlySpan<byte> lm, Span<byte> scales)
    {
        scales.Slice(0, 12).Clear();
        for (int j = 0; j < 8; j++)
        {
            if (j < 4)
            {
                scales[j] = ls[j];
                scales[j + 4] = lm[j];
            }
            else
            {
                scales[j + 4] = (byte)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                scales[j - 4] |= (byte)((ls[j] >> 4) << 6);
                scales[j] |= (byte)((lm[j] >> 4) << 6);
            }
        }
    }
}
