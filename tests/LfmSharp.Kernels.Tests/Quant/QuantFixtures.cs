using System.Text.Json;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>One tensor of a fixture GGUF as listed in models/tensor-types.json.</summary>
internal sealed record FixtureTensor(string Name, GgmlType Type, long[] Ne, long Offset, long ByteSize)
{
    public int RowLength => checked((int)Ne[0]);
    public int RowCount => checked((int)(Ne.Length > 1 ? Ne.Skip(1).Aggregate(1L, (a, b) => a * b) : 1));
    public int RowBytes => checked((int)GgmlTypes.RowBytes(Type, RowLength));
}

/// <summary>
/// Reads tensor bytes out of the fixture GGUFs without the GGUF reader: models/tensor-types.json lists each tensor's
/// type, shape and data offset. Those offsets are ABSOLUTE file offsets (not relative to the data section): the first
/// tensor of lfm2-tiny-f32.gguf sits at 15776 and the last one ends exactly at the file size, which
/// <see cref="Tensors"/> checks for every file.
/// </summary>
internal static class QuantFixtures
{
    private static readonly Lazy<Dictionary<string, List<FixtureTensor>>> s_tensorTypes = new(LoadTensorTypes);
    private static readonly Dictionary<string, byte[]> s_files = new();

    public static IReadOnlyList<FixtureTensor> Tensors(string modelFile) => s_tensorTypes.Value[modelFile];

    public static FixtureTensor Tensor(string modelFile, string name) => Tensors(modelFile).Single(t => t.Name == name);

    public static byte[] FileBytes(string modelFile)
    {
        lock (s_files)
        {
            if (!s_files.TryGetValue(modelFile, out byte[]? bytes))
                s_files[modelFile] = bytes = File.ReadAllBytes(TestData.Model(modelFile));
            return bytes;
        }
    }

    public static ReadOnlySpan<byte> Data(string modelFile, FixtureTensor t)
        => FileBytes(modelFile).AsSpan(checked((int)t.Offset), checked((int)t.ByteSize));

    public static float[] F32Data(string modelFile, FixtureTensor t)
    {
        Assert.Equal(GgmlType.F32, t.Type);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data(modelFile, t)).ToArray();
    }

    /// <summary>"Q4_K", "q4_K", "f16", ... → <see cref="GgmlType"/> (ggml prints some names in lower case).</summary>
    public static GgmlType ParseType(string name) => Enum.Parse<GgmlType>(name.ToUpperInvariant());

    private static Dictionary<string, List<FixtureTensor>> LoadTensorTypes()
    {
        string path = Path.Combine(TestData.Fixtures, "models", "tensor-types.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var result = new Dictionary<string, List<FixtureTensor>>();
        foreach (var file in doc.RootElement.EnumerateObject())
        {
            var list = new List<FixtureTensor>();
            foreach (var t in file.Value.GetProperty("tensors").EnumerateArray())
            {
                list.Add(new FixtureTensor(
                    t.GetProperty("name").GetString()!,
                    ParseType(t.GetProperty("type").GetString()!),
                    t.GetProperty("ne").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                    t.GetProperty("offset").GetInt64(),
                    t.GetProperty("nbytes").GetInt64()));
            }
            Assert.All(list, t => Assert.Equal((long)t.RowBytes * t.RowCount, t.ByteSize));
            long fileLength = new FileInfo(TestData.Model(file.Name)).Length;
            // Absolute offsets: the tensors must lie inside the file and the last must end at EOF.
            Assert.All(list, t => Assert.True(t.Offset > 0 && t.Offset + t.ByteSize <= fileLength, $"{file.Name}:{t.Name} outside the file"));
            Assert.Equal(fileLength, list.Max(t => t.Offset + t.ByteSize));
            result[file.Name] = list;
        }
        return result;
    }
}
