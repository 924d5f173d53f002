using System.Globalization;
using System.Text.RegularExpressions;

namespace LfmSharp.Gguf;

/// <summary>
/// Split GGUF files as llama.cpp's <c>gguf-split</c> writes them: <c>NAME-00001-of-00003.gguf</c> … each a GGUF of
/// its own, the first holding the metadata, every part a share of the tensors, and <c>split.no</c> /
/// <c>split.count</c> / <c>split.tensors.count</c> saying how they fit. Opening the first part opens the others from
/// the same folder and presents one file: <see cref="Tensors"/> lists every tensor and the tensor accessors reach into
/// whichever part holds it.
/// </summary>
public sealed unsafe partial class GgufFile
{
    /// <summary>Metadata key: this part's index, from 0.</summary>
    public const string SplitIndexKey = "split.no";

    /// <summary>Metadata key: the number of parts.</summary>
    public const string SplitCountKey = "split.count";

    /// <summary>Metadata key: the number of tensors over all parts.</summary>
    public const string SplitTensorCountKey = "split.tensors.count";

    private GgufFile[]? _otherParts;
    private Dictionary<GgufTensorInfo, GgufFile>? _partOf;

    /// <summary>Number of files this model is split into (1 for an ordinary file).</summary>
    public int SplitCount => 1 + (_otherParts?.Length ?? 0);

    /// <summary>Paths of every part, this one first.</summary>
    public IReadOnlyList<string?> PartPaths => _otherParts is null ? [Path] : [Path, .. _otherParts.Select(p => p.Path)];

    private GgufFile? PartOf(GgufTensorInfo tensor) =>
        _partOf is not null && _partOf.TryGetValue(tensor, out var part) ? part : null;

    // Called by Open on every file: an unsplit file comes back as it is; the first part of a split set gets the others.
    private static GgufFile OpenOtherParts(GgufFile first)
    {
        try
        {
            long count = first.Metadata.GetInt64OrDefault(SplitCountKey, 1);
            if (count <= 1)
                return first;
            long index = first.Metadata.GetInt64OrDefault(SplitIndexKey, 0);
            if (count > 9999)
                throw new GgufFormatException("metadata", 0, $"{SplitCountKey} is {count}; a split set has at most 9999 parts");
            var m = Regex.Match(System.IO.Path.GetFileName(first.Path!), @"^(.+)-([0-9]{5})-of-([0-9]{5})\.gguf$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
            if (index != 0)
                throw new GgufFormatException("metadata", 0, $"this is part {index + 1} of {count} of a split model; open the first part ({(m.Success ? $"{m.Groups[1].Value}-00001-of-{count:D5}.gguf" : "…-00001-of-…")})");
            if (!m.Success)
                throw new GgufFormatException("metadata", 0, $"{SplitCountKey} is {count} but the name does not follow NAME-00001-of-{count:D5}.gguf, so the other parts cannot be found");
            string dir = System.IO.Path.GetDirectoryName(first.Path!)!;
            var parts = new List<GgufFile>();
            try
            {
                for (int i = 2; i <= count; i++)
                {
                    string path = System.IO.Path.Combine(dir, $"{m.Groups[1].Value}-{i:D5}-of-{count:D5}.gguf");
                    if (!File.Exists(path))
                        throw new FileNotFoundException($"part {i} of {count} of the split model is missing: {path}", path);
                    var part = OpenOne(path);
                    parts.Add(part);
                    if (part.Metadata.GetInt64OrDefault(SplitIndexKey, -1) != i - 1 || part.Metadata.GetInt64OrDefault(SplitCountKey, -1) != count)
                        throw new GgufFormatException("metadata", 0, $"{path}: its {SplitIndexKey}/{SplitCountKey} do not say part {i} of {count}");
                }
                first.AttachParts(parts);
            }
            catch
            {
                foreach (var p in parts)
                    p.Dispose();
                throw;
            }
            return first;
        }
        catch
        {
            first.Dispose();
            throw;
        }
    }

    private void AttachParts(List<GgufFile> parts)
    {
        var all = new List<GgufTensorInfo>(Tensors);
        var byName = new Dictionary<string, GgufTensorInfo>(_tensorsByName, StringComparer.Ordinal);
        var partOf = new Dictionary<GgufTensorInfo, GgufFile>(ReferenceEqualityComparer.Instance);
        foreach (var part in parts)
        {
            foreach (var t in part.Tensors)
            {
                if (!byName.TryAdd(t.Name, t))
                    throw new GgufFormatException("tensor", 0, $"{part.Path}: tensor '{t.Name}' is also in an earlier part");
                all.Add(t);
                partOf[t] = part;
            }
        }
        long expected = Metadata.GetInt64OrDefault(SplitTensorCountKey, all.Count);
        if (expected != all.Count)
            throw new GgufFormatException("metadata", 0, string.Create(CultureInfo.InvariantCulture, $"{SplitTensorCountKey} is {expected} but the {parts.Count + 1} parts hold {all.Count} tensors"));
        Tensors = all;
        _tensorsByName = byName;
        _partOf = partOf;
        _otherParts = [.. parts];
    }

    private void DisposeOtherParts()
    {
        var parts = Interlocked.Exchange(ref _otherParts, null);
        if (parts is null)
            return;
        foreach (var p in parts)
            p.Dispose();
    }
}
