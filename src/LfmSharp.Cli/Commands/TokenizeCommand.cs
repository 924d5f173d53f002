using System.Text;
using System.Text.Json;
using LfmSharp.Gguf;
using LfmSharp.Tokenizers;

namespace LfmSharp.Cli.Commands;

/// <summary><c>lfm tokenize -m FILE [--no-special] [--bos] [--json] TEXT</c>: ids and pieces of a text.</summary>
internal static class TokenizeCommand
{
    public static int Run(string model, string text, bool parseSpecial, bool addBos, bool json, TextWriter stdout, TextWriter stderr)
    {
        BpeTokenizer tokenizer;
        try
        {
            // Only the vocabulary is needed: the weights are never touched (they stay unmapped pages).
            using var file = GgufFile.Open(model);
            tokenizer = new BpeTokenizer(Vocabulary.FromGguf(file.Metadata));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or GgufFormatException or InvalidDataException or KeyNotFoundException or NotSupportedException)
        {
            stderr.WriteLine($"lfm tokenize: {CliConsole.Describe(e)}");
            return 1;
        }

        int[] ids = tokenizer.Encode(text, addBos, parseSpecial);
        if (json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteStartArray("ids");
                foreach (int id in ids)
                    w.WriteNumberValue(id);
                w.WriteEndArray();
                w.WriteStartArray("pieces");
                foreach (int id in ids)
                    w.WriteStringValue(Convert.ToHexStringLower(tokenizer.TokenBytes(id)));
                w.WriteEndArray();
                w.WriteEndObject();
            }
            stdout.WriteLine(Encoding.UTF8.GetString(ms.ToArray()));
            return 0;
        }
        stdout.WriteLine($"{ids.Length} tokens");
        foreach (int id in ids)
        {
            var bytes = tokenizer.TokenBytes(id);
            string piece = Encoding.UTF8.GetString(bytes);
            bool clean = !piece.Contains('\uFFFD', StringComparison.Ordinal) && !piece.Any(char.IsControl);
            string shown = clean ? piece : "<0x" + Convert.ToHexString(bytes) + ">";
            stdout.WriteLine($"{id,6}  {Escape(shown)}");
        }
        return 0;
    }

    private static string Escape(string s) => "'" + s.Replace("\n", "\\n", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal) + "'";
}
