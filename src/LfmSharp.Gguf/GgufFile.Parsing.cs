using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf;

/// <summary>Parsing: the header, metadata and tensor directory, every read bounds-checked and every problem named.</summary>
public sealed unsafe partial class GgufFile
{
    private readonly record struct Parsed(uint Version, GgufMetadata Metadata, IReadOnlyList<GgufTensorInfo> Tensors, long Alignment, long DataOffset);

    // Smallest possible encodings, used to reject absurd counts before anything is allocated for them.
    private const int MinKvBytes = 8 + 4 + 1;          // key length, value type, 1-byte value
    private const int MinTensorInfoBytes = 8 + 4 + 4 + 8; // name length, n_dims (0), type, offset

    // Collections are pre-sized from counts in the file only up to this; a corrupt count must not allocate.
    private const int MaxPresize = 4096;

    private static Parsed Parse(byte* p, long length)
    {
        var r = new Cursor(p, length);
        var header = default(Field.Owner);
        uint magic = r.U32(header, "magic");
        if (magic != Magic)
            throw new GgufFormatException("magic", 0, $"expected \"GGUF\", found {DescribeMagic(p)} (not a GGUF file)");
        uint version = r.U32(header, "version");
        if (version is 1)
            throw new GgufFormatException("version", 4, "GGUF version 1 is not supported (convert the file with a newer llama.cpp)");
        if (version is not (2 or 3))
        {
            string hint = BinaryPrimitives.ReverseEndianness(version) is 2 or 3 ? " (a big-endian GGUF; only little-endian is supported)" : "";
            throw new GgufFormatException("version", 4, $"unsupported GGUF version {version}{hint}");
        }

        long tensorCountAt = r.Position;
        ulong tensorCount = r.U64(header, "tensor_count");
        long kvCountAt = r.Position;
        ulong kvCount = r.U64(header, "metadata_kv_count");
        if (kvCount > (ulong)(r.Remaining / MinKvBytes))
            throw new GgufFormatException("metadata_kv_count", kvCountAt, $"{kvCount} entries cannot fit in the {length} byte file");
        if (tensorCount > (ulong)(r.Remaining / MinTensorInfoBytes))
            throw new GgufFormatException("tensor_count", tensorCountAt, $"{tensorCount} tensors cannot fit in the {length} byte file");

        var entries = new List<GgufMetadataEntry>((int)Math.Min(kvCount, MaxPresize));
        var seenKeys = new HashSet<string>(StringComparer.Ordinal);
        long alignment = DefaultAlignment;
        for (ulong i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.String(Field.KvKey(i), ".key");
            var kv = Field.Kv(key);
            if (!seenKeys.Add(key))
                throw new GgufFormatException(kv.Name(""), at, "duplicate key");
            long typeAt = r.Position;
            uint type = r.U32(kv, ".type");
            long valueAt = r.Position;
            var value = ReadValue(ref r, type, typeAt, kv);
            // Checked here, where the offsets are known; it governs everything that follows the metadata.
            if (key == "general.alignment")
                alignment = CheckAlignment(value, kv.Name(""), typeAt, valueAt);
            entries.Add(new GgufMetadataEntry(key, value));
        }
        var metadata = new GgufMetadata(entries);

        // Checked again now that the metadata is consumed: the tensor directory must fit in what is left.
        if (tensorCount > (ulong)(r.Remaining / MinTensorInfoBytes))
            throw new GgufFormatException("tensor_count", tensorCountAt, $"{tensorCount} tensors cannot fit in the {r.Remaining} bytes left after the metadata");

        var tensors = new List<GgufTensorInfo>((int)Math.Min(tensorCount, MaxPresize));
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
            tensors.Add(ReadTensorInfo(ref r, i, names, alignment, length));

        long dataOffset = AlignUp(r.Position, alignment);
        if (tensorCount > 0 && dataOffset > length)
            throw new GgufFormatException("tensor data", r.Position, $"data section would start at {dataOffset}, past the end of the {length} byte file (truncated)");

        // Every tensor's bytes must lie inside the file and no two may overlap (zero-byte tensors overlap nothing).
        var byOffset = tensors.ToArray();
        Array.Sort(byOffset, static (a, b) => a.Offset.CompareTo(b.Offset));
        long prevEnd = 0;
        GgufTensorInfo? prev = null;
        foreach (var t in byOffset)
        {
            long start = dataOffset + t.Offset; // both are at most the file length, so no overflow
            if (t.ByteSize > length - start)
                throw new GgufFormatException($"tensor '{Printable(t.Name)}' data", start, $"{t.ByteSize} bytes at data offset {t.Offset} run past the end of the {length} byte file (truncated or corrupt)");
            if (t.ByteSize == 0)
                continue;
            if (prev is not null && t.Offset < prevEnd)
                throw new GgufFormatException($"tensor '{Printable(t.Name)}' data", start, $"overlaps tensor '{Printable(prev.Name)}' (data offsets {prev.Offset}..{prevEnd})");
            prevEnd = t.Offset + t.ByteSize;
            prev = t;
        }

        return new Parsed(version, metadata, tensors, alignment, dataOffset);
    }

    private static long CheckAlignment(GgufValue value, string field, long typeAt, long valueAt)
    {
        if (value.Type != GgufValueType.UInt32)
            throw new GgufFormatException(field, typeAt, $"must be a u32, found {Describe(value)}");
        uint a = (uint)value.Value;
        if (a == 0 || (a & (a - 1)) != 0)
            throw new GgufFormatException(field, valueAt, $"alignment {a} is not a non-zero power of two");
        return a;
    }

    private static readonly string[] s_neParts = [".ne[0]", ".ne[1]", ".ne[2]", ".ne[3]"];

    private static GgufTensorInfo ReadTensorInfo(ref Cursor r, ulong i, HashSet<string> names, long alignment, long length)
    {
        long at = r.Position;
        string name = r.String(Field.TensorName(i), ".name");
        var f = Field.Tensor(i, name);
        if (!names.Add(name))
            throw new GgufFormatException(f.Name(""), at, "duplicate tensor name");
        long dimsAt = r.Position;
        uint nDims = r.U32(f, ".n_dims");
        if (nDims > MaxDims)
            throw new GgufFormatException(f.Name(".n_dims"), dimsAt, $"{nDims} dimensions (at most {MaxDims} are allowed)");
        var ne = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++)
        {
            long neAt = r.Position;
            ulong v = r.U64(f, s_neParts[d]);
            if (v > long.MaxValue)
                throw new GgufFormatException(f.Name(s_neParts[d]), neAt, $"dimension {v} is negative as an int64");
            ne[d] = (long)v;
            if (ne[d] != 0 && elements > long.MaxValue / ne[d])
                throw new GgufFormatException(f.Name(s_neParts[d]), neAt, $"element count of {ShapeOf(ne, d + 1)} overflows an int64");
            elements *= ne[d];
        }
        long typeAt = r.Position;
        uint typeId = r.U32(f, ".type");
        if (!GgmlTypes.IsKnown(typeId))
            throw new GgufFormatException(f.Name(".type"), typeAt, $"unknown ggml type id {typeId}");
        var type = (GgmlType)typeId;
        int block = GgmlTypes.BlockSize(type);
        // A 0-dimensional tensor is one element; quantized types cannot hold that (ggml treats ne[0] as 1).
        long rowLength = nDims == 0 ? 1 : ne[0];
        if (rowLength % block != 0)
        {
            throw nDims == 0
                ? new GgufFormatException(f.Name(".n_dims"), dimsAt, $"a 0-dimensional {GgmlTypes.Name(type)} tensor holds 1 element, not a whole block of {block}")
                : new GgufFormatException(f.Name(".ne[0]"), dimsAt + 4, $"row length {ne[0]} is not a multiple of the {GgmlTypes.Name(type)} block size {block}");
        }
        if (elements / block > long.MaxValue / GgmlTypes.TypeSize(type))
            throw new GgufFormatException(f.Name(".ne"), dimsAt + 4, $"byte size of {GgmlTypes.Name(type)} {ShapeOf(ne, ne.Length)} overflows an int64");
        long offAt = r.Position;
        ulong offset = r.U64(f, ".offset");
        if (offset % (ulong)alignment != 0)
            throw new GgufFormatException(f.Name(".offset"), offAt, $"offset {offset} is not a multiple of the alignment {alignment}");
        if (offset > (ulong)length)
            throw new GgufFormatException(f.Name(".offset"), offAt, $"offset {offset} lies beyond the end of the {length} byte file (truncated or corrupt)");
        return new GgufTensorInfo(name, type, ne, (long)offset);
    }

    private static string ShapeOf(long[] ne, int n) => "[" + string.Join(", ", ne.Take(n)) + "]";

    // What Printable escapes: the backslash, C0 and C1 control characters, and the Unicode line/paragraph separators.
    private static readonly SearchValues<char> s_needsEscape = SearchValues.Create(
        "\\\u2028\u2029" + string.Concat(Enumerable.Range(0, 0xA0).Where(c => char.IsControl((char)c)).Select(c => (char)c)));

    /// <summary>
    /// A name from the file made safe for an error message: at most 80 characters, control characters escaped, so
    /// the message stays one line whatever the file holds.
    /// </summary>
    internal static string Printable(string s)
    {
        const int max = 80;
        if (s.Length <= max && !s.AsSpan().ContainsAny(s_needsEscape))
            return s; // the usual case: names and keys are short and plain
        var sb = new StringBuilder(Math.Min(s.Length, max) + 8);
        for (int i = 0; i < s.Length && i < max; i++)
        {
            char c = s[i];
            if (c == '\\')
                sb.Append(@"\\");
            else if (char.IsControl(c) || c is '\u2028' or '\u2029')
                sb.Append(c switch { '\n' => @"\n", '\r' => @"\r", '\t' => @"\t", _ => $"\\u{(int)c:X4}" });
            else
                sb.Append(c);
        }
        if (s.Length > max)
            sb.Append($"… ({s.Length} chars)");
        return sb.ToString();
    }

    private static string DescribeMagic(byte* p)
    {
        var sb = new StringBuilder("\"");
        for (int i = 0; i < 4; i++)
            sb.Append(p[i] is >= 0x20 and < 0x7F ? ((char)p[i]).ToString() : $"\\x{p[i]:X2}");
        sb.Append('"');
        return sb.ToString();
    }

    private static string Describe(GgufValue v) => v.IsArray ? $"an array of {v.ElementType}" : $"{v.Type} {Printable(v.ToDisplayString())}";

    private static long AlignUp(long x, long a) => (x + a - 1) / a * a;

    private static GgufValue ReadValue(ref Cursor r, uint type, long typeAt, Field.Owner f)
    {
        switch ((GgufValueType)type)
        {
            case GgufValueType.UInt8: return GgufValue.From(r.U8(f, ""));
            case GgufValueType.Int8: return GgufValue.From((sbyte)r.U8(f, ""));
            case GgufValueType.UInt16: return GgufValue.From(r.U16(f, ""));
            case GgufValueType.Int16: return GgufValue.From((short)r.U16(f, ""));
            case GgufValueType.UInt32: return GgufValue.From(r.U32(f, ""));
            case GgufValueType.Int32: return GgufValue.From((int)r.U32(f, ""));
            case GgufValueType.Float32: return GgufValue.From(BitConverter.Int32BitsToSingle((int)r.U32(f, "")));
            case GgufValueType.Bool: return GgufValue.From(ToBool(r.U8(f, ""), f, -1, r.Position - 1));
            case GgufValueType.String: return GgufValue.From(r.String(f, ""));
            case GgufValueType.UInt64: return GgufValue.From(r.U64(f, ""));
            case GgufValueType.Int64: return GgufValue.From((long)r.U64(f, ""));
            case GgufValueType.Float64: return GgufValue.From(BitConverter.Int64BitsToDouble((long)r.U64(f, "")));
            case GgufValueType.Array: return ReadArray(ref r, f, depth: 0);
            default: throw new GgufFormatException(f.Name(".type"), typeAt, $"unknown metadata value type {type}");
        }
    }

    private static bool ToBool(byte b, Field.Owner f, long index, long at) => b switch
    {
        0 => false,
        1 => true,
        _ => throw new GgufFormatException(f.Name("", index), at, $"bool byte {b} is neither 0 nor 1"),
    };

    // Arrays of arrays are legal GGUF (llama.cpp itself never writes them); the depth limit keeps recursion bounded.
    private const int MaxArrayDepth = 4;

    private static GgufValue ReadArray(ref Cursor r, Field.Owner f, int depth)
    {
        if (depth > MaxArrayDepth)
            throw new GgufFormatException(f.Name(""), r.Position, $"arrays nested more than {MaxArrayDepth + 1} deep");
        long typeAt = r.Position;
        uint elemType = r.U32(f, ".element_type");
        long countAt = r.Position;
        ulong count = r.U64(f, ".count");
        int minSize = (GgufValueType)elemType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw new GgufFormatException(f.Name(".element_type"), typeAt, $"unknown array element type {elemType}"),
        };
        // Checked against the smallest possible encoding before allocating, so a corrupt count cannot allocate more
        // than the file could hold.
        if (count > (ulong)(r.Remaining / minSize))
            throw new GgufFormatException(f.Name(".count"), countAt, $"{count} elements of {(GgufValueType)elemType} cannot fit in the remaining {r.Remaining} bytes");
        // .NET arrays (and spans over fixed-size elements) stop at 2 GiB.
        bool fixedSize = (GgufValueType)elemType is not (GgufValueType.String or GgufValueType.Array);
        if (count > (ulong)Array.MaxLength || (fixedSize && count * (ulong)minSize > int.MaxValue))
            throw new GgufFormatException(f.Name(".count"), countAt, $"{count} elements of {(GgufValueType)elemType} exceed the 2 GiB limit of one array");
        int n = (int)count;
        switch ((GgufValueType)elemType)
        {
            case GgufValueType.UInt8: return GgufValue.Array(r.Raw(n, f, "").ToArray());
            case GgufValueType.Int8: return GgufValue.Array(MemoryMarshal.Cast<byte, sbyte>(r.Raw(n, f, "")).ToArray());
            case GgufValueType.UInt16: return GgufValue.Array(ReadLittleEndian<ushort>(ref r, n, f));
            case GgufValueType.Int16: return GgufValue.Array(ReadLittleEndian<short>(ref r, n, f));
            case GgufValueType.UInt32: return GgufValue.Array(ReadLittleEndian<uint>(ref r, n, f));
            case GgufValueType.Int32: return GgufValue.Array(ReadLittleEndian<int>(ref r, n, f));
            case GgufValueType.Float32: return GgufValue.Array(ReadLittleEndian<float>(ref r, n, f));
            case GgufValueType.UInt64: return GgufValue.Array(ReadLittleEndian<ulong>(ref r, n, f));
            case GgufValueType.Int64: return GgufValue.Array(ReadLittleEndian<long>(ref r, n, f));
            case GgufValueType.Float64: return GgufValue.Array(ReadLittleEndian<double>(ref r, n, f));
            case GgufValueType.Bool:
            {
                long start = r.Position;
                var raw = r.Raw(n, f, "");
                var b = new bool[n];
                for (int i = 0; i < n; i++)
                    b[i] = ToBool(raw[i], f, i, start + i);
                return GgufValue.Array(b);
            }
            case GgufValueType.String:
            {
                var s = new string[n];
                for (int i = 0; i < n; i++)
                    s[i] = r.String(f, "", i);
                return GgufValue.Array(s);
            }
            default:
            {
                var a = new GgufValue[n];
                for (int i = 0; i < n; i++)
                    a[i] = ReadArray(ref r, Field.Path(f.Name("", i)), depth + 1);
                return GgufValue.Array(a);
            }
        }
    }

    // GGUF is little-endian, as is every platform .NET runs this library on, so arrays are reinterpreted in place.
    private static T[] ReadLittleEndian<T>(ref Cursor r, int n, Field.Owner f) where T : unmanaged =>
        MemoryMarshal.Cast<byte, T>(r.Raw(n * sizeof(T), f, "")).ToArray();

    /// <summary>
    /// Names the field being read, for error messages only. Reading a field passes an owner (a KV, a tensor, ...)
    /// and a constant part; the text, e.g. <c>metadata['a.b'][3].count</c> or <c>tensor[2] 'w'.ne[1]</c>, is built
    /// only when an error is reported, so a successful parse formats no strings.
    /// </summary>
    private static class Field
    {
        public enum Kind : byte { Header, KvKey, Kv, TensorName, Tensor, Path }

        public readonly record struct Owner(Kind Of, ulong Ordinal, string? Text)
        {
            /// <summary>Owner, then <c>[index]</c> when index is not negative, then part.</summary>
            public string Name(string part, long index = -1)
            {
                string owner = Of switch
                {
                    Kind.Header => "",
                    Kind.KvKey => $"metadata[{Ordinal}]",
                    Kind.Kv => $"metadata['{Printable(Text!)}']",
                    Kind.TensorName => $"tensor[{Ordinal}]",
                    Kind.Tensor => $"tensor[{Ordinal}] '{Printable(Text!)}'",
                    _ => Text!,
                };
                return index < 0 ? owner + part : $"{owner}[{index}]{part}";
            }
        }

        public static Owner KvKey(ulong i) => new(Kind.KvKey, i, null);
        public static Owner Kv(string key) => new(Kind.Kv, 0, key);
        public static Owner TensorName(ulong i) => new(Kind.TensorName, i, null);
        public static Owner Tensor(ulong i, string name) => new(Kind.Tensor, i, name);

        /// <summary>An already formatted owner (elements of nested arrays).</summary>
        public static Owner Path(string text) => new(Kind.Path, 0, text);
    }

    /// <summary>Bounds-checked little-endian reader over the mapped bytes.</summary>
    private struct Cursor(byte* p, long length)
    {
        private readonly byte* _p = p;
        private readonly long _length = length;

        public long Position { get; private set; }

        public readonly long Remaining => _length - Position;

        private readonly void Need(long n, Field.Owner f, string part, long index = -1)
        {
            if (n < 0 || n > _length - Position)
                throw new GgufFormatException(f.Name(part, index), Position, $"needs {n} bytes but only {_length - Position} remain (file truncated)");
        }

        public byte U8(Field.Owner f, string part)
        {
            Need(1, f, part);
            return _p[Position++];
        }

        public ushort U16(Field.Owner f, string part)
        {
            Need(2, f, part);
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(_p + Position, 2));
            Position += 2;
            return v;
        }

        public uint U32(Field.Owner f, string part)
        {
            Need(4, f, part);
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(_p + Position, 4));
            Position += 4;
            return v;
        }

        public ulong U64(Field.Owner f, string part)
        {
            Need(8, f, part);
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_p + Position, 8));
            Position += 8;
            return v;
        }

        public ReadOnlySpan<byte> Raw(int n, Field.Owner f, string part, long index = -1)
        {
            Need(n, f, part, index);
            var s = new ReadOnlySpan<byte>(_p + Position, n);
            Position += n;
            return s;
        }

        /// <summary>A u64-length-prefixed UTF-8 string (invalid sequences decode to U+FFFD).</summary>
        public string String(Field.Owner f, string part, long index = -1)
        {
            long at = Position;
            if (Remaining < 8)
                throw new GgufFormatException(f.Name(part, index) + " (string length)", at, $"needs 8 bytes but only {Remaining} remain (file truncated)");
            ulong len = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(_p + Position, 8));
            Position += 8;
            if (len > (ulong)Remaining)
                throw new GgufFormatException(f.Name(part, index), at, $"string length {len} exceeds the remaining {Remaining} bytes");
            if (len > int.MaxValue)
                throw new GgufFormatException(f.Name(part, index), at, $"string length {len} is over 2 GiB");
            return len == 0 ? "" : Encoding.UTF8.GetString(Raw((int)len, f, part, index));
        }
    }
}
