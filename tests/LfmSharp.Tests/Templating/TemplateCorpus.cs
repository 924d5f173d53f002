using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Templating;

/// <summary>
/// The chat-template corpus: goldens rendered by Python Jinja2 (scripts/jinja-goldens.py) in
/// tests/TestData/templates/goldens, our own templates in tests/TestData/templates/own, llama.cpp's templates
/// extracted by scripts/template-corpus.sh into .cache/templates/llama.cpp (not committed).
/// </summary>
internal static class TemplateCorpus
{
    public static string DataDir => Path.Combine(TestData.RepoRoot, "tests", "TestData", "templates");

    private static readonly Lazy<JsonDocument> s_conversations = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "conversations.json"))));

    public static JsonElement Spec => s_conversations.Value.RootElement;

    public static JsonElement Conversation(string name)
    {
        foreach (var c in Spec.GetProperty("conversations").EnumerateArray())
        {
            if (c.GetProperty("name").GetString() == name)
                return c;
        }
        throw new InvalidDataException("no conversation " + name);
    }

    public static IEnumerable<string> GoldenNames() =>
        Directory.EnumerateFiles(Path.Combine(DataDir, "goldens"), "*.json").Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal);

    public static JsonElement Golden(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, "goldens", name + ".json"))).RootElement;

    /// <summary>The template source; fails with a pointer to the script when the corpus was not extracted.</summary>
    public static string Source(string name)
    {
        string own = Path.Combine(DataDir, "own", name + ".jinja");
        if (File.Exists(own))
            return File.ReadAllText(own);
        string cached = Path.Combine(TestData.RepoRoot, ".cache", "templates", "llama.cpp", name + ".jinja");
        if (!File.Exists(cached))
            throw new FileNotFoundException($"{cached} is missing: run scripts/template-corpus.sh (scripts/test.sh does)");
        return File.ReadAllText(cached);
    }

    public static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static DateTime Date => DateTime.Parse(Spec.GetProperty("date").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
}
