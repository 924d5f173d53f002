using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace LfmSharp.Gguf;

/// <summary>One key/value pair, in file order.</summary>
public readonly record struct GgufMetadataEntry(string Key, GgufValue Value);

/// <summary>
/// The typed key/value metadata of a GGUF file, in file order. Getters throw <see cref="KeyNotFoundException"/>
/// naming the key when it is missing and <see cref="InvalidDataException"/> naming key and type when the stored type
/// does not fit.
/// </summary>
public sealed class GgufMetadata : IEnumerable<GgufMetadataEntry>
{
    private readonly List<GgufMetadataEntry> _entries;
    private readonly Dictionary<string, GgufValue> _byKey;

    /// <summary>Metadata with these entries, in this order (a key may appear once).</summary>
    public GgufMetadata(IEnumerable<GgufMetadataEntry> entries)
    {
        _entries = new List<GgufMetadataEntry>(entries);
        _byKey = new Dictionary<string, GgufValue>(_entries.Count, StringComparer.Ordinal);
        foreach (var e in _entries)
        {
            if (!_byKey.TryAdd(e.Key, e.Value))
                throw new ArgumentException($"duplicate metadata key '{e.Key}'");
        }
    }

    /// <summary>The number of entries.</summary>
    public int Count => _entries.Count;

    /// <summary>The keys, in file order.</summary>
    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    /// <summary>The value of <paramref name="key"/>; throws <see cref="KeyNotFoundException"/> naming the key when absent.</summary>
    public GgufValue this[string key] => TryGetValue(key, out var v) ? v : throw Missing(key);

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    public bool Contains(string key) => _byKey.ContainsKey(key);

    /// <summary>The value of <paramref name="key"/>, if present.</summary>
    public bool TryGetValue(string key, [NotNullWhen(true)] out GgufValue? value) => _byKey.TryGetValue(key, out value);

    /// <summary>The string value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public string GetString(string key) => this[key] is { Type: GgufValueType.String, Value: string s } ? s : throw WrongType(key, "string");

    /// <summary>The string value of <paramref name="key"/>, or <paramref name="fallback"/> when absent or not a string.</summary>
    public string? GetStringOrDefault(string key, string? fallback = null) => TryGetValue(key, out var v) && v.Value is string s ? s : fallback;

    /// <summary>The boolean value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public bool GetBool(string key) => this[key] is { Type: GgufValueType.Bool, Value: bool b } ? b : throw WrongType(key, "bool");

    /// <summary>The boolean value of <paramref name="key"/>, or <paramref name="fallback"/> when absent; throws when of another type.</summary>
    public bool GetBoolOrDefault(string key, bool fallback) => TryGetValue(key, out var v) ? (v.Value is bool b ? b : throw WrongType(key, "bool")) : fallback;

    /// <summary>Any scalar integer type, widened to long (u64 values above long.MaxValue are rejected).</summary>
    public long GetInt64(string key)
    {
        var v = this[key];
        return TryInteger(v, out long x) ? x : throw WrongType(key, "integer");
    }

    /// <summary><see cref="GetInt64"/> of <paramref name="key"/>, or <paramref name="fallback"/> when absent.</summary>
    public long GetInt64OrDefault(string key, long fallback) => TryGetValue(key, out _) ? GetInt64(key) : fallback;

    /// <summary>Any scalar integer type that fits a u32.</summary>
    public uint GetUInt32(string key)
    {
        long x = GetInt64(key);
        return x is >= 0 and <= uint.MaxValue ? (uint)x : throw new InvalidDataException($"metadata '{key}' = {x} does not fit a u32");
    }

    /// <summary>f32 or f64 (f64 narrowed).</summary>
    public float GetFloat32(string key) => this[key].Value switch
    {
        float f => f,
        double d when this[key].Type == GgufValueType.Float64 => (float)d,
        _ => throw WrongType(key, "f32"),
    };

    /// <summary><see cref="GetFloat32"/> of <paramref name="key"/>, or <paramref name="fallback"/> when absent.</summary>
    public float GetFloat32OrDefault(string key, float fallback) => Contains(key) ? GetFloat32(key) : fallback;

    /// <summary>The string-array value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public string[] GetStringArray(string key) => this[key] is { Type: GgufValueType.Array, Value: string[] a } ? a : throw WrongType(key, "array of string");

    /// <summary>An array of any integer element type, each element fitting an i32.</summary>
    public int[] GetInt32Array(string key)
    {
        var v = this[key];
        if (!v.IsArray || !GgufValue.IsIntegerType(v.ElementType))
            throw WrongType(key, "array of integers");
        // Decided by the element type, not by "is int[]": the CLR lets a uint[] pass that test (same element size),
        // which would turn u32 values above int.MaxValue into negative numbers.
        if (v.ElementType == GgufValueType.Int32)
            return (int[])v.Value;
        var src = (Array)v.Value;
        var dst = new int[src.Length];
        for (int i = 0; i < dst.Length; i++)
        {
            object item = src.GetValue(i)!;
            bool fits = item is ulong u ? u <= int.MaxValue : Convert.ToInt64(item, System.Globalization.CultureInfo.InvariantCulture) is >= int.MinValue and <= int.MaxValue;
            if (!fits)
                throw new InvalidDataException($"metadata '{key}'[{i}] = {item} does not fit an i32");
            dst[i] = Convert.ToInt32(item, System.Globalization.CultureInfo.InvariantCulture);
        }
        return dst;
    }

    /// <summary>The f32-array value of <paramref name="key"/>; throws when absent or of another type.</summary>
    public float[] GetFloat32Array(string key) => this[key] is { Type: GgufValueType.Array, Value: float[] a } ? a : throw WrongType(key, "array of f32");

    /// <summary>The entries, in file order.</summary>
    public IEnumerator<GgufMetadataEntry> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal static bool TryInteger(GgufValue v, out long x)
    {
        switch (v.Value)
        {
            case byte b: x = b; return true;
            case sbyte sb: x = sb; return true;
            case ushort us: x = us; return true;
            case short s: x = s; return true;
            case uint ui: x = ui; return true;
            case int i: x = i; return true;
            case long l: x = l; return true;
            case ulong ul when ul <= long.MaxValue: x = (long)ul; return true;
            default: x = 0; return false;
        }
    }

    private static KeyNotFoundException Missing(string key) => new($"metadata key '{key}' is missing");

    private InvalidDataException WrongType(string key, string expected)
    {
        var v = _byKey[key];
        string actual = v.IsArray ? $"array of {v.ElementType}" : v.Type.ToString();
        return new InvalidDataException($"metadata '{key}' should be {expected} but is {actual}");
    }
}
