using System.Text.RegularExpressions;

namespace LfmSharp.Hub;

/// <summary>
/// A model named by its hub repository: <c>org/name</c>, optionally a quantization tag (<c>:Q4_K_M</c>), an exact file
/// and a revision. Parsed from the forms people type: <c>LiquidAI/LFM2.5-1.2B-Thinking-GGUF:Q8_0</c>,
/// <c>hf.co/LiquidAI/…</c>, <c>https://huggingface.co/LiquidAI/…</c> (also a <c>/blob/REV/FILE</c> or
/// <c>/resolve/REV/FILE</c> link) and the short names of <see cref="ModelCatalog"/>.
/// </summary>
public sealed partial record ModelReference
{
    /// <summary>The quantization taken when none is named (as llama.cpp's <c>-hf</c>).</summary>
    public const string DefaultQuant = "Q4_K_M";

    /// <summary>Creates a reference; <paramref name="repo"/> must be <c>org/name</c>.</summary>
    public ModelReference(string repo, string? quant = null, string? file = null, string revision = "main")
    {
        if (!IsRepoId(repo))
            throw new ArgumentException($"'{repo}' is not a hub repository name (expected org/name)", nameof(repo));
        Repo = repo;
        Quant = string.IsNullOrEmpty(quant) ? null : quant;
        File = string.IsNullOrEmpty(file) ? null : file;
        Revision = string.IsNullOrEmpty(revision) ? "main" : revision;
    }

    /// <summary>Repository id, <c>org/name</c>.</summary>
    public string Repo { get; init; }

    /// <summary>Quantization tag to pick (case-insensitive), or null for <see cref="DefaultQuant"/> else the first GGUF.</summary>
    public string? Quant { get; init; }

    /// <summary>An exact file in the repository, or null to pick by <see cref="Quant"/>.</summary>
    public string? File { get; init; }

    /// <summary>Branch, tag or commit.</summary>
    public string Revision { get; init; }

    /// <summary>The cache folder name, as huggingface_hub spells it: <c>models--org--name</c>.</summary>
    public string CacheFolderName => "models--" + Repo.Replace("/", "--", StringComparison.Ordinal);

    /// <summary>The canonical text: <c>org/name[:QUANT]</c>.</summary>
    public override string ToString() => File is not null ? $"{Repo}/{File}" : Quant is null ? Repo : $"{Repo}:{Quant}";

    /// <summary>
    /// Parses a model name; false for text that is not one (a file path, say). <paramref name="endpoint"/> is also
    /// accepted as a prefix, for mirrors.
    /// </summary>
    public static bool TryParse(string? text, out ModelReference? reference, string? endpoint = null)
    {
        reference = null;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        string s = text.Trim();
        bool explicitHub = StripHubPrefix(ref s, endpoint);

        string? quant = null;
        int colon = s.LastIndexOf(':');
        if (colon > 0)
        {
            quant = s[(colon + 1)..];
            s = s[..colon];
            if (!QuantPattern().IsMatch(quant))
                return false;
        }

        if (!explicitHub && ModelCatalog.Find(s) is { } entry)
        {
            reference = entry.Reference with { Quant = quant ?? entry.Reference.Quant };
            return true;
        }

        // A link to one file: org/name/blob/REV/path/to/file.gguf or org/name/resolve/REV/...
        string[] parts = s.Split('/');
        if (explicitHub && parts.Length >= 5 && parts[2] is "blob" or "resolve" && quant is null)
        {
            string repo = parts[0] + "/" + parts[1];
            if (!IsRepoId(repo))
                return false;
            reference = new ModelReference(repo, null, string.Join('/', parts[4..]), Uri.UnescapeDataString(parts[3]));
            return true;
        }
        string revision = "main";
        if (explicitHub && parts.Length >= 3 && parts[2] == "tree")
        {
            revision = parts.Length >= 4 ? Uri.UnescapeDataString(string.Join('/', parts[3..])) : revision;
            s = parts[0] + "/" + parts[1];
        }
        if (!IsRepoId(s))
            return false;
        // Without a hub prefix, "dir/model.gguf" that does not exist is a mistyped path, not a repository.
        if (!explicitHub && s.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return false;
        reference = new ModelReference(s, quant, null, revision);
        return true;
    }

    /// <summary>Parses, or throws <see cref="ArgumentException"/> naming the accepted forms.</summary>
    public static ModelReference Parse(string text, string? endpoint = null) =>
        TryParse(text, out var r, endpoint) ? r! : throw new ArgumentException(
            $"'{text}' is not a model name: expected ORG/REPO[:QUANT], hf.co/ORG/REPO[:QUANT], a huggingface.co link or a short name ({string.Join(", ", ModelCatalog.Entries.Select(e => e.Name))})");

    internal static bool IsRepoId(string s) => RepoPattern().IsMatch(s) && !s.Contains("--", StringComparison.Ordinal) && !s.Contains("..", StringComparison.Ordinal);

    private static bool StripHubPrefix(ref string s, string? endpoint)
    {
        foreach (string prefix in Prefixes(endpoint))
        {
            if (s.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                s = s[prefix.Length..].Trim('/');
                return true;
            }
        }
        return false;
    }

    private static IEnumerable<string> Prefixes(string? endpoint)
    {
        if (endpoint is { Length: > 0 })
            yield return endpoint.TrimEnd('/') + "/";
        foreach (string scheme in new[] { "https://", "http://", "" })
        {
            yield return scheme + "huggingface.co/";
            yield return scheme + "www.huggingface.co/";
            yield return scheme + "hf.co/";
        }
        yield return "hf://";
    }

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")]
    private static partial Regex RepoPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_\-]{1,32}$")]
    private static partial Regex QuantPattern();
}
