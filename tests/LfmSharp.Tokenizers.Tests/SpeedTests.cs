using System.Diagnostics;
using System.Text;
using LfmSharp.Gguf;
using Xunit.Abstractions;

namespace LfmSharp.Tokenizers.Tests;

/// <summary>Prints timings for the report; asserts only correctness, never speed.</summary>
public class SpeedTests(ITestOutputHelper output)
{
    [Fact]
    public void Encode_one_megabyte_with_the_full_size_synthetic_vocabulary()
    {
        var vocab = SyntheticVocabulary.Create(65536, int.MaxValue);
        var tok = new BpeTokenizer(vocab);

        // ~1 MB of mixed text: English prose, code, numbers, CJK, emoji, chat markup
        string[] parts =
        [
            SyntheticVocabulary.Corpus,
            "```csharp\nfor (int i = 0; i < n; i++) { sum += a[i] * b[i]; }\n```\n",
            "Numbers 3.14159, 2,718,281 and 0x1F; dates 2024-05-17.\n",
            "日本語のテキストです。我想在apple工作1314151天～ Привет, мир! مرحبا بالعالم\n",
            "emoji: 🦙🚀 😶\u200d🌫️ ✅ 👨\u200d👩\u200d👧\n",
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nfour\n</think>\n",
        ];
        var sb = new StringBuilder();
        for (int i = 0; Encoding.UTF8.GetByteCount(sb.ToString()) < 1_000_000; i++)
        {
            for (int k = 0; k < 50; k++)
                sb.Append(parts[(i + k) % parts.Length]);
        }
        string text = sb.ToString();
        int bytes = Encoding.UTF8.GetByteCount(text);

        int[] warm = tok.Encode(text.AsSpan(0, 20_000));
        Assert.NotEmpty(warm);

        var sw = Stopwatch.StartNew();
        int[] ids = tok.Encode(text);
        sw.Stop();
        output.WriteLine($"encode: {bytes:N0} bytes -> {ids.Length:N0} tokens in {sw.Elapsed.TotalMilliseconds:F1} ms ({bytes / sw.Elapsed.TotalSeconds / 1e6:F1} MB/s), vocab {vocab.Count:N0}, merges {vocab.Merges.Count:N0}");

        sw.Restart();
        string back = tok.Decode(ids);
        sw.Stop();
        output.WriteLine($"decode: {ids.Length:N0} tokens in {sw.Elapsed.TotalMilliseconds:F1} ms");
        Assert.Equal(text, back);
    }

    [Fact]
    public void Load_a_65536_token_vocabulary_from_gguf()
    {
        // A 65,536-token vocabulary with as many merges as the real LFM2 file has (~63k) is what loading must handle;
        // the synthetic corpus only gives 1,029 merges, so add 62,000 artificial ones over two-byte strings.
        var baseVocab = SyntheticVocabulary.Create(65536, int.MaxValue);
        int realCount = 16 + 256 + baseVocab.Merges.Count;
        var tokens = baseVocab.Tokens.Take(realCount).ToList();
        var types = baseVocab.TokenTypes.Take(realCount).ToList();
        var merges = baseVocab.Merges.ToList();
        var seen = new HashSet<string>(tokens, StringComparer.Ordinal);
        void AddMerge(string left, string right)
        {
            if (tokens.Count < 65536 && seen.Add(left + right))
            {
                tokens.Add(left + right);
                types.Add(TokenType.Normal);
                merges.Add(left + " " + right);
            }
        }
        // two-char tokens over printable ASCII, then three-char tokens built on them, until the vocabulary is full
        for (char a = '!'; a <= '~'; a++)
        {
            for (char b = '!'; b <= '~'; b++)
                AddMerge(a.ToString(), b.ToString());
        }
        for (char a = '!'; a <= '~' && tokens.Count < 65536; a++)
        {
            for (char b = '!'; b <= '~'; b++)
            {
                for (char c = '!'; c <= '~'; c++)
                    AddMerge($"{a}{b}", c.ToString());
            }
        }

        var writer = new GgufWriter();
        new Vocabulary(tokens, types, merges, 1, 7, 0, addBos: true).WriteTo(writer);
        using var ms = new MemoryStream();
        writer.WriteTo(ms);
        using var file = GgufFile.Load(ms.ToArray());

        // warm up the JIT once, then time a second load
        _ = new BpeTokenizer(Vocabulary.FromGguf(file.Metadata));
        var sw = Stopwatch.StartNew();
        var vocab = Vocabulary.FromGguf(file.Metadata);
        double vocabMs = sw.Elapsed.TotalMilliseconds;
        var tok = new BpeTokenizer(vocab);
        double totalMs = sw.Elapsed.TotalMilliseconds;
        output.WriteLine($"load: {vocab.Count:N0} tokens, {vocab.Merges.Count:N0} merges: Vocabulary.FromGguf {vocabMs:F1} ms, + BpeTokenizer {totalMs - vocabMs:F1} ms");

        Assert.Equal(65536, vocab.Count);
        Assert.True(vocab.Merges.Count > 63_000);
        Assert.Equal("the quick", tok.Decode(tok.Encode("the quick")));
    }
}
