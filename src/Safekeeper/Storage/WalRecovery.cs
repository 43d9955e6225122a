using Storage.Core;
using Storage.Core.Storage;
using Storage.Core.Wal;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Storage;

/// <summary>
/// Finds where a timeline's WAL ends after a restart (the flush LSN is not in the control file:
/// saving it on every flush would double the fsyncs). Like PostgreSQL and Neon, it decodes the
/// last segment and stops at the end of the last complete record with a valid CRC.
/// </summary>
internal static class WalRecovery
{
    public static Lsn FindEnd(SegmentFiles files, AcceptorState state)
    {
        // WAL below the local start was trimmed (or skipped); files left there by a crash
        // between saving the local start and deleting them are ignored (and trimmed later).
        var start = state.LocalStartLsn;
        var segments = files.List().Where(s => files.Geometry.SegmentStart(s + 1) > start).ToList();
        Lsn end = start;
        if (segments.Count > 0)
        {
            // Decode from the last segment's start (a record continuing from the previous segment
            // is skipped using the page header); if no record completes there, go one further back.
            for (int back = 1; back <= Math.Min(2, segments.Count); back++)
            {
                var from = Lsn.MaxOf(files.Geometry.SegmentStart(segments[^back]), start);
                var to = files.Geometry.SegmentStart(segments[^1] + 1);
                using var stream = new SegmentReadStream(files, from, to);
                end = WalEnd.Find(stream, from, files.Geometry);
                if (end > from || from == start) break;
            }
        }
        if (end < state.FlushLsnAtSave)
        {
            // The saved flush LSN was fdatasync'd before it was saved, but may end inside a record
            // (a proposer streams partial records), which decoding cannot confirm. Keep those bytes,
            // as long as the segment holding them exists.
            var last = files.Geometry.SegmentNumber(new Lsn(state.FlushLsnAtSave.Value - 1));
            if (files.Find(last) is null)
                throw new CorruptFileException(files.Directory,
                    $"WAL up to {state.FlushLsnAtSave} was durably flushed before, but segment {files.Geometry.SegmentFileName(SegmentFiles.PgTimeline, last)} is missing");
            end = state.FlushLsnAtSave;
        }
        if (end < state.CommitLsn)
            throw new CorruptFileException(files.Directory, $"the WAL ends at {end}, below the commit LSN {state.CommitLsn}");
        return end;
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
