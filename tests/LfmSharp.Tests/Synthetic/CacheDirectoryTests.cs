using LfmSharp.Synthetic;
using LfmSharp.Testing;

namespace LfmSharp.Tests.Synthetic;

[CollectionDefinition(nameof(EnvironmentVariableCollection), DisableParallelization = true)]
public sealed class EnvironmentVariableCollection;

/// <summary>Changes LFMSHARP_CACHE for the process, so it runs alone.</summary>
[Collection(nameof(EnvironmentVariableCollection))]
public class CacheDirectoryTests
{
    [Fact]
    public void CacheDirectory_ComesFromLfmsharpCacheOrTheHomeCache()
    {
        string? saved = Environment.GetEnvironmentVariable("LFMSHARP_CACHE");
        try
        {
            string dir = TestData.NewTempDir();
            Environment.SetEnvironmentVariable("LFMSHARP_CACHE", dir);
            Assert.Equal(dir, SyntheticModel.CacheDirectory);
            string path = SyntheticModel.GetOrCreateCached("tiny", SyntheticFileType.Q8_0, seed: 42);
            Assert.Equal(dir, Path.GetDirectoryName(path));
            Assert.StartsWith("lfm2-tiny-q8_0-s42-g", Path.GetFileName(path));

            Environment.SetEnvironmentVariable("LFMSHARP_CACHE", null);
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            Assert.Equal(Path.Combine(home, ".cache", "lfmsharp"), SyntheticModel.CacheDirectory);
        }
        finally
        {
            Environment.SetEnvironmentVariable("LFMSHARP_CACHE", saved);
        }
    }
}
