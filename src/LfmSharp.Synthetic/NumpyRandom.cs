using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LfmSharp.Synthetic;

// A bit-compatible re-implementation of the parts of NumPy's random module that the fixture generator used:
//   numpy.random.default_rng([seed, crc32(name)]).standard_normal(shape, dtype=float32)
// i.e. SeedSequence -> PCG64 (XSL-RR 128/64) -> the float32 ziggurat. Written from the published algorithms
// (O'Neill's PCG paper, Marsaglia & Tsang 2000) and NumPy's documented behaviour; checked against the fixture GGUFs,
// whose weights came from NumPy 1.24.

/// <summary>
/// NumPy's <c>SeedSequence</c> (default pool of four 32-bit words): hashes arbitrary-length entropy into a pool and
/// expands the pool into as many well-mixed state words as a bit generator asks for.
/// </summary>
internal sealed class NumpySeedSequence
{
    private const int PoolSize = 4;
    private const uint InitA = 0x43b0d7e5, MultA = 0x931e8875;
    private const uint InitB = 0x8b51f9dd, MultB = 0x58f38ded;
    private const uint MixMultL = 0xca01f9dd, MixMultR = 0x4973f715;
    private const int XShift = 16;

    private readonly uint[] _pool = new uint[PoolSize];

    /// <summary>Entropy as NumPy coerces a list of non-negative ints: each int becomes its 32-bit words, low first.</summary>
    public NumpySeedSequence(params ulong[] entropyInts)
    {
        var words = new List<uint>();
        foreach (ulong v in entropyInts)
        {
            // NumPy writes 0 as one word and otherwise drops leading zero words.
            words.Add((uint)v);
            if (v >> 32 != 0)
                words.Add((uint)(v >> 32));
        }
        MixEntropy(words);
    }

    private static uint HashMix(uint value, ref uint hashConst)
    {
        value ^= hashConst;
        hashConst *= MultA;
        value *= hashConst;
        value ^= value >> XShift;
        return value;
    }

    private static uint Mix(uint x, uint y)
    {
        uint r = MixMultL * x - MixMultR * y;
        r ^= r >> XShift;
        return r;
    }

    private void MixEntropy(List<uint> entropy)
    {
        uint hashConst = InitA;
        for (int i = 0; i < PoolSize; i++)
            _pool[i] = HashMix(i < entropy.Count ? entropy[i] : 0u, ref hashConst);
        // Every pool word influences every other one.
        for (int src = 0; src < PoolSize; src++)
            for (int dst = 0; dst < PoolSize; dst++)
                if (src != dst)
                    _pool[dst] = Mix(_pool[dst], HashMix(_pool[src], ref hashConst));
        // Entropy beyond the pool size is folded in afterwards.
        for (int src = PoolSize; src < entropy.Count; src++)
            for (int dst = 0; dst < PoolSize; dst++)
                _pool[dst] = Mix(_pool[dst], HashMix(entropy[src], ref hashConst));
    }

    /// <summary><c>generate_state(n, uint32)</c>.</summary>
    public uint[] GenerateState32(int count)
    {
        var state = new uint[count];
        uint hashConst = InitB;
        for (int i = 0; i < count; i++)
        {
            uint v = _pool[i % PoolSize];
            v ^= hashConst;
            hashConst *= MultB;
            v *= hashConst;
            v ^= v >> XShift;
            state[i] = v;
        }
        return state;
    }

    /// <summary><c>generate_state(n, uint64)</c>: twice as many 32-bit words, paired little-endian.</summary>
    public ulong[] GenerateState64(int count)
    {
        uint[] w = GenerateState32(count * 2);
        var state = new ulong[count];
        for (int i = 0; i < count; i++)
            state[i] = w[2 * i] | (ulong)w[2 * i + 1] << 32;
        return state;
    }
}

/// <summary>
/// NumPy's <c>PCG64</c>: a 128-bit LCG with the XSL-RR output function, plus NumPy's 32-bit buffering (a 64-bit
/// output serves two 32-bit requests, low half first).
/// </summary>
internal struct Pcg64
{
    // PCG's default 128-bit multiplier.
    internal const ulong MulHi = 0x2360ED051FC65DA4UL, MulLo = 0x4385DF649FCCF645UL;

    // Internal so that NumpyNormal.Fill can keep the state in locals (registers) in its hot loop.
    internal ulong _stateHi, _stateLo;
    internal readonly ulong _incHi, _incLo;
    internal bool _hasUInt32;
    internal uint _uint32;

    /// <summary>Seeds like <c>numpy.random.PCG64(SeedSequence(entropy))</c>.</summary>
    public Pcg64(NumpySeedSequence seq)
    {
        ulong[] v = seq.GenerateState64(4);
        // initstate = v[0]:v[1], initseq = v[2]:v[3] (high word first); increment = (initseq << 1) | 1.
        _incHi = v[2] << 1 | v[3] >> 63;
        _incLo = v[3] << 1 | 1UL;
        _stateHi = 0;
        _stateLo = 0;
        _hasUInt32 = false;
        _uint32 = 0;
        Step();
        ulong lo = _stateLo + v[1];
        _stateHi += v[0] + (lo < _stateLo ? 1UL : 0UL);
        _stateLo = lo;
        Step();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Step()
    {
        // state = state * MUL + inc (mod 2^128)
        ulong hi = Math.BigMul(_stateLo, MulLo, out ulong lo);
        hi += _stateLo * MulHi + _stateHi * MulLo;
        ulong lo2 = lo + _incLo;
        hi += _incHi + (lo2 < lo ? 1UL : 0UL);
        _stateHi = hi;
        _stateLo = lo2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        Step();
        ulong x = _stateHi ^ _stateLo;
        int rot = (int)(_stateHi >> 58);
        return ulong.RotateRight(x, rot);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint NextUInt32()
    {
        if (_hasUInt32)
        {
            _hasUInt32 = false;
            return _uint32;
        }
        ulong next = NextUInt64();
        _hasUInt32 = true;
        _uint32 = (uint)(next >> 32);
        return (uint)next;
    }

    /// <summary>The float in [0, 1) NumPy's ziggurat uses: the top 24 bits of a 32-bit draw.</summary>
    public float NextFloat() => (NextUInt32() >> 8) * (1.0f / 16777216.0f);
}

/// <summary>
/// NumPy's float32 standard normal (<c>random_standard_normal_f</c>): a 256-layer ziggurat driven by one 32-bit draw
/// per attempt (8 bits of layer index, 1 sign bit, 23 bits of magnitude). The layer tables are computed here with
/// the Marsaglia–Tsang recurrence in double precision and rounded the way NumPy stores them (floats rounded to
/// nearest, integer thresholds rounded to nearest).
/// </summary>
internal static class NumpyNormal
{
    // Right edge of the base layer and the common layer area for 256 layers (NumPy's constants).
    private const double R = 3.6541528853610087963519472518;
    private const double V = 4.92867323399e-3;
    private const int Layers = 256;
    private const double Scale = 8388608.0; // 2^23: the magnitude draw has 23 bits

    private static readonly float s_r = (float)R;
    private static readonly float s_invR = (float)(1.0 / R);

    // ki: accept threshold for the magnitude draw; wi: draw -> x scale; fi: f(x) at each layer edge.
    internal static readonly uint[] Ki = new uint[Layers];
    internal static readonly float[] Wi = new float[Layers];
    internal static readonly float[] Fi = new float[Layers];

    static NumpyNormal()
    {
        static double F(double x) => Math.Exp(-0.5 * x * x);

        // Layer 0 is the base strip plus the tail, seen as a rectangle of width q = V / f(R).
        double q = V / F(R);
        Ki[0] = RoundToUInt(R / q * Scale);
        Ki[1] = 0;
        Wi[0] = (float)(q / Scale);
        Wi[Layers - 1] = (float)(R / Scale);
        Fi[0] = 1.0f;
        Fi[Layers - 1] = (float)F(R);

        // Walk up from the base: each layer has area V, so x_{i} follows from x_{i+1}.
        double x = R, xPrev = R;
        for (int i = Layers - 2; i >= 1; i--)
        {
            x = Math.Sqrt(-2.0 * Math.Log(V / x + F(x)));
            Ki[i + 1] = RoundToUInt(x / xPrev * Scale);
            xPrev = x;
            Fi[i] = (float)F(x);
            Wi[i] = (float)(x / Scale);
        }
    }

    private static uint RoundToUInt(double v) => (uint)Math.Floor(v + 0.5);

    /// <summary>Fills <paramref name="dst"/> with consecutive standard normal draws from <paramref name="rng"/>.</summary>
    public static void Fill(ref Pcg64 rng, Span<float> dst)
    {
        // Hot loop: the rectangle test accepts ~99% of draws. The generator state is kept in locals (the same
        // step/output/32-bit buffering as Pcg64.NextUInt32, inlined by hand so it stays in registers) and written
        // back only around the rare slow path. Table reads are unchecked: idx < 256 by construction.
        ref uint ki = ref MemoryMarshal.GetArrayDataReference(Ki);
        ref float wi = ref MemoryMarshal.GetArrayDataReference(Wi);
        ulong incHi = rng._incHi, incLo = rng._incLo;
        int i = 0;
        while (i < dst.Length)
        {
            ulong hi = rng._stateHi, lo = rng._stateLo;
            bool has = rng._hasUInt32;
            uint buffered = rng._uint32;
            int idx = 0;
            uint rabs = 0;
            float x = 0;
            for (; i < dst.Length; i++)
            {
                uint r;
                if (has)
                {
                    r = buffered;
                    has = false;
                }
                else
                {
                    ulong h = Math.BigMul(lo, Pcg64.MulLo, out ulong l);
                    h += lo * Pcg64.MulHi + hi * Pcg64.MulLo;
                    lo = l + incLo;
                    hi = h + incHi + (lo < l ? 1UL : 0UL);
                    ulong out64 = ulong.RotateRight(hi ^ lo, (int)(hi >> 58));
                    r = (uint)out64;
                    buffered = (uint)(out64 >> 32);
                    has = true;
                }
                idx = (int)(r & 0xFF);
                rabs = (r >> 9) & 0x7FFFFF;
                x = (int)rabs * Unsafe.Add(ref wi, idx); // rabs < 2^23: the int conversion is exact
                if ((r & 0x100) != 0)
                    x = -x;
                if (rabs >= Unsafe.Add(ref ki, idx))
                    break;
                dst[i] = x;
            }
            rng._stateHi = hi;
            rng._stateLo = lo;
            rng._hasUInt32 = has;
            rng._uint32 = buffered;
            if (i < dst.Length)
                dst[i++] = NextSlow(ref rng, idx, rabs, x);
        }
    }

    /// <summary>The draw fell outside its layer's rectangle: tail (layer 0) or wedge test; on rejection, start over.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float NextSlow(ref Pcg64 rng, int idx, uint rabs, float x)
    {
        while (true)
        {
            if (idx == 0)
            {
                // Tail beyond R (Marsaglia's exponential method), with log1p(-u) = log(1 - u) to avoid log(0).
                while (true)
                {
                    float xx = -s_invR * FdlibmLog1pf(-rng.NextFloat());
                    float yy = -FdlibmLog1pf(-rng.NextFloat());
                    if (yy + yy > xx * xx)
                        return ((rabs >> 8) & 1) != 0 ? -(s_r + xx) : s_r + xx;
                }
            }

            // Wedge: accept under the curve. NumPy compares a float against exp() evaluated in double.
            float y = (Fi[idx - 1] - Fi[idx]) * rng.NextFloat() + Fi[idx];
            if (y < Math.Exp(-0.5 * x * x))
                return x;

            uint r = rng.NextUInt32();
            idx = (int)(r & 0xFF);
            rabs = (r >> 9) & 0x7FFFFF;
            x = (int)rabs * Wi[idx];
            if ((r & 0x100) != 0)
                x = -x;
            if (rabs < Ki[idx])
                return x;
        }
    }

    // ---- log1pf --------------------------------------------------------------------------------------------
    // NumPy calls the C library's log1pf in the tail. glibc (up to 2.40, which produced the fixtures) implements it
    // with fdlibm's float algorithm, which is not correctly rounded: about 7% of the 2^24 possible inputs round
    // differently from a correctly rounded log1p. To be bit-exact on every platform we evaluate the same algorithm
    // in float arithmetic. It was checked against glibc 2.36's log1pf for every input this sampler can produce.
    //
    // Algorithm from fdlibm s_log1pf.c:
    //   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
    //   Developed at SunPro, a Sun Microsystems, Inc. business.
    //   Permission to use, copy, modify, and distribute this software is freely granted, provided that this notice
    //   is preserved.

    private const float Ln2Hi = 6.9313812256e-01f, Ln2Lo = 9.0580006145e-06f;
    private const float Lp1 = 6.6666668653e-01f, Lp2 = 4.0000000596e-01f, Lp3 = 2.8571429849e-01f,
        Lp4 = 2.2222198546e-01f, Lp5 = 1.8183572590e-01f, Lp6 = 1.5313838422e-01f, Lp7 = 1.4798198640e-01f;

    /// <summary>
    /// log(1 + x) for -1 &lt; x &lt; 2^52 (the sampler only passes -1 &lt; x &lt;= 0), evaluated exactly as fdlibm does:
    /// 1 + x = 2^k (1 + f) with sqrt(2)/2 &lt; 1 + f &lt; sqrt(2), log(1 + f) from a polynomial in s = f / (2 + f), and
    /// a correction term c for the rounding of 1 + x.
    /// </summary>
    internal static float FdlibmLog1pf(float x)
    {
        int hx = BitConverter.SingleToInt32Bits(x);
        int ax = hx & 0x7fffffff;
        int k = 1, hu = 0;
        float f = 0, c = 0;
        if (hx < 0x3ed413d7) // x < 0.41422
        {
            if (ax >= 0x3f800000) // x <= -1
                return x == -1.0f ? float.NegativeInfinity : float.NaN;
            if (ax < 0x31000000) // |x| < 2^-29
                return ax < 0x24800000 ? x : x - x * x * 0.5f;
            if (hx > 0 || hx <= unchecked((int)0xbe95f61f)) // -0.2929 < x < 0.41422: no reduction needed
            {
                k = 0;
                f = x;
                hu = 1;
            }
        }
        if (hx >= 0x7f800000)
            return x + x;
        if (k != 0)
        {
            if (hx >= 0x5a000000)
                throw new ArgumentOutOfRangeException(nameof(x), "only used for arguments below 2^53");
            float u = 1.0f + x;
            hu = BitConverter.SingleToInt32Bits(u);
            k = (hu >> 23) - 127;
            // c corrects for the rounding error of 1 + x.
            c = k > 0 ? 1.0f - (u - x) : x - (u - 1.0f);
            c /= u;
            hu &= 0x007fffff;
            if (hu < 0x3504f7)
            {
                u = BitConverter.Int32BitsToSingle(hu | 0x3f800000); // normalize u
            }
            else
            {
                k += 1;
                u = BitConverter.Int32BitsToSingle(hu | 0x3f000000); // normalize u/2
                hu = (0x00800000 - hu) >> 2;
            }
            f = u - 1.0f;
        }
        float hfsq = 0.5f * f * f;
        if (hu == 0) // |f| < 2^-20
        {
            if (f == 0.0f)
            {
                if (k == 0)
                    return 0.0f;
                c += k * Ln2Lo;
                return k * Ln2Hi + c;
            }
            float r0 = hfsq * (1.0f - 0.66666666666666666f * f);
            return k == 0 ? f - r0 : k * Ln2Hi - ((r0 - (k * Ln2Lo + c)) - f);
        }
        float s = f / (2.0f + f);
        float z = s * s;
        float r = z * (Lp1 + z * (Lp2 + z * (Lp3 + z * (Lp4 + z * (Lp5 + z * (Lp6 + z * Lp7))))));
        return k == 0
            ? f - (hfsq - s * (hfsq + r))
            : k * Ln2Hi - ((hfsq - (s * (hfsq + r) + (k * Ln2Lo + c))) - f);
    }
}
