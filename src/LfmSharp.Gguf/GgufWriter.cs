using System.Text;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf;

/// <summary>
/// Builds a GGUF v3 file: metadata in insertion order, then the tensor directory, then the tensor data, each tensor
/// aligned to <see cref="Alignment"/>. Tensor bytes can be supplied up front or produced by a callback while writing,
/// so multi-GB models are streamed without being held in memory.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<GgufMetadataEntry> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, GgmlType Type, long[] Dimensions, long ByteSize, Action<Stream> Write);

    /// <summary>Data alignment (must be a power of two). A value other than 32 is also written as <c>general.alignment</c>.</summary>
    public int Alignment { get; set; } = GgufFile.DefaultAlignment;

    /// <summary>The metadata added so far, in order.</summary>
    public IReadOnlyList<GgufMetadataEntry> Metadata => _metadata;

    /// <summary>The number of tensors added so far.</summary>
    public int TensorCount => _tensors.Count;

    /// <summary>Adds a metadata entry; a key may be added once.</summary>
    public GgufWriter Add(string key, GgufValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (!_keys.Add(key))
            throw new ArgumentException($"metadata key '{key}' was already added", nameof(key));
        _metadata.Add(new GgufMetadataEntry(key, value));
        return this;
    }

    /// <summary>Adds a string metadata entry.</summary>
    public GgufWriter AddString(string key, string value) => Add(key, GgufValue.From(value));
    /// <summary>Adds a u32 metadata entry.</summary>
    public GgufWriter AddUInt32(string key, uint value) => Add(key, GgufValue.From(value));
    /// <summary>Adds an i32 metadata entry.</summary>
    public GgufWriter AddInt32(string key, int value) => Add(key, GgufValue.From(value));
    /// <summary>Adds a u64 metadata entry.</summary>
    public GgufWriter AddUInt64(string key, ulong value) => Add(key, GgufValue.From(value));
    /// <summary>Adds an f32 metadata entry.</summary>
    public GgufWriter AddFloat32(string key, float value) => Add(key, GgufValue.From(value));
    /// <summary>Adds a boolean metadata entry.</summary>
    public GgufWriter AddBool(string key, bool value) => Add(key, GgufValue.From(value));
    /// <summary>Adds a string-array metadata entry.</summary>
    public GgufWriter AddArray(string key, string[] values) => Add(key, GgufValue.Array(values));
    /// <summary>Adds an i32-array metadata entry.</summary>
    public GgufWriter AddArray(string key, int[] values) => Add(key, GgufValue.Array(values));
    /// <summary>Adds a u32-array metadata entry.</summary>
    public GgufWriter AddArray(string key, uint[] values) => Add(key, GgufValue.Array(values));
    /// <summary>Adds an f32-array metadata entry.</summary>
    public GgufWriter AddArray(string key, float[] values) => Add(key, GgufValue.Array(values));

    /// <summary>Adds a tensor whose bytes are already in memory (length must equal the type's byte size for <paramref name="ne"/>).</summary>
    public GgufWriter AddTensor(string name, GgmlType type, long[] ne, ReadOnlyMemory<byte> data)
    {
        long size = ByteSize(name, type, ne);
        if (data.Length != size)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, {GgmlTypes.Name(type)} {Shape(ne)} needs {size}", nameof(data));
        return AddTensor(name, type, ne, s => s.Write(data.Span));
    }

    /// <summary>Adds a tensor whose bytes <paramref name="writeData"/> writes when the file is written (exactly the byte size).</summary>
    public GgufWriter AddTensor(string name, GgmlType type, long[] ne, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(ne);
        ArgumentNullException.ThrowIfNull(writeData);
        if (!_tensorNames.Add(name))
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        long size = ByteSize(name, type, ne);
        _tensors.Add(new PendingTensor(name, type, (long[])ne.Clone(), size, writeData));
        return this;
    }

    /// <summary>Writes the file to <paramref name="path"/> (via a temporary file renamed at the end, so a failure never leaves a half-written model).</summary>
    public void WriteTo(string path, IProgress<double>? progress = null)
    {
        string full = Path.GetFullPath(path);
        string tmp = full + ".partial";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                WriteTo(fs, progress);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Writes the file to <paramref name="stream"/>. <paramref name="progress"/> gets the fraction of tensor bytes written.</summary>
    public void WriteTo(Stream stream, IProgress<double>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (Alignment <= 0 || (Alignment & (Alignment - 1)) != 0)
            throw new InvalidOperationException($"alignment {Alignment} is not a power of two");

        var entries = new List<GgufMetadataEntry>(_metadata);
        int explicitAlignment = entries.FindIndex(e => e.Key == "general.alignment");
        if (explicitAlignment >= 0)
        {
            // Copied metadata (e.g. when rewriting a file) may carry the key; a value that disagrees with the layout
            // actually written would make every tensor offset wrong for readers.
            var v = entries[explicitAlignment].Value;
            if (v.Type != GgufValueType.UInt32 || (uint)v.Value != (uint)Alignment)
                throw new InvalidOperationException($"metadata general.alignment = {v} disagrees with Alignment = {Alignment}; set Alignment to the same value (a u32)");
        }
        else if (Alignment != GgufFile.DefaultAlignment)
        {
            entries.Insert(0, new GgufMetadataEntry("general.alignment", GgufValue.From((uint)Alignment)));
        }

        var header = new MemoryStream();
        var w = new BinaryWriter(header, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)entries.Count);
        foreach (var e in entries)
        {
            WriteString(w, e.Key);
            w.Write((uint)e.Value.Type);
            WriteValue(w, e.Value);
        }
        long offset = 0;
        var offsets = new long[_tensors.Count];
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            WriteString(w, t.Name);
            w.Write((uint)t.Dimensions.Length);
            foreach (long d in t.Dimensions)
                w.Write((ulong)d);
            w.Write((uint)t.Type);
            w.Write((ulong)offset);
            offsets[i] = offset;
            offset = AlignUp(offset + t.ByteSize, Alignment);
        }
        w.Flush();
        Pad(header, header.Length, Alignment);
        header.Position = 0;
        header.CopyTo(stream);

        long total = Math.Max(1, offset);
        long written = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            var t = _tensors[i];
            var counter = new CountingStream(stream);
            t.Write(counter);
            if (counter.Count != t.ByteSize)
                throw new InvalidOperationException($"tensor '{t.Name}': the writer produced {counter.Count} bytes, expected {t.ByteSize}");
            // ggml pads after every tensor, the last one included.
            long padded = AlignUp(t.ByteSize, Alignment) - t.ByteSize;
            stream.Write(new byte[padded]);
            written += t.ByteSize + padded;
            progress?.Report((double)written / total);
        }
        stream.Flush();
    }

    private static long ByteSize(string name, GgmlType type, long[] ne)
    {
        if (ne.Length is 0 or > 4)
            throw new ArgumentException($"tensor '{name}': {ne.Length} dimensions (1 to 4 allowed)", nameof(ne));
        long n = 1;
        foreach (long d in ne)
        {
            if (d < 0)
                throw new ArgumentException($"tensor '{name}': negative dimension {d}", nameof(ne));
            n = checked(n * d);
        }
        if (ne[0] % GgmlTypes.BlockSize(type) != 0)
            throw new ArgumentException($"tensor '{name}': row length {ne[0]} is not a multiple of the {GgmlTypes.Name(type)} block size {GgmlTypes.BlockSize(type)}", nameof(ne));
        return GgmlTypes.RowBytes(type, n);
    }

    private static string Shape(long[] ne) => "[" + string.Join(", ", ne) + "]";

    private static long AlignUp(long x, long a) => (x + a - 1) / a * a;

    private static void Pad(Stream s, long length, int alignment)
    {
        long pad = AlignUp(length, alignment) - length;
        for (long i = 0; i < pad; i++)
            s.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        if (v.IsArray)
        {
            var arr = (Array)v.Value;
            w.Write((uint)v.ElementType);
            w.Write((ulong)arr.Length);
            switch (v.Value)
            {
                case string[] ss: foreach (var s in ss) WriteString(w, s); break;
                case GgufValue[] vs: foreach (var x in vs) { if (!x.IsArray) throw new ArgumentException("nested array elements must be arrays"); WriteValue(w, x); } break;
                case bool[] bs: foreach (bool b in bs) w.Write((byte)(b ? 1 : 0)); break;
                case byte[] u8: w.Write(u8); break;
                default:
                    foreach (object o in arr)
                        WriteScalar(w, v.ElementType, o);
                    break;
            }
            return;
        }
        WriteScalar(w, v.Type, v.Value);
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object o)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)o); break;
            case GgufValueType.Int8: w.Write((sbyte)o); break;
            case GgufValueType.UInt16: w.Write((ushort)o); break;
            case GgufValueType.Int16: w.Write((short)o); break;
            case GgufValueType.UInt32: w.Write((uint)o); break;
            case GgufValueType.Int32: w.Write((int)o); break;
            case GgufValueType.Float32: w.Write((float)o); break;
            case GgufValueType.Bool: w.Write((byte)((bool)o ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)o); break;
            case GgufValueType.UInt64: w.Write((ulong)o); break;
            case GgufValueType.Int64: w.Write((long)o); break;
            case GgufValueType.Float64: w.Write((double)o); break;
            default: throw new ArgumentException($"cannot write a scalar of type {type}");
        }
    }

    /// <summary>Pass-through stream that counts what a tensor callback writes.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Count += buffer.Length;
        }
        public override void WriteByte(byte value)
        {
            inner.WriteByte(value);
            Count++;
        }
    }
}
