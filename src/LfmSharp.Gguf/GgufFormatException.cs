namespace LfmSharp.Gguf;

/// <summary>
/// The file is not a valid GGUF file (or uses a feature this reader does not support).
/// <see cref="Field"/> names what was being read and <see cref="Offset"/> is the byte offset where the problem is.
/// </summary>
public sealed class GgufFormatException : Exception
{
    /// <summary>A format error in <paramref name="field"/> at byte <paramref name="offset"/>: <paramref name="problem"/>.</summary>
    public GgufFormatException(string field, long offset, string problem)
        : base($"invalid GGUF: {field} at byte {offset}: {problem}")
    {
        Field = field;
        Offset = offset;
        Problem = problem;
    }

    /// <summary>What was being read, e.g. <c>tensor[3].type</c> or <c>metadata['general.alignment']</c>.</summary>
    public string Field { get; }

    /// <summary>Byte offset from the start of the file.</summary>
    public long Offset { get; }

    /// <summary>The problem, without the field and offset.</summary>
    public string Problem { get; }
}
