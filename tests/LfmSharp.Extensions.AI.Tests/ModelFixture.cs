using LfmSharp.Testing;

namespace LfmSharp.Extensions.AI.Tests;

/// <summary>
/// One tiny random-weight model (tests/TestData fixtures, LFM2 v1 template) shared by every test in the "model"
/// collection; <see cref="Steer"/> makes it write exact token sequences.
/// </summary>
public sealed class ModelFixture : IDisposable
{
    public const string ModelName = "tiny-f32";

    public ModelFixture() => Model = LanguageModel.Load(ModelPath, new ModelLoadOptions { Threads = 1 });

    public LanguageModel Model { get; }

    public string ModelPath => TestData.Model(ModelName);

    public void Dispose() => Model.Dispose();
}

[CollectionDefinition("model")]
public sealed class ModelCollection : ICollectionFixture<ModelFixture>
{
}
