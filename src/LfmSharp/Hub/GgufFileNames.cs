using System.Text.RegularExpressions;

namespace LfmSharp.Hub;

/// <summary>
/// Reading quantization tags and split sets out of GGUF file names, the way llama.cpp's <c>-hf</c> does:
/// a tag matches when the name contains it followed by '.' or '-' (case-insensitive); split files are
/// <c>PREFIX-00001-of-00003.gguf</c> and download as one set.
/// </summary>
internal static partial class GgufFileNames
{
    public static bool IsGguf(string path) => path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);

    /// <summary>A model file, not a projector / imatrix / draft sidecar.</summary>
    public static bool IsModel(string path)
    {
        if (!IsGguf(path))
            return false;
        string name = FileName(path).ToLowerInvariant();
        return !name.Contains("mmproj", StringComparison.Ordinal) && !name.Contains("imatrix", StringComparison.Ordinal)
            && !name.Contains("mtp-", StringComparison.Ordinal) && !name.Contains("eagle3-", StringComparison.Ordinal);
    }

    /// <summary>(prefix without the split suffix, index, count); count 1 for an unsplit file.</summary>
    public static (string Prefix, int Index, int Count) Split(string path)
    {
        string stem = IsGguf(path) ? path[..^5] : path;
        var m = SplitPattern().Match(stem);
        return m.Success
            ? (m.Groups[1].Value, int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture))
            : (stem, 1, 1);
    }

    /// <summary>The quantization tag at the end of the name (<c>Q4_K_M</c> in <c>LFM2-1.2B-Q4_K_M.gguf</c>), upper case; "" when none.</summary>
    public static string Quant(string path)
    {
        var m = TagPattern().Match(FileName(Split(path).Prefix));
        return m.Success ? m.Groups[1].Value.ToUpperInvariant() : "";
    }

    /// <summary>
    /// The file to load for <paramref name="quant"/> (null: <see cref="ModelReference.DefaultQuant"/>, else the first
    /// model GGUF): the first of a split set, or null when none matches.
    /// </summary>
    public static string? Pick(IReadOnlyList<string> files, string? quant)
    {
        string? found = FindTag(files, quant ?? ModelReference.DefaultQuant);
        if (found is not null || quant is not null)
            return found;
        foreach (string f in files)
        {
            if (IsModel(f) && Split(f).Index == 1)
                return f;
        }
        return null;
    }

    /// <summary>The whole split set <paramref name="first"/> belongs to, in order (just itself when unsplit).</summary>
    public static IReadOnlyList<string> SetOf(IReadOnlyList<string> files, string first)
    {
        var (prefix, _, count) = Split(first);
        if (count <= 1)
            return [first];
        var set = new string[count];
        for (int i = 0; i < count; i++)
            set[i] = $"{prefix}-{i + 1:D5}-of-{count:D5}.gguf";
        return set;
    }

    /// <summary>The distinct quantization tags of the model GGUFs, for "available quants" messages.</summary>
    public static IReadOnlyList<string> AvailableQuants(IEnumerable<string> files)
    {
        var tags = new List<string>();
        foreach (string f in files)
        {
            if (IsModel(f) && Quant(f) is { Length: > 0 } q && !tags.Contains(q))
                tags.Add(q);
        }
        tags.Sort(StringComparer.Ordinal);
        return tags;
    }

    private static string? FindTag(IReadOnlyList<string> files, string tag)
    {
        var pattern = new Regex(Regex.Escape(tag) + "[.-]", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        foreach (string f in files)
        {
            if (IsModel(f) && pattern.IsMatch(FileName(f)) && Split(f).Index == 1)
                return f;
        }
        return null;
    }

    private static string FileName(string path) => path[(path.LastIndexOf('/') + 1)..];

    [GeneratedRegex(@"^(.+)-([0-9]{5})-of-([0-9]{5})$", RegexOptions.IgnoreCase)]
    private static partial Regex SplitPattern();

    [GeneratedRegex(@"[-.]([A-Z0-9_]+)$", RegexOptions.IgnoreCase)]
    private static partial Regex TagPattern();
}
