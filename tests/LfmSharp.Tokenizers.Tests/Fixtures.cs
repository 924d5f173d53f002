using System.Text.Json;
using LfmSharp.Gguf;
using LfmSharp.Testing;

namespace LfmSharp.Tokenizers.Tests;

/// <summary>One llama.cpp tokenization case from tests/TestData/fixtures/tokenizer/tokenizer-*.json.</summary>
public sealed record TokenizerCase(
    string Text,
    string TextHex,
    int[] IdsParseSpecial,
    int[] IdsNoParseSpecial,
    int[] IdsBosParseSpecial,
    int[] IdsBosNoParseSpecial,
    string[] PiecesHex,
    string DetokHex);

/// <summary>Loads the fixture models' vocabularies and tokenizer goldens once per test run.</summary>
internal static class Fixtures
{
    private static readonly Dictionary<string, Lazy<BpeTokenizer>> s_tokenizers = new()
    {
        ["tiny"] = new(() => LoadTokenizer("tiny-f32")),
        ["small"] = new(() => LoadTokenizer("small-q8_0")),
    };

    private static readonly Dictionary<string, Lazy<TokenizerCase[]>> s_cases = new()
    {
        ["tiny"] = new(() => LoadCases("tokenizer-tiny.json")),
        ["small"] = new(() => LoadCases("tokenizer-small.json")),
    };

    public static BpeTokenizer Tokenizer(string vocab) => s_tokenizers[vocab].Value;

    public static TokenizerCase[] Cases(string vocab) => s_cases[vocab].Value;

    public static GgufMetadata Metadata(string model)
    {
        using var file = GgufFile.Open(TestData.Model(model));
        return file.Metadata;
    }

    public static byte[] FromHex(string hex) => Convert.FromHexString(hex);

    private static BpeTokenizer LoadTokenizer(string model) => new(Vocabulary.FromGguf(Metadata(model)));

    private static TokenizerCase[] LoadCases(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestData.Tokenizer(file)));
        var cases = new List<TokenizerCase>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            cases.Add(new TokenizerCase(
                c.GetProperty("text").GetString()!,
                c.GetProperty("text_hex").GetString()!,
                Ints(c, "ids_parse_special"),
                Ints(c, "ids_no_parse_special"),
                Ints(c, "ids_bos_parse_special"),
                Ints(c, "ids_bos_no_parse_special"),
                c.GetProperty("pieces_hex").EnumerateArray().Select(e => e.GetString()!).ToArray(),
                c.GetProperty("detok_hex").GetString()!));
        }
        return [.. cases];
    }

    private static int[] Ints(JsonElement e, string name) => e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
}
