using LfmSharp.Kernels;

namespace LfmSharp.Models;

/// <summary>An immutable copy of an <see cref="Lfm2State"/> (see <see cref="Lfm2State.Snapshot(int)"/>).</summary>
internal sealed class Lfm2StateSnapshot
{
    internal Lfm2StateSnapshot(Lfm2State from, int position, float[][] convStates, KvCacheSnapshot[] kv)
    {
        Config = from.Config;
        KvCacheType = from.KvCacheType;
        Position = position;
        ConvStates = convStates;
        Kv = kv;
        long bytes = 0;
        foreach (var s in convStates)
            bytes += (long)s.Length * sizeof(float);
        foreach (var k in kv)
            bytes += k.Bytes;
        Bytes = bytes;
    }

    public int Position { get; }
    /// <summary>Bytes the copy holds: the conv histories and the KV rows of positions [0, Position).</summary>
    internal long Bytes { get; }
    internal Lfm2Config Config { get; }
    internal KvCacheType KvCacheType { get; }
    internal float[][] ConvStates { get; }
    internal KvCacheSnapshot[] Kv { get; }   // per attention layer: its rows [kvHeads, Position, row]
}
