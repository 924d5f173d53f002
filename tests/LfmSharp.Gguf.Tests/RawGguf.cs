using System.Text;
using LfmSharp.Kernels.Quant;

namespace LfmSharp.Gguf.Tests;

/// <summary>
/// Writes GGUF bytes field by field, with no validation, so tests can build exactly the malformed file they need and
/// know the offset of every field (<see cref="Position"/> before each write).
/// </summary>
internal sealed class RawGguf : IDisposable
{
    private readonly MemoryStream _ms = new();
    private readonly BinaryWriter _w;

    public RawGguf() => _w = new BinaryWriter(_ms, Encoding.UTF8, leaveOpen: true);

    public void Dispose()
    {
        _w.Dispose();
        _ms.Dispose();
    }

    public long Position
    {
        get
        {
            _w.Flush();
            return _ms.Position;
        }
    }

    public RawGguf Header(ulong tensors, ulong kvs, uint version = 3, uint magic = GgufFile.Magic) => U32(magic).U32(version).U64(tensors).U64(kvs);

    public RawGguf U8(byte v) { _w.Write(v); return this; }
    public RawGguf U16(ushort v) { _w.Write(v); return this; }
    public RawGguf U32(uint v) { _w.Write(v); return this; }
    public RawGguf I32(int v) { _w.Write(v); return this; }
    public RawGguf U64(ulong v) { _w.Write(v); return this; }
    public RawGguf F32(float v) { _w.Write(v); return this; }
    public RawGguf Bytes(params byte[] b) { _w.Write(b); return this; }

    public RawGguf Str(string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        return U64((ulong)b.Length).Bytes(b);
    }

    /// <summary>Key and value type of one KV; the caller writes the value.</summary>
    public RawGguf Kv(string key, GgufValueType type) => Str(key).U32((uint)type);

    public RawGguf Kv(string key, GgufValueType type, uint typeId) => Str(key).U32(typeId);

    public RawGguf KvString(string key, string value) => Kv(key, GgufValueType.String).Str(value);

    public RawGguf KvU32(string key, uint value) => Kv(key, GgufValueType.UInt32).U32(value);

    public RawGguf TensorInfo(string name, GgmlType type, long[] ne, ulong offset)
    {
        Str(name).U32((uint)ne.Length);
        foreach (long d in ne)
            U64((ulong)d);
        return U32((uint)type).U64(offset);
    }

    public RawGguf PadTo(int alignment)
    {
        while (Position % alignment != 0)
            U8(0);
        return this;
    }

    public RawGguf Zeros(long n)
    {
        for (long i = 0; i < n; i++)
            U8(0);
        return this;
    }

    public byte[] ToArray()
    {
        _w.Flush();
        return _ms.ToArray();
    }
}
