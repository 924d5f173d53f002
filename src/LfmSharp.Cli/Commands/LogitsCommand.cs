using LfmSharp.Gguf;

namespace LfmSharp.Cli.Commands;

/// <summary>
/// <c>lfm logits -m FILE --ids "1 6 332 ..." [--ctx N] [--kv f32|f16] -o out.f32</c>: runs the ids through the
/// model and writes raw float32 little-endian logits for every position (row i = logits after ids[0..i]),
/// the same layout as the llama.cpp goldens, so the two can be diffed directly.
/// </summary>
public static class LogitsCommand
{
    // Rows are produced and written in chunks so memory stays ~chunk × vocab floats for any input length.
    private const int ChunkTokens = 64;

    public static int Run(string model, int[] ids, int? ctx, string kv, string output, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            if (ids is null || ids.Length == 0)
                throw new ArgumentException("no token ids given (--ids \"1 6 332 ...\")");
            var kvType = kv?.ToLowerInvariant() switch
            {
                "f32" => KvCacheType.F32,
                "f16" or null => KvCacheType.F16,
                _ => throw new ArgumentException($"unknown --kv '{kv}' (use f32 or f16)"),
            };
            int context = ctx ?? ids.Length;
            if (context < 1)
                throw new ArgumentException($"--ctx {context} must be at least 1");
            if (ids.Length > context)
                throw new ArgumentException($"{ids.Length} ids do not fit a context of {context} tokens");

            using var lm = LanguageModel.Load(model);
            int vocab = lm.Config.VocabSize;
            var state = lm.CreateState(context, kvType);
            var logits = new float[ChunkTokens * vocab];
            using (var file = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None))
            {
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
            or GgufFormatException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"lfm logits: {ex.Message}");
            return 1;
        }
    }

    private static void WriteLittleEndian(Stream s, ReadOnlySpan<float> values)
    {
        if (BitConverter.IsLittleEndian)
        {
            s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values));
            return;
        }
        Span<byte> b = stackalloc byte[4];
        foreach (float v in values)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(b, v);
            s.Write(b);
        }
    }
}
