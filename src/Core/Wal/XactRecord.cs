using System.Buffers.Binary;

namespace Storage.Core.Wal;

public enum XactKind { Commit, Prepare, Abort, CommitPrepared, AbortPrepared }

/// <summary>
/// A transaction end record (rmgr Transaction). Only the leading xact_time is decoded: it is what
/// the pageserver needs to map timestamps to LSNs.
/// </summary>
public sealed record XactRecord(XactKind Kind, uint Xid, DateTimeOffset Time, long TimestampTz)
{
    public bool IsCommit => Kind is XactKind.Commit or XactKind.CommitPrepared;
    public bool IsAbort => Kind is XactKind.Abort or XactKind.AbortPrepared;

    /// <summary>Returns the decoded record, or null if this is not a commit/abort/prepare record.</summary>
    public static XactRecord? TryFrom(WalRecord record)
    {
        if (record.RmgrId != (byte)ResourceManagerId.Transaction) return null;
        XactKind? kind = (record.Info & XactInfo.OpMask) switch
        {
            XactInfo.Commit => XactKind.Commit,
            XactInfo.Prepare => XactKind.Prepare,
            XactInfo.Abort => XactKind.Abort,
            XactInfo.CommitPrepared => XactKind.CommitPrepared,
            XactInfo.AbortPrepared => XactKind.AbortPrepared,
            _ => null,
        };
        if (kind == null) return null;
        if (record.MainData.Length < 8)
            throw new WalDecodeException(record.Lsn, $"transaction record at {record.Lsn} has only {record.MainData.Length} bytes of main data");
        // xl_xact_commit / xl_xact_abort start with TimestampTz xact_time. A PREPARE record's main
        // data is an xl_xact_prepare whose prepared_at is not first, so we report it as unknown time.
        long ts = kind == XactKind.Prepare ? 0 : BinaryPrimitives.ReadInt64LittleEndian(record.MainData.Span);
        return new XactRecord(kind.Value, record.Xid, WalFormat.FromTimestampTz(ts), ts);
    }
}
