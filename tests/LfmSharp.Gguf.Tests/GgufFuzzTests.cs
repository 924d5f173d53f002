using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.RegularExpressions;
using LfmSharp.Testing;
using Xunit.Abstractions;

namespace LfmSharp.Gguf.Tests;

/// <summary>
/// Mutates valid files (fixture models and writer-built files) and parses each mutant with
/// <see cref="GgufFile.Load"/>: the only acceptable outcomes are success with a self-consistent result, or
/// <see cref="GgufFormatException"/>. Anything else (another exception type, a crash, an allocation out of
/// proportion to the input) fails the test with the iteration and mutation that caused it.
/// </summary>
public class GgufFuzzTests(ITestOutputHelper output)
{
    private const int Iterations = 24_000;
    private const int Seed = 0x6775_6666; // "guff"

    /// <summary>A valid file and the offsets of its structural fields (lengths, counts, type ids, dims, offsets).</summary>
    private sealed class Base(string name, byte[] bytes)
    {
        public string Name { get; } = name;
        public byte[] Bytes { get; } = bytes;
        public long HeaderEnd { get; set; }
        public List<(int Offset, int Size)> Fields { get; } = [];
    }

    [Fact]
    public void Mutated_files_only_ever_fail_with_GgufFormatException()
    {
        var bases = new[]
        {
            Describe("tiny-q4_0", File.ReadAllBytes(TestData.Model("tiny-q4_0"))),
            Describe("tiny-q4_k_m", File.ReadAllBytes(TestData.Model("tiny-q4_k_m"))),
            Describe("all-types", Synthetic.AllTypes().ToBytes()),
            Describe("all-types-align32", Synthetic.AllTypes(alignment: 32).ToBytes()),
            Describe("vocab-like", Synthetic.VocabLike(300, 100).ToBytes()),
            Describe("many-tensors", Synthetic.ManyTensors(60).ToBytes()),
        };
        // Fixture headers are the slow ones to parse (hundreds of strings); the synthetic files carry every value type.
        var pristine = bases.Select(b => b.Bytes.ToArray()).ToArray();
        int[] weights = [1, 1, 3, 3, 3, 3];
        int weightSum = weights.Sum();

        var rng = new Random(Seed);
        var failures = new List<string>();
        var outcomes = new SortedDictionary<string, int>(StringComparer.Ordinal);
        int parsed = 0;
        double slowestMs = 0;
        string slowest = "";
        double worstAllocRatio = 0;
        var total = Stopwatch.StartNew();
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        var perBase = new (int Count, double Ms)[bases.Length];

        for (int it = 0; it < Iterations && failures.Count < 10; it++)
        {
            int pick = rng.Next(weightSum);
            int bi = 0;
            while (pick >= weights[bi])
                pick -= weights[bi++];
            var b = bases[bi];

            var undo = new List<(int Offset, byte[] Original)>();
            string what;
            byte[] input;
            int kind = rng.Next(100);
            if (kind < 70)
            {
                // In place (restored afterwards): no copy of the file per iteration.
                input = b.Bytes;
                int n = rng.Next(100) < 75 ? 1 : 2 + rng.Next(3);
                var parts = new List<string>(n);
                for (int k = 0; k < n; k++)
                    parts.Add(MutateInPlace(b, rng, undo));
                what = string.Join(" + ", parts);
            }
            else if (kind < 85)
            {
                (input, what) = Truncate(b, rng);
            }
            else
            {
                (input, what) = Splice(b, bases[rng.Next(bases.Length)], rng);
            }
            what = $"{b.Name}: {what}";

            long allocBefore = GC.GetAllocatedBytesForCurrentThread();
            long t0 = Stopwatch.GetTimestamp();
            string outcome;
            try
            {
                using var f = GgufFile.Load(input);
                string? problem = CheckConsistent(f, input.Length);
                if (problem is not null)
                    failures.Add($"iteration {it} ({what}): parsed but inconsistent: {problem}");
                parsed++;
                outcome = "parsed";
            }
            catch (GgufFormatException e)
            {
                if (e.Message.Contains('\n') || e.Message.Contains('\r') || e.Offset < 0)
                    failures.Add($"iteration {it} ({what}): malformed error: {e.Message}");
                outcome = FieldKind(e.Field);
            }
            catch (Exception e)
            {
                failures.Add($"iteration {it} ({what}): {e.GetType().FullName}: {e.Message}\n{e.StackTrace}");
                outcome = e.GetType().Name;
            }
            finally
            {
                foreach (var (offset, original) in undo)
                    original.CopyTo(b.Bytes, offset);
            }
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            perBase[bi] = (perBase[bi].Count + 1, perBase[bi].Ms + ms);
            if (ms > slowestMs)
                (slowestMs, slowest) = (ms, what);
            double ratio = (GC.GetAllocatedBytesForCurrentThread() - allocBefore) / (double)Math.Max(input.Length, 1);
            if (ratio > worstAllocRatio)
                worstAllocRatio = ratio;
            // A parse may allocate what the metadata holds, a few times over, never more: a length or count field
            // must not be trusted beyond the bytes that back it.
            long allocated = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
            if (allocated > 16L * input.Length + (1 << 20))
                failures.Add($"iteration {it} ({what}): allocated {allocated} bytes for a {input.Length} byte input");
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
        output.WriteLine($"{Iterations} mutants in {total.ElapsedMilliseconds} ms ({cpu.TotalMilliseconds:F0} ms CPU): {parsed} parsed, {Iterations - parsed} rejected");
        output.WriteLine($"slowest parse {slowestMs:F2} ms ({slowest}); most allocated per input byte {worstAllocRatio:F2}");
        for (int i = 0; i < bases.Length; i++)
            output.WriteLine($"  {bases[i].Name} ({bases[i].Bytes.Length} bytes, header {bases[i].HeaderEnd}): {perBase[i].Count} mutants, {perBase[i].Ms / perBase[i].Count * 1000:F0} us per parse");
        foreach (var (k, v) in outcomes)
            output.WriteLine($"  {v,6}  {k}");
        for (int i = 0; i < bases.Length; i++)
            Assert.True(bases[i].Bytes.AsSpan().SequenceEqual(pristine[i]), $"{bases[i].Name} was not restored"); // the undo log is complete
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        // Both outcomes must be common, or the mutations are too gentle or too destructive to explore the parser.
        Assert.InRange(parsed, Iterations / 50, Iterations - Iterations / 50);
    }

    /// <summary>What a successful parse promises: every tensor's bytes inside the input, aligned, not overlapping.</summary>
    private static string? CheckConsistent(GgufFile f, long length)
    {
        if (f.Alignment <= 0 || (f.Alignment & (f.Alignment - 1)) != 0)
            return $"alignment {f.Alignment}";
        if (f.Tensors.Count > 0 && (f.DataOffset > length || f.DataOffset % f.Alignment != 0))
            return $"data offset {f.DataOffset}";
        var spans = new List<(long Start, long End, string Name)>();
        foreach (var t in f.Tensors)
        {
            long start = f.DataOffset + t.Offset;
            if (t.Offset % f.Alignment != 0 || t.ByteSize < 0 || start < 0 || start + t.ByteSize > length)
                return $"tensor '{t.Name}' at {start} + {t.ByteSize} outside {length}";
            if (!ReferenceEquals(f.GetTensor(t.Name), t))
                return $"tensor '{t.Name}' lookup";
            var data = f.GetTensorData(t);
            if (data.Length != t.ByteSize)
                return $"tensor '{t.Name}' span {data.Length} != {t.ByteSize}";
            if (t.ByteSize > 0)
                spans.Add((start, start + t.ByteSize, t.Name));
        }
        spans.Sort();
        for (int i = 1; i < spans.Count; i++)
        {
            if (spans[i].Start < spans[i - 1].End)
                return $"tensors '{spans[i - 1].Name}' and '{spans[i].Name}' overlap";
        }
        foreach (var e in f.Metadata)
            _ = e.Value.ToDisplayString(); // renders any value the parser accepted (inspect does this)
        return null;
    }

    /// <summary>"metadata['x'][3].count" and "tensor[7] 'y'.ne[1]" become "metadata['…'][i].count" and "tensor[i] '…'.ne[i]".</summary>
    private static string FieldKind(string field) =>
        Regex.Replace(Regex.Replace(field, @"'.*'", "'…'"), @"\[\d+\]", "[i]");

    // ------------------------------------------------------------------ mutations

    private static readonly ulong[] U64Boundaries =
    [
        0, 1, 2, 7, 8, 12, 13, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
        0x1_0000_0000, 1UL << 40, 1UL << 60, 1UL << 62, long.MaxValue, 1UL << 63, ulong.MaxValue - 1, ulong.MaxValue,
    ];

    private static readonly uint[] U32Boundaries =
    [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 28, 29, 30, 31, 34, 35, 39, 40, 0x7F, 0x80, 0xFF,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF,
    ];

    private static readonly byte[] ByteBoundaries = [0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF];

    private static string MutateInPlace(Base b, Random rng, List<(int, byte[])> undo)
    {
        byte[] bytes = b.Bytes;
        int Pos() => rng.Next(100) < 90 ? rng.Next((int)b.HeaderEnd) : rng.Next(bytes.Length);
        void Save(int at, int n) => undo.Insert(0, (at, bytes.AsSpan(at, n).ToArray()));

        switch (rng.Next(100))
        {
            case < 25:
            {
                int at = Pos();
                int bit = rng.Next(8);
                Save(at, 1);
                bytes[at] ^= (byte)(1 << bit);
                return $"flip bit {bit} of byte {at}";
            }
            case < 45:
            {
                int at = Pos();
                byte v = rng.Next(4) == 0 ? (byte)rng.Next(256) : ByteBoundaries[rng.Next(ByteBoundaries.Length)];
                Save(at, 1);
                bytes[at] = v;
                return $"byte {at} = 0x{v:X2}";
            }
            default:
            {
                // Aim at a structural field: a length, count, type id, dimension or offset.
                var (at, size) = b.Fields[rng.Next(b.Fields.Count)];
                Save(at, size);
                if (size == 8)
                {
                    ulong old = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
                    ulong v = rng.Next(6) switch
                    {
                        0 => old + 1,
                        1 => old - 1,
                        2 => (ulong)(bytes.Length - at),
                        3 => (ulong)rng.NextInt64(),
                        _ => U64Boundaries[rng.Next(U64Boundaries.Length)],
                    };
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), v);
                    return $"u64 at {at}: {old} -> {v}";
                }
                else
                {
                    uint old = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at));
                    uint v = rng.Next(5) switch
                    {
                        0 => old + 1,
                        1 => old - 1,
                        _ => U32Boundaries[rng.Next(U32Boundaries.Length)],
                    };
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), v);
                    return $"u32 at {at}: {old} -> {v}";
                }
            }
        }
    }

    private static (byte[], string) Truncate(Base b, Random rng)
    {
        int length = rng.Next(100) < 80 ? rng.Next((int)b.HeaderEnd + 64) : rng.Next(b.Bytes.Length);
        length = Math.Min(length, b.Bytes.Length);
        return (b.Bytes[..length], $"truncate to {length}");
    }

    private static (byte[], string) Splice(Base b, Base donor, Random rng)
    {
        byte[] src = b.Bytes;
        int at = rng.Next((int)b.HeaderEnd);
        int len = rng.Next(100) < 70 ? 1 + rng.Next(16) : 1 + rng.Next(512);
        switch (rng.Next(3))
        {
            case 0:
            {
                len = Math.Min(len, src.Length - at);
                return ([.. src.AsSpan(0, at), .. src.AsSpan(at + len)], $"delete {len} bytes at {at}");
            }
            case 1:
            {
                len = Math.Min(len, src.Length - at);
                return ([.. src.AsSpan(0, at + len), .. src.AsSpan(at)], $"duplicate {len} bytes at {at}");
            }
            default:
            {
                int from = rng.Next((int)donor.HeaderEnd);
                len = Math.Min(len, donor.Bytes.Length - from);
                return ([.. src.AsSpan(0, at), .. donor.Bytes.AsSpan(from, len), .. src.AsSpan(at)], $"insert {len} bytes of {donor.Name}@{from} at {at}");
            }
        }
    }

    // ------------------------------------------------------------------ finding the structural fields of a valid file

    /// <summary>
    /// Walks a known-valid file and records where its lengths, counts, type ids, dimensions and offsets are, so
    /// mutations can aim at them (random bytes mostly land inside string contents, which parse either way).
    /// </summary>
    private static Base Describe(string name, byte[] bytes)
    {
        var b = new Base(name, bytes);
        using (var f = GgufFile.Load(bytes))
            b.HeaderEnd = f.DataOffset;
        int p = 8;
        ulong tensors = ReadU64(ref p);
        b.Fields.Add((8, 8));
        ulong kvs = ReadU64(ref p);
        b.Fields.Add((16, 8));
        b.Fields.Add((4, 4));
        for (ulong i = 0; i < kvs; i++)
        {
            SkipString(ref p);
            b.Fields.Add((p, 4));
            uint type = ReadU32(ref p);
            SkipValue(type, ref p, depth: 0);
        }
        for (ulong i = 0; i < tensors; i++)
        {
            SkipString(ref p);
            b.Fields.Add((p, 4));
            uint dims = ReadU32(ref p);
            for (uint d = 0; d < dims; d++)
            {
                b.Fields.Add((p, 8));
                p += 8;
            }
            b.Fields.Add((p, 4));
            p += 4;
            b.Fields.Add((p, 8));
            p += 8;
        }
        return b;

        ulong ReadU64(ref int at)
        {
            ulong v = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            at += 8;
            return v;
        }
        uint ReadU32(ref int at)
        {
            uint v = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at));
            at += 4;
            return v;
        }
        void SkipString(ref int at)
        {
            // Only some string lengths are recorded: a vocabulary has thousands and they would crowd out the rest.
            if (b.Fields.Count < 64 || at % 7 == 0)
                b.Fields.Add((at, 8));
            int len = (int)ReadU64(ref at);
            at += len;
        }
        void SkipValue(uint type, ref int at, int depth)
        {
            switch ((GgufValueType)type)
            {
                case GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool: at += 1; break;
                case GgufValueType.UInt16 or GgufValueType.Int16: at += 2; break;
                case GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32: at += 4; break;
                case GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64: at += 8; break;
                case GgufValueType.String: SkipString(ref at); break;
                case GgufValueType.Array:
                {
                    b.Fields.Add((at, 4));
                    uint elem = ReadU32(ref at);
                    b.Fields.Add((at, 8));
                    ulong count = ReadU64(ref at);
                    for (ulong i = 0; i < count; i++)
                        SkipValue(elem, ref at, depth + 1);
                    break;
                }
                default: throw new InvalidOperationException($"base file {name} has value type {type} at {at}");
            }
        }
    }
}
