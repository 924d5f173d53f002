using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LfmSharp.Kernels.Quant;

/// <summary>
/// How a grid or ternary type (IQ1/IQ2/IQ3, TQ1_0/TQ2_0) turns one super-block into signed bytes, and the float steps
/// of its row dot. With it, a batch decodes each weight row ONCE and dots the decoded bytes with every token
/// (<see cref="IQDecoded"/>), instead of looking the grid up again per token as the row dot does.
/// </summary>
internal sealed unsafe class BlockDecoder
{
    /// <summary>A decoder with the type's block function and float factors.</summary>
    public BlockDecoder(delegate*<byte*, sbyte*, short*, float> decode, float post = 1f, float final = 1f)
    {
        Decode = decode;
        Post = post;
        Final = final;
    }

    /// <summary>
    /// Writes the 256 weights of the super-block at arg 0 as signed bytes (|q| ≤ 64) and the 16 integer scales of its
    /// groups of 16 (≤ 31), and returns the block's float scale d_w: the block's exact integer is Σ_g ls_g·Σ q·a.
    /// </summary>
    public delegate*<byte*, sbyte*, short*, float> Decode { get; }

    /// <summary>The factor of that integer before the scales (1/8 for IQ1's 8·g ± 1 bytes, else 1).</summary>
    public float Post { get; }

    /// <summary>The factor of the whole sum (1/8 for IQ2, 1/4 for IQ3_XXS, else 1), as ggml's generic dot applies it.</summary>
    public float Final { get; }
}

/// <summary>
/// Batched matmul of a grid/ternary weight matrix: per weight row, every super-block is decoded once into
/// <see cref="BlockBytes"/> bytes (256 signed weights, their scales spread 8 per group of 16 as int16, 128·Σ ls·Σq,
/// d_w), then dotted with each token's Q8_K block. The block integer is exact on every path, and the float steps are
/// those of the row dot, sumf += (d_w·d_a)·(isum·Post), Final·sumf, so results are bit-identical to
/// <see cref="TypeTraits.DotScalar"/>.
/// </summary>
/// <remarks>
/// The SIMD paths take the activations as the unsigned side of vpmaddubsw, a + 128 (a ^ 0x80), against the signed
/// weights: pair sums stay within int16 because |q| ≤ 64 (255·64·2 = 32640), and the offset is removed with the
/// per-block 128·Σ ls·Σq computed at decode time, so no activation value (−128 included) is special.
/// </remarks>
internal static unsafe class IQDecoded
{
    /// <summary>Bytes of one decoded super-block: q[256], int16 scales[128], 128·Σ ls·Σq (int32), d_w (f32).</summary>
    public const int BlockBytes = 520;

    /// <summary>Smallest batch that takes the decoded path (below, decoding a row costs more than it saves).</summary>
    public const int MinTokens = 4;

    /// <summary>Tokens per pass over a decoded row (their blocks stay in L1 while the row's blocks go by).</summary>
    private const int TokenTile = 32;

    private const int Scales = 256, Offset = 512, Scale = 516;

    /// <summary>True when this machine runs <see cref="BlockDot512"/> (AVX-512 BW).</summary>
    public static bool Use512 => Avx512BW.IsSupported;

    /// <summary>Decodes <paramref name="nb"/> super-blocks of one row (<paramref name="blockBytes"/> each) into <paramref name="dst"/>.</summary>
    public static void DecodeRow(BlockDecoder decoder, byte* row, int blockBytes, int nb, byte* dst)
    {
        short* ls = stackalloc short[16];
        for (int b = 0; b < nb; b++)
        {
            byte* d = dst + (long)BlockBytes * b;
            sbyte* q = (sbyte*)d;
            float dw = decoder.Decode(row + (long)blockBytes * b, q, ls);
            short* sc = (short*)(d + Scales);
            for (int g = 0; g < 16; g++)
                Vector128.Create(ls[g]).Store(sc + 8 * g);
            *(int*)(d + Offset) = 128 * ScaledSum(d);
            *(float*)(d + Scale) = dw;
        }
    }

    /// <summary>Σ_g ls_g·Σ q over a decoded block's weights and scales (the offset term of the SIMD dots), exact.</summary>
    private static int ScaledSum(byte* dec)
    {
        if (Avx2.IsSupported)
        {
            var ones = Vector256.Create((byte)1);
            var acc = Vector256<int>.Zero;
            for (int v = 0; v < 8; v++)
                acc += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ones, Vector256.Load((sbyte*)dec + 32 * v)), Vector256.Load((short*)(dec + Scales) + 16 * v));
            return Simd.HorizontalSum(acc);
        }
        sbyte* q = (sbyte*)dec;
        short* sc = (short*)(dec + Scales);
        int sum = 0;
        for (int g = 0; g < 16; g++)
        {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += q[16 * g + j];
            sum += sc[8 * g] * s;
        }
        return sum;
    }

    /// <summary>The exact Σ_g ls_g·Σ q·a of one decoded block against one Q8_K block's quants (scalar reference).</summary>
    public static int BlockDotScalar(byte* dec, sbyte* a)
    {
        sbyte* q = (sbyte*)dec;
        short* sc = (short*)(dec + Scales);
        int isum = 0;
        for (int g = 0; g < 16; g++)
        {
            int s = 0;
            for (int j = 0; j < 16; j++)
                s += q[16 * g + j] * a[16 * g + j];
            isum += sc[8 * g] * s;
        }
        return isum;
    }

    /// <summary>AVX2 twin of <see cref="BlockDotScalar"/>: eight vpmaddubsw/vpmaddwd steps, exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int BlockDotAvx2(byte* dec, sbyte* a)
    {
        var flip = Vector256.Create((byte)0x80);
        var acc = Vector256<int>.Zero;
        for (int v = 0; v < 8; v++)
        {
            var p = Avx2.MultiplyAddAdjacent(Vector256.Load((byte*)a + 32 * v) ^ flip, Vector256.Load((sbyte*)dec + 32 * v));
            acc += Avx2.MultiplyAddAdjacent(p, Vector256.Load((short*)(dec + Scales) + 16 * v));
        }
        return Simd.HorizontalSum(acc) - *(int*)(dec + Offset);
    }

    /// <summary>AVX-512 twin of <see cref="BlockDotScalar"/>: four 64-byte vpmaddubsw/vpmaddwd steps, exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int BlockDot512(byte* dec, sbyte* a)
    {
        var flip = Vector512.Create((byte)0x80);
        var acc = Vector512<int>.Zero;
        for (int v = 0; v < 4; v++)
        {
            var p = Avx512BW.MultiplyAddAdjacent(Vector512.Load((byte*)a + 64 * v) ^ flip, Vector512.Load((sbyte*)dec + 64 * v));
            acc += Avx512BW.MultiplyAddAdjacent(p, Vector512.Load((short*)(dec + Scales) + 32 * v));
        }
        return Vector512.Sum(acc) - *(int*)(dec + Offset);
    }

    /// <summary>
    /// Adds the decoded row's dot with <paramref name="tokens"/> activation rows (Q8_K, <paramref name="actRowBytes"/>
    /// apart) to <paramref name="sumf"/>, block by block in row order (the row dot's float order).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AccumulateTokens(byte* dec, int nb, byte* act, int actRowBytes, int tokens, float post, float* sumf)
    {
        for (int b = 0; b < nb; b++)
        {
            byte* d = dec + (long)BlockBytes * b;
            float dw = *(float*)(d + Scale);
            byte* a = act + 292L * b;
            if (Use512)
            {
                for (int t = 0; t < tokens; t++, a += actRowBytes)
                    sumf[t] += dw * *(float*)a * (BlockDot512(d, (sbyte*)(a + 4)) * post);
            }
            else if (Simd.Avx2Fma)
            {
                for (int t = 0; t < tokens; t++, a += actRowBytes)
                    sumf[t] += dw * *(float*)a * (BlockDotAvx2(d, (sbyte*)(a + 4)) * post);
            }
            else
            {
                for (int t = 0; t < tokens; t++, a += actRowBytes)
                    sumf[t] += dw * *(float*)a * (BlockDotScalar(d, (sbyte*)(a + 4)) * post);
            }
        }
    }

    /// <summary>
    /// One weight row against <paramref name="tokens"/> activation rows through the decoded path (the test entry and
    /// the body of <see cref="Job"/>): y[t·yStride] = the row dot of token t. <paramref name="scratch"/> holds
    /// nb·<see cref="BlockBytes"/> bytes.
    /// </summary>
    public static void Row(BlockDecoder decoder, byte* row, int blockBytes, int nb, byte* act, int actRowBytes, int tokens, byte* scratch, float* y, long yStride)
    {
        DecodeRow(decoder, row, blockBytes, nb, scratch);
        float* sumf = stackalloc float[TokenTile];
        for (int t0 = 0; t0 < tokens; t0 += TokenTile)
        {
            int tt = Math.Min(TokenTile, tokens - t0);
            new Span<float>(sumf, tt).Clear();
            AccumulateTokens(scratch, nb, act + (long)t0 * actRowBytes, actRowBytes, tt, decoder.Post, sumf);
            for (int t = 0; t < tt; t++)
                y[(t0 + t) * yStride] = decoder.Final * sumf[t];
        }
    }

    /// <summary>Bytes of decode scratch per thread for rows of <paramref name="columns"/> weights.</summary>
    public static long ScratchBytes(int columns) => (long)(columns / 256) * BlockBytes;

    /// <summary>Rows [start, end) of a batched matmul (activations already in Q8_K), one decode per row.</summary>
    internal sealed class Job : IParallelWork
    {
        public WeightMatrix W;
        public nint Y, Act, Scratch;
        public int Tokens, ActRowBytes;
        public long ScratchStride;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Execute(int start, int end, int thread)
        {
            var w = W;
            var decoder = w.Kernels!.Decoder!;
            int nb = w.Columns / 256, blockBytes = GgmlTypes.TypeSize(w.Type);
            byte* scratch = (byte*)Scratch + thread * ScratchStride;
            for (int r = start; r < end; r++)
                Row(decoder, w.Data + (long)r * w.RowBytes, blockBytes, nb, (byte*)Act, ActRowBytes, Tokens, scratch, (float*)Y + r, w.Rows);
        }
    }

    /// <summary>
    /// ulong of 8 signed bytes from 8 grid magnitudes (each in 1..127) and a byte mask (0xFF where negative):
    /// (g ^ m) + (m &amp; 1) negates the masked bytes, and no byte carries because no magnitude is 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Signed(ulong magnitudes, ulong negative) => (magnitudes ^ negative) + (negative & 0x0101010101010101ul);

    /// <summary>The 8 bits of <paramref name="bits"/> as byte masks: byte j = 0xFF where bit j is set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong BitMask8(uint bits)
    {
        ulong x = ((byte)bits * 0x0101010101010101ul) & 0x8040201008040201ul;
        x = (x | ((x & 0x7F7F7F7F7F7F7F7Ful) + 0x7F7F7F7F7F7F7F7Ful)) & 0x8080808080808080ul;
        return (x >> 7) * 0xFF;
    }
}
