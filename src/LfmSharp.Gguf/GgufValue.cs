using System.Globalization;

namespace LfmSharp.Gguf;

/// <summary>
/// One metadata value. Scalars are boxed; arrays are typed .NET arrays (<c>int[]</c>, <c>string[]</c>, ...),
/// and arrays of arrays are <c>GgufValue[]</c>.
/// </summary>
public sealed class GgufValue
{
    private GgufValue(GgufValueType type, GgufValueType elementType, object value)
    {
        Type = type;
        ElementType = elementType;
        Value = value;
    }

    /// <summary>The value type; <see cref="GgufValueType.Array"/> for arrays.</summary>
    public GgufValueType Type { get; }

    /// <summary>For arrays, the element type; otherwise equal to <see cref="Type"/>.</summary>
    public GgufValueType ElementType { get; }

    /// <summary>The value: a boxed scalar, a <see cref="string"/>, or a typed .NET array for arrays.</summary>
    public object Value { get; }

    /// <summary>Whether this is an array (see <see cref="ElementType"/>).</summary>
    public bool IsArray => Type == GgufValueType.Array;

    /// <summary>Number of elements for arrays, 1 for scalars.</summary>
    public int Length => Value is Array a ? a.Length : 1;

    /// <summary>A <see cref="GgufValueType.UInt8"/> scalar.</summary>
    public static GgufValue From(byte v) => new(GgufValueType.UInt8, GgufValueType.UInt8, v);
    /// <summary>A <see cref="GgufValueType.Int8"/> scalar.</summary>
    public static GgufValue From(sbyte v) => new(GgufValueType.Int8, GgufValueType.Int8, v);
    /// <summary>A <see cref="GgufValueType.UInt16"/> scalar.</summary>
    public static GgufValue From(ushort v) => new(GgufValueType.UInt16, GgufValueType.UInt16, v);
    /// <summary>A <see cref="GgufValueType.Int16"/> scalar.</summary>
    public static GgufValue From(short v) => new(GgufValueType.Int16, GgufValueType.Int16, v);
    /// <summary>A <see cref="GgufValueType.UInt32"/> scalar.</summary>
    public static GgufValue From(uint v) => new(GgufValueType.UInt32, GgufValueType.UInt32, v);
    /// <summary>A <see cref="GgufValueType.Int32"/> scalar.</summary>
    public static GgufValue From(int v) => new(GgufValueType.Int32, GgufValueType.Int32, v);
    /// <summary>A <see cref="GgufValueType.Float32"/> scalar.</summary>
    public static GgufValue From(float v) => new(GgufValueType.Float32, GgufValueType.Float32, v);
    /// <summary>A <see cref="GgufValueType.Bool"/> scalar.</summary>
    public static GgufValue From(bool v) => new(GgufValueType.Bool, GgufValueType.Bool, v);
    /// <summary>A <see cref="GgufValueType.String"/> scalar.</summary>
    public static GgufValue From(string v) => new(GgufValueType.String, GgufValueType.String, v ?? throw new ArgumentNullException(nameof(v)));
    /// <summary>A <see cref="GgufValueType.UInt64"/> scalar.</summary>
    public static GgufValue From(ulong v) => new(GgufValueType.UInt64, GgufValueType.UInt64, v);
    /// <summary>A <see cref="GgufValueType.Int64"/> scalar.</summary>
    public static GgufValue From(long v) => new(GgufValueType.Int64, GgufValueType.Int64, v);
    /// <summary>A <see cref="GgufValueType.Float64"/> scalar.</summary>
    public static GgufValue From(double v) => new(GgufValueType.Float64, GgufValueType.Float64, v);

    /// <summary>An array of <see cref="GgufValueType.UInt8"/>.</summary>
    public static GgufValue Array(byte[] v) => Arr(GgufValueType.UInt8, v);
    /// <summary>An array of <see cref="GgufValueType.Int8"/>.</summary>
    public static GgufValue Array(sbyte[] v) => Arr(GgufValueType.Int8, v);
    /// <summary>An array of <see cref="GgufValueType.UInt16"/>.</summary>
    public static GgufValue Array(ushort[] v) => Arr(GgufValueType.UInt16, v);
    /// <summary>An array of <see cref="GgufValueType.Int16"/>.</summary>
    public static GgufValue Array(short[] v) => Arr(GgufValueType.Int16, v);
    /// <summary>An array of <see cref="GgufValueType.UInt32"/>.</summary>
    public static GgufValue Array(uint[] v) => Arr(GgufValueType.UInt32, v);
    /// <summary>An array of <see cref="GgufValueType.Int32"/>.</summary>
    public static GgufValue Array(int[] v) => Arr(GgufValueType.Int32, v);
    /// <summary>An array of <see cref="GgufValueType.Float32"/>.</summary>
    public static GgufValue Array(float[] v) => Arr(GgufValueType.Float32, v);
    /// <summary>An array of <see cref="GgufValueType.Bool"/>.</summary>
    public static GgufValue Array(bool[] v) => Arr(GgufValueType.Bool, v);
    /// <summary>An array of <see cref="GgufValueType.String"/>.</summary>
    public static GgufValue Array(string[] v) => Arr(GgufValueType.String, v);
    /// <summary>An array of <see cref="GgufValueType.UInt64"/>.</summary>
    public static GgufValue Array(ulong[] v) => Arr(GgufValueType.UInt64, v);
    /// <summary>An array of <see cref="GgufValueType.Int64"/>.</summary>
    public static GgufValue Array(long[] v) => Arr(GgufValueType.Int64, v);
    /// <summary>An array of <see cref="GgufValueType.Float64"/>.</summary>
    public static GgufValue Array(double[] v) => Arr(GgufValueType.Float64, v);
    /// <summary>An array of arrays (each element itself an array value).</summary>
    public static GgufValue Array(GgufValue[] v) => Arr(GgufValueType.Array, v);

    private static GgufValue Arr(GgufValueType elementType, Array v) => new(GgufValueType.Array, elementType, v ?? throw new ArgumentNullException(nameof(v)));

    /// <summary>True when the value is a scalar of any integer type (bool excluded).</summary>
    public bool IsInteger => !IsArray && IsIntegerType(Type);

    internal static bool IsIntegerType(GgufValueType t) => t is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16
        or GgufValueType.Int16 or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>Short human-readable rendering; long arrays are summarized.</summary>
    public string ToDisplayString(int maxArrayItems = 8)
    {
        if (!IsArray)
            return Format(Value);
        var arr = (Array)Value;
        int shown = Math.Min(arr.Length, maxArrayItems);
        var parts = new List<string>(shown);
        for (int i = 0; i < shown; i++)
            parts.Add(Format(arr.GetValue(i)!));
        string tail = arr.Length > shown ? $", ... ({arr.Length} items)" : "";
        return $"[{string.Join(", ", parts)}{tail}]";
    }

    /// <inheritdoc cref="ToDisplayString"/>
    public override string ToString() => ToDisplayString();

    private static string Format(object v) => v switch
    {
        string s => Quote(s),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        GgufValue g => g.ToDisplayString(4),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };

    private static string Quote(string s)
    {
        const int max = 60;
        string t = s.Length > max ? s[..max] + "…" : s;
        t = t.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal).Replace("\t", "\\t", StringComparison.Ordinal);
        return s.Length > max ? $"\"{t}\" ({s.Length} chars)" : $"\"{t}\"";
    }
}
