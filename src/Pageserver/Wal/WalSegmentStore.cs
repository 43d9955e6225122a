using Microsoft.Win32.SafeHandles;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.Pageserver.Wal;

/// <summary>
/// A timeline's WAL on the pageserver's disk as segment layers: one full-size file per 16 MiB
/// segment, named like PostgreSQL's (timeline 1), written at the offsets of the LSNs they hold.
/// Bytes never written read as zeros, which is what PostgreSQL takes for the end of WAL.
/// </summary>
internal sealed class WalSegmentStore : IDisposable
{
    private const uint PgTimeline = 1;
    private readonly object _lock = new();
    private SafeFileHandle? _open;
    private ulong _openNumber = ulong.MaxValue;

    public WalSegmentStore(string directory, WalGeometry geometry)
    {
        Directory = directory;
        Geometry = geometry;
        System.IO.Directory.CreateDirectory(directory);
    }

    public string Directory { get; }
    public WalGeometry Geometry { get; }

    public string FileName(ulong segment) => Geometry.SegmentFileName(PgTimeline, segment);
    public string PathOf(ulong segment) => Path.Combine(Directory, FileName(segment));
    public bool Has(ulong segment) => File.Exists(PathOf(segment));

    /// <summary>The segment numbers on disk, ascending.</summary>
    public IReadOnlyList<ulong> Segments() =>
        System.IO.Directory.EnumerateFiles(Directory)
            .Select(Path.GetFileName)
            .Select(name => Geometry.TryParseSegmentFileName(name!, out _, out var n) ? n : (ulong?)null)
            .OfType<ulong>().Order().ToList();

    /// <summary>Writes WAL bytes that start at <paramref name="start"/>, across segments as needed.</summary>
    public void Write(Lsn start, ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            while (!bytes.IsEmpty)
            {
                var handle = Open(Geometry.SegmentNumber(start));
                int offset = Geometry.SegmentOffset(start);
                int n = Math.Min(bytes.Length, Geometry.SegmentSize - offset);
                RandomAccess.Write(handle, bytes[..n], offset);
                bytes = bytes[n..];
                start += (ulong)n;
            }
        }
    }

    /// <summary>Makes everything written to <paramref name="segment"/> durable.</summary>
    public void Sync(ulong segment)
    {
        lock (_lock)
        {
            if (segment == _openNumber && _open != null) { FileSync.DataSync(_open); return; }
            if (!Has(segment)) return;
            using var handle = File.OpenHandle(PathOf(segment), FileMode.Open, FileAccess.ReadWrite);
            FileSync.DataSync(handle);
        }
    }

    /// <summary>Reads WAL [start, start + destination.Length) into <paramref name="destination"/>; missing segments read as zeros.</summary>
    public void Read(Lsn start, Span<byte> destination)
    {
        while (!destination.IsEmpty)
        {
            var segment = Geometry.SegmentNumber(start);
            int offset = Geometry.SegmentOffset(start);
            int n = Math.Min(destination.Length, Geometry.SegmentSize - offset);
            var part = destination[..n];
            part.Clear();
            if (Has(segment))
            {
                using var handle = File.OpenHandle(PathOf(segment), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                RandomAccess.Read(handle, part, offset);
            }
            destination = destination[n..];
            start += (ulong)n;
        }
    }

    /// <summary>Replaces a segment with downloaded content (a prefix of the segment; the rest is zeros).</summary>
    public async Task InstallAsync(ulong segment, Stream content, CancellationToken ct)
    {
        lock (_lock) { CloseOpen(); }
        var path = PathOf(segment);
        await AtomicFile.WriteAsync(path, async file =>
        {
            await content.CopyToAsync(file, ct);
            if (file.Length > Geometry.SegmentSize) throw new CorruptFileException(path, $"a downloaded segment is {file.Length} bytes, larger than a segment");
            file.SetLength(Geometry.SegmentSize);
        }, ct);
    }

    public void Delete(ulong segment)
    {
        lock (_lock)
        {
            if (segment == _openNumber) CloseOpen();
            File.Delete(PathOf(segment));
        }
    }

    private SafeFileHandle Open(ulong segment)
    {
        if (segment == _openNumber && _open != null) return _open;
        if (_open != null) { FileSync.DataSync(_open); CloseOpen(); }
        var path = PathOf(segment);
        bool fresh = !File.Exists(path);
        _open = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (fresh || RandomAccess.GetLength(_open) != Geometry.SegmentSize) RandomAccess.SetLength(_open, Geometry.SegmentSize);
        if (fresh) FileSync.SyncDirectory(Directory);
        _openNumber = segment;
        return _open;
    }

    private void CloseOpen()
    {
        _open?.Dispose();
        _open = null;
        _openNumber = ulong.MaxValue;
    }

    public void Dispose()
    {
        lock (_lock) CloseOpen();
    }
}
