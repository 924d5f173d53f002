namespace LfmSharp.Testing;

/// <summary>Locates the repository's test data (copied from the llama.cpp fixture set, see tests/TestData/README.md).</summary>
internal static class TestData
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>Repository root (the folder holding LfmSharp.slnx).</summary>
    public static string RepoRoot => s_root.Value;

    public static string Fixtures => Path.Combine(RepoRoot, "tests", "TestData", "fixtures");

    public static string Model(string name) => Path.Combine(Fixtures, "models", name.EndsWith(".gguf", StringComparison.Ordinal) ? name : $"lfm2-{name}.gguf");

    public static string Golden(string file) => Path.Combine(Fixtures, "golden", file);

    public static string Dequant(string file) => Path.Combine(Fixtures, "dequant", file);

    public static string Tokenizer(string file) => Path.Combine(Fixtures, "tokenizer", file);

    /// <summary>A fresh scratch folder under the system temp dir, removed by the OS eventually.</summary>
    public static string NewTempDir()
    {
        string dir = Path.Combine(Path.GetTempPath(), "lfmsharp-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindRoot()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null)
        {
            if (File.Exists(Path.Combine(dir, "LfmSharp.slnx")))
                return dir;
            dir = Path.GetDirectoryName(dir);
        }
        throw new InvalidOperationException("Cannot find the repository root (LfmSharp.slnx) above " + AppContext.BaseDirectory);
    }
}
