using System.Globalization;
using System.Text;

namespace Storage.Core.Wal;

/// <summary>
/// Formats records one per line like PostgreSQL 15's pg_waldump, e.g.
/// <c>rmgr: Heap        len (rec/tot):     59/    59, tx:        735, lsn: 0/0151B2A8, prev 0/0151B270, desc: INSERT , blkref #0: rel 1663/5/16384 blk 0</c>.
/// The desc part names the operation (and the time of commits/aborts), not every detail pg_waldump shows.
/// </summary>
public static class WalDumpFormatter
{
    public static string Format(WalRecord record)
    {
        var sb = new StringBuilder(160);
        sb.Append(CultureInfo.InvariantCulture,
            $"rmgr: {record.RmgrName,-11} len (rec/tot): {record.RecordLength,6}/{record.TotalLength,6}, tx: {record.Xid,10}, lsn: {FormatLsn(record.Lsn)}, prev {FormatLsn(record.Prev)}, desc: {RecordInfoNames.Identify(record)} {Describe(record)}");
        foreach (var block in record.BlockReferences)
        {
            sb.Append(CultureInfo.InvariantCulture, $", blkref #{block.BlockId}: rel {block.Rel}");
            if (block.Fork != ForkNumber.Main) sb.Append(" fork ").Append(ForkNames.Name(block.Fork));
            sb.Append(CultureInfo.InvariantCulture, $" blk {block.BlockNumber}");
            if (block.Image != null) sb.Append(block.Image.IsApplied ? " FPW" : " FPW for WAL verification");
        }
        return sb.ToString();
    }

    /// <summary>pg_waldump prints LSNs with the low half zero-padded to 8 digits.</summary>
    public static string FormatLsn(Lsn lsn) => $"{lsn.Value >> 32:X}/{lsn.Value & 0xFFFFFFFF:X8}";

    private static string Describe(WalRecord record)
    {
        var xact = record.RmgrId == (byte)ResourceManagerId.Transaction ? XactRecord.TryFrom(record) : null;
        if (xact != null && xact.Kind != XactKind.Prepare)
            return xact.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + " UTC";
        var checkpoint = CheckpointRecord.TryFrom(record);
        if (checkpoint != null)
            return string.Create(CultureInfo.InvariantCulture, $"redo {checkpoint.Redo}; tli {checkpoint.TimeLineId}; xid {checkpoint.NextFullXid >> 32}:{checkpoint.NextXid}; oid {checkpoint.NextOid}");
        return "";
    }
}
