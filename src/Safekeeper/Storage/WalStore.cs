using Microsoft.Win32.SafeHandles;
using Storage.Core;
using Storage.Core.Storage;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// A timeline's WAL on disk, in PostgreSQL's 16 MiB segment files. Writes go to the page cache at
/// once (<see cref="Write"/>); <see cref="Flush"/> makes everything written so far durable with
/// one fdatasync per touched segment, which is what lets many appends share one flush (group
/// commit). New segments are preallocated with zeros, so a flush does not have to grow the file.
/// Not thread-safe: the owning timeline serializes writes, flushes and truncation.
/// </summary>
internal sealed class WalStore : IDisposable
{
    private readonly SegmentFiles _files;
    private readonly Dictionary<ulong, SafeFileHandle> _open = new();
    private readonly HashSet<ulong> _dirty = new();
    private static readonly byte[] Zeros = new byte[1024 * 1024];

    public WalStore(SegmentFiles files, Lsn writeLsn)
    {
        _files = files;
        WriteLsn = FlushLsn = writeLsn;
    }

    public WalGeometry Geometry => _files.Geometry;
    public Lsn WriteLsn { get; private set; }
    public Lsn FlushLsn { get; private set; }

    public void Write(Lsn begin, ReadOnlySpan<byte> data)
    {
        if (begin > WriteLsn) throw new InvalidOperationException($"write at {begin} would leave a gap after {WriteLsn}");
        if (data.IsEmpty) return;
        // Open (and preallocate) every segment first, so a full disk fails the write before any
        // of it lands and WriteLsn stays where it was.
        var last = Geometry.SegmentNumber(begin + (ulong)(data.Length - 1));
        for (var segment = Geometry.SegmentNumber(begin); segment <= last; segment++) Handle(segment);
        var at = begin;
        while (!data.IsEmpty)
        {
            ulong segment = Geometry.SegmentNumber(at);
            int offset = Geometry.SegmentOffset(at);
            int n = Math.Min(data.Length, Geometry.SegmentSize - offset);
            RandomAccess.Write(Handle(segment), data[..n], offset);
            _dirty.Add(segment);
            data = data[n..];
            at += (ulong)n;
        }
        if (at > WriteLsn) WriteLsn = at;
    }

    /// <summary>What a flush must sync now: the touched segments and the LSN they will cover.</summary>
    public (Lsn Target, SafeFileHandle[] Handles, ulong[] Segments) BeginFlush()
    {
        var segments = _dirty.ToArray();
        _dirty.Clear();
        return (WriteLsn, segments.Select(s => _open[s]).ToArray(), segments);
    }

    /// <summary>Records that a flush begun at <paramref name="target"/> completed; renames finished segments.</summary>
    public void EndFlush(Lsn target, ulong[] flushedSegments)
    {
        if (target > FlushLsn) FlushLsn = target;
        bool renamed = false;
        foreach (var segment in flushedSegments)
        {
            // A segment flushed to its very end is complete: give it its final name.
            if (Geometry.SegmentStart(segment + 1) <= FlushLsn && File.Exists(_files.PartialPath(segment)))
            {
                Close(segment);
                File.Move(_files.PartialPath(segment), _files.CompletePath(segment), overwrite: true);
                renamed = true;
            }
        }
        if (renamed) FileSync.SyncDirectory(_files.Directory);
    }

    /// <summary>Makes everything written durable (a synchronous flush, for callers that can wait).</summary>
    public void Flush()
    {
        var (target, handles, segments) = BeginFlush();
        foreach (var h in handles) FileSync.DataSync(h);
        EndFlush(target, segments);
    }

    /// <summary>Durably cuts the WAL at <paramref name="end"/>: later segments go, the rest of its segment is zeroed.</summary>
    public void Truncate(Lsn end)
    {
        foreach (var h in _open.Values) h.Dispose();
        _open.Clear();
        _dirty.Clear();
        ulong keep = Geometry.SegmentNumber(end);
        foreach (var segment in _files.List().Where(s => s > keep))
        {
            File.Delete(_files.CompletePath(segment));
            File.Delete(_files.PartialPath(segment));
        }
        if (File.Exists(_files.CompletePath(keep)))
            File.Move(_files.CompletePath(keep), _files.PartialPath(keep), overwrite: true);
        if (_files.Find(keep) is not null)
        {
            var handle = Handle(keep);
            long offset = Geometry.SegmentOffset(end);
            while (offset < Geometry.SegmentSize)
            {
                int n = (int)Math.Min(Zeros.Length, Geometry.SegmentSize - offset);
                RandomAccess.Write(handle, Zeros.AsSpan(0, n), offset);
                offset += n;
            }
            FileSync.DataSync(handle);
        }
        FileSync.SyncDirectory(_files.Directory);
        WriteLsn = FlushLsn = end;
    }

    /// <summary>Durably drops every segment file; the WAL now begins and ends at <paramref name="start"/>.</summary>
    public void ResetTo(Lsn start)
    {
        foreach (var h in _open.Values) h.Dispose();
        _open.Clear();
        _dirty.Clear();
        DeleteSegments(_files.List());
        FileSync.SyncDirectory(_files.Directory);
        WriteLsn = FlushLsn = start;
    }

    /// <summary>
    /// Deletes the segment files numbered below <paramref name="firstKept"/> (the caller has made
    /// sure they lie wholly below the trim horizon) and returns their numbers. The directory is
    /// not synced here: the caller does it once, outside its lock.
    /// </summary>
    public IReadOnlyList<ulong> RemoveBelow(ulong firstKept)
    {
        if (firstKept > Geometry.SegmentNumber(FlushLsn))
            throw new InvalidOperationException($"refusing to remove segment {firstKept - 1}: it holds the flush position {FlushLsn} or later WAL");
        var doomed = _files.List().Where(s => s < firstKept).ToList();
        DeleteSegments(doomed);
        return doomed;
    }

    private void DeleteSegments(IEnumerable<ulong> segments)
    {
        foreach (var segment in segments)
        {
            Close(segment);
            _dirty.Remove(segment);
            File.Delete(_files.CompletePath(segment));
            File.Delete(_files.PartialPath(segment));
        }
    }

    /// <summary>Reads durable-or-written WAL [from, from + buffer.Length) into the buffer; returns bytes read.</summary>
    public int Read(Lsn from, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            var at = from + (ulong)total;
            ulong segment = Geometry.SegmentNumber(at);
            int offset = Geometry.SegmentOffset(at);
            int n = Math.Min(buffer.Length - total, Geometry.SegmentSize - offset);
            var path = _files.Find(segment) ?? throw new FileNotFoundException($"WAL segment {Geometry.SegmentFileName(SegmentFiles.PgTimeline, segment)} is missing in {_files.Directory}");
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            int read = RandomAccess.Read(handle, buffer.Slice(total, n), offset);
            if (read <= 0) break;
            total += read;
        }
        return total;
    }

    private SafeFileHandle Handle(ulong segment)
    {
        if (_open.TryGetValue(segment, out var handle)) return handle;
        var existing = _files.Find(segment);
        if (existing is not null)
        {
            handle = File.OpenHandle(existing, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        }
        else
        {
            handle = CreatePreallocated(segment);
        }
        _open[segment] = handle;
        return handle;
    }

    private SafeFileHandle CreatePreallocated(ulong segment)
    {
        // Zero-fill under a temp name, sync, then rename: a crash never leaves a short segment.
        var path = _files.PartialPath(segment);
        var temp = _files.PreallocatingPath(segment);
        try
        {
            using (var init = File.OpenHandle(temp, FileMode.Create, FileAccess.Write))
            {
                for (long offset = 0; offset < Geometry.SegmentSize; offset += Zeros.Length)
                    RandomAccess.Write(init, Zeros.AsSpan(0, (int)Math.Min(Zeros.Length, Geometry.SegmentSize - offset)), offset);
                FileSync.DataSync(init);
            }
            File.Move(temp, path);
        }
        catch (Exception)
        {
            // A full disk: give the space of the half-made file back (a crash leaves it to recovery).
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        FileSync.SyncDirectory(_files.Directory);
        return File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
    }

    private void Close(ulong segment)
    {
        if (_open.Remove(segment, out var handle)) handle.Dispose();
    }

    public void Dispose()
    {
        foreach (var h in _open.Values) h.Dispose();
        _open.Clear();
    }
}
