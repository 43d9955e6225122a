namespace Storage.Core.Basebackup;

/// <summary>Reads WAL back out of a data directory's pg_wal segment files (timeline 1), the counterpart of <see cref="PgWalDirectoryWriter"/>.</summary>
public static class PgWalFiles
{
    /// <summary>WAL [<paramref name="from"/>, <paramref name="to"/>) across segments; throws if a segment is missing.</summary>
    public static byte[] Read(string walDirectory, Lsn from, Lsn to, WalGeometry? geometry = null)
    {
        var g = geometry ?? WalGeometry.Default;
        var result = new byte[to - from];
        int written = 0;
        for (var lsn = from; lsn < to;)
        {
            var path = Path.Combine(walDirectory, g.SegmentFileName(1, g.SegmentNumber(lsn)));
            using var segment = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            int n = (int)Math.Min(g.SegmentSize - g.SegmentOffset(lsn), to - lsn);
            if (RandomAccess.Read(segment, result.AsSpan(written, n), g.SegmentOffset(lsn)) != n)
                throw new EndOfStreamException($"{path} is shorter than a segment");
            written += n;
            lsn += (ulong)n;
        }
        return result;
    }

    /// <summary>The end of the last segment file present: how far <see cref="Read"/> can go.</summary>
    public static Lsn EndOfSegments(string walDirectory, WalGeometry? geometry = null)
    {
        var g = geometry ?? WalGeometry.Default;
        ulong? last = null;
        foreach (var file in Directory.EnumerateFiles(walDirectory))
            if (g.TryParseSegmentFileName(Path.GetFileName(file), out _, out var number) && (last is null || number > last))
                last = number;
        return last is { } n ? g.SegmentStart(n + 1) : Lsn.Zero;
    }
}
