using Storage.Core;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// Names and finds a timeline's WAL segment files: complete ones under PostgreSQL's name, the one
/// being written with a ".partial" suffix (timeline 1, as the compute's PostgreSQL stays on it).
/// </summary>
internal sealed class SegmentFiles(string directory, WalGeometry geometry)
{
    public const uint PgTimeline = 1;
    public const string PartialSuffix = ".partial";

    public string Directory { get; } = directory;
    public WalGeometry Geometry { get; } = geometry;

    public string CompletePath(ulong segment) => Path.Combine(Directory, Geometry.SegmentFileName(PgTimeline, segment));
    public string PartialPath(ulong segment) => CompletePath(segment) + PartialSuffix;

    /// <summary>The existing file of a segment, complete or partial, or null.</summary>
    public string? Find(ulong segment)
    {
        var complete = CompletePath(segment);
        if (File.Exists(complete)) return complete;
        var partial = PartialPath(segment);
        return File.Exists(partial) ? partial : null;
    }

    /// <summary>Where a new segment is zero-filled before it is renamed to its partial name.</summary>
    public string PreallocatingPath(ulong segment) => PartialPath(segment) + PreallocatingSuffix;
    public const string PreallocatingSuffix = ".init";

    /// <summary>Preallocations a crash or a full disk left unfinished (they never hold WAL).</summary>
    public IEnumerable<string> UnfinishedPreallocations() =>
        System.IO.Directory.EnumerateFiles(Directory, "*" + PartialSuffix + PreallocatingSuffix).ToList();

    /// <summary>Every segment number that has a file, in order.</summary>
    public IReadOnlyList<ulong> List()
    {
        var numbers = new SortedSet<ulong>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
            if (Geometry.TryParseSegmentFileName(Path.GetFileName(path), out _, out var seg)) numbers.Add(seg);
        return numbers.ToList();
    }
}
