using System.Reflection;
using LfmSharp.Testing;

namespace LfmSharp.Api.Tests;

/// <summary>
/// The public API of each shipped library matches api/&lt;Assembly&gt;.txt. A change to the surface fails here until
/// the baseline is regenerated with scripts/update-api-baseline.sh, so it shows up in review as a diff of that file.
/// </summary>
public class PublicApiTests
{
    public static TheoryData<string> ShippedAssemblies => new()
    {
        "LfmSharp", "LfmSharp.Kernels", "LfmSharp.Gguf", "LfmSharp.Tokenizers", "LfmSharp.Extensions.AI", "LfmSharp.Server",
    };

    [Theory]
    [MemberData(nameof(ShippedAssemblies))]
    public void PublicSurfaceMatchesBaseline(string assemblyName)
    {
        string actual = PublicApi.Describe(Assembly.Load(assemblyName));
        string path = Path.Combine(TestData.RepoRoot, "api", assemblyName + ".txt");
        if (Environment.GetEnvironmentVariable("LFMSHARP_UPDATE_API") == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, actual);
            return;
        }
        string expected = File.Exists(path) ? File.ReadAllText(path).ReplaceLineEndings("\n") : "";
        if (expected == actual)
            return;
        var want = expected.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var have = actual.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var added = have.Where(l => !want.Contains(l)).Take(20).Select(l => "+ " + l);
        var removed = want.Where(l => !have.Contains(l)).Take(20).Select(l => "- " + l);
        Assert.Fail($"The public API of {assemblyName} differs from api/{assemblyName}.txt. If the change is intended, run " +
                    $"scripts/update-api-baseline.sh and commit the diff.\n{string.Join('\n', removed.Concat(added))}");
    }

    [Fact]
    public void DescriberSeesWhatIsPublicAndNotWhatIsInternal()
    {
        string api = PublicApi.Describe(typeof(LanguageModel).Assembly);
        Assert.Contains("LfmSharp.LanguageModel: sealed class : System.IDisposable", api, StringComparison.Ordinal);
        Assert.Contains("LfmSharp.LanguageModel.static LfmSharp.LanguageModel Load(", api, StringComparison.Ordinal);
        Assert.DoesNotContain("Lfm2State", api, StringComparison.Ordinal); // internal: the model's per-sequence state
        string kernels = PublicApi.Describe(typeof(LfmSharp.Kernels.Quant.GgmlType).Assembly);
        Assert.Contains("LfmSharp.Kernels.Quant.GgmlType.Q4_0 = 2", kernels, StringComparison.Ordinal);
        Assert.DoesNotContain("WeightMatrix", kernels, StringComparison.Ordinal);
    }
}
