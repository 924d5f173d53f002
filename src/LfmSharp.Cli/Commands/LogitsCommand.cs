using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using LfmSharp.Gguf;

namespace LfmSharp.Cli.Commands;

/// <summary>
/// <c>lfm logits -m FILE --ids "1 6 332 ..." [--ctx N] [--kv f32|f16] [-t N] -o out.f32</c>: runs the ids through
/// the model and writes raw float32 little-endian logits for every position (row i = logits after ids[0..i]),
/// the same layout as the llama.cpp goldens, so the two can be diffed directly.
/// </summary>
internal static class LogitsCommand
{
    // Rows are produced and written in chunks so memory stays ~chunk × vocab floats for any input length.
    private const int ChunkTokens = 64;

    /// <summary>Parses <paramref name="ids"/> (see <see cref="ParseIds"/>) and runs; a malformed list is a one-line error, exit 1.</summary>
    public static int Run(string model, string ids, int? ctx, string? kv, string output, TextWriter stdout, TextWriter stderr, int? threads = null)
    {
        int[] parsed;
        try
        {
            parsed = ParseIds(ids);
        }
        catch (FormatException ex)
        {
            stderr.WriteLine($"lfm logits: {ex.Message}");
            return 1;
        }
        return Run(model, parsed, ctx, kv, output, stdout, stderr, threads);
    }

    public static int Run(string model, int[] ids, int? ctx, string? kv, string output, TextWriter stdout, TextWriter stderr, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        bool created = false;
        try
        {
            if (ids is null || ids.Length == 0)
                throw new ArgumentException("no token ids given (--ids \"1 6 332 ...\")");
            if (string.IsNullOrWhiteSpace(output))
                throw new ArgumentException("no output file given (-o out.f32)");
            var kvType = kv is null ? KvCacheType.F16 : KvCacheTypes.Parse(kv);
            int context = ctx ?? ids.Length;
            if (context < 1)
                throw new ArgumentException($"--ctx {context} must be at least 1");
            if (ids.Length > context)
                throw new ArgumentException($"{ids.Length} ids do not fit a context of {context} tokens (--ctx)");
            if (threads is < 1)
                throw new ArgumentException($"--threads {threads} must be at least 1");

            using var lm = LanguageModel.Load(model, new ModelLoadOptions { Threads = threads });
            int vocab = lm.Config.VocabSize;
            // Checked before the output file is created, so bad input never leaves a truncated file behind.
            for (int i = 0; i < ids.Length; i++)
            {
                if ((uint)ids[i] >= (uint)vocab)
                    throw new ArgumentException($"token id {ids[i]} (item {i + 1}) is outside the model's vocabulary [0, {vocab})");
            }
            if (context > lm.Config.ContextLength)
                throw new ArgumentException($"--ctx {context} exceeds the model's context length {lm.Config.ContextLength}");

            var state = lm.CreateState(context, kvType);
            var logits = new float[Math.Min(ChunkTokens, ids.Length) * vocab]; // [chunk, vocab]
            using (var file = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                created = true;
                for (int start = 0; start < ids.Length; start += ChunkTokens)
                {
                    int n = Math.Min(ChunkTokens, ids.Length - start);
                    var rows = logits.AsSpan(0, n * vocab);
                    lm.Forward(ids.AsSpan(start, n), state, rows, LogitPositions.All);
                    WriteLittleEndian(file, rows);
                }
            }
            stdout.WriteLine($"wrote {ids.Length} x {vocab} float32 logits to {output}");
            return 0;
        }
        catch (Exception ex) when (ex is ArgumentException or IOException or InvalidDataException or NotSupportedException
            or GgufFormatException or UnauthorizedAccessException or KeyNotFoundException)
        {
            if (created)
                TryDelete(output);
            stderr.WriteLine($"lfm logits: {CliConsole.Describe(ex)}");
            return 1;
        }
    }

    /// <summary>
    /// Token ids as non-negative decimal integers separated by spaces, commas or both; surrounding brackets are
    /// accepted, so a JSON array (<c>[1, 6, 332]</c>) pasted from a golden sidecar works too.
    /// </summary>
    /// <exception cref="FormatException">Empty list or an item that is not a token id; the message names it.</exception>
    public static int[] ParseIds(string? text)
    {
        string s = (text ?? "").Trim();
        if (s.StartsWith('[') && s.EndsWith(']'))
            s = s[1..^1];
        string[] items = s.Split([' ', ',', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries);
        if (items.Length == 0)
            throw new FormatException("--ids is empty: give token ids separated by spaces or commas, e.g. --ids \"1 6 332\"");
        var ids = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            if (!int.TryParse(items[i], NumberStyles.None, CultureInfo.InvariantCulture, out ids[i]))
                throw new FormatException($"--ids item {i + 1} '{Shorten(items[i])}' is not a token id (expected non-negative integers separated by spaces or commas)");
        }
        return ids;
    }

    private static string Shorten(string s) => s.Length <= 20 ? s : s[..20] + "…";

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static void WriteLittleEndian(Stream s, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            s.Write(MemoryMarshal.AsBytes(values));
            return;
        }
        Span<byte> b = stackalloc byte[4];
        foreach (float v in values)
        {
            BinaryPrimitives.WriteSingleLittleEndian(b, v);
            s.Write(b);
        }
    }
}
