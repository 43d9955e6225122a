namespace Storage.Core.Wal;

/// <summary>Where the records of a piece of WAL end, found by decoding it (which checks every record's CRC).</summary>
public static class WalRecordEnds
{
    /// <summary>
    /// Decodes WAL [<paramref name="start"/>, start + length) that starts at a record boundary or a
    /// page boundary and ends at a record end; returns every record end in it (ascending, the last
    /// is the end of the data). Throws <see cref="WalDecodeException"/> for WAL that is damaged,
    /// zeroed, or ends inside a record.
    /// </summary>
    public static List<Lsn> Find(Lsn start, ReadOnlySpan<byte> wal, WalGeometry? geometry = null)
    {
        var end = start + (ulong)wal.Length;
        var decoder = new WalDecoder(start, geometry);
        decoder.Feed(wal);
        var ends = new List<Lsn>();
        while (decoder.TryDecodeNext(out _)) ends.Add(decoder.NextLsn);
        if (decoder.ReachedEndOfWal)
            throw new WalDecodeException(decoder.NextLsn, $"the WAL holds an empty record header at {decoder.NextLsn}, before its end {end}");
        if (decoder.NextLsn != end)
            throw new WalDecodeException(decoder.NextLsn, $"the WAL [{start}, {end}) ends inside a record that starts at {decoder.NextLsn}");
        return ends;
    }
}
