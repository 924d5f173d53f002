namespace LfmSharp.Models;

/// <summary>An immutable copy of an <see cref="Lfm2State"/> (see <see cref="Lfm2State.Snapshot"/>).</summary>
internal sealed class Lfm2StateSnapshot
{
    internal Lfm2StateSnapshot(Lfm2State from, int position, float[][] convStates, Array[] kv)
    {
        Config = from.Config;
        KvCacheType = from.KvCacheType;
        Position = position;
        ConvStates = convStates;
        Kv = kv;
    }

    public int Position { get; }
    internal Lfm2Config Config { get; }
    internal KvCacheType KvCacheType { get; }
    internal float[][] ConvStates { get; }
    internal Array[] Kv { get; }   // per attention layer: K then V, [Position, kvDim] each
}
