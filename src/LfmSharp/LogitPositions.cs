namespace LfmSharp;

/// <summary>Which positions of a forward pass produce logits.</summary>
public enum LogitPositions
{
    /// <summary>Only the last token (generation): one row of VocabSize.</summary>
    Last,

    /// <summary>Every token: row i holds the logits after tokens[0..i] (scoring, tests).</summary>
    All,
}
