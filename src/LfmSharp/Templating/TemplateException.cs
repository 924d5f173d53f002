namespace LfmSharp.Templating;

/// <summary>
/// A chat template could not be parsed or rendered: a syntax error, an error while running it (an unknown filter, a
/// wrong type, the template's own <c>raise_exception</c>), or a sandbox limit (loop iterations, recursion depth,
/// output size, total steps). <see cref="Line"/> and <see cref="Column"/> point into the template source (1-based;
/// 0 when unknown).
/// </summary>
public sealed class TemplateException : Exception
{
    /// <summary>Creates the exception; the message gets a <c>line L, column C:</c> prefix when the position is known.</summary>
    public TemplateException(string message, int line = 0, int column = 0, bool raisedByTemplate = false)
        : base(line > 0 ? $"chat template line {line}, column {column}: {message}" : message)
    {
        Detail = message;
        Line = line;
        Column = column;
        RaisedByTemplate = raisedByTemplate;
    }

    /// <summary>The message without the position prefix.</summary>
    public string Detail { get; }

    /// <summary>1-based line in the template source, 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>1-based column in the template source, 0 when unknown.</summary>
    public int Column { get; }

    /// <summary>True when the template itself called <c>raise_exception</c> (it rejects the conversation).</summary>
    public bool RaisedByTemplate { get; }

    internal TemplateException At(int line, int column) =>
        Line > 0 || line <= 0 ? this : new TemplateException(Detail, line, column, RaisedByTemplate);
}
