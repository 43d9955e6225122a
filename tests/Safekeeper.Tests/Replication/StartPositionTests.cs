using Storage.Core;
using Storage.Safekeeper.Replication;

namespace Storage.Safekeeper.Tests.Replication;

/// <summary>Where START_REPLICATION begins: the timeline start for a standby's segment-aligned request, refusals below what is held.</summary>
public class StartPositionTests
{
    private static readonly WalGeometry Geometry = WalGeometry.Default;

    private sealed class HeldWal(Lsn timelineStart, Lsn localStart, Lsn commit) : IReadableWal
    {
        public Task Changed => new TaskCompletionSource().Task;
        public Lsn LocalStartLsn => localStart;
        public (ulong Term, Lsn Flush, Lsn Commit, Lsn TimelineStart) Positions() => (1, commit, commit, timelineStart);
        public int ReadWal(Lsn from, Span<byte> buffer) => throw new NotSupportedException();
    }

    [Fact]
    public void A_request_for_the_start_of_the_first_segment_begins_at_the_timeline_start()
    {
        // A timeline begins where initdb's WAL ended, mid-segment; a standby asks for its segment's start.
        var start = new Lsn(0x0169_9A28);
        var wal = new HeldWal(start, start, new Lsn(0x0180_0000));
        Assert.Equal(start, StartPosition.Resolve(Geometry.SegmentStartOf(start), wal, Geometry, 1));
        Assert.Equal(start + 8L, StartPosition.Resolve(start + 8L, wal, Geometry, 1));
        // Beyond the commit LSN: accepted (streaming begins once it is committed).
        Assert.Equal(new Lsn(0x0300_0000), StartPosition.Resolve(new Lsn(0x0300_0000), wal, Geometry, 1));
        var before = Assert.Throws<ReplicationError>(() => StartPosition.Resolve(new Lsn(0x00FF_0000), wal, Geometry, 1));
        Assert.Equal(SqlStates.UndefinedFile, before.SqlState);
        Assert.Contains("before the timeline's start", before.Message);
    }

    [Fact]
    public void WAL_trimmed_from_this_safekeeper_is_refused_as_removed()
    {
        var wal = new HeldWal(new Lsn(0x0100_0000), new Lsn(0x0400_0000), new Lsn(0x0480_0000));
        var removed = Assert.Throws<ReplicationError>(() => StartPosition.Resolve(new Lsn(0x0200_0000), wal, Geometry, 2));
        Assert.Equal(SqlStates.UndefinedFile, removed.SqlState);
        Assert.Contains("requested WAL segment 000000010000000000000002 has already been removed", removed.Message);
        Assert.Contains("first available LSN 0/4000000", removed.Message);
        Assert.Equal(new Lsn(0x0400_0000), StartPosition.Resolve(new Lsn(0x0400_0000), wal, Geometry, 2));
    }
}
