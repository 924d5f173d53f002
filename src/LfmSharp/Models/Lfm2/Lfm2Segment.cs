namespace LfmSharp.Models;

/// <summary>Rows [Row, Row + Count) of a forward step belong to <see cref="State"/>, at its positions Position.. .</summary>
internal readonly record struct Lfm2Segment(Lfm2State State, int Row, int Count);
