namespace LfmSharp.Gguf;

/// <summary>Metadata value type ids as stored in GGUF (gguf.h <c>enum gguf_type</c>).</summary>
public enum GgufValueType : uint
{
    /// <summary>An unsigned 8-bit integer.</summary>
    UInt8 = 0,
    /// <summary>A signed 8-bit integer.</summary>
    Int8 = 1,
    /// <summary>An unsigned 16-bit integer.</summary>
    UInt16 = 2,
    /// <summary>A signed 16-bit integer.</summary>
    Int16 = 3,
    /// <summary>An unsigned 32-bit integer.</summary>
    UInt32 = 4,
    /// <summary>A signed 32-bit integer.</summary>
    Int32 = 5,
    /// <summary>A 32-bit IEEE float.</summary>
    Float32 = 6,
    /// <summary>A boolean (one byte, 0 or 1).</summary>
    Bool = 7,
    /// <summary>A UTF-8 string with a u64 length prefix.</summary>
    String = 8,
    /// <summary>A typed array: element type, u64 count, then the elements.</summary>
    Array = 9,
    /// <summary>An unsigned 64-bit integer.</summary>
    UInt64 = 10,
    /// <summary>A signed 64-bit integer.</summary>
    Int64 = 11,
    /// <summary>A 64-bit IEEE float.</summary>
    Float64 = 12,
}
