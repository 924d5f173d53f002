using System.Diagnostics.CodeAnalysis;
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace LfmSharp.Gguf;

/// <summary>
/// A GGUF file (versions 2 and 3), opened read-only. <see cref="Open"/> memory-maps the file: only the header,
/// metadata and tensor directory are read; tensor bytes are handed out as spans over the map and are paged in
/// by the OS when first touched. Every structural problem raises <see cref="GgufFormatException"/> naming the
/// field and byte offset.
/// </summary>
public sealed unsafe partial class GgufFile : IDisposable
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
    private Dictionary<string, GgufTensorInfo> _tensorsByName;   // replaced once when the other parts of a split file attach
    private readonly object _readGate = new();
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _readHandle;   // opened by the first ReadTensorData of a mapped file

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

    /// <summary>The GGUF format version (2 or 3).</summary>
    public uint Version { get; }

    /// <summary>The file size in bytes.</summary>
    public long FileSize { get; }

    /// <summary>Alignment of tensor data (<c>general.alignment</c>, default 32).</summary>
    public long Alignment { get; }

    /// <summary>Absolute file offset where the tensor data section starts.</summary>
    public long DataOffset { get; }

    /// <summary>The key/value metadata.</summary>
    public GgufMetadata Metadata { get; }

    /// <summary>Tensor directory in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; }

    /// <summary>
    /// Memory-maps <paramref name="path"/> read-only and parses its header. The first part of a split model
    /// (<c>NAME-00001-of-0000N.gguf</c>) opens the other parts too and presents them as one file.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file (or a missing part of a split model).</exception>
    /// <exception cref="GgufFormatException">Not a valid GGUF file.</exception>
    public static GgufFile Open(string path) => OpenOtherParts(OpenOne(path));

    private static GgufFile OpenOne(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.None);
        long length = fs.Length;
        if (length < 24)
        {
            // Too short for a header, and an empty file cannot be mapped at all. Parsing the few bytes there are gives
            // the same error as Load would (bad magic for a non-GGUF file, the truncated field otherwise).
            byte[] bytes = new byte[length];
            using (fs)
                fs.ReadExactly(bytes);
            using var tooShort = Load(bytes);
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

    /// <summary>The tensor named <paramref name="name"/>; throws <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public GgufTensorInfo GetTensor(string name) =>
        TryGetTensor(name, out var t) ? t : throw new KeyNotFoundException($"tensor '{name}' not found ({Tensors.Count} tensors in file)");

    /// <summary>The tensor named <paramref name="name"/>, if present.</summary>
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
    internal byte* GetTensorPointer(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (PartOf(tensor) is { } part)
            return part.GetTensorPointer(tensor);
        ObjectDisposedException.ThrowIf(_base == null, this);
        if (!_tensorsByName.TryGetValue(tensor.Name, out var own) || !ReferenceEquals(own, tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to this file", nameof(tensor));
        return _base + DataOffset + tensor.Offset;
    }

    /// <summary>
    /// Copies <paramref name="destination"/>.Length bytes of the tensor, from <paramref name="offset"/> bytes into it,
    /// with ordinary file reads rather than through the map, so the pages do not become part of this process's
    /// resident memory (for callers that keep their own copy of a tensor, e.g. in another layout). Thread-safe.
    /// </summary>
    /// <exception cref="IOException">The file is shorter than when it was opened.</exception>
    public void ReadTensorData(GgufTensorInfo tensor, long offset, Span<byte> destination)
    {
        if (PartOf(tensor) is { } part)
        {
            part.ReadTensorData(tensor, offset, destination);
            return;
        }
        byte* src = GetTensorPointer(tensor);   // validates ownership and disposal
        if (offset < 0 || offset > tensor.ByteSize - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + destination.Length}) are outside tensor '{tensor.Name}' ({tensor.ByteSize} bytes)");
        if (Path is null)
        {
            new ReadOnlySpan<byte>(src + offset, destination.Length).CopyTo(destination);
            return;
        }
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        lock (_readGate)
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            handle = _readHandle ??= File.OpenHandle(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        long at = DataOffset + tensor.Offset + offset;
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(handle, destination, at);
            if (n <= 0)
                throw new IOException($"{Path}: file ended at byte {at} while reading tensor '{tensor.Name}' (was it truncated after opening?)");
            destination = destination[n..];
            at += n;
        }
    }

    /// <summary>Unmaps the file: spans handed out before become invalid.</summary>
    public void Dispose()
    {
        DisposeOtherParts();
        lock (_readGate)
        {
            _readHandle?.Dispose();
            _readHandle = null;
        }
        if (_view is not null && _base != null)
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _base = null;
        _view?.Dispose();
        _map?.Dispose();
        if (_pin.IsAllocated)
            _pin.Free();
    }
}
