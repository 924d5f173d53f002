using System.Runtime.InteropServices;
using System.Text.Json;
using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Kernels.Tests.Quant;

/// <summary>
/// Oracle: ggml's own to_float (dequant/*.f32, 16 rows of one tensor per non-F32 type in each fixture file).
/// Our dequantizers must reproduce them bit for bit.
/// </summary>
public class DequantizeGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string> GoldenFiles()
    {
        var data = new TheoryData<string>();
        foreach (string f in GoldenJsonNames())
            data.Add(f);
        return data;
    }

    private static IEnumerable<string> GoldenJsonNames()
        => Directory.GetFiles(Path.Combine(TestData.Fixtures, "dequant"), "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal)!;

    [Fact]
    public void GoldenSetCoversEveryShippedQuantType()
    {
        var types = new HashSet<GgmlType>();
        foreach (string f in GoldenJsonNames())
            foreach (var e in Entries(f))
                types.Add(e.Type);
        Assert.Superset(new HashSet<GgmlType> { GgmlType.F16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q6_K }, types);
    }

    [Theory]
    [MemberData(nameof(GoldenFiles))]
    public void DequantizeIsBitIdenticalToGgml(string jsonFile)
    {
        byte[] golden = File.ReadAllBytes(TestData.Dequant(Path.ChangeExtension(jsonFile, ".f32")));
        string model = ModelFile(jsonFile);
        foreach (var e in Entries(jsonFile))
        {
            FixtureTensor t = QuantFixtures.Tensor(model, e.Tensor);
            Assert.Equal(e.Type, t.Type);
            Assert.Equal(e.RowBytes, t.RowBytes);

            ReadOnlySpan<byte> src = QuantFixtures.Data(model, t).Slice(0, e.Rows * e.RowBytes);
            var expected = MemoryMarshal.Cast<byte, float>(golden.AsSpan(e.ByteOffset, e.Rows * e.RowLength * 4));

            // Row by row, through the dispatcher, the way a matmul would see them.
            var actual = new float[e.Rows * e.RowLength];
            for (int r = 0; r < e.Rows; r++)
                Dequantize.Row(e.Type, src.Slice(r * e.RowBytes, e.RowBytes), actual.AsSpan(r * e.RowLength, e.RowLength));

            int mismatches = 0;
            for (int i = 0; i < actual.Length; i++)
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                    mismatches++;
            output.WriteLine($"{model} {e.Tensor} {e.Type}: {actual.Length} values, {mismatches} bit mismatches");
            Assert.Equal(0, mismatches);
        }
    }

    private sealed record Entry(string Tensor, GgmlType Type, int RowLength, int Rows, int RowBytes, int ByteOffset);

    private static string ModelFile(string jsonFile)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestData.Dequant(jsonFile)));
        return doc.RootElement.GetProperty("model_file").GetString()!;
    }

    private static List<Entry> Entries(string jsonFile)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestData.Dequant(jsonFile)));
        var list = new List<Entry>();
        foreach (var e in doc.RootElement.GetProperty("entries").EnumerateArray())
        {
            list.Add(new Entry(
                e.GetProperty("tensor").GetString()!,
                QuantFixtures.ParseType(e.GetProperty("type").GetString()!),
                e.GetProperty("ne")[0].GetInt32(),
                e.GetProperty("n_rows").GetInt32(),
                e.GetProperty("row_bytes_in_file").GetInt32(),
                e.GetProperty("byte_offset").GetInt32()));
        }
        return list;
    }
}
