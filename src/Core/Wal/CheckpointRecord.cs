using System.Buffers.Binary;

namespace Storage.Core.Wal;

/// <summary>
/// The CheckPoint struct logged by XLOG CHECKPOINT_SHUTDOWN / CHECKPOINT_ONLINE (pg_control.h).
/// Offsets follow the C layout on 64-bit platforms (88 bytes).
/// </summary>
public sealed record CheckpointRecord(
    bool IsShutdown,
    Lsn Redo,
    uint TimeLineId,
    uint PrevTimeLineId,
    bool FullPageWrites,
    ulong NextFullXid,
    uint NextOid,
    uint NextMulti,
    uint NextMultiOffset,
    uint OldestXid,
    uint OldestXidDb,
    uint OldestMulti,
    uint OldestMultiDb,
    DateTimeOffset Time,
    uint OldestCommitTsXid,
    uint NewestCommitTsXid,
    uint OldestActiveXid)
{
    public const int Size = 88;

    /// <summary>The 32-bit xid part of nextXid (FullTransactionId).</summary>
    public uint NextXid => (uint)NextFullXid;

    /// <summary>Returns the checkpoint, or null if the record is not a checkpoint record.</summary>
    public static CheckpointRecord? TryFrom(WalRecord record)
    {
        if (record.RmgrId != (byte)ResourceManagerId.Xlog) return null;
        if (record.RmgrInfo is not (XlogInfo.CheckpointShutdown or XlogInfo.CheckpointOnline)) return null;
        var d = record.MainData.Span;
        if (d.Length < Size)
            throw new WalDecodeException(record.Lsn, $"checkpoint record at {record.Lsn} has {d.Length} bytes of main data, expected {Size}");
        return new CheckpointRecord(
            IsShutdown: record.RmgrInfo == XlogInfo.CheckpointShutdown,
            Redo: new Lsn(BinaryPrimitives.ReadUInt64LittleEndian(d)),
            TimeLineId: BinaryPrimitives.ReadUInt32LittleEndian(d[8..]),
            PrevTimeLineId: BinaryPrimitives.ReadUInt32LittleEndian(d[12..]),
            FullPageWrites: d[16] != 0,
            NextFullXid: BinaryPrimitives.ReadUInt64LittleEndian(d[24..]),
            NextOid: BinaryPrimitives.ReadUInt32LittleEndian(d[32..]),
            NextMulti: BinaryPrimitives.ReadUInt32LittleEndian(d[36..]),
            NextMultiOffset: BinaryPrimitives.ReadUInt32LittleEndian(d[40..]),
            OldestXid: BinaryPrimitives.ReadUInt32LittleEndian(d[44..]),
            OldestXidDb: BinaryPrimitives.ReadUInt32LittleEndian(d[48..]),
            OldestMulti: BinaryPrimitives.ReadUInt32LittleEndian(d[52..]),
            OldestMultiDb: BinaryPrimitives.ReadUInt32LittleEndian(d[56..]),
            Time: DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadInt64LittleEndian(d[64..])),
            OldestCommitTsXid: BinaryPrimitives.ReadUInt32LittleEndian(d[72..]),
            NewestCommitTsXid: BinaryPrimitives.ReadUInt32LittleEndian(d[76..]),
            OldestActiveXid: BinaryPrimitives.ReadUInt32LittleEndian(d[80..]));
    }
}
