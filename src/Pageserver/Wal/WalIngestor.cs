using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Pageserver.Wal;

/// <summary>A segment whose records are all ingested, and where ingest would resume after it.</summary>
internal sealed record FinishedSegment(SegmentIndex Index, Lsn ResumeFrom, Lsn ResumePrev);

/// <summary>
/// Received WAL did not decode (<see cref="WalDecodeException"/> inside says where and why). The
/// whole records before it were ingested, and finished <see cref="Finished"/>; nothing from the bad
/// record on was kept.
/// </summary>
internal sealed class CorruptWalException(WalDecodeException cause, IReadOnlyList<FinishedSegment> finished) : Exception(cause.Message, cause)
{
    public Lsn Lsn => cause.Lsn;
    public IReadOnlyList<FinishedSegment> Finished => finished;
}

/// <summary>
/// Turns a stream of committed WAL into segment layers and their index: every record is decoded
/// (which checks its CRC) and only then are its bytes written to the segment store; each segment's
/// index is handed out once the first record of a later segment has been decoded.
/// </summary>
/// <remarks>
/// Corrupt WAL never spreads: bytes beyond the last whole valid record stay in memory until a
/// record completes, so a layer (which the replay instance reads, uploads copy and basebackups
/// serve) never holds unchecked bytes. When received WAL does not decode, or cannot be written,
/// the ingestor is rewound to the end of the last whole record it wrote (<see cref="NextByte"/>)
/// with a decoder restarted there, ready for the same WAL from another source.
/// </remarks>
internal sealed class WalIngestor
{
    private readonly WalSegmentStore _store;
    private SegmentIndex _current;
    private WalDecoder _decoder = null!;

    // Where a rewind restarts: everything below Fetch is in the store; decoding restarts at the record
    // boundary Decode (at or after Fetch) whose predecessor starts at Prev.
    private (Lsn Fetch, Lsn Decode, Lsn Prev) _resume;
    // Received bytes not yet in the store: [_written, NextByte).
    private byte[] _pending = new byte[64 * 1024];
    private int _pendingCount;
    private Lsn _written;
    // Bytes below this may be written unchecked: the tail of a record that began in a segment no
    // longer on disk (retention removed it), so there is nothing to check them with.
    private Lsn _trustedEnd;

    /// <param name="fetchFrom">Where the next bytes start (may be before <paramref name="decodeFrom"/>, inside a record).</param>
    /// <param name="decodeFrom">The first record boundary to decode from.</param>
    /// <param name="decodePrev">The start of the record before it (whose tail lies before <paramref name="decodeFrom"/>).</param>
    public WalIngestor(WalSegmentStore store, Lsn fetchFrom, Lsn decodeFrom, Lsn decodePrev)
    {
        if (decodeFrom < fetchFrom) throw new ArgumentException($"decoding from {decodeFrom} needs bytes from there, not {fetchFrom}");
        _store = store;
        _current = new SegmentIndex { Segment = store.Geometry.SegmentNumber(decodeFrom) };
        IngestedLsn = decodeFrom;
        PrevRecordLsn = decodePrev;
        _resume = (fetchFrom, decodeFrom, decodePrev);
        Begin();
    }

    /// <summary>Where the next received byte must start.</summary>
    public Lsn NextByte { get; private set; }

    /// <summary>End of the last complete record ingested.</summary>
    public Lsn IngestedLsn { get; private set; }

    public Lsn PrevRecordLsn { get; private set; }

    public long RecordCount { get; private set; }

    /// <summary>The unfinished segment's index so far (commits there count for timestamp lookups).</summary>
    public SegmentIndex Current => _current;

    /// <summary>
    /// Ingests bytes that start at <see cref="NextByte"/>; returns the segments this finished. WAL
    /// that does not decode throws <see cref="CorruptWalException"/> after the whole records before
    /// it are ingested, with the ingestor rewound to the end of the last of them; a failed write
    /// throws with nothing of this call kept.
    /// </summary>
    public IReadOnlyList<FinishedSegment> Ingest(Lsn start, ReadOnlySpan<byte> bytes)
    {
        if (start != NextByte) throw new InvalidOperationException($"WAL arrived at {start}, expected {NextByte}");
        List<WalRecord> records = [];
        WalDecodeException? corrupt = null;
        try
        {
            Append(bytes);
            // Bytes before the decoder's position are the tail of a record that began in a finished segment.
            var skip = (int)Math.Min(bytes.Length, _decoder.FedUpTo - start);
            if (skip < bytes.Length) _decoder.Feed(bytes[skip..]);
            try
            {
                while (_decoder.TryDecodeNext(out var record)) records.Add(record);
                if (_decoder.ReachedEndOfWal)
                    throw new WalDecodeException(_decoder.NextLsn, $"committed WAL holds an empty record header at {_decoder.NextLsn}");
            }
            catch (WalDecodeException e) { corrupt = e; }
            var checkedEnd = records.Count > 0 ? records[^1].EndLsn : Lsn.Zero;
            WriteUpTo(Lsn.Min(Lsn.MaxOf(_trustedEnd, checkedEnd), NextByte));
        }
        catch
        {
            Begin(); // back to the end of the last whole record written
            throw;
        }
        if (records.Count > 0) _resume = (_written, records[^1].EndLsn, records[^1].Lsn);
        var finished = Index(records);
        if (corrupt is null) return finished;
        Begin(); // the bytes from the bad record on are dropped: they come again, from another source
        throw new CorruptWalException(corrupt, finished);
    }

    /// <summary>Adds the records decoded (and written) to the segment indexes.</summary>
    private IReadOnlyList<FinishedSegment> Index(List<WalRecord> records)
    {
        List<FinishedSegment>? finished = null;
        foreach (var record in records)
        {
            if (record.Lsn < IngestedLsn) continue; // re-decoded only to check the bytes of its tail
            var segment = _store.Geometry.SegmentNumber(record.Lsn);
            if (segment != _current.Segment)
            {
                (finished ??= []).Add(new FinishedSegment(_current, record.Lsn, record.Prev));
                _current = new SegmentIndex { Segment = segment };
            }
            _current.Add(record);
            RecordCount++;
            PrevRecordLsn = record.Lsn;
            IngestedLsn = record.EndLsn;
        }
        return finished ?? (IReadOnlyList<FinishedSegment>)[];
    }

    /// <summary>
    /// (Re)starts decoding at the resume point. When bytes before the decode point have to be fetched
    /// (the tail of the record before it), that record is decoded again from its start, read from
    /// the store, so its tail is checked before it is written.
    /// </summary>
    private void Begin()
    {
        var (fetch, decode, prev) = _resume;
        NextByte = _written = fetch;
        _pendingCount = 0;
        var geometry = _store.Geometry;
        if (fetch < decode && prev.IsValid && prev < fetch && StoreHolds(prev, fetch))
        {
            _decoder = new WalDecoder(prev, geometry);
            var head = new byte[fetch - prev];
            _store.Read(prev, head);
            _decoder.Feed(head);
            _trustedEnd = fetch;
        }
        else
        {
            _decoder = new WalDecoder(decode, geometry, prev);
            _trustedEnd = decode;
        }
    }

    private bool StoreHolds(Lsn from, Lsn to)
    {
        for (var s = _store.Geometry.SegmentNumber(from); s <= _store.Geometry.SegmentNumber(new Lsn(to.Value - 1)); s++)
            if (!_store.Has(s)) return false;
        return true;
    }

    private void Append(ReadOnlySpan<byte> bytes)
    {
        if (_pendingCount + bytes.Length > _pending.Length)
            Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingCount + bytes.Length));
        bytes.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += bytes.Length;
        NextByte += (ulong)bytes.Length;
    }

    /// <summary>Writes the pending bytes below <paramref name="end"/> (checked, or trusted) to the store.</summary>
    private void WriteUpTo(Lsn end)
    {
        if (end <= _written) return;
        int n = (int)(end - _written);
        _store.Write(_written, _pending.AsSpan(0, n));
        Buffer.BlockCopy(_pending, n, _pending, 0, _pendingCount - n);
        _pendingCount -= n;
        _written = end;
    }
}
