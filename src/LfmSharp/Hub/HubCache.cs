namespace LfmSharp.Hub;

/// <summary>One cached model file set, for <c>lfm list</c>.</summary>
/// <param name="Repo">Repository id.</param>
/// <param name="Revision">A ref pointing at the snapshot (e.g. <c>main</c>), else the commit.</param>
/// <param name="Commit">The snapshot's commit.</param>
/// <param name="Quant">Quantization tag from the file name ("" when none).</param>
/// <param name="Path">The file to load (first of a split set) inside the snapshot.</param>
/// <param name="SizeBytes">Bytes of the whole set.</param>
/// <param name="FileCount">Files in the set (more than one for split GGUFs).</param>
public sealed record CachedModel(string Repo, string Revision, string Commit, string Quant, string Path, long SizeBytes, int FileCount);

/// <summary>
/// The hub cache, laid out exactly as <c>huggingface_hub</c> lays it out so either side reuses the other's files:
/// <code>
/// {cache}/models--org--name/blobs/{etag}                  content, named by sha256 for LFS files
/// {cache}/models--org--name/snapshots/{commit}/{file}     relative symlink to ../../blobs/{etag}
/// {cache}/models--org--name/refs/{revision}               the commit a branch or tag pointed at
/// {cache}/.locks/models--org--name/{etag}.lock            held while one process downloads that blob
/// </code>
/// </summary>
public sealed class HubCache
{
    /// <summary>A cache rooted at <paramref name="directory"/>.</summary>
    public HubCache(string directory) => Directory = System.IO.Path.GetFullPath(directory);

    /// <summary>The cache root.</summary>
    public string Directory { get; }

    /// <summary><c>{cache}/models--org--name</c>.</summary>
    public string RepoFolder(string repo) => System.IO.Path.Combine(Directory, "models--" + repo.Replace("/", "--", StringComparison.Ordinal));

    internal string BlobPath(string repo, string etag) => System.IO.Path.Combine(RepoFolder(repo), "blobs", etag);

    internal string SnapshotFolder(string repo, string commit) => System.IO.Path.Combine(RepoFolder(repo), "snapshots", commit);

    internal string SnapshotPath(string repo, string commit, string file) =>
        System.IO.Path.Combine(SnapshotFolder(repo, commit), file.Replace('/', System.IO.Path.DirectorySeparatorChar));

    internal string LockPath(string repo, string etag) =>
        System.IO.Path.Combine(Directory, ".locks", "models--" + repo.Replace("/", "--", StringComparison.Ordinal), etag + ".lock");

    /// <summary>The commit <paramref name="revision"/> points at in the cache: a ref file, or the revision itself when it is a cached commit.</summary>
    public string? ResolveRevision(string repo, string revision)
    {
        string refFile = System.IO.Path.Combine(RepoFolder(repo), "refs", revision.Replace('/', System.IO.Path.DirectorySeparatorChar));
        if (File.Exists(refFile))
        {
            string commit = File.ReadAllText(refFile).Trim();
            if (commit.Length > 0)
                return commit;
        }
        return System.IO.Directory.Exists(SnapshotFolder(repo, revision)) ? revision : null;
    }

    internal void WriteRef(string repo, string revision, string commit)
    {
        if (revision == commit)
            return;
        string refFile = System.IO.Path.Combine(RepoFolder(repo), "refs", revision.Replace('/', System.IO.Path.DirectorySeparatorChar));
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(refFile)!);
        string tmp = refFile + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(tmp, commit);
        File.Move(tmp, refFile, overwrite: true);
    }

    /// <summary>The files of a cached snapshot, relative to it with '/' separators (links whose blob is missing are skipped).</summary>
    public IReadOnlyList<string> SnapshotFiles(string repo, string commit)
    {
        string root = SnapshotFolder(repo, commit);
        if (!System.IO.Directory.Exists(root))
            return [];
        var files = new List<string>();
        foreach (string f in System.IO.Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
        {
            if (IsPresent(f))
                files.Add(System.IO.Path.GetRelativePath(root, f).Replace(System.IO.Path.DirectorySeparatorChar, '/'));
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    /// <summary>A file, or a link whose final target exists (a blob deleted by hand leaves a dangling link).</summary>
    internal static bool IsPresent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null)
            return info.Exists;
        try
        {
            return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
        }
        catch (IOException)
        {
            return false;   // a link loop
        }
    }

    /// <summary>
    /// Links <c>snapshots/{commit}/{file}</c> to its blob with a relative symlink, as huggingface_hub does; copies
    /// the blob where symlinks cannot be made (Windows without developer mode).
    /// </summary>
    internal void LinkSnapshot(string repo, string commit, string file, string etag)
    {
        string link = SnapshotPath(repo, commit, file);
        System.IO.Directory.CreateDirectory(System.IO.Path.GetDirectoryName(link)!);
        string blob = BlobPath(repo, etag);
        string target = System.IO.Path.GetRelativePath(System.IO.Path.GetDirectoryName(link)!, blob);
        var existing = new FileInfo(link);
        if (existing.Exists || existing.LinkTarget is not null)
        {
            if (existing.LinkTarget == target)
                return;
            existing.Delete();
        }
        string tmp = link + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            File.CreateSymbolicLink(tmp, target);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            File.Copy(blob, tmp, overwrite: true);
        }
        File.Move(tmp, link, overwrite: true);
    }

    /// <summary>Every cached model GGUF (split sets counted once), sorted by repository then quant.</summary>
    public IReadOnlyList<CachedModel> List()
    {
        var result = new List<CachedModel>();
        if (!System.IO.Directory.Exists(Directory))
            return result;
        foreach (string folder in System.IO.Directory.EnumerateDirectories(Directory, "models--*"))
        {
            string repo = System.IO.Path.GetFileName(folder)["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
            string snapshots = System.IO.Path.Combine(folder, "snapshots");
            if (!System.IO.Directory.Exists(snapshots))
                continue;
            var refsByCommit = ReadRefs(folder);
            foreach (string snap in System.IO.Directory.EnumerateDirectories(snapshots))
            {
                string commit = System.IO.Path.GetFileName(snap);
                var files = SnapshotFiles(repo, commit);
                foreach (string f in files)
                {
                    if (!GgufFileNames.IsModel(f) || GgufFileNames.Split(f).Index != 1)
                        continue;
                    var set = GgufFileNames.SetOf(files, f);
                    long size = 0;
                    int present = 0;
                    foreach (string part in set)
                    {
                        var info = new FileInfo(SnapshotPath(repo, commit, part));
                        if (info.Exists)
                        {
                            present++;
                            size += info.LinkTarget is null ? info.Length : new FileInfo(info.ResolveLinkTarget(true)!.FullName).Length;
                        }
                    }
                    if (present == set.Count)
                        result.Add(new CachedModel(repo, refsByCommit.GetValueOrDefault(commit, commit), commit, GgufFileNames.Quant(f), SnapshotPath(repo, commit, f), size, set.Count));
                }
            }
        }
        result.Sort((a, b) => string.CompareOrdinal(a.Repo + ":" + a.Quant, b.Repo + ":" + b.Quant));
        return result;
    }

    /// <summary>
    /// Removes a cached model. With a quant (or file), removes that file set's links and the blobs no other snapshot
    /// file uses; without, removes the whole repository folder. Returns the bytes freed (0 when nothing matched).
    /// </summary>
    public long Remove(ModelReference model)
    {
        string folder = RepoFolder(model.Repo);
        if (!System.IO.Directory.Exists(folder))
            return 0;
        if (model.Quant is null && model.File is null)
        {
            long all = FolderSize(System.IO.Path.Combine(folder, "blobs"));
            System.IO.Directory.Delete(folder, recursive: true);
            return all;
        }
        var doomed = new List<string>();
        foreach (string snap in System.IO.Directory.EnumerateDirectories(System.IO.Path.Combine(folder, "snapshots")))
        {
            string commit = System.IO.Path.GetFileName(snap);
            var files = SnapshotFiles(model.Repo, commit);
            string? first = model.File ?? GgufFileNames.Pick(files, model.Quant);
            if (first is null || !files.Contains(first))
                continue;
            foreach (string part in GgufFileNames.SetOf(files, first))
                doomed.Add(SnapshotPath(model.Repo, commit, part));
        }
        long freed = 0;
        var blobs = new HashSet<string>(StringComparer.Ordinal);
        foreach (string link in doomed)
        {
            var info = new FileInfo(link);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(true) is { } target)
                blobs.Add(target.FullName);
            else if (info.Exists)
                freed += info.Length;
            info.Delete();
        }
        var stillUsed = LinkedBlobs(folder);
        foreach (string blob in blobs)
        {
            if (stillUsed.Contains(blob) || !File.Exists(blob))
                continue;
            freed += new FileInfo(blob).Length;
            File.Delete(blob);
        }
        return freed;
    }

    private static HashSet<string> LinkedBlobs(string folder)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (string f in System.IO.Directory.EnumerateFiles(System.IO.Path.Combine(folder, "snapshots"), "*", SearchOption.AllDirectories))
        {
            if (new FileInfo(f).ResolveLinkTarget(true) is { } t)
                used.Add(t.FullName);
        }
        return used;
    }

    private static Dictionary<string, string> ReadRefs(string folder)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        string refs = System.IO.Path.Combine(folder, "refs");
        if (!System.IO.Directory.Exists(refs))
            return map;
        foreach (string r in System.IO.Directory.EnumerateFiles(refs, "*", SearchOption.AllDirectories))
            map.TryAdd(File.ReadAllText(r).Trim(), System.IO.Path.GetRelativePath(refs, r).Replace(System.IO.Path.DirectorySeparatorChar, '/'));
        return map;
    }

    private static long FolderSize(string dir)
    {
        if (!System.IO.Directory.Exists(dir))
            return 0;
        long n = 0;
        foreach (string f in System.IO.Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            n += new FileInfo(f).Length;
        return n;
    }
}
