using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using LfmSharp.Gguf;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Synthetic;

/// <summary>What to write: shape, file type, seed and the optional overrides.</summary>
internal sealed record SyntheticModelOptions
{
    public ModelShape Shape { get; init; } = ModelShape.Tiny;

    public SyntheticFileType FileType { get; init; } = SyntheticFileType.F32;

    /// <summary>First entropy word of every tensor's stream (the fixtures use 42).</summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>Null: the shape's default (LFM2.5 style for <c>lfm2.5-*</c>, the fixtures' LFM2 style otherwise).</summary>
    public ChatTemplateStyle? ChatTemplate { get; init; }

    /// <summary>Null: <see cref="VocabularySpec.ForShape"/>.</summary>
    public VocabularySpec? Vocabulary { get; init; }

    /// <summary>g in z · g / sqrt(fan_in) for projections and conv kernels (HOW-MADE calibrated 0.5).</summary>
    public float MatrixGain { get; init; } = 0.5f;

    /// <summary>e in z · e / sqrt(n_embd) for the embedding.</summary>
    public float EmbeddingGain { get; init; } = 1.0f;

    /// <summary>Threads used to quantize (0: all cores).</summary>
    public int MaxDegreeOfParallelism { get; init; }

    /// <summary>Per-tensor type overrides (llama-quantize's <c>--tensor-type</c>; first match wins).</summary>
    public IReadOnlyList<TensorTypeOverride> TensorTypes { get; init; } = [];

    /// <summary>Write a separate <c>output.weight</c> head instead of tying it to <c>token_embd</c>.</summary>
    public bool UntiedOutput { get; init; }
}

/// <summary>Summary of a written model.</summary>
internal sealed record SyntheticModelInfo(string Path, long FileSize, long ParameterCount, TimeSpan Elapsed, ModelShape Shape, SyntheticFileType FileType, ulong Seed);

/// <summary>
/// Writes LFM2 GGUF files with random weights of any family shape and file type (HOW-MADE §1 describes the
/// generator it reproduces). With the <c>tiny</c> shape and seed 42 the F32 and F16 files carry exactly the tensor
/// data of the fixtures <c>lfm2-tiny-f32.gguf</c> / <c>lfm2-tiny-f16.gguf</c>. Tensors are generated and encoded
/// in chunks while the file is written, so a 1.2B model never sits in memory.
/// </summary>
internal static class SyntheticModel
{
    /// <summary>Bumped whenever the bytes written for the same options change; part of the cache file names.</summary>
    public const int GeneratorVersion = 1;

    // Floats generated per chunk (4 MB): big enough to amortize the hand-off, small enough to stay in cache-ish.
    private const int ChunkElements = 1 << 20;

    /// <summary>The tensors (names, shapes, types, scaling) a model of <paramref name="shape"/> gets in <paramref name="fileType"/>.</summary>
    public static IReadOnlyList<SyntheticTensor> PlanTensors(ModelShape shape, SyntheticFileType fileType)
    {
        ArgumentNullException.ThrowIfNull(shape);
        shape.Validate();
        return TensorPlanner.Plan(shape, fileType);
    }

    /// <summary>The tensors <see cref="Write"/> would write for <paramref name="options"/> (overrides and untied head included).</summary>
    public static IReadOnlyList<SyntheticTensor> PlanTensors(SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Shape.Validate();
        return TensorPlanner.Plan(options.Shape, options.FileType, options.TensorTypes ?? [], options.UntiedOutput);
    }

    /// <summary>The f32 values (before any rounding or quantization) of one tensor, row after row.</summary>
    public static float[] GenerateValues(SyntheticTensor tensor, SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ArgumentNullException.ThrowIfNull(options);
        var values = new float[checked((int)tensor.ElementCount)];
        new TensorValues(tensor, options.Shape, options.Seed, options.MatrixGain, options.EmbeddingGain).Fill(values);
        return values;
    }

    /// <summary>
    /// A <see cref="GgufWriter"/> holding the model's metadata and tensor callbacks; nothing is generated until it
    /// is written. <paramref name="progress"/> receives the fraction of weights produced.
    /// </summary>
    public static GgufWriter CreateWriter(SyntheticModelOptions options, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ModelShape shape = options.Shape ?? throw new ArgumentException("options.Shape is null", nameof(options));
        shape.Validate();
        if (!float.IsFinite(options.MatrixGain) || !float.IsFinite(options.EmbeddingGain))
            throw new ArgumentException("gains must be finite numbers", nameof(options));
        var tensors = TensorPlanner.Plan(shape, options.FileType, options.TensorTypes ?? [], options.UntiedOutput);
        foreach (var t in tensors)
            if (!TensorEncoder.IsSupported(t.Type))
                throw new NotSupportedException($"no quantizer for {GgmlTypes.Name(t.Type)} in this build (tensor {t.Name})");
        VocabularySpec vocab = options.Vocabulary ?? VocabularySpec.ForShape(shape);
        if (vocab.Count != shape.VocabSize)
            throw new ArgumentException($"the vocabulary has {vocab.Count} tokens but the shape says {shape.VocabSize}", nameof(options));

        var w = new GgufWriter();
        w.AddString("general.architecture", "lfm2");
        w.AddString("general.name", shape.GeneralName);
        w.AddUInt32("general.file_type", options.FileType.LlamaFileType());
        if (options.FileType.IsQuantized())
            w.AddUInt32("general.quantization_version", 2);
        w.AddUInt32("lfm2.block_count", (uint)shape.BlockCount);
        w.AddUInt32("lfm2.context_length", (uint)shape.ContextLength);
        w.AddUInt32("lfm2.embedding_length", (uint)shape.EmbeddingLength);
        w.AddUInt32("lfm2.feed_forward_length", (uint)shape.FeedForwardLength);
        w.AddUInt32("lfm2.attention.head_count", (uint)shape.HeadCount);
        var kv = new int[shape.BlockCount];
        for (int i = 0; i < kv.Length; i++)
            kv[i] = shape.IsAttentionLayer(i) ? shape.KvHeadCount : 0; // 0 marks a conv layer
        w.AddArray("lfm2.attention.head_count_kv", kv);
        w.AddFloat32("lfm2.rope.freq_base", shape.RopeFreqBase);
        w.AddFloat32("lfm2.attention.layer_norm_rms_epsilon", shape.NormEpsilon);
        w.AddUInt32("lfm2.vocab_size", (uint)shape.VocabSize);
        w.AddUInt32("lfm2.shortconv.l_cache", (uint)shape.ConvCache);
        w.AddString("tokenizer.ggml.model", "gpt2");
        w.AddString("tokenizer.ggml.pre", "lfm2");
        w.AddArray("tokenizer.ggml.tokens", vocab.Tokens);
        w.AddArray("tokenizer.ggml.token_type", vocab.TokenTypes);
        w.AddArray("tokenizer.ggml.merges", vocab.Merges);
        w.AddUInt32("tokenizer.ggml.bos_token_id", vocab.BosId);
        w.AddUInt32("tokenizer.ggml.eos_token_id", vocab.EosId);
        w.AddUInt32("tokenizer.ggml.padding_token_id", vocab.PadId);
        w.AddBool("tokenizer.ggml.add_bos_token", vocab.AddBos);
        w.AddBool("tokenizer.ggml.add_eos_token", vocab.AddEos);
        w.AddString("tokenizer.chat_template", ChatTemplates.For(options.ChatTemplate ?? shape.DefaultChatTemplate));

        var job = new WriteJob(options, tensors, progress, cancellationToken);
        foreach (var t in tensors)
            w.AddTensor(t.Name, t.Type, t.Dimensions, s => job.WriteTensor(s, t));
        return w;
    }

    /// <summary>Writes the model to <paramref name="path"/> (through a temporary file, renamed when complete).</summary>
    public static SyntheticModelInfo Write(string path, SyntheticModelOptions options, IProgress<double>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        var sw = Stopwatch.StartNew();
        GgufWriter w = CreateWriter(options, progress, cancellationToken);
        string full = Path.GetFullPath(path);
        string? dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        w.WriteTo(full);
        progress?.Report(1.0);
        return new SyntheticModelInfo(full, new FileInfo(full).Length, options.Shape.ParameterCount, sw.Elapsed, options.Shape, options.FileType, options.Seed);
    }

    // ---- cache --------------------------------------------------------------------------------------------

    /// <summary>Where <see cref="GetOrCreateCached(SyntheticModelOptions, IProgress{double}?)"/> keeps files: <c>$LFMSHARP_CACHE</c>, else <c>~/.cache/lfmsharp</c>.</summary>
    public static string CacheDirectory
    {
        get
        {
            string? env = Environment.GetEnvironmentVariable("LFMSHARP_CACHE");
            if (!string.IsNullOrWhiteSpace(env))
                return Path.GetFullPath(env);
            string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home))
                home = Path.GetTempPath();
            return Path.Combine(home, ".cache", "lfmsharp");
        }
    }

    /// <summary>Path of a cached model of a preset shape, writing it first if it is not there yet.</summary>
    public static string GetOrCreateCached(string shape, SyntheticFileType fileType, ulong seed = 42, IProgress<double>? progress = null) =>
        GetOrCreateCached(new SyntheticModelOptions { Shape = ModelShape.Preset(shape), FileType = fileType, Seed = seed }, progress);

    /// <summary>
    /// Path of a cached model for <paramref name="options"/> under <see cref="CacheDirectory"/>. The file is written
    /// once (to a temporary name, renamed when complete, so a killed run never leaves a broken model) and reused by
    /// later calls and other processes. The name holds the shape, type, seed, generator version and a hash of every
    /// other setting.
    /// </summary>
    public static string GetOrCreateCached(SyntheticModelOptions options, IProgress<double>? progress = null) =>
        GetOrCreateCached(options, CacheDirectory, progress);

    /// <summary>Like <see cref="GetOrCreateCached(SyntheticModelOptions, IProgress{double}?)"/> with an explicit cache folder.</summary>
    public static string GetOrCreateCached(SyntheticModelOptions options, string cacheDirectory, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(cacheDirectory);
        options.Shape.Validate();
        string dir = Path.GetFullPath(cacheDirectory);
        Directory.CreateDirectory(dir);
        string final = Path.Combine(dir, CacheFileName(options));
        if (File.Exists(final))
        {
            progress?.Report(1.0);
            return final;
        }
        string tmp = Path.Combine(dir, $".{Path.GetFileName(final)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            GgufWriter w = CreateWriter(options, progress);
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                w.WriteTo(fs);
            try
            {
                File.Move(tmp, final, overwrite: false);
            }
            catch (IOException) when (File.Exists(final))
            {
                // Another process finished the same model first; theirs is identical.
            }
        }
        finally
        {
            if (File.Exists(tmp))
                File.Delete(tmp);
        }
        progress?.Report(1.0);
        return final;
    }

    /// <summary>File name used in the cache, e.g. <c>lfm2-tiny-q4_0-s42-g1-0123abcd.gguf</c>.</summary>
    public static string CacheFileName(SyntheticModelOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var key = new StringBuilder();
        key.Append(options.Shape.Describe());
        key.Append(System.Globalization.CultureInfo.InvariantCulture, $" gains={options.MatrixGain:R}/{options.EmbeddingGain:R} template={options.ChatTemplate}");
        if (options.UntiedOutput || options.TensorTypes is { Count: > 0 })
            key.Append($" untied={options.UntiedOutput} types={string.Join(",", options.TensorTypes ?? [])}");
        if (options.Vocabulary is { } v)
        {
            key.Append(" vocab=");
            foreach (string t in v.Tokens) key.Append(t).Append('\u0001');
            foreach (int t in v.TokenTypes) key.Append(t).Append(',');
            foreach (string m in v.Merges) key.Append(m).Append('\u0001');
            key.Append($"{v.BosId}/{v.EosId}/{v.PadId}/{v.AddBos}/{v.AddEos}");
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key.ToString())))[..8];
        return $"lfm2-{options.Shape.Name}-{options.FileType.Name()}-s{options.Seed}-g{GeneratorVersion}-{hash}.gguf";
    }

    // ---- streaming writer -----------------------------------------------------------------------------------

    /// <summary>Per-file state: progress accounting and the chunk buffers reused by every tensor.</summary>
    private sealed class WriteJob(SyntheticModelOptions options, List<SyntheticTensor> tensors, IProgress<double>? progress, CancellationToken ct)
    {
        private readonly long _totalElements = Math.Max(1, tensors.Sum(t => t.ElementCount));
        private long _doneElements;
        private float[]? _front, _back;
        private byte[]? _out;

        public void WriteTensor(Stream stream, SyntheticTensor t)
        {
            ct.ThrowIfCancellationRequested();
            var values = new TensorValues(t, options.Shape, options.Seed, options.MatrixGain, options.EmbeddingGain);
            int rowLength = checked((int)t.RowLength);
            long rows = t.RowCount;
            int rowBytes = checked((int)GgmlTypes.RowBytes(t.Type, rowLength));
            int chunkRows = (int)Math.Clamp(ChunkElements / rowLength, 1, Math.Max(1, rows));
            int chunkFloats = checked(chunkRows * rowLength);
            if (_front is null || _front.Length < chunkFloats)
            {
                _front = new float[chunkFloats];
                _back = new float[chunkFloats];
            }
            if (_out is null || _out.Length < chunkRows * rowBytes)
                _out = new byte[checked(chunkRows * rowBytes)];

            // Double buffering: the next chunk's values are generated (the RNG stream is sequential) while the
            // current chunk is encoded on the other cores and written.
            float[] cur = _front, next = _back!;
            int curRows = (int)Math.Min(chunkRows, rows);
            values.Fill(cur.AsSpan(0, curRows * rowLength));
            long done = 0;
            while (curRows > 0)
            {
                ct.ThrowIfCancellationRequested();
                int nextRows = (int)Math.Min(chunkRows, rows - done - curRows);
                Task? gen = null;
                if (nextRows > 0)
                {
                    float[] target = next;
                    int count = nextRows * rowLength;
                    gen = Task.Run(() => values.Fill(target.AsSpan(0, count)));
                }
                try
                {
                    Encode(t.Type, cur, curRows, rowLength, rowBytes, _out);
                    stream.Write(_out, 0, curRows * rowBytes);
                }
                finally
                {
                    gen?.Wait();
                }
                done += curRows;
                _doneElements += (long)curRows * rowLength;
                progress?.Report((double)_doneElements / _totalElements);
                (cur, next) = (next, cur);
                curRows = nextRows;
            }
        }

        private void Encode(GgmlType type, float[] src, int rows, int rowLength, int rowBytes, byte[] dst)
        {
            int threads = options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount;
            long work = (long)rows * rowLength;
            // F32/F16 conversion and small chunks are not worth a fork/join.
            if (threads <= 1 || rows < 2 || type == GgmlType.F32 || work < 1 << 16)
            {
                TensorEncoder.EncodeRows(type, src.AsSpan(0, rows * rowLength), dst.AsSpan(0, rows * rowBytes), rowLength);
                return;
            }
            int parts = Math.Min(rows, threads * 4);
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = threads }, p =>
            {
                int r0 = (int)((long)rows * p / parts), r1 = (int)((long)rows * (p + 1) / parts);
                TensorEncoder.EncodeRows(type,
                    src.AsSpan(r0 * rowLength, (r1 - r0) * rowLength),
                    dst.AsSpan(r0 * rowBytes, (r1 - r0) * rowBytes), rowLength);
            });
        }
    }
}
