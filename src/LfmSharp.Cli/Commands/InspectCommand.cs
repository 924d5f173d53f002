using System.Globalization;
using System.Text;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Cli.Commands;

/// <summary>
/// <c>lfm inspect FILE</c>: what a GGUF file holds, read from its header only (tensor bytes are never touched):
/// file summary, metadata, tensor table, totals by type, parameter count and, for LFM2, the layer layout.
/// </summary>
internal static class InspectCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>Prints the report to <paramref name="stdout"/> and returns 0, or prints one error line to <paramref name="stderr"/> and returns 1.</summary>
    public static int Run(string path, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        string? problem = null;
        string report = "";
        try
        {
            if (Directory.Exists(path))
                problem = "is a directory, not a GGUF file";
            else if (!File.Exists(path))
                problem = "no such file";
            else
            {
                using var f = GgufFile.Open(path);
                // Built completely before printing, so a failure never leaves half a report on stdout.
                report = Render(f);
            }
        }
        catch (GgufFormatException e)
        {
            problem = e.Message;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            problem = e.Message;
        }
        if (problem is not null)
        {
            stderr.WriteLine($"lfm inspect: {Clean(path, 200)}: {Clean(problem, 400)}");
            return 1;
        }
        stdout.Write(report);
        return 0;
    }

    internal static string Render(GgufFile f)
    {
        var o = new StringBuilder();
        var md = f.Metadata;
        long dataBytes = f.FileSize - f.DataOffset;

        o.AppendLine(Clean(Path.GetFileName(f.Path ?? "(in memory)"), 200));
        Row(o, "path", Clean(f.Path ?? "(in memory)", 400));
        Row(o, "GGUF version", f.Version.ToString(Inv));
        Row(o, "file size", $"{N(f.FileSize)} bytes ({Size(f.FileSize)})");
        Row(o, "alignment", f.Alignment.ToString(Inv) + (md.Contains("general.alignment") ? " (general.alignment)" : " (default)"));
        Row(o, "tensors", N(f.Tensors.Count));
        Row(o, "metadata keys", N(md.Count));
        Row(o, "data offset", $"{N(f.DataOffset)} (tensor data {N(Math.Max(0, dataBytes))} bytes)");
        if (TryInt(md, "general.file_type") is long ft)
            Row(o, "file type", FileTypeName(ft) is string name ? $"{ft} ({name})" : ft.ToString(Inv));
        if (md.GetStringOrDefault("general.name") is string modelName)
            Row(o, "name", Clean(modelName, 80));

        o.AppendLine();
        o.AppendLine($"Metadata ({N(md.Count)} keys)");
        int keyWidth = Math.Min(44, md.Keys.Select(k => Clean(k, 60).Length).DefaultIfEmpty(0).Max());
        foreach (var e in md)
            o.AppendLine($"  {Clean(e.Key, 60).PadRight(keyWidth)}  {TypeName(e.Value),-10}  {Value(e.Value)}");

        o.AppendLine();
        o.AppendLine($"Tensors ({N(f.Tensors.Count)})");
        if (f.Tensors.Count > 0)
        {
            var names = f.Tensors.Select(t => Clean(t.Name, 64)).ToArray();
            int nameWidth = Math.Max(4, names.Max(n => n.Length));
            int shapeWidth = Math.Max(5, f.Tensors.Max(t => t.ShapeString.Length));
            int bytesWidth = Math.Max(5, f.Tensors.Max(t => N(t.ByteSize).Length));
            o.AppendLine($"  {"name".PadRight(nameWidth)}  {"type",-7} {"shape".PadRight(shapeWidth)}  {"bytes".PadLeft(bytesWidth)}");
            for (int i = 0; i < f.Tensors.Count; i++)
            {
                var t = f.Tensors[i];
                o.AppendLine($"  {names[i].PadRight(nameWidth)}  {GgmlTypes.Name(t.Type),-7} {t.ShapeString.PadRight(shapeWidth)}  {N(t.ByteSize).PadLeft(bytesWidth)}");
            }

            o.AppendLine();
            o.AppendLine("Totals by type");
            long allBytes = f.Tensors.Sum(t => t.ByteSize);
            o.AppendLine($"  {"type",-7} {"tensors",8} {"bytes",15} {"share",7}");
            foreach (var g in f.Tensors.GroupBy(t => t.Type).OrderBy(g => (uint)g.Key))
            {
                long bytes = g.Sum(t => t.ByteSize);
                o.AppendLine($"  {GgmlTypes.Name(g.Key),-7} {N(g.Count()),8} {N(bytes),15} {Share(bytes, allBytes),7}");
            }
            o.AppendLine($"  {"total",-7} {N(f.Tensors.Count),8} {N(allBytes),15} {"100 %",7}");
        }

        long parameters = f.Tensors.Sum(t => t.ElementCount);
        o.AppendLine();
        o.AppendLine($"Parameters: {FormatCount(parameters)} ({N(parameters)} elements)");

        o.AppendLine();
        ArchitectureSummary(o, md);
        return o.ToString();
    }

    // ------------------------------------------------------------------ architecture

    private static void ArchitectureSummary(StringBuilder o, GgufMetadata md)
    {
        string? arch = md.GetStringOrDefault("general.architecture");
        if (arch is null)
        {
            o.AppendLine("Architecture: unknown (general.architecture is missing)");
            return;
        }
        if (arch != "lfm2")
        {
            o.AppendLine($"Architecture: {Clean(arch, 60)} (not LFM2: no architecture summary)");
            return;
        }

        // Keys are read under the architecture's own prefix, the way llama.cpp does (LLM_KV "%s.block_count", ...).
        string p = arch + ".";
        o.AppendLine($"Architecture: {arch}");
        long? blocks = TryInt(md, p + "block_count");
        long? hidden = TryInt(md, p + "embedding_length");
        long? heads = TryInt(md, p + "attention.head_count");
        Row(o, "blocks", Show(blocks));

        // head_count_kv is per layer for LFM2: 0 marks a short-conv layer, anything else an attention layer.
        int[]? kv = PerLayer(md, p + "attention.head_count_kv", blocks);
        if (kv is null)
        {
            Row(o, "layers", "unknown (no per-layer attention.head_count_kv)");
        }
        else
        {
            var attention = Enumerable.Range(0, kv.Length).Where(i => kv[i] > 0).ToArray();
            var conv = Enumerable.Range(0, kv.Length).Where(i => kv[i] <= 0).ToArray();
            string note = blocks is long b && b != kv.Length ? $"   (head_count_kv has {kv.Length} entries, block_count is {b})" : "";
            Row(o, "layers", string.Join(' ', kv.Select(h => h > 0 ? "A" : "c")) + "   (c = short conv, A = attention)" + note);
            Row(o, "attention at", attention.Length == 0 ? "none" : string.Join(", ", attention));
            Row(o, "conv at", conv.Length == 0 ? "none" : string.Join(", ", conv));
            var kvHeads = attention.Select(i => kv[i]).Distinct().ToArray();
            string kvText = kvHeads.Length == 0 ? "-" : string.Join("/", kvHeads);
            long? keyLength = TryInt(md, p + "attention.key_length");
            long? headDim = keyLength ?? (hidden is long h && heads is long n && n > 0 ? h / n : null);
            Row(o, "heads", $"{Show(heads)} query, {kvText} kv, head dim {Show(headDim)}" + (keyLength is null ? " (hidden / heads)" : ""));
        }
        Row(o, "hidden", Show(hidden));
        Row(o, "ffn", Show(TryInt(md, p + "feed_forward_length")));
        Row(o, "context length", Show(TryInt(md, p + "context_length")));
        long? vocab = TryInt(md, p + "vocab_size");
        if (vocab is null && md.TryGetValue("tokenizer.ggml.tokens", out var tokens) && tokens.IsArray)
            vocab = tokens.Length;
        Row(o, "vocab", Show(vocab));
        Row(o, "rope base", TryFloat(md, p + "rope.freq_base") is double rope ? rope.ToString("0.###", Inv) : "?");
        Row(o, "rms eps", TryFloat(md, p + "attention.layer_norm_rms_epsilon") is double eps ? ((float)eps).ToString("G6", Inv) : "?");
        Row(o, "conv l_cache", Show(TryInt(md, p + "shortconv.l_cache")));
    }

    private static int[]? PerLayer(GgufMetadata md, string key, long? blocks)
    {
        if (!md.TryGetValue(key, out var v))
            return null;
        if (v.IsArray)
        {
            try
            {
                return md.GetInt32Array(key);
            }
            catch (InvalidDataException)
            {
                return null;
            }
        }
        // A single value means every layer is the same (attention when non-zero).
        return TryInt(md, key) is long x && x is >= 0 and <= int.MaxValue && blocks is long b && b is > 0 and <= 4096
            ? Enumerable.Repeat((int)x, (int)b).ToArray()
            : null;
    }

    private static long? TryInt(GgufMetadata md, string key)
    {
        if (!md.TryGetValue(key, out var v) || !v.IsInteger)
            return null;
        try
        {
            return md.GetInt64(key);
        }
        catch (InvalidDataException)
        {
            return null; // a u64 beyond long.MaxValue
        }
    }

    private static double? TryFloat(GgufMetadata md, string key) =>
        md.TryGetValue(key, out var v) && !v.IsArray ? v.Value switch { float f => f, double d => d, _ => null } : null;

    private static string Show(long? x) => x is long v ? N(v) : "?";

    // ------------------------------------------------------------------ formatting

    /// <summary>Element counts the way model cards write them: 345.7 K, 4.3 M, 1.17 B.</summary>
    internal static string FormatCount(long n) => n switch
    {
        >= 1_000_000_000 => (n / 1e9).ToString("0.00", Inv) + " B",
        >= 1_000_000 => (n / 1e6).ToString("0.0", Inv) + " M",
        >= 1_000 => (n / 1e3).ToString("0.0", Inv) + " K",
        _ => n.ToString(Inv),
    };

    private static string N(long x) => x.ToString("N0", Inv);

    private static string Size(long bytes) => bytes switch
    {
        >= 1L << 30 => (bytes / (double)(1L << 30)).ToString("0.00", Inv) + " GiB",
        >= 1L << 20 => (bytes / (double)(1L << 20)).ToString("0.0", Inv) + " MiB",
        >= 1L << 10 => (bytes / (double)(1L << 10)).ToString("0.0", Inv) + " KiB",
        _ => bytes.ToString(Inv) + " B",
    };

    private static string Share(long part, long whole) => whole == 0 ? "-" : (100.0 * part / whole).ToString("0.0", Inv) + " %";

    private static void Row(StringBuilder o, string label, string value) => o.AppendLine($"  {label,-15} {value}");

    /// <summary>llama_ftype names for general.file_type.</summary>
    private static string? FileTypeName(long ft) => ft switch
    {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        19 => "MOSTLY_IQ2_XXS",
        20 => "MOSTLY_IQ2_XS",
        21 => "MOSTLY_Q2_K_S",
        22 => "MOSTLY_IQ3_XS",
        23 => "MOSTLY_IQ3_XXS",
        24 => "MOSTLY_IQ1_S",
        25 => "MOSTLY_IQ4_NL",
        26 => "MOSTLY_IQ3_S",
        27 => "MOSTLY_IQ3_M",
        28 => "MOSTLY_IQ2_S",
        29 => "MOSTLY_IQ2_M",
        30 => "MOSTLY_IQ4_XS",
        31 => "MOSTLY_IQ1_M",
        32 => "MOSTLY_BF16",
        36 => "MOSTLY_TQ1_0",
        37 => "MOSTLY_TQ2_0",
        _ => null,
    };

    private static string TypeName(GgufValue v) => v.IsArray ? $"{Short(v.ElementType)}[{N(v.Length)}]" : Short(v.Type);

    private static string Short(GgufValueType t) => t switch
    {
        GgufValueType.UInt8 => "u8",
        GgufValueType.Int8 => "i8",
        GgufValueType.UInt16 => "u16",
        GgufValueType.Int16 => "i16",
        GgufValueType.UInt32 => "u32",
        GgufValueType.Int32 => "i32",
        GgufValueType.Float32 => "f32",
        GgufValueType.Bool => "bool",
        GgufValueType.String => "str",
        GgufValueType.UInt64 => "u64",
        GgufValueType.Int64 => "i64",
        GgufValueType.Float64 => "f64",
        _ => "arr",
    };

    /// <summary>One line per value: strings cut at 72 characters, arrays cut after about 72 characters of items, with the full count.</summary>
    private static string Value(GgufValue v)
    {
        if (!v.IsArray)
            return Scalar(v.Value, 72);
        var items = (Array)v.Value;
        var sb = new StringBuilder("[");
        int shown = 0;
        for (; shown < items.Length; shown++)
        {
            object item = items.GetValue(shown)!;
            string text = item is GgufValue inner ? $"{TypeName(inner)}" : Scalar(item, 24);
            if (shown > 0 && sb.Length + text.Length > 72)
                break;
            if (shown > 0)
                sb.Append(", ");
            sb.Append(text);
        }
        if (shown < items.Length)
            sb.Append(", …] (").Append(N(items.Length)).Append(" items)");
        else
            sb.Append(']');
        return sb.ToString();
    }

    private static string Scalar(object value, int maxChars) => value switch
    {
        string s => Quote(s, maxChars),
        float x => x.ToString("R", Inv),
        double x => x.ToString("R", Inv),
        bool b => b ? "true" : "false",
        IFormattable x => x.ToString(null, Inv),
        _ => value.ToString() ?? "",
    };

    private static string Quote(string s, int maxChars)
    {
        // Backslashes and quotes are escaped first so that Clean's \n and \uXXXX escapes stay unambiguous.
        string cut = s.Length > maxChars ? s[..maxChars] : s;
        string shown = Clean(cut.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal), int.MaxValue);
        return s.Length > maxChars ? $"\"{shown}…\" ({N(s.Length)} chars)" : $"\"{shown}\"";
    }

    /// <summary>
    /// Text from the file made safe for a terminal: control characters (newlines, escape sequences) are shown
    /// escaped, and overly long text is cut, so every report line is one line and nothing in a file can drive the
    /// terminal.
    /// </summary>
    internal static string Clean(string s, int maxChars)
    {
        var sb = new StringBuilder(Math.Min(s.Length, maxChars) + 2);
        foreach (char c in s.Length > maxChars ? s[..maxChars] : s)
        {
            if (char.IsControl(c) || c is '\u2028' or '\u2029')
                sb.Append(c switch { '\n' => @"\n", '\r' => @"\r", '\t' => @"\t", _ => $"\\u{(int)c:X4}" });
            else
                sb.Append(c);
        }
        if (s.Length > maxChars)
            sb.Append('…');
        return sb.ToString();
    }
}
