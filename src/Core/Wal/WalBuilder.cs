using System.Buffers.Binary;

namespace Storage.Core.Wal;

/// <summary>
/// Writes byte-exact PostgreSQL 15 WAL: records with xl_prev chaining and CRCs, MAXALIGN padding,
/// and the page headers PostgreSQL puts at every 8 KiB page (long ones at segment starts,
/// xlp_rem_len + XLP_FIRST_IS_CONTRECORD where a record continues from the previous page).
/// Used to generate WAL for tests and benchmarks.
/// </summary>
public sealed class WalBuilder
{
    private readonly WalGeometry _geometry;
    private readonly MemoryStream _bytes = new();
    private Lsn _bytesStart; // LSN of the first byte in _bytes
    private Lsn _pos;        // LSN of the next byte to write = EndLsn
    private ushort _nextPageExtraFlags; // xlp_info bits for the next page header only

    public ulong SystemId { get; }
    public uint TimeLineId { get; }
    /// <summary>PostgreSQL sets XLP_BKP_REMOVABLE on pages written outside of online backups.</summary>
    public bool MarkPagesBackupRemovable { get; init; } = true;

    /// <param name="start">Segment start, page start, or the end of an existing record (MAXALIGN'd).</param>
    /// <param name="previousRecord">Start of the record before <paramref name="start"/>, for the first xl_prev.</param>
    public WalBuilder(Lsn start, ulong systemId = 7_000_000_000_000_000_001, uint timeLineId = 1,
        WalGeometry? geometry = null, Lsn previousRecord = default)
    {
        if (start.Value % WalFormat.MaxAlign != 0)
            throw new ArgumentException($"WAL must be built from a MAXALIGN'd position, not {start}", nameof(start));
        _geometry = geometry ?? WalGeometry.Default;
        SystemId = systemId;
        TimeLineId = timeLineId;
        _bytesStart = _pos = start;
        LastRecordLsn = previousRecord;
    }

    /// <summary>Where the next record will go (the EndLsn of the last record).</summary>
    public Lsn EndLsn => _pos;
    /// <summary>LSN of the first byte <see cref="TakeBytes"/> will return.</summary>
    public Lsn PendingStartLsn => _bytesStart;
    public Lsn LastRecordLsn { get; private set; }
    public int RecordCount { get; private set; }

    /// <summary>Appends a record whose only payload is main data. Returns its start and end LSN.</summary>
    public (Lsn Start, Lsn End) AppendRecord(byte rmgrId, byte info, uint xid, ReadOnlySpan<byte> mainData)
    {
        int headerLen = mainData.Length == 0 ? 0 : mainData.Length <= byte.MaxValue ? 2 : 5;
        var body = new byte[headerLen + mainData.Length];
        WriteMainDataHeader(body, mainData.Length, headerLen);
        mainData.CopyTo(body.AsSpan(headerLen));
        return AppendRecordBody(rmgrId, info, xid, body);
    }

    /// <summary>
    /// Appends a record with block references (block ids 0, 1, ... in list order) and main data,
    /// laid out like XLogRecordAssemble: all headers first, then each block's image and data, then
    /// the main data.
    /// </summary>
    public (Lsn Start, Lsn End) AppendRecord(byte rmgrId, byte info, uint xid, IReadOnlyList<WalBlockSpec> blocks, ReadOnlySpan<byte> mainData)
    {
        if (blocks.Count > WalFormat.XlrMaxBlockId + 1)
            throw new ArgumentException($"at most {WalFormat.XlrMaxBlockId + 1} block references", nameof(blocks));
        // BinaryWriter writes little-endian, as the WAL format is on the platforms PostgreSQL runs on.
        var headerStream = new MemoryStream();
        var headers = new BinaryWriter(headerStream);
        var payloads = new MemoryStream();
        RelFileNode? previousRel = null;
        for (int id = 0; id < blocks.Count; id++)
        {
            var block = blocks[id];
            bool hasImage = !block.PageImage.IsEmpty;
            bool hasData = !block.Data.IsEmpty;
            if (block.Data.Length > ushort.MaxValue)
                throw new ArgumentException($"block {id} data is longer than 65535 bytes", nameof(blocks));
            byte forkFlags = (byte)block.Fork;
            if (hasImage) forkFlags |= WalFormat.BkpBlockHasImage;
            if (hasData) forkFlags |= WalFormat.BkpBlockHasData;
            if (block.WillInit) forkFlags |= WalFormat.BkpBlockWillInit;
            bool sameRel = previousRel == block.Rel;
            if (sameRel) forkFlags |= WalFormat.BkpBlockSameRel;

            // XLogRecordBlockHeader
            headers.Write((byte)id);
            headers.Write(forkFlags);
            headers.Write((ushort)block.Data.Length);
            if (hasImage)
            {
                if (block.PageImage.Length != WalFormat.BlockSize)
                    throw new ArgumentException($"block {id} page image must be {WalFormat.BlockSize} bytes", nameof(blocks));
                if (block.HoleOffset + block.HoleLength > WalFormat.BlockSize)
                    throw new ArgumentException($"block {id} hole is outside the page", nameof(blocks));
                bool hasHole = block.HoleLength > 0;
                var page = block.PageImage.Span;
                byte[] image = hasHole ? [.. page[..block.HoleOffset], .. page[(block.HoleOffset + block.HoleLength)..]] : page.ToArray();
                // XLogRecordBlockImageHeader (uncompressed: the hole length is implied)
                headers.Write((ushort)image.Length);
                headers.Write(hasHole ? block.HoleOffset : (ushort)0);
                headers.Write((byte)(WalFormat.BkpImageApply | (hasHole ? WalFormat.BkpImageHasHole : 0)));
                payloads.Write(image);
            }
            if (!sameRel)
            {
                headers.Write(block.Rel.SpcNode);
                headers.Write(block.Rel.DbNode);
                headers.Write(block.Rel.RelNode);
            }
            headers.Write(block.BlockNumber);
            payloads.Write(block.Data.Span);
            previousRel = block.Rel;
        }
        int mainHeaderLen = mainData.Length == 0 ? 0 : mainData.Length <= byte.MaxValue ? 2 : 5;
        var mainHeader = new byte[mainHeaderLen];
        WriteMainDataHeader(mainHeader, mainData.Length, mainHeaderLen);
        headers.Write(mainHeader);
        headers.Write(payloads.GetBuffer().AsSpan(0, (int)payloads.Length));
        headers.Write(mainData);
        headers.Flush();
        return AppendRecordBody(rmgrId, info, xid, headerStream.ToArray());
    }

    /// <summary>
    /// Appends a record given everything after the 24-byte XLogRecord header (block headers,
    /// data headers, payloads). The caller is responsible for the body being well formed.
    /// </summary>
    public (Lsn Start, Lsn End) AppendRecordBody(byte rmgrId, byte info, uint xid, ReadOnlySpan<byte> body)
    {
        var record = new byte[WalFormat.RecordHeaderSize + body.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)record.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), xid);
        BinaryPrimitives.WriteUInt64LittleEndian(record.AsSpan(8), LastRecordLsn.Value);
        record[16] = info;
        record[17] = rmgrId;
        body.CopyTo(record.AsSpan(WalFormat.RecordHeaderSize));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(WalFormat.RecordCrcOffset), WalDecoder.ComputeRecordCrc(record));
        return WriteRecord(record);
    }

    /// <summary>An XLOG NOOP record whose xl_tot_len is exactly <paramref name="totalLength"/> (24, or at least 26).</summary>
    public (Lsn Start, Lsn End) AppendNoop(int totalLength)
    {
        if (totalLength == WalFormat.RecordHeaderSize)
            return AppendRecordBody((byte)ResourceManagerId.Xlog, XlogInfo.Noop, 0, []);
        if (totalLength < WalFormat.RecordHeaderSize + 2)
            throw new ArgumentOutOfRangeException(nameof(totalLength), totalLength, "a NOOP record is 24 bytes or at least 26");
        // Short data header (2 bytes) up to 255 bytes of data, long header (5 bytes) beyond.
        int headerLen = totalLength - WalFormat.RecordHeaderSize - 2 <= byte.MaxValue ? 2 : 5;
        int dataLen = totalLength - WalFormat.RecordHeaderSize - headerLen;
        var body = new byte[headerLen + dataLen];
        WriteMainDataHeader(body, dataLen, headerLen);
        for (int i = 0; i < dataLen; i++) body[headerLen + i] = (byte)(i * 31 + 7);
        return AppendRecordBody((byte)ResourceManagerId.Xlog, XlogInfo.Noop, 0, body);
    }

    /// <summary>A plain commit record (xl_xact_commit with just xact_time).</summary>
    public (Lsn Start, Lsn End) AppendCommit(uint xid, DateTimeOffset time)
    {
        Span<byte> data = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(data, WalFormat.ToTimestampTz(time));
        return AppendRecord((byte)ResourceManagerId.Transaction, XactInfo.Commit, xid, data);
    }

    /// <summary>An abort record (xl_xact_abort with just xact_time).</summary>
    public (Lsn Start, Lsn End) AppendAbort(uint xid, DateTimeOffset time)
    {
        Span<byte> data = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(data, WalFormat.ToTimestampTz(time));
        return AppendRecord((byte)ResourceManagerId.Transaction, XactInfo.Abort, xid, data);
    }

    /// <summary>
    /// An XLOG_SWITCH record; the rest of its segment becomes padding (pages with only a short
    /// header, as PostgreSQL writes them) and the returned end is the next segment's start.
    /// </summary>
    public (Lsn Start, Lsn End) AppendSwitch()
    {
        var (start, end) = AppendRecordBody((byte)ResourceManagerId.Xlog, XlogInfo.Switch, 0, []);
        if (_geometry.IsSegmentStart(end)) return (start, end);
        var nextSegment = _geometry.SegmentStart(_geometry.SegmentNumber(end) + 1);
        while (_pos < nextSegment)
        {
            if (_geometry.PageOffset(_pos) == 0)
                WritePageHeader(continuationBytes: 0);
            var pageEnd = _geometry.PageStartOf(_pos) + (ulong)WalGeometry.PageSize;
            WriteZeros((int)(pageEnd - _pos));
        }
        return (start, nextSegment);
    }

    /// <summary>
    /// What PostgreSQL 15 writes after crash recovery found a record whose continuation never
    /// reached disk: the page where the continuation should have been gets
    /// XLP_FIRST_IS_OVERWRITE_CONTRECORD and starts with an XLOG_OVERWRITE_CONTRECORD record naming
    /// the abandoned record. Build the new WAL from that page start with previousRecord = the last
    /// complete record.
    /// </summary>
    public (Lsn Start, Lsn End) AppendOverwriteContrecord(Lsn overwrittenRecord, DateTimeOffset time)
    {
        if (_geometry.PageOffset(_pos) != 0)
            throw new InvalidOperationException($"an overwrite-contrecord record must start a page; the builder is at {_pos}");
        _nextPageExtraFlags = WalFormat.XlpFirstIsOverwriteContRecord;
        Span<byte> data = stackalloc byte[16]; // xl_overwrite_contrecord
        BinaryPrimitives.WriteUInt64LittleEndian(data, overwrittenRecord.Value);
        BinaryPrimitives.WriteInt64LittleEndian(data[8..], WalFormat.ToTimestampTz(time));
        return AppendRecord((byte)ResourceManagerId.Xlog, XlogInfo.OverwriteContrecord, 0, data);
    }

    /// <summary>Returns the bytes written since the last call (from <see cref="PendingStartLsn"/> to <see cref="EndLsn"/>).</summary>
    public byte[] TakeBytes()
    {
        var bytes = _bytes.ToArray();
        _bytes.SetLength(0);
        _bytesStart = _pos;
        return bytes;
    }

    private static void WriteMainDataHeader(Span<byte> body, int dataLen, int headerLen)
    {
        if (headerLen == 2)
        {
            body[0] = WalFormat.XlrBlockIdDataShort;
            body[1] = (byte)dataLen;
        }
        else if (headerLen == 5)
        {
            body[0] = WalFormat.XlrBlockIdDataLong;
            BinaryPrimitives.WriteUInt32LittleEndian(body[1..], (uint)dataLen);
        }
    }

    private (Lsn Start, Lsn End) WriteRecord(byte[] record)
    {
        if (_geometry.PageOffset(_pos) == 0) WritePageHeader(continuationBytes: 0);
        var start = _pos;
        int written = 0;
        while (written < record.Length)
        {
            if (_geometry.PageOffset(_pos) == 0) WritePageHeader(continuationBytes: (uint)(record.Length - written));
            var pageEnd = _geometry.PageStartOf(_pos) + (ulong)WalGeometry.PageSize;
            int n = (int)Math.Min(record.Length - written, pageEnd - _pos);
            Write(record.AsSpan(written, n));
            written += n;
        }
        WriteZeros((int)(WalFormat.MaxAlignUp(_pos) - _pos));
        LastRecordLsn = start;
        RecordCount++;
        return (start, _pos);
    }

    private void WritePageHeader(uint continuationBytes)
    {
        bool isLong = _geometry.IsSegmentStart(_pos);
        ushort info = 0;
        if (continuationBytes > 0) info |= WalFormat.XlpFirstIsContRecord;
        if (isLong) info |= WalFormat.XlpLongHeader;
        if (MarkPagesBackupRemovable) info |= WalFormat.XlpBkpRemovable;
        info |= _nextPageExtraFlags;
        _nextPageExtraFlags = 0;
        var header = isLong
            ? new XLogPageHeader(WalFormat.PageMagic, info, TimeLineId, _pos, continuationBytes, SystemId, (uint)_geometry.SegmentSize, WalGeometry.PageSize)
            : new XLogPageHeader(WalFormat.PageMagic, info, TimeLineId, _pos, continuationBytes);
        Span<byte> bytes = stackalloc byte[header.Size];
        header.WriteTo(bytes);
        Write(bytes);
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _bytes.Write(bytes);
        _pos += (ulong)bytes.Length;
    }

    private void WriteZeros(int count)
    {
        if (count <= 0) return;
        _bytes.SetLength(_bytes.Length + count); // MemoryStream zero-fills growth
        _bytes.Position = _bytes.Length;
        _pos += (ulong)count;
    }
}
