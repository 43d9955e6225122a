namespace Storage.Core.Wal;

/// <summary>
/// Constants of the PostgreSQL 15 on-disk WAL format (xlog_internal.h, xlogrecord.h).
/// </summary>
public static class WalFormat
{
    /// <summary>XLOG_PAGE_MAGIC of PostgreSQL 15; it changes with every major version.</summary>
    public const ushort PageMagic = 0xD110;

    /// <summary>MAXALIGN on 64-bit platforms: records start on 8-byte boundaries.</summary>
    public const int MaxAlign = 8;

    public const int ShortPageHeaderSize = 24; // MAXALIGN(sizeof(XLogPageHeaderData))
    public const int LongPageHeaderSize = 40;  // MAXALIGN(sizeof(XLogLongPageHeaderData))
    public const int RecordHeaderSize = 24;    // SizeOfXLogRecord
    public const int RecordCrcOffset = 20;     // offsetof(XLogRecord, xl_crc)
    public const int BlockSize = 8192;         // BLCKSZ (heap pages; full-page images are this size)

    // xlp_info bits
    public const ushort XlpFirstIsContRecord = 0x0001;
    public const ushort XlpLongHeader = 0x0002;
    public const ushort XlpBkpRemovable = 0x0004;
    public const ushort XlpFirstIsOverwriteContRecord = 0x0008;
    public const ushort XlpAllFlags = 0x000F;

    // xl_info: the low 4 bits belong to the WAL machinery, the high 4 bits to the resource manager.
    public const byte XlrInfoMask = 0x0F;
    public const byte XlrRmgrInfoMask = 0xF0;

    // Block ids with special meaning in the record's header area.
    public const int XlrMaxBlockId = 32;
    public const byte XlrBlockIdDataShort = 255;
    public const byte XlrBlockIdDataLong = 254;
    public const byte XlrBlockIdOrigin = 253;
    public const byte XlrBlockIdTopLevelXid = 252;

    // XLogRecordBlockHeader.fork_flags
    public const byte BkpBlockForkMask = 0x0F;
    public const byte BkpBlockHasImage = 0x10;
    public const byte BkpBlockHasData = 0x20;
    public const byte BkpBlockWillInit = 0x40;
    public const byte BkpBlockSameRel = 0x80;

    // XLogRecordBlockImageHeader.bimg_info (PostgreSQL 15)
    public const byte BkpImageHasHole = 0x01;
    public const byte BkpImageApply = 0x02;
    public const byte BkpImageCompressPglz = 0x04;
    public const byte BkpImageCompressLz4 = 0x08;
    public const byte BkpImageCompressZstd = 0x10;
    public const byte BkpImageCompressMask = BkpImageCompressPglz | BkpImageCompressLz4 | BkpImageCompressZstd;

    /// <summary>A sanity limit on xl_tot_len (PostgreSQL caps records at about 1 GB).</summary>
    public const uint MaxRecordLength = 1020 * 1024 * 1024;

    public static ulong MaxAlignUp(ulong value) => (value + MaxAlign - 1) & ~(ulong)(MaxAlign - 1);
    public static Lsn MaxAlignUp(Lsn lsn) => new(MaxAlignUp(lsn.Value));

    /// <summary>Size of the page header at an LSN that is the start of a page.</summary>
    public static int PageHeaderSizeAt(Lsn pageStart, WalGeometry geometry) =>
        geometry.IsSegmentStart(pageStart) ? LongPageHeaderSize : ShortPageHeaderSize;

    /// <summary>PostgreSQL timestamps count microseconds from 2000-01-01 UTC.</summary>
    public static readonly DateTimeOffset PostgresEpoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static DateTimeOffset FromTimestampTz(long microseconds) => PostgresEpoch.AddTicks(microseconds * 10);
    public static long ToTimestampTz(DateTimeOffset time) => (time.UtcTicks - PostgresEpoch.UtcTicks) / 10;
}
