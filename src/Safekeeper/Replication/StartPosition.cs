using Storage.Core;
using Storage.Core.Errors;

namespace Storage.Safekeeper.Replication;

/// <summary>Where a START_REPLICATION request begins on this safekeeper, or why it cannot.</summary>
internal static class StartPosition
{
    /// <summary>
    /// The requested start, except: a request in the first segment before the timeline's start
    /// (a standby always asks for the start of the segment its WAL ends in) begins at the timeline
    /// start, because the safekeepers never had the bytes before it (the client has them from its
    /// basebackup); WAL trimmed from this safekeeper's disk is refused as PostgreSQL refuses a
    /// removed segment. A start beyond commit_lsn is accepted: streaming begins when the WAL
    /// there is committed.
    /// </summary>
    public static Lsn Resolve(Lsn requested, IReadableWal wal, WalGeometry geometry, ulong nodeId)
    {
        var (_, _, _, timelineStart) = wal.Positions();
        if (requested < timelineStart)
        {
            if (geometry.SegmentStartOf(timelineStart) <= requested) return timelineStart;
            throw new ReplicationError(SqlStates.UndefinedFile,
                $"requested starting point {requested} is before the timeline's start {timelineStart}: the safekeepers never held that WAL");
        }
        var localStart = wal.LocalStartLsn;
        if (requested < localStart)
        {
            var removed = new WalRemovedException(requested, localStart, nodeId);
            throw new ReplicationError(SqlStates.UndefinedFile,
                $"requested WAL segment {geometry.SegmentFileName(1, geometry.SegmentNumber(requested))} has already been removed: {removed.Message}");
        }
        return requested;
    }
}
