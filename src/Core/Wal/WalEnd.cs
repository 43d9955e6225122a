namespace Storage.Core.Wal;

/// <summary>Why <see cref="WalEnd"/> stopped scanning.</summary>
public enum WalEndReason
{
    /// <summary>A zeroed record header or page: the normal end of a zero-filled WAL file.</summary>
    ZeroedTail,
    /// <summary>The input ended (possibly in the middle of a torn last record).</summary>
    EndOfInput,
    /// <summary>Bytes that are not a valid record (bad CRC, prev-link, page header...).</summary>
    InvalidRecord,
}

/// <summary>Result of a WAL end scan.</summary>
/// <param name="EndLsn">EndLsn of the last complete valid record, or the start LSN if there was none.</param>
/// <param name="LastRecordLsn">Start of that record (Invalid if none).</param>
/// <param name="RecordCount">How many valid records were read.</param>
/// <param name="Reason">Why the scan stopped.</param>
/// <param name="Detail">The decode error for <see cref="WalEndReason.InvalidRecord"/>.</param>
public sealed record WalEndResult(Lsn EndLsn, Lsn LastRecordLsn, long RecordCount, WalEndReason Reason, string? Detail);

/// <summary>
/// Finds where valid WAL ends, the way crash recovery does: read records until the first one that is
/// missing, torn, zeroed or invalid. A safekeeper calls this after a restart to find its flush point.
/// </summary>
public static class WalEnd
{
    /// <summary>
    /// Scans WAL read from <paramref name="wal"/>, whose first byte is at <paramref name="start"/>
    /// (a record start, or a page/segment boundary — then the tail of an earlier record is skipped),
    /// and returns the end LSN of the last complete valid record (its EndLsn), or
    /// <paramref name="start"/> if there is none. Never throws for bad WAL: that is where WAL ends.
    /// </summary>
    public static Lsn Find(Stream wal, Lsn start, WalGeometry? geometry = null) =>
        Scan(wal, start, geometry).EndLsn;

    /// <summary>Like <see cref="Find"/> but also tells what stopped the scan.</summary>
    public static WalEndResult Scan(Stream wal, Lsn start, WalGeometry? geometry = null, Lsn previousRecord = default)
    {
        var decoder = new WalDecoder(start, geometry, previousRecord);
        var end = start;
        var last = Lsn.Invalid;
        long count = 0;
        var buffer = new byte[256 * 1024];
        try
        {
            while (true)
            {
                while (decoder.TryDecodeNext(out var record))
                {
                    end = record.EndLsn;
                    last = record.Lsn;
                    count++;
                }
                if (decoder.ReachedEndOfWal)
                    return new WalEndResult(end, last, count, WalEndReason.ZeroedTail, null);
                int n = wal.Read(buffer);
                if (n == 0)
                    return new WalEndResult(end, last, count, WalEndReason.EndOfInput, null);
                decoder.Feed(buffer.AsSpan(0, n));
            }
        }
        catch (WalDecodeException e)
        {
            return new WalEndResult(end, last, count, WalEndReason.InvalidRecord, e.Message);
        }
    }
}
