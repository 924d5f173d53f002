using LfmSharp.Kernels;

namespace LfmSharp.Models;

/// <summary>Weights of one layer: the norms and FFN every layer has, plus either attention or short-conv weights.</summary>
internal sealed class Lfm2Layer
{
    public required float[] OperatorNorm { get; init; }   // [dim]
    public required float[] FfnNorm { get; init; }        // [dim]
    public required WeightMatrix W1 { get; init; }        // gate [ff, dim]
    public required WeightMatrix W3 { get; init; }        // up   [ff, dim]
    public required WeightMatrix W2 { get; init; }        // down [dim, ff]
    public Lfm2Attention? Attention { get; init; }
    public Lfm2ShortConv? ShortConv { get; init; }
}

internal sealed class Lfm2Attention
{
    public required WeightMatrix QProj { get; init; }     // [heads·hd, dim]
    public required WeightMatrix KProj { get; init; }     // [kv·hd, dim]
    public required WeightMatrix VProj { get; init; }     // [kv·hd, dim]
    public required WeightMatrix OutProj { get; init; }   // [dim, heads·hd]
    public required float[] QLayerNorm { get; init; }     // [hd]
    public required float[] KLayerNorm { get; init; }     // [hd]
    public required int KvHeads { get; init; }
    public required int Index { get; init; }              // slot in the state's KV cache
}

internal sealed class Lfm2ShortConv
{
    public required WeightMatrix InProj { get; init; }    // [3·dim, dim], output rows B | C | X
    public required float[] Conv { get; init; }           // [dim, k] taps per channel, oldest first
    public required WeightMatrix OutProj { get; init; }   // [dim, dim]
    public required int Index { get; init; }              // slot in the state's conv states
}
