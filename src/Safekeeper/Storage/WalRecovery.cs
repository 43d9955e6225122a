using Microsoft.Extensions.Logging;
using Storage.Core;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// Finds where a timeline's WAL ends after a restart (the flush LSN is not in the control file:
/// saving it on every flush would double the fsyncs). Like PostgreSQL and Neon, it decodes the
/// WAL after the last saved flush position and stops at the end of the last complete record with
/// a valid CRC.
/// </summary>
internal static class WalRecovery
{
    /// <summary>
    /// Brings a timeline's WAL files to what may be served after a restart and returns their end
    /// with the state to start from: removes unfinished segment preallocations, finds the end
    /// (<see cref="FindEnd"/>), durably drops any bytes beyond it, and fdatasyncs the WAL it keeps.
    /// </summary>
    public static (Lsn End, AcceptorState State) Recover(string directory, TimelineIdentity id, AcceptorState state, DiskSync sync, ILogger log)
    {
        var files = new SegmentFiles(directory, new WalGeometry(id.WalSegmentSize));
        foreach (var unfinished in files.UnfinishedPreallocations()) File.Delete(unfinished);
        var end = FindEnd(files, state);
        bool stale = HasBytesAfter(files, end);
        if (stale || end < state.FlushLsnAtSave)
        {
            log.LogWarning("dropping the WAL after {WalEnd} on {TenantId}/{TimelineId}: it is no complete record (saved flush position {FlushLsnAtSave})",
                end, id.TenantId, id.TimelineId, state.FlushLsnAtSave);
            // Forget, then cut (as an election does): a crash in between must not find a control
            // file that claims the dropped bytes. Zeroing them means no later read, and no later
            // recovery, can take them for WAL.
            if (state.FlushLsnAtSave > end)
            {
                state = state with { FlushLsnAtSave = end };
                ControlFile.Save(directory, id, state);
            }
            if (stale)
            {
                using var wal = new WalStore(files, end);
                wal.Truncate(end);
            }
        }
        // Flushed means fsynced: the bytes decoded above may be only in the page cache, written by
        // an incarnation that was killed before its fdatasync (the OS kept them). They become our
        // flush LSN, so they are made durable before the timeline answers anyone.
        foreach (var segment in files.List())
            if (files.Geometry.SegmentStart(segment + 1) > state.LocalStartLsn && files.Geometry.SegmentStart(segment) < end)
                sync.File(files.Find(segment)!);
        sync.Directory(directory);
        return (end, state);
    }

    public static Lsn FindEnd(SegmentFiles files, AcceptorState state)
    {
        // WAL below the local start was trimmed (or skipped); files left there by a crash
        // between saving the local start and deleting them are ignored (and trimmed later).
        var g = files.Geometry;
        var start = state.LocalStartLsn;
        var segments = files.List().Where(s => g.SegmentStart(s + 1) > start).ToList();
        Lsn end = start;
        if (segments.Count > 0)
        {
            // Decode all WAL from the segment holding the saved flush position, not only the last
            // segment: WAL before that position was fsynced before it was saved, WAL after it is
            // whatever a crash left (writes never synced, or a cut half done: zeroed pages while
            // a deleted later segment came back). At a segment start the tail of a record from
            // the segment before is skipped (page header); if no record completes from there,
            // decoding starts one segment further back.
            var to = g.SegmentStart(segments[^1] + 1);
            var first = g.SegmentNumber(Lsn.MaxOf(state.FlushLsnAtSave, start));
            for (ulong back = 0; back <= 1; back++)
            {
                var from = Lsn.MaxOf(g.SegmentStart(first - back), start);
                using var stream = new SegmentReadStream(files, from, to);
                end = WalEnd.Find(stream, from, g);
                if (end > from || from == start) break;
            }
        }
        // Decoding is authoritative: WAL ends at the last complete valid record, even below the
        // saved flush position. That is safe because proposers append whole records only, so
        // every flush position this safekeeper acknowledged is a record end, and every byte up to
        // a record end it fsynced decodes. What lies beyond the decoded end is at most the start
        // of a record: bytes nobody was told are durable, or a partial record flushed by an older
        // version (which split records across appends). No commit ends inside it (a commit is
        // acknowledged at a record end held by a quorum), so dropping it loses nothing committed.
        if (end < state.FlushLsnAtSave)
        {
            // Still, the segment holding fsynced WAL cannot have vanished: that is lost files.
            var last = files.Geometry.SegmentNumber(new Lsn(state.FlushLsnAtSave.Value - 1));
            if (files.Find(last) is null)
                throw new CorruptFileException(files.Directory,
                    $"WAL up to {state.FlushLsnAtSave} was durably flushed before, but segment {files.Geometry.SegmentFileName(SegmentFiles.PgTimeline, last)} is missing");
        }
        if (end < state.CommitLsn)
            throw new CorruptFileException(files.Directory, $"the WAL ends at {end}, below the commit LSN {state.CommitLsn}");
        return end;
    }

    /// <summary>Whether any segment file holds a non-zero byte at or after <paramref name="end"/>.</summary>
    private static bool HasBytesAfter(SegmentFiles files, Lsn end)
    {
        var g = files.Geometry;
        var buffer = new byte[1 << 20];
        foreach (var segment in files.List().Where(s => g.SegmentStart(s + 1) > end))
        {
            using var handle = File.OpenHandle(files.Find(segment)!, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            long offset = g.SegmentStart(segment) < end ? g.SegmentOffset(end) : 0;
            long length = RandomAccess.GetLength(handle);
            while (offset < length)
            {
                int n = RandomAccess.Read(handle, buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - offset)), offset);
                if (n <= 0) break;
                if (buffer.AsSpan(0, n).ContainsAnyExcept((byte)0)) return true;
                offset += n;
            }
        }
        return false;
    }
}

/// <summary>A read-only stream over WAL [from, to) across segment files.</summary>
internal sealed class SegmentReadStream(SegmentFiles files, Lsn from, Lsn to) : Stream
{
    private Lsn _position = from;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= to || buffer.IsEmpty) return 0;
        var g = files.Geometry;
        ulong segment = g.SegmentNumber(_position);
        int n = (int)Math.Min(Math.Min(buffer.Length, g.SegmentSize - g.SegmentOffset(_position)), to - _position);
        var path = files.Find(segment);
        if (path is null) return 0; // a missing segment ends the readable WAL
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        int read = RandomAccess.Read(handle, buffer[..n], g.SegmentOffset(_position));
        _position += (ulong)Math.Max(read, 0);
        return Math.Max(read, 0);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => (long)_position.Value; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
