using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Storage.Core.Wal;

/// <summary>
/// Streaming decoder of PostgreSQL 15 WAL. Feed it WAL bytes at consecutive LSNs in chunks of any
/// size, then pull records with <see cref="TryDecodeNext"/>; it returns false when it needs more
/// bytes or when the end of WAL (a zeroed record header or page) was reached — check
/// <see cref="ReachedEndOfWal"/> to tell them apart. Invalid WAL throws <see cref="WalDecodeException"/>.
/// </summary>
/// <remarks>
/// The start LSN is either the start of a record, or a page/segment boundary. At a boundary the
/// decoder first skips the tail of a record that began on an earlier page (xlp_rem_len), exactly
/// like PostgreSQL's XLogFindNextRecord.
/// </remarks>
public sealed class WalDecoder
{
    private readonly WalGeometry _geometry;

    // Fed bytes not yet consumed: _buf[_bufOffset.._bufOffset+_count) holds WAL from _bufStart.
    private byte[] _buf = new byte[64 * 1024];
    private int _bufOffset;
    private int _count;
    private Lsn _bufStart;
    private Lsn _fedEnd;

    private Lsn _next;   // where the next record (or the page header before it) starts
    private Lsn _prev;   // start of the previous record, for the xl_prev check; Invalid = unknown

    // Skipping the tail of an earlier record when starting at a page boundary.
    private bool _skippingContinuation;
    private long _continuationRemaining = -1; // -1: first page header not read yet

    public WalDecoder(Lsn start, WalGeometry? geometry = null, Lsn previousRecord = default)
    {
        _geometry = geometry ?? WalGeometry.Default;
        if (start.Value % WalFormat.MaxAlign != 0)
            throw new ArgumentException($"WAL decoding must start at a MAXALIGN'd record start or page boundary, not {start}", nameof(start));
        if (_geometry.PageOffset(start) != 0 && _geometry.PageOffset(start) < WalFormat.PageHeaderSizeAt(_geometry.PageStartOf(start), _geometry))
            throw new ArgumentException($"{start} is inside a page header", nameof(start));
        _bufStart = _fedEnd = _next = start;
        _prev = previousRecord;
        _skippingContinuation = _geometry.PageOffset(start) == 0;
    }

    public WalGeometry Geometry => _geometry;

    /// <summary>Where the next record is expected: the EndLsn of the last decoded record.</summary>
    public Lsn NextLsn => _next;

    /// <summary>Start of the last decoded record (Invalid before the first one).</summary>
    public Lsn PreviousRecordLsn => _prev;

    /// <summary>LSN just after the last byte fed.</summary>
    public Lsn FedUpTo => _fedEnd;

    /// <summary>
    /// Start of the last record found abandoned (its continuation overwritten after a crash,
    /// XLP_FIRST_IS_OVERWRITE_CONTRECORD); Invalid if none.
    /// </summary>
    public Lsn LastOverwrittenRecordLsn { get; private set; }

    /// <summary>True once a zeroed record header or page header was found where a record must start.</summary>
    public bool ReachedEndOfWal { get; private set; }

    /// <summary>Appends the WAL bytes that follow those fed before.</summary>
    public void Feed(ReadOnlySpan<byte> data)
    {
        var pos = _fedEnd;
        _fedEnd += (ulong)data.Length;
        // Bytes before _bufStart were skipped already (segment padding after an XLOG_SWITCH).
        if (pos < _bufStart)
        {
            var skip = (int)Math.Min(data.Length, _bufStart - pos);
            data = data[skip..];
        }
        if (data.IsEmpty) return;
        EnsureRoom(data.Length);
        data.CopyTo(_buf.AsSpan(_bufOffset + _count));
        _count += data.Length;
    }

    /// <summary>Decodes the next record if all its bytes have been fed.</summary>
    public bool TryDecodeNext([NotNullWhen(true)] out WalRecord? record)
    {
        record = null;
        while (true)
        {
            if (ReachedEndOfWal) return false;
            if (_skippingContinuation)
            {
                if (!TrySkipContinuationStep()) return false;
                continue;
            }
            return TryDecodeRecord(out record);
        }
    }

    /// <summary>Decodes every complete record fed so far.</summary>
    public IEnumerable<WalRecord> DecodeAvailable()
    {
        while (TryDecodeNext(out var r)) yield return r;
    }

    private bool TryDecodeRecord([NotNullWhen(true)] out WalRecord? record)
    {
        record = null;
        var start = _next;
        if (_geometry.PageOffset(start) == 0)
        {
            if (!TryReadPageHeader(start, out var page)) return false;
            if (page.IsZero) { ReachedEndOfWal = true; return false; }
            page.Validate(start, _geometry);
            if (page.IsContinuation && page.RemainingLength > 0)
                throw new WalDecodeException(start, $"unexpected continuation data (xlp_rem_len {page.RemainingLength}) at {start} where a record should start");
            start += (ulong)page.Size;
        }

        // xl_tot_len is the first field; records are 8-byte aligned so it is never split by a page header.
        if (!TryGet(start, 4, out var lengthBytes)) return false;
        uint totalLength = BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (totalLength == 0) { ReachedEndOfWal = true; return false; }
        if (totalLength < WalFormat.RecordHeaderSize)
            throw new WalDecodeException(start, $"invalid record length at {start}: wanted {WalFormat.RecordHeaderSize}, got {totalLength}");
        if (totalLength > WalFormat.MaxRecordLength)
            throw new WalDecodeException(start, $"record length {totalLength} at {start} too long");

        // Validate the header as soon as we have it, so garbage is reported before waiting for its bytes.
        var header = new byte[WalFormat.RecordHeaderSize];
        var gathered = TryGather(start, totalLength, header, out var overwrittenAt);
        if (gathered == GatherResult.Overwritten) return AbandonOverwrittenRecord(start, overwrittenAt, out record);
        if (gathered == GatherResult.NeedMore) return false;
        ValidateHeader(start, header);

        var physicalEnd = PhysicalEnd(start, totalLength);
        // Only allocate and gather once every byte is there, so feeding tiny chunks stays cheap.
        bool allFed = physicalEnd <= _bufStart + (ulong)_count;
        var raw = allFed ? new byte[totalLength] : [];
        gathered = allFed ? TryGather(start, totalLength, raw, out overwrittenAt) : CheckForOverwrite(start, totalLength, out overwrittenAt);
        if (gathered == GatherResult.Overwritten) return AbandonOverwrittenRecord(start, overwrittenAt, out record);
        if (gathered == GatherResult.NeedMore) return false;
        ValidateCrc(start, raw);

        var end = WalFormat.MaxAlignUp(physicalEnd);
        bool isSwitch = raw[17] == (byte)ResourceManagerId.Xlog && (raw[16] & WalFormat.XlrRmgrInfoMask) == XlogInfo.Switch;
        if (isSwitch && !_geometry.IsSegmentStart(end))
            end = _geometry.SegmentStart(_geometry.SegmentNumber(end) + 1); // the rest of the segment is padding

        record = WalRecord.Parse(start, end, raw);
        _prev = start;
        _next = end;
        Discard(end);
        return true;
    }

    /// <summary>
    /// PostgreSQL 15 marks the page where an unfinished record was abandoned after a crash with
    /// XLP_FIRST_IS_OVERWRITE_CONTRECORD; decoding resumes with the record at that page.
    /// </summary>
    private bool AbandonOverwrittenRecord(Lsn recordStart, Lsn pageStart, out WalRecord? record)
    {
        record = null;
        LastOverwrittenRecordLsn = recordStart;
        _next = pageStart;
        Discard(pageStart);
        return TryDecodeNext(out record);
    }

    /// <summary>While waiting for a record's bytes, notices early if its tail was overwritten.</summary>
    private GatherResult CheckForOverwrite(Lsn start, uint totalLength, out Lsn overwrittenAt)
    {
        overwrittenAt = default;
        var page = _geometry.PageStartOf(start) + (ulong)WalGeometry.PageSize;
        var end = PhysicalEnd(start, totalLength);
        while (page < end)
        {
            if (!TryReadPageHeader(page, out var header)) return GatherResult.NeedMore;
            if ((header.Info & WalFormat.XlpFirstIsOverwriteContRecord) != 0)
            {
                header.Validate(page, _geometry);
                overwrittenAt = page;
                return GatherResult.Overwritten;
            }
            page += (ulong)WalGeometry.PageSize;
        }
        return GatherResult.NeedMore;
    }

    private void ValidateHeader(Lsn lsn, ReadOnlySpan<byte> header)
    {
        byte rmid = header[17];
        if (!ResourceManager.IsValid(rmid))
            throw new WalDecodeException(lsn, $"invalid resource manager ID {rmid} at {lsn}");
        var prev = new Lsn(BinaryPrimitives.ReadUInt64LittleEndian(header[8..]));
        if (_prev.IsValid && prev != _prev)
            throw new WalDecodeException(lsn, $"record with incorrect prev-link {prev} at {lsn} (expected {_prev})");
    }

    private static void ValidateCrc(Lsn lsn, ReadOnlySpan<byte> raw)
    {
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(raw[WalFormat.RecordCrcOffset..]);
        uint computed = ComputeRecordCrc(raw);
        if (stored != computed)
            throw new WalDecodeException(lsn, $"invalid record CRC at {lsn} (stored {stored:X8}, computed {computed:X8})");
    }

    /// <summary>PostgreSQL's record CRC: the data after the header first, then the header up to xl_crc.</summary>
    public static uint ComputeRecordCrc(ReadOnlySpan<byte> record)
    {
        uint crc = Crc32C.Append(Crc32C.Initial, record[WalFormat.RecordHeaderSize..]);
        crc = Crc32C.Append(crc, record[..WalFormat.RecordCrcOffset]);
        return Crc32C.Finish(crc);
    }

    /// <summary>Where the record's last byte ends, given that page headers interrupt it.</summary>
    private Lsn PhysicalEnd(Lsn start, uint totalLength)
    {
        var pos = start;
        ulong remaining = totalLength;
        while (true)
        {
            var pageEnd = _geometry.PageStartOf(pos) + (ulong)WalGeometry.PageSize;
            ulong onPage = (ulong)(pageEnd - pos);
            if (remaining <= onPage) return pos + remaining;
            remaining -= onPage;
            pos = pageEnd + (ulong)WalFormat.PageHeaderSizeAt(pageEnd, _geometry);
        }
    }

    /// <summary>
    /// Copies the first dest.Length bytes of the record at <paramref name="start"/>, skipping and
    /// checking the page headers of continuation pages. False if not all bytes were fed yet.
    /// </summary>
    private enum GatherResult { Done, NeedMore, Overwritten }

    private GatherResult TryGather(Lsn start, uint totalLength, Span<byte> dest, out Lsn overwrittenAt)
    {
        overwrittenAt = default;
        var pos = start;
        int copied = 0;
        while (copied < dest.Length)
        {
            if (_geometry.PageOffset(pos) == 0)
            {
                if (!TryReadPageHeader(pos, out var page)) return GatherResult.NeedMore;
                if (page.IsZero)
                    throw new WalDecodeException(pos, $"record at {start} continues onto a zeroed page at {pos} (torn record)");
                page.Validate(pos, _geometry);
                if ((page.Info & WalFormat.XlpFirstIsOverwriteContRecord) != 0)
                {
                    overwrittenAt = pos;
                    return GatherResult.Overwritten;
                }
                if (!page.IsContinuation)
                    throw new WalDecodeException(pos, $"there is no contrecord flag at {pos} (record at {start} continues there)");
                if (page.RemainingLength != totalLength - (uint)copied)
                    throw new WalDecodeException(pos, $"invalid contrecord length {page.RemainingLength} (expected {totalLength - (uint)copied}) at {pos}");
                pos += (ulong)page.Size;
            }
            var pageEnd = _geometry.PageStartOf(pos) + (ulong)WalGeometry.PageSize;
            int n = (int)Math.Min(dest.Length - copied, pageEnd - pos);
            if (!TryGet(pos, n, out var chunk)) return GatherResult.NeedMore;
            chunk.CopyTo(dest[copied..]);
            copied += n;
            pos += (ulong)n;
        }
        return GatherResult.Done;
    }

    /// <summary>One page of skipping the tail of a record that started before our start LSN.</summary>
    private bool TrySkipContinuationStep()
    {
        var pageStart = _next;
        if (!TryReadPageHeader(pageStart, out var page)) return false;
        if (page.IsZero) { ReachedEndOfWal = true; return false; }
        page.Validate(pageStart, _geometry);

        long remaining;
        if (_continuationRemaining < 0)
        {
            if (!page.IsContinuation || page.RemainingLength == 0)
            {
                _skippingContinuation = false; // a record starts right after the header
                return true;
            }
            remaining = page.RemainingLength;
        }
        else if ((page.Info & WalFormat.XlpFirstIsOverwriteContRecord) != 0)
        {
            _skippingContinuation = false; // the record we were skipping was abandoned; a new one starts here
            return true;
        }
        else
        {
            if (!page.IsContinuation || page.RemainingLength != _continuationRemaining)
                throw new WalDecodeException(pageStart, $"invalid contrecord at {pageStart}: xlp_rem_len {page.RemainingLength}, expected {_continuationRemaining}");
            remaining = _continuationRemaining;
        }

        var dataStart = pageStart + (ulong)page.Size;
        var pageEnd = pageStart + (ulong)WalGeometry.PageSize;
        long onPage = pageEnd - dataStart;
        if (remaining <= onPage)
        {
            _next = WalFormat.MaxAlignUp(dataStart + (ulong)remaining);
            _skippingContinuation = false;
        }
        else
        {
            _continuationRemaining = remaining - onPage;
            _next = pageEnd;
        }
        Discard(_next);
        return true;
    }

    private bool TryReadPageHeader(Lsn pageStart, out XLogPageHeader header)
    {
        header = default;
        if (!TryGet(pageStart, WalFormat.ShortPageHeaderSize, out var shortBytes)) return false;
        int size = XLogPageHeader.SizeNeeded(shortBytes);
        if (!TryGet(pageStart, size, out var bytes)) return false;
        header = XLogPageHeader.Parse(bytes);
        return true;
    }

    private bool TryGet(Lsn at, int length, out ReadOnlySpan<byte> bytes)
    {
        bytes = default;
        if (at < _bufStart) throw new InvalidOperationException($"WAL at {at} was already discarded (buffer starts at {_bufStart})");
        long offset = at - _bufStart;
        if (offset + length > _count) return false;
        bytes = _buf.AsSpan(_bufOffset + (int)offset, length);
        return true;
    }

    private void Discard(Lsn upTo)
    {
        if (upTo <= _bufStart) return;
        long n = upTo - _bufStart;
        if (n >= _count)
        {
            _bufOffset = 0;
            _count = 0;
        }
        else
        {
            _bufOffset += (int)n;
            _count -= (int)n;
        }
        _bufStart = upTo;
    }

    private void EnsureRoom(int extra)
    {
        if (_bufOffset + _count + extra <= _buf.Length) return;
        var target = _count + extra <= _buf.Length / 2 ? _buf : new byte[Math.Max(_buf.Length * 2, _count + extra)];
        Buffer.BlockCopy(_buf, _bufOffset, target, 0, _count);
        _buf = target;
        _bufOffset = 0;
    }
}
