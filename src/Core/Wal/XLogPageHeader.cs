using System.Buffers.Binary;

namespace Storage.Core.Wal;

/// <summary>
/// The header at the start of every 8 KiB WAL page (XLogPageHeaderData). The first page of a
/// segment carries the long form (XLogLongPageHeaderData) that also identifies the cluster.
/// </summary>
public readonly record struct XLogPageHeader(
    ushort Magic,
    ushort Info,
    uint TimeLineId,
    Lsn PageAddress,
    uint RemainingLength,
    ulong SystemId = 0,
    uint SegmentSize = 0,
    uint BlockSize = 0)
{
    public bool IsLong => (Info & WalFormat.XlpLongHeader) != 0;
    public bool IsContinuation => (Info & WalFormat.XlpFirstIsContRecord) != 0;
    public int Size => IsLong ? WalFormat.LongPageHeaderSize : WalFormat.ShortPageHeaderSize;

    /// <summary>True for a page of zeros: the place after the end of WAL in a zero-filled file.</summary>
    public bool IsZero => Magic == 0 && Info == 0 && TimeLineId == 0 && PageAddress.Value == 0 && RemainingLength == 0;

    /// <summary>Bytes needed to parse: the short size, or the long size if the long flag is set.</summary>
    public static int SizeNeeded(ReadOnlySpan<byte> firstBytes) =>
        (BinaryPrimitives.ReadUInt16LittleEndian(firstBytes[2..]) & WalFormat.XlpLongHeader) != 0
            ? WalFormat.LongPageHeaderSize : WalFormat.ShortPageHeaderSize;

    /// <summary>Parses a header; <paramref name="bytes"/> must hold <see cref="SizeNeeded"/> bytes.</summary>
    public static XLogPageHeader Parse(ReadOnlySpan<byte> bytes)
    {
        var magic = BinaryPrimitives.ReadUInt16LittleEndian(bytes);
        var info = BinaryPrimitives.ReadUInt16LittleEndian(bytes[2..]);
        var tli = BinaryPrimitives.ReadUInt32LittleEndian(bytes[4..]);
        var pageAddr = new Lsn(BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]));
        var remLen = BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..]);
        if ((info & WalFormat.XlpLongHeader) == 0)
            return new XLogPageHeader(magic, info, tli, pageAddr, remLen);
        return new XLogPageHeader(magic, info, tli, pageAddr, remLen,
            BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[32..]),
            BinaryPrimitives.ReadUInt32LittleEndian(bytes[36..]));
    }

    /// <summary>
    /// Checks the header the way PostgreSQL's XLogReaderValidatePageHeader does: magic, known info
    /// bits, long header exactly at segment starts with matching geometry, and that the page
    /// claims to be at <paramref name="pageLsn"/> (old recycled segments fail this).
    /// </summary>
    public void Validate(Lsn pageLsn, WalGeometry geometry)
    {
        if (Magic != WalFormat.PageMagic)
            throw new WalDecodeException(pageLsn, $"invalid magic number {Magic:X4} in WAL page at {pageLsn} (expected {WalFormat.PageMagic:X4} for PostgreSQL 15)");
        if ((Info & ~WalFormat.XlpAllFlags) != 0)
            throw new WalDecodeException(pageLsn, $"invalid info bits {Info:X4} in WAL page at {pageLsn}");
        bool segmentStart = geometry.IsSegmentStart(pageLsn);
        if (segmentStart && !IsLong)
            throw new WalDecodeException(pageLsn, $"invalid info bits {Info:X4} in WAL page at {pageLsn}: segment start without long header");
        if (!segmentStart && IsLong)
            throw new WalDecodeException(pageLsn, $"invalid info bits {Info:X4} in WAL page at {pageLsn}: long header in the middle of a segment");
        if (IsLong)
        {
            if (SegmentSize != geometry.SegmentSize)
                throw new WalDecodeException(pageLsn, $"WAL file is from different database system: incorrect segment size {SegmentSize} in page header at {pageLsn}");
            if (BlockSize != WalGeometry.PageSize)
                throw new WalDecodeException(pageLsn, $"WAL file is from different database system: incorrect XLOG_BLCKSZ {BlockSize} in page header at {pageLsn}");
        }
        if (PageAddress != pageLsn)
            throw new WalDecodeException(pageLsn, $"unexpected pageaddr {PageAddress} in WAL page at {pageLsn}");
    }

    /// <summary>Writes the header (short or long per <see cref="Info"/>) into <paramref name="dest"/>.</summary>
    public void WriteTo(Span<byte> dest)
    {
        dest[..Size].Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(dest, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[2..], Info);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[4..], TimeLineId);
        BinaryPrimitives.WriteUInt64LittleEndian(dest[8..], PageAddress.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[16..], RemainingLength);
        if (!IsLong) return;
        BinaryPrimitives.WriteUInt64LittleEndian(dest[24..], SystemId);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[32..], SegmentSize);
        BinaryPrimitives.WriteUInt32LittleEndian(dest[36..], BlockSize);
    }
}
