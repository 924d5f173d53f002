using LfmSharp.Kernels.Quant;
using LfmSharp.Testing;

namespace LfmSharp.Gguf.Tests;

/// <summary>
/// Hand-built malformed files: each must fail with <see cref="GgufFormatException"/> naming the exact field and the
/// byte offset of the bad field (offsets come from the builder's position when the field was written).
/// </summary>
public class GgufMalformedTests
{
    internal static GgufFormatException Fails(byte[] bytes)
    {
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Load(bytes).Dispose());
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
        // Normally inside the file; a tensor whose data should start past a cut is reported at its (absent) start.
        Assert.True(e.Offset >= 0);
        Assert.Contains(e.Field, e.Message, StringComparison.Ordinal);
        return e;
    }

    private static void AssertError(byte[] bytes, string field, long offset, string? problemPart = null)
    {
        var e = Fails(bytes);
        Assert.Equal(field, e.Field);
        Assert.Equal(offset, e.Offset);
        if (problemPart is not null)
            Assert.Contains(problemPart, e.Problem, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ header

    [Theory]
    [InlineData(new byte[] { (byte)'G', (byte)'G', (byte)'M', (byte)'L' }, "\"GGML\"")]
    [InlineData(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F' }, "\"\\x7FELF\"")]
    [InlineData(new byte[] { (byte)'g', (byte)'g', (byte)'u', (byte)'f' }, "\"gguf\"")]
    public void Bad_magic_names_what_was_found(byte[] magic, string shown)
    {
        var b = new RawGguf().Bytes(magic).U32(3).U64(0).U64(0).ToArray();
        AssertError(b, "magic", 0, shown);
        Assert.Contains("not a GGUF file", Fails(b).Problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1u, "version 1 is not supported")]
    [InlineData(0u, "unsupported GGUF version 0")]
    [InlineData(4u, "unsupported GGUF version 4")]
    [InlineData(0x03000000u, "big-endian")]
    [InlineData(0x02000000u, "big-endian")]
    [InlineData(uint.MaxValue, "unsupported GGUF version 4294967295")]
    public void Unsupported_versions_are_rejected(uint version, string problemPart)
    {
        AssertError(new RawGguf().Header(0, 0, version).ToArray(), "version", 4, problemPart);
    }

    [Fact]
    public void Version_2_and_3_are_accepted()
    {
        foreach (uint v in new[] { 2u, 3u })
        {
            using var f = GgufFile.Load(new RawGguf().Header(0, 0, v).ToArray());
            Assert.Equal(v, f.Version);
            Assert.Empty(f.Tensors);
            Assert.Equal(0, f.Metadata.Count);
        }
    }

    [Theory]
    [InlineData(0, "magic", 0)]
    [InlineData(3, "magic", 0)]
    [InlineData(4, "version", 4)]
    [InlineData(7, "version", 4)]
    [InlineData(8, "tensor_count", 8)]
    [InlineData(23, "metadata_kv_count", 16)]
    public void Short_inputs_name_the_field_they_stop_in(int length, string field, long offset)
    {
        var full = new RawGguf().Header(0, 0).ToArray();
        AssertError(full[..length], field, offset, "truncated");
    }

    [Theory]
    [InlineData(1UL << 60)]
    [InlineData(ulong.MaxValue)]
    [InlineData(100UL)]
    public void Absurd_tensor_count(ulong count)
    {
        AssertError(new RawGguf().Header(count, 0).Zeros(64).ToArray(), "tensor_count", 8, "cannot fit");
    }

    [Theory]
    [InlineData(1UL << 60)]
    [InlineData(ulong.MaxValue)]
    [InlineData(10UL)]
    public void Absurd_kv_count(ulong count)
    {
        AssertError(new RawGguf().Header(0, count).Zeros(64).ToArray(), "metadata_kv_count", 16, "cannot fit");
    }

    [Fact]
    public void Tensor_count_is_rechecked_against_what_the_metadata_leaves()
    {
        // 3 tensors need at least 72 bytes; the file has 80 after the header, but a 60-byte KV takes most of them.
        var b = new RawGguf().Header(3, 1);
        b.KvString("k", new string('x', 39));
        b.Zeros(80 - (b.Position - 24));
        AssertError(b.ToArray(), "tensor_count", 8, "left after the metadata");
    }

    // ------------------------------------------------------------------ metadata

    [Theory]
    [InlineData(1UL << 60)]
    [InlineData(ulong.MaxValue)]
    [InlineData((ulong)int.MaxValue + 1)]
    [InlineData(1000UL)]
    public void Absurd_key_length(ulong len)
    {
        var b = new RawGguf().Header(0, 1).U64(len).Zeros(40).ToArray();
        AssertError(b, "metadata[0].key", 24, $"string length {len} exceeds");
    }

    [Theory]
    [InlineData(1UL << 60)]
    [InlineData(ulong.MaxValue)]
    [InlineData(41UL)]
    public void Absurd_string_value_length(ulong len)
    {
        var b = new RawGguf().Header(0, 1).Kv("general.name", GgufValueType.String);
        long at = b.Position;
        AssertError(b.U64(len).Zeros(32).ToArray(), "metadata['general.name']", at, "exceeds");
    }

    [Theory]
    [InlineData(GgufValueType.String, 1UL << 60)]
    [InlineData(GgufValueType.UInt8, 1UL << 60)]
    [InlineData(GgufValueType.UInt64, 1UL << 61)]
    [InlineData(GgufValueType.UInt64, ulong.MaxValue)]
    [InlineData(GgufValueType.Array, 1UL << 62)]
    [InlineData(GgufValueType.Int32, 9UL)] // 36 bytes, only 32 remain
    public void Absurd_array_count(GgufValueType elem, ulong count)
    {
        var b = new RawGguf().Header(0, 1).Kv("a", GgufValueType.Array).U32((uint)elem);
        long at = b.Position;
        AssertError(b.U64(count).Zeros(32).ToArray(), "metadata['a'].count", at, "cannot fit");
    }

    [Fact]
    public void Truncated_string_inside_an_array_names_the_element()
    {
        var b = new RawGguf().Header(0, 1).Kv("tokenizer.ggml.tokens", GgufValueType.Array).U32((uint)GgufValueType.String).U64(3);
        b.Str("a").Str("bc");
        long at = b.Position;
        AssertError(b.U64(5).Bytes(1, 2, 3, 4, 5, 6, 7, 8).ToArray()[..(int)(at + 10)], "metadata['tokenizer.ggml.tokens'][2]", at, "exceeds");
    }

    [Theory]
    [InlineData(13u)]
    [InlineData(255u)]
    [InlineData(uint.MaxValue)]
    public void Unknown_metadata_value_type(uint type)
    {
        var b = new RawGguf().Header(0, 1).Str("general.name");
        long at = b.Position;
        AssertError(b.U32(type).Zeros(16).ToArray(), "metadata['general.name'].type", at, $"unknown metadata value type {type}");
    }

    [Theory]
    [InlineData(13u)]
    [InlineData(uint.MaxValue)]
    public void Unknown_array_element_type(uint type)
    {
        var b = new RawGguf().Header(0, 1).Kv("a", GgufValueType.Array);
        long at = b.Position;
        AssertError(b.U32(type).U64(1).Zeros(16).ToArray(), "metadata['a'].element_type", at, $"unknown array element type {type}");
    }

    [Fact]
    public void Unknown_element_type_inside_a_nested_array()
    {
        var b = new RawGguf().Header(0, 1).Kv("a", GgufValueType.Array).U32((uint)GgufValueType.Array).U64(2);
        b.U32((uint)GgufValueType.Int32).U64(1).I32(5);
        long at = b.Position;
        AssertError(b.U32(99).U64(0).Zeros(8).ToArray(), "metadata['a'][1].element_type", at, "unknown array element type 99");
    }

    [Fact]
    public void Arrays_nested_too_deeply()
    {
        var b = new RawGguf().Header(0, 1).Kv("a", GgufValueType.Array);
        for (int i = 0; i < 5; i++)
            b.U32((uint)GgufValueType.Array).U64(1);
        long at = b.Position;
        b.U32((uint)GgufValueType.Int32).U64(0);
        AssertError(b.ToArray(), "metadata['a'][0][0][0][0][0]", at, "nested");
    }

    [Fact]
    public void Arrays_nested_to_the_limit_are_read()
    {
        var b = new RawGguf().Header(0, 1).Kv("a", GgufValueType.Array);
        for (int i = 0; i < 4; i++)
            b.U32((uint)GgufValueType.Array).U64(1);
        b.U32((uint)GgufValueType.Int32).U64(1).I32(42);
        using var f = GgufFile.Load(b.ToArray());
        var v = f.Metadata["a"];
        for (int i = 0; i < 4; i++)
            v = ((GgufValue[])v.Value)[0];
        Assert.Equal(new[] { 42 }, (int[])v.Value);
    }

    [Theory]
    [InlineData((byte)2)]
    [InlineData((byte)0xFF)]
    public void Invalid_bool_scalar(byte value)
    {
        var b = new RawGguf().Header(0, 1).Kv("tokenizer.ggml.add_bos_token", GgufValueType.Bool);
        long at = b.Position;
        AssertError(b.U8(value).ToArray(), "metadata['tokenizer.ggml.add_bos_token']", at, $"bool byte {value}");
    }

    [Fact]
    public void Invalid_bool_in_an_array_names_the_element()
    {
        var b = new RawGguf().Header(0, 1).Kv("flags", GgufValueType.Array).U32((uint)GgufValueType.Bool).U64(4);
        long at = b.Position;
        AssertError(b.Bytes(0, 1, 0, 7).ToArray(), "metadata['flags'][3]", at + 3, "bool byte 7");
    }

    [Fact]
    public void Duplicate_key()
    {
        var b = new RawGguf().Header(0, 3).KvU32("a", 1).KvU32("b", 2);
        long at = b.Position;
        AssertError(b.KvU32("a", 3).ToArray(), "metadata['a']", at, "duplicate key");
    }

    [Fact]
    public void Control_characters_in_a_key_are_escaped_in_the_message()
    {
        var b = new RawGguf().Header(0, 1).Str("evil\nkey\u0001");
        long at = b.Position;
        var e = Fails(b.U32(77).ToArray());
        Assert.Equal(@"metadata['evil\nkey\u0001'].type", e.Field);
        Assert.Equal(at, e.Offset);
    }

    [Fact]
    public void Long_keys_are_shortened_in_the_message()
    {
        string key = new('k', 5000);
        var e = Fails(new RawGguf().Header(0, 1).Str(key).U32(77).ToArray());
        Assert.True(e.Message.Length < 400, e.Message);
        Assert.Contains("(5000 chars)", e.Field, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(GgufValueType.String, "must be a u32")]
    [InlineData(GgufValueType.UInt64, "must be a u32")]
    [InlineData(GgufValueType.Int32, "must be a u32")]
    [InlineData(GgufValueType.Array, "must be a u32")]
    public void General_alignment_of_the_wrong_type(GgufValueType type, string problemPart)
    {
        var b = new RawGguf().Header(0, 1).Str("general.alignment");
        long typeAt = b.Position;
        b.U32((uint)type);
        switch (type)
        {
            case GgufValueType.String: b.Str("64"); break;
            case GgufValueType.UInt64: b.U64(64); break;
            case GgufValueType.Int32: b.I32(64); break;
            default: b.U32((uint)GgufValueType.UInt32).U64(1).U32(64); break;
        }
        AssertError(b.ToArray(), "metadata['general.alignment']", typeAt, problemPart);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(48u)]
    [InlineData(uint.MaxValue)]
    public void General_alignment_that_is_not_a_power_of_two(uint value)
    {
        var b = new RawGguf().Header(0, 1).Kv("general.alignment", GgufValueType.UInt32);
        long at = b.Position;
        AssertError(b.U32(value).ToArray(), "metadata['general.alignment']", at, $"alignment {value} is not");
    }

    [Fact]
    public void General_alignment_governs_data_offset_and_tensor_offsets()
    {
        var b = new RawGguf().Header(2, 1).KvU32("general.alignment", 256);
        b.TensorInfo("a", GgmlType.F32, [4], 0).TensorInfo("b", GgmlType.F32, [4], 256).PadTo(256).Zeros(512);
        using var f = GgufFile.Load(b.ToArray());
        Assert.Equal(256, f.Alignment);
        Assert.Equal(256, f.DataOffset);
        Assert.Equal(256, f.GetTensor("b").Offset);

        // 32 would be fine under the default alignment but not under 256.
        var bad = new RawGguf().Header(1, 1).KvU32("general.alignment", 256);
        long offAt = bad.Position + 8 + 1 + 4 + 8 + 4;
        bad.TensorInfo("a", GgmlType.F32, [4], 32).PadTo(256).Zeros(512);
        AssertError(bad.ToArray(), "tensor[0] 'a'.offset", offAt, "not a multiple of the alignment 256");
    }

    // ------------------------------------------------------------------ tensor directory

    /// <summary>A header announcing one tensor and no metadata; the test writes the tensor info.</summary>
    private static RawGguf OneTensor() => new RawGguf().Header(1, 0);

    [Fact]
    public void Duplicate_tensor_name()
    {
        var b = new RawGguf().Header(2, 0).TensorInfo("blk.0.w", GgmlType.F32, [8], 0);
        long at = b.Position;
        b.TensorInfo("blk.0.w", GgmlType.F32, [8], 32).PadTo(32).Zeros(64);
        AssertError(b.ToArray(), "tensor[1] 'blk.0.w'", at, "duplicate tensor name");
    }

    [Theory]
    [InlineData(5u)]
    [InlineData(1000u)]
    [InlineData(uint.MaxValue)]
    public void Too_many_dimensions(uint nDims)
    {
        var b = OneTensor();
        b.Str("t");
        long dimsAt = b.Position;
        AssertError(b.U32(nDims).Zeros(64).ToArray(), "tensor[0] 't'.n_dims", dimsAt, $"{nDims} dimensions");
    }

    [Fact]
    public void Zero_dimensional_tensors_are_one_element()
    {
        var b = new RawGguf().Header(1, 0).TensorInfo("s", GgmlType.F32, [], 0).PadTo(32).F32(2.5f).Zeros(28);
        using var f = GgufFile.Load(b.ToArray());
        var t = f.GetTensor("s");
        Assert.Equal(1, t.ElementCount);
        Assert.Equal(4, t.ByteSize);
        Assert.Equal(2.5f, BitConverter.ToSingle(f.GetTensorData(t)));
    }

    [Fact]
    public void Zero_dimensional_quantized_tensor_is_rejected()
    {
        var b = OneTensor();
        b.Str("q");
        long dimsAt = b.Position;
        b.U32(0).U32((uint)GgmlType.Q4_0).U64(0).PadTo(32).Zeros(64);
        AssertError(b.ToArray(), "tensor[0] 'q'.n_dims", dimsAt, "not a whole block of 32");
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, 33L)]
    [InlineData(GgmlType.Q4_K, 64L)]
    [InlineData(GgmlType.Q8_0, 1L)]
    public void Row_length_not_a_whole_number_of_blocks(GgmlType type, long ne0)
    {
        var b = OneTensor();
        b.Str("w");
        long ne0At = b.Position + 4;
        b.TensorInfoTail(type, [ne0, 2], 0).PadTo(32).Zeros(1024);
        AssertError(b.ToArray(), "tensor[0] 'w'.ne[0]", ne0At, $"row length {ne0} is not a multiple");
    }

    [Fact]
    public void Negative_dimension()
    {
        var b = OneTensor();
        b.Str("w").U32(2).U64(4);
        long at = b.Position;
        AssertError(b.U64(1UL << 63).U32(0).U64(0).PadTo(32).Zeros(32).ToArray(), "tensor[0] 'w'.ne[1]", at, "negative");
    }

    [Fact]
    public void Element_count_overflow()
    {
        var b = OneTensor();
        b.Str("w").U32(3).U64(1UL << 40).U64(1UL << 20);
        long at = b.Position;
        AssertError(b.U64(1UL << 10).U32(0).U64(0).PadTo(32).Zeros(32).ToArray(), "tensor[0] 'w'.ne[2]", at, "overflows");
    }

    [Fact]
    public void Byte_size_overflow()
    {
        var b = OneTensor();
        b.Str("w");
        long ne0At = b.Position + 4;
        // 2^62 elements fit an int64, 2^62 * 4 bytes do not.
        b.TensorInfoTail(GgmlType.F32, [1L << 62], 0).PadTo(32).Zeros(32);
        AssertError(b.ToArray(), "tensor[0] 'w'.ne", ne0At, "byte size");
    }

    [Theory]
    [InlineData(4u)]   // Q4_2, removed from ggml
    [InlineData(31u)]
    [InlineData(40u)]
    [InlineData(uint.MaxValue)]
    public void Unknown_tensor_type(uint type)
    {
        var b = OneTensor();
        b.Str("w").U32(1).U64(32);
        long at = b.Position;
        AssertError(b.U32(type).U64(0).PadTo(32).Zeros(1024).ToArray(), "tensor[0] 'w'.type", at, $"unknown ggml type id {type}");
    }

    [Theory]
    [InlineData(1UL)]
    [InlineData(16UL)]
    [InlineData(33UL)]
    public void Misaligned_tensor_offset(ulong offset)
    {
        var b = OneTensor();
        b.Str("w").U32(1).U64(8).U32(0);
        long at = b.Position;
        AssertError(b.U64(offset).PadTo(32).Zeros(128).ToArray(), "tensor[0] 'w'.offset", at, "not a multiple of the alignment 32");
    }

    [Theory]
    [InlineData(1UL << 40)]
    [InlineData(ulong.MaxValue - 31)]
    public void Tensor_offset_beyond_the_file(ulong offset)
    {
        var b = OneTensor();
        b.Str("w").U32(1).U64(8).U32(0);
        long at = b.Position;
        AssertError(b.U64(offset).PadTo(32).Zeros(128).ToArray(), "tensor[0] 'w'.offset", at, "beyond the end");
    }

    [Fact]
    public void Tensor_data_running_past_the_end()
    {
        var b = new RawGguf().Header(2, 0).TensorInfo("a", GgmlType.F32, [8], 0).TensorInfo("b", GgmlType.F32, [16], 32).PadTo(32);
        long data = b.Position;
        b.Zeros(32 + 63); // b needs 64 bytes at data offset 32
        AssertError(b.ToArray(), "tensor 'b' data", data + 32, "64 bytes at data offset 32 run past the end");
    }

    [Fact]
    public void Tensor_data_start_past_the_end()
    {
        var b = new RawGguf().Header(1, 0).TensorInfo("a", GgmlType.F32, [0], 0);
        long end = b.Position;
        AssertError(b.ToArray(), "tensor data", end, "past the end");
    }

    [Fact]
    public void Overlapping_tensors()
    {
        var b = new RawGguf().Header(3, 0)
            .TensorInfo("a", GgmlType.F32, [16], 0)    // data 0..64
            .TensorInfo("c", GgmlType.F32, [8], 96)
            .TensorInfo("b", GgmlType.F32, [8], 32)    // data 32..64 overlaps a
            .PadTo(32);
        long data = b.Position;
        b.Zeros(128);
        AssertError(b.ToArray(), "tensor 'b' data", data + 32, "overlaps tensor 'a'");
    }

    [Fact]
    public void Shared_offsets_of_empty_tensors_are_not_overlaps()
    {
        var b = new RawGguf().Header(3, 0)
            .TensorInfo("a", GgmlType.F32, [8], 0)
            .TensorInfo("e", GgmlType.F32, [0, 4], 0)
            .TensorInfo("b", GgmlType.F32, [8], 32)
            .PadTo(32).Zeros(64);
        using var f = GgufFile.Load(b.ToArray());
        Assert.Equal(0, f.GetTensor("e").ByteSize);
        Assert.Equal(0, f.GetTensorData(f.GetTensor("e")).Length);
    }

    // ------------------------------------------------------------------ Open() and accessors

    [Fact]
    public void Open_reports_missing_files_and_non_gguf_files()
    {
        string dir = TestData.NewTempDir();
        Assert.Throws<FileNotFoundException>(() => GgufFile.Open(Path.Combine(dir, "nope.gguf")));

        string empty = Path.Combine(dir, "empty.gguf");
        File.WriteAllBytes(empty, []);
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(empty));
        Assert.Equal("magic", e.Field);

        string text = Path.Combine(dir, "readme.gguf");
        File.WriteAllText(text, "# hello, this is not a model\n");
        e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(text));
        Assert.Equal("magic", e.Field);
        Assert.Contains("\"# he\"", e.Problem, StringComparison.Ordinal);

        string shortGguf = Path.Combine(dir, "short.gguf");
        File.WriteAllBytes(shortGguf, new RawGguf().Header(0, 0).ToArray()[..12]);
        e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(shortGguf));
        Assert.Equal("tensor_count", e.Field);

        string truncated = Path.Combine(dir, "truncated.gguf");
        File.WriteAllBytes(truncated, File.ReadAllBytes(TestData.Model("tiny-q4_0"))[..5000]);
        e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(truncated));
        Assert.InRange(e.Offset, 24, 5000);
    }

    [Fact]
    public void Accessors_fail_clearly()
    {
        using var f = GgufFile.Open(TestData.Model("tiny-f32"));
        var ex = Assert.Throws<KeyNotFoundException>(() => f.GetTensor("no.such.tensor"));
        Assert.Contains("no.such.tensor", ex.Message, StringComparison.Ordinal);
        Assert.Contains("general.nope", Assert.Throws<KeyNotFoundException>(() => f.Metadata.GetString("general.nope")).Message, StringComparison.Ordinal);
        // Stored type does not fit the getter: InvalidDataException naming key and types.
        var wrong = Assert.Throws<InvalidDataException>(() => f.Metadata.GetString("lfm2.block_count"));
        Assert.Contains("lfm2.block_count", wrong.Message, StringComparison.Ordinal);
        Assert.Contains("UInt32", wrong.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => f.Metadata.GetInt32Array("tokenizer.ggml.tokens"));
        Assert.Throws<InvalidDataException>(() => f.Metadata.GetStringArray("lfm2.attention.head_count_kv"));
        Assert.Throws<InvalidDataException>(() => f.Metadata.GetFloat32("general.architecture"));

        using var other = GgufFile.Open(TestData.Model("tiny-f16"));
        Assert.Throws<ArgumentException>(() => f.GetTensorData(other.GetTensor("token_embd.weight")));

        var t = f.GetTensor("token_embd.weight");
        f.Dispose();
        Assert.Throws<ObjectDisposedException>(() => f.GetTensorData(t));
    }
}

internal static class RawGgufTensorExtensions
{
    /// <summary>The part of a tensor info after the name.</summary>
    public static RawGguf TensorInfoTail(this RawGguf b, GgmlType type, long[] ne, ulong offset)
    {
        b.U32((uint)ne.Length);
        foreach (long d in ne)
            b.U64((ulong)d);
        return b.U32((uint)type).U64(offset);
    }
}
