using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3), opened read-only. <see cref="Open"/> memory-maps the file: only the header,
/// metadata and tensor directory are read; tensor bytes are handed out as spans over the map and are paged in
/// by the OS when first touched. Every structural problem raises <see cref="GgufFormatException"/> naming the
/// field and byte offset.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Default data alignment when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    private const int MaxDims = 4; // GGML_MAX_DIMS

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private GCHandle _pin;
    private byte* _base;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    private GgufFile(byte* basePtr, long length, MemoryMappedFile? map, MemoryMappedViewAccessor? view, GCHandle pin, string? path)
    {
        _base = basePtr;
        FileSize = length;
        _map = map;
        _view = view;
        _pin = pin;
        Path = path;
        try
        {
            var parsed = Parse(basePtr, length);
            Version = parsed.Version;
            Metadata = parsed.Metadata;
            Tensors = parsed.Tensors;
            Alignment = parsed.Alignment;
            DataOffset = parsed.DataOffset;
            _tensorsByName = new Dictionary<string, GgufTensorInfo>(Tensors.Count, StringComparer.Ordinal);
            foreach (var t in Tensors)
                _tensorsByName[t.Name] = t;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The path the file was opened from, or null for in-memory files.</summary>
    public string? Path { get; }

    public uint Version { get; }

    public long FileSize { get; }

    /// <summary>Alignment of tensor data (<c>general.alignment</c>, default 32).</summary>
    public long Alignment { get; }

    /// <summary>Absolute file offset where the tensor data section starts.</summary>
    public long DataOffset { get; }

    public GgufMetadata Metadata { get; }

    /// <summary>Tensor directory in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    /// <summary>Memory-maps <paramref name="path"/> read-only and parses its header.</summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="GgufFormatException">Not a valid GGUF file.</exception>
    public static GgufFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        long length = fs.Length;
        if (length < 24)
        {
            fs.Dispose();
            throw new GgufFormatException("header", 0, $"file is {length} bytes, too short for a GGUF header (24 bytes)");
        }
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            p += view.PointerOffset;
            return new GgufFile(p, length, map, view, default, System.IO.Path.GetFullPath(path));
        }
        catch
        {
            view?.Dispose();
            map?.Dispose();
            fs.Dispose();
            throw;
        }
    }

    /// <summary>Parses a GGUF image held in memory (the array is pinned until disposal).</summary>
    public static GgufFile Load(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
        return new GgufFile((byte*)pin.AddrOfPinnedObject(), bytes.LongLength, null, null, pin, null);
    }

    public GgufTensorInfo GetTensor(string name) =>
        TryGetTensor(name, out var t) ? t : throw new KeyNotFoundException($"tensor '{name}' not found ({Tensors.Count} tensors in file)");

    public bool TryGetTensor(string name, [NotNullWhen(true)] out GgufTensorInfo? tensor) => _tensorsByName.TryGetValue(name, out tensor);

    /// <summary>The tensor's bytes as a span over the map (tensors are limited to 2 GiB each; the file is not).</summary>
    public ReadOnlySpan<byte> GetTensorData(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.ByteSize > int.MaxValue)
            throw new NotSupportedException($"tensor '{tensor.Name}' is {tensor.ByteSize} bytes; spans are limited to 2 GiB (use GetTensorPointer)");
        return new ReadOnlySpan<byte>(GetTensorPointer(tensor), (int)tensor.ByteSize);
    }

    /// <summary>Pointer to the tensor's first byte; valid until <see cref="Dispose"/>.</summary>
    public byte* GetTensorPointer(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (!_tensorsByName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to this file", nameof(tensor));
        return _base + DataOffset + tensor.Offset;
    }

    public void Dispose()
    {
        if (_view is not null && _base != null)
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _base = null;
        _view?.Dispose();
        _map?.Dispose();
        if (_pin.IsAllocated)
            _pin.Free();
    }

    // ---------------------------------------------------------------- parsing

    private readonly record struct Parsed(uint Version, GgufMetadata Metadata, IReadOnlyList<GgufTensorInfo> Tensors, long Alignment, long DataOffset);

    private static Parsed Parse(byte* p, long length)
    {
        var r = new Cursor(p, length);
        uint magic = r.U32("magic");
        if (magic != Magic)
        {
            string seen = Encoding.ASCII.GetString(new ReadOnlySpan<byte>(p, 4)).Replace("\0", "\\0", StringComparison.Ordinal);
            throw new GgufFormatException("magic", 0, $"expected \"GGUF\", found \"{seen}\" (not a GGUF file)");
        }
        uint version = r.U32("version");
        if (version is 1)
            throw new GgufFormatException("version", 4, "GGUF version 1 is not supported (convert the file with a newer llama.cpp)");
        if (version is not (2 or 3))
        {
            string hint = BinaryPrimitives.ReverseEndianness(version) is 2 or 3 ? " (a big-endian GGUF; only little-endian is supported)" : "";
            throw new GgufFormatException("version", 4, $"unsupported GGUF version {version}{hint}");
        }

        long tensorCountAt = r.Position;
        ulong tensorCount = r.U64("tensor_count");
        long kvCountAt = r.Position;
        ulong kvCount = r.U64("metadata_kv_count");
        // Every KV takes at least 8 (key length) + 4 (type) + 1 bytes, every tensor info at least 8 + 4 + 4 + 8.
        if (kvCount > (ulong)(r.Remaining / 13))
            throw new GgufFormatException("metadata_kv_count", kvCountAt, $"{kvCount} entries cannot fit in the {length} byte file");
        if (tensorCount > (ulong)(r.Remaining / 24))
            throw new GgufFormatException("tensor_count", tensorCountAt, $"{tensorCount} tensors cannot fit in the {length} byte file");

        var entries = new List<GgufMetadataEntry>((int)kvCount);
        var seenKeys = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.String($"metadata[{i}].key");
            if (!seenKeys.Add(key))
                throw new GgufFormatException($"metadata['{key}']", at, "duplicate key");
            long typeAt = r.Position;
            uint type = r.U32($"metadata['{key}'].type");
            var value = ReadValue(ref r, type, typeAt, $"metadata['{key}']", depth: 0);
            entries.Add(new GgufMetadataEntry(key, value));
        }
        var metadata = new GgufMetadata(entries);

        long alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out var alignValue))
        {
            if (alignValue.Type != GgufValueType.UInt32 || alignValue.Value is not uint a || a == 0 || (a & (a - 1)) != 0)
                throw new GgufFormatException("metadata['general.alignment']", 0, $"must be a non-zero power of two u32, got {alignValue.Type} {alignValue}");
            alignment = a;
        }

        var tensors = new List<GgufTensorInfo>((int)tensorCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            long at = r.Position;
            string name = r.String($"tensor[{i}].name");
            string field = $"tensor[{i}] '{Trim(name)}'";
            if (!names.Add(name))
                throw new GgufFormatException(field, at, "duplicate tensor name");
            long dimsAt = r.Position;
            uint nDims = r.U32($"{field}.n_dims");
            if (nDims > MaxDims)
                throw new GgufFormatException($"{field}.n_dims", dimsAt, $"{nDims} dimensions (at most {MaxDims} are allowed)");
            var ne = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++)
            {
                long neAt = r.Position;
                ulong v = r.U64($"{field}.ne[{d}]");
                if (v > long.MaxValue / 2)
                    throw new GgufFormatException($"{field}.ne[{d}]", neAt, $"dimension {v} is absurd");
                ne[d] = (long)v;
                if (ne[d] != 0 && elements > long.MaxValue / ne[d])
                    throw new GgufFormatException($"{field}.ne", neAt, "element count overflows");
                elements *= ne[d];
            }
            long typeAt = r.Position;
            uint typeId = r.U32($"{field}.type");
            if (!GgmlTypes.IsKnown(typeId))
                throw new GgufFormatException($"{field}.type", typeAt, $"unknown ggml type id {typeId}");
            var type = (GgmlType)typeId;
            int block = GgmlTypes.BlockSize(type);
            if (nDims > 0 && ne[0] % block != 0)
                throw new GgufFormatException($"{field}.ne[0]", dimsAt + 4, $"row length {ne[0]} is not a multiple of the {GgmlTypes.Name(type)} block size {block}");
            long offAt = r.Position;
            ulong offset = r.U64($"{field}.offset");
            if (offset % (ulong)alignment != 0)
                throw new GgufFormatException($"{field}.offset", offAt, $"offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)length)
                throw new GgufFormatException($"{field}.offset", offAt, $"offset {offset} lies beyond the end of the {length} byte file");
            if (elements / block > long.MaxValue / GgmlTypes.TypeSize(type))
                throw new GgufFormatException($"{field}.ne", dimsAt, "byte size overflows");
            tensors.Add(new GgufTensorInfo(name, type, ne, (long)offset));
        }

        long dataOffset = AlignUp(r.Position, alignment);
        if (tensorCount > 0 && dataOffset > length)
            throw new GgufFormatException("tensor data", r.Position, $"data section would start at {dataOffset}, past the end of the {length} byte file (truncated)");

        // Every tensor's bytes must lie inside the file and no two may overlap.
        var byOffset = tensors.OrderBy(t => t.Offset).ToArray();
        long prevEnd = 0;
        GgufTensorInfo? prev = null;
        foreach (var t in byOffset)
        {
            long end = dataOffset + t.Offset + t.ByteSize;
            if (t.ByteSize > length || end > length || end < 0)
                throw new GgufFormatException($"tensor '{Trim(t.Name)}' data", dataOffset + t.Offset, $"{t.ByteSize} bytes at data offset {t.Offset} run past the end of the {length} byte file (truncated or corrupt)");
            if (prev is not null && t.ByteSize > 0 && t.Offset < prevEnd)
                throw new GgufFormatException($"tensor '{Trim(t.Name)}' data", dataOffset + t.Offset, $"overlaps tensor '{Trim(prev.Name)}'");
            if (t.ByteSize > 0)
            {
                prevEnd = t.Offset + t.ByteSize;
                prev = t;
            }
        }

        return new Parsed(version, metadata, tensors, alignment, dataOffset);
    }

    private static string Trim(string s) => s.Length > 80 ? s[..80] + "…" : s;

    private static long AlignUp(long x, long a) => (x + a - 1) / a * a;

    private static GgufValue ReadValue(ref Cursor r, uint type, long typeAt, string field, int depth)
    {
        switch ((GgufValueType)type)
        {
            case GgufValueType.UInt8: return GgufValue.From(r.U8(field));
            case GgufValueType.Int8: return GgufValue.From((sbyte)r.U8(field));
            case GgufValueType.UInt16: return GgufValue.From(r.U16(field));
            case GgufValueType.Int16: return GgufValue.From((short)r.U16(field));
            case GgufValueType.UInt32: return GgufValue.From(r.U32(field));
            case GgufValueType.Int32: return GgufValue.From((int)r.U32(field));
            case GgufValueType.Float32: return GgufValue.From(BitConverter.Int32BitsToSingle((int)r.U32(field)));
            case GgufValueType.Bool: return GgufValue.From(r.Bool(field));
            case GgufValueType.String: return GgufValue.From(r.String(field));
            case GgufValueType.UInt64: return GgufValue.From(r.U64(field));
            case GgufValueType.Int64: return GgufValue.From((long)r.U64(field));
            case GgufValueType.Float64: return GgufValue.From(BitConverter.Int64BitsToDouble((long)r.U64(field)));
            case GgufValueType.Array: return ReadArray(ref r, field, depth);
            default: throw new GgufFormatException($"{field}.type", typeAt, $"unknown metadata value type {type}");
        }
    }

    private static GgufValue ReadArray(ref Cursor r, string field, int depth)
    {
        if (depth > 4)
            throw new GgufFormatException(field, r.Position, "arrays nested too deeply");
        long typeAt = r.Position;
        uint elemType = r.U32($"{field}.element_type");
        long countAt = r.Position;
        ulong count = r.U64($"{field}.count");
        int minSize = (GgufValueType)elemType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new GgufFormatException($"{field}.element_type", typeAt, $"unknown array element type {elemType}"),
        };
        if (count > (ulong)(r.Remaining / minSize) || count > int.MaxValue)
            throw new GgufFormatException($"{field}.count", countAt, $"{count} elements cannot fit in the remaining {r.Remaining} bytes");
        int n = (int)count;
        switch ((GgufValueType)elemType)
        {
            case GgufValueType.UInt8: return GgufValue.Array(r.Raw(n, field).ToArray());
            case GgufValueType.Int8: return GgufValue.Array(MemoryMarshal.Cast<byte, sbyte>(r.Raw(n, field)).ToArray());
            case GgufValueType.UInt16: return GgufValue.Array(MemoryMarshal.Cast<byte, ushort>(r.Raw(n * 2, field)).ToArray());
            case GgufValueType.Int16: return GgufValue.Array(MemoryMarshal.Cast<byte, short>(r.Raw(n * 2, field)).ToArray());
            case GgufValueType.UInt32: return GgufValue.Array(MemoryMarshal.Cast<byte, uint>(r.Raw(n * 4, field)).ToArray());
            case GgufValueType.Int32: return GgufValue.Array(MemoryMarshal.Cast<byte, int>(r.Raw(n * 4, field)).ToArray());
            case GgufValueType.Float32: return GgufValue.Array(MemoryMarshal.Cast<byte, float>(r.Raw(n * 4, field)).ToArray());
            case GgufValueType.UInt64: return GgufValue.Array(MemoryMarshal.Cast<byte, ulong>(r.Raw(n * 8, field)).ToArray());
            case GgufValueType.Int64: return GgufValue.Array(MemoryMarshal.Cast<byte, long>(r.Raw(n * 8, field)).ToArray());
            case GgufValueType.Float64: return GgufValue.Array(MemoryMarshal.Cast<byte, double>(r.Raw(n * 8, field)).ToArray());
            case GgufValueType.Bool:
            {
                var raw = r.Raw(n, field);
                var b = new bool[n];
                for (int i = 0; i < n; i++)
                    b[i] = raw[i] switch { 0 => false, 1 => true, _ => throw new GgufFormatException($"{field}[{i}]", r.Position - n + i, $"bool byte {raw[i]} is neither 0 nor 1") };
                return GgufValue.Array(b);
            }
            case GgufValueType.String:
            {
                var s = new string[n];
                for (int i = 0; i < n; i++)
                    s[i] = r.String(field);
                return GgufValue.Array(s);
            }
            default:
            {
                var a = new GgufValue[n];
                for (int i = 0; i < n; i++)
                    a[i] = ReadArray(ref r, $"{field}[{i}]", depth + 1);
                return GgufValue.Array(a);
            }
        }
    }

    /// <summary>Bounds-checked little-endian reader over the mapped bytes.</summary>
    private struct Cursor(byte* p, long length)
    {
        private readonly byte* _p = p;
        private readonly long _length = length;

        public long Position { get; private set; }

        public readonly long Remaining => _length - Position;

        private void Need(long n, string field)
        {
            if (n < 0 || n > _length - Position)
                throw new GgufFormatException(field, Position, $"needs {n} bytes but only {_length - Position} remain (file truncated)");
        }

        public byte U8(string field)
        {
            Need(1, field);
            return _p[Position++];
        }

        public bool Bool(string field)
        {
            long at = Position;
            byte b = U8(field);
            return b switch { 0 => false, 1 => true, _ => throw new GgufFormatException(field, at, $"bool byte {b} is neither 0 nor 1") };
        }

        public ushort U16(string field)
        {
            Need(2, field);
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(_p + Position, 2));
            Position += 2;
            return v;
        }

        public uint U32(string field)
        {
            Need(4, field);
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(_p + Position, 4));
            Position += 4;
            return v;
        }

        public ulong U64(string field)
        {
            Need(8, field);
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_p + Position, 8));
            Position += 8;
            return v;
        }

        public ReadOnlySpan<byte> Raw(int n, string field)
        {
            Need(n, field);
            var s = new ReadOnlySpan<byte>(_p + Position, n);
            Position += n;
            return s;
        }

        public string String(string field)
        {
            long at = Position;
            ulong len = U64($"{field} (string length)");
            if (len > (ulong)Remaining)
                throw new GgufFormatException(field, at, $"string length {len} exceeds the remaining {Remaining} bytes");
            if (len > int.MaxValue)
                throw new GgufFormatException(field, at, $"string length {len} is too large");
            return Encoding.UTF8.GetString(Raw((int)len, field));
        }
    }
}
