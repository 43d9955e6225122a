namespace Storage.Core;

/// <summary>
/// Segment and page arithmetic for PostgreSQL WAL with the default geometry: 16 MiB segments of
/// 8 KiB pages. Segment file names are the 24 hex digits PostgreSQL uses:
/// timeline (8) + "log" number (8) + segment within the log (8).
/// </summary>
public sealed class WalGeometry
{
    public const int DefaultSegmentSize = 16 * 1024 * 1024;
    public const int PageSize = 8192;

    public static readonly WalGeometry Default = new(DefaultSegmentSize);

    public int SegmentSize { get; }

    public WalGeometry(int segmentSize)
    {
        if (segmentSize < 1024 * 1024 || (segmentSize & (segmentSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(segmentSize), segmentSize, "WAL segment size must be a power of two of at least 1 MiB");
        SegmentSize = segmentSize;
    }

    /// <summary>How many segments one 4 GiB "log file" (the middle 8 digits of a name) holds.</summary>
    public ulong SegmentsPerLogId => 0x1_0000_0000UL / (ulong)SegmentSize;

    public ulong SegmentNumber(Lsn lsn) => lsn.Value / (ulong)SegmentSize;
    public Lsn SegmentStart(ulong segmentNumber) => new(segmentNumber * (ulong)SegmentSize);
    public Lsn SegmentStartOf(Lsn lsn) => SegmentStart(SegmentNumber(lsn));
    public int SegmentOffset(Lsn lsn) => (int)(lsn.Value % (ulong)SegmentSize);
    public int PageOffset(Lsn lsn) => (int)(lsn.Value % PageSize);
    public Lsn PageStartOf(Lsn lsn) => new(lsn.Value - (ulong)PageOffset(lsn));
    public bool IsSegmentStart(Lsn lsn) => SegmentOffset(lsn) == 0;

    /// <summary>PostgreSQL's XLogFileName: e.g. 000000010000000000000001.</summary>
    public string SegmentFileName(uint timeline, ulong segmentNumber) =>
        $"{timeline:X8}{(uint)(segmentNumber / SegmentsPerLogId):X8}{(uint)(segmentNumber % SegmentsPerLogId):X8}";

    /// <summary>Parses a 24-hex-digit segment file name (an optional ".partial" suffix is allowed).</summary>
    public bool TryParseSegmentFileName(string name, out uint timeline, out ulong segmentNumber)
    {
        timeline = 0; segmentNumber = 0;
        if (name.EndsWith(".partial", StringComparison.Ordinal)) name = name[..^".partial".Length];
        if (name.Length != 24) return false;
        if (!uint.TryParse(name.AsSpan(0, 8), System.Globalization.NumberStyles.AllowHexSpecifier, null, out timeline)) return false;
        if (!uint.TryParse(name.AsSpan(8, 8), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var log)) return false;
        if (!uint.TryParse(name.AsSpan(16, 8), System.Globalization.NumberStyles.AllowHexSpecifier, null, out var seg)) return false;
        if (seg >= SegmentsPerLogId) return false;
        segmentNumber = log * SegmentsPerLogId + seg;
        return true;
    }
}
