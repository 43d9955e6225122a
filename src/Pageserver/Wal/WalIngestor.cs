using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Pageserver.Wal;

/// <summary>A segment whose records are all ingested, and where ingest would resume after it.</summary>
internal sealed record FinishedSegment(SegmentIndex Index, Lsn ResumeFrom, Lsn ResumePrev);

/// <summary>
/// Turns a stream of committed WAL into segment layers and their index: bytes go to the segment
/// store as they come, every record is decoded (which checks its CRC), and each segment's index is
/// handed out once the first record of a later segment has been decoded.
/// </summary>
internal sealed class WalIngestor
{
    private readonly WalSegmentStore _store;
    private readonly WalDecoder _decoder;
    private SegmentIndex _current;

    /// <param name="fetchFrom">Where the next bytes start (may be before <paramref name="decodeFrom"/>, inside a record).</param>
    /// <param name="decodeFrom">The first record boundary to decode from.</param>
    public WalIngestor(WalSegmentStore store, Lsn fetchFrom, Lsn decodeFrom, Lsn decodePrev)
    {
        if (decodeFrom < fetchFrom) throw new ArgumentException($"decoding from {decodeFrom} needs bytes from there, not {fetchFrom}");
        _store = store;
        _decoder = new WalDecoder(decodeFrom, store.Geometry, decodePrev);
        _current = new SegmentIndex { Segment = store.Geometry.SegmentNumber(decodeFrom) };
        NextByte = fetchFrom;
        IngestedLsn = decodeFrom;
        PrevRecordLsn = decodePrev;
    }

    /// <summary>Where the next received byte must start.</summary>
    public Lsn NextByte { get; private set; }

    /// <summary>End of the last complete record ingested.</summary>
    public Lsn IngestedLsn { get; private set; }

    public Lsn PrevRecordLsn { get; private set; }

    public long RecordCount { get; private set; }

    /// <summary>The unfinished segment's index so far (commits there count for timestamp lookups).</summary>
    public SegmentIndex Current => _current;

    /// <summary>Ingests bytes that start at <see cref="NextByte"/>; returns the segments this finished.</summary>
    public IReadOnlyList<FinishedSegment> Ingest(Lsn start, ReadOnlySpan<byte> bytes)
    {
        if (start != NextByte) throw new InvalidOperationException($"WAL arrived at {start}, expected {NextByte}");
        _store.Write(start, bytes);
        NextByte = start + (ulong)bytes.Length;
        if (NextByte <= _decoder.FedUpTo) return [];
        // Bytes before the decode point belong to a record that started in an uploaded segment.
        var skip = _decoder.FedUpTo > start ? (int)Math.Min(bytes.Length, _decoder.FedUpTo - start) : 0;
        _decoder.Feed(bytes[skip..]);

        List<FinishedSegment>? finished = null;
        while (_decoder.TryDecodeNext(out var record))
        {
            var segment = _store.Geometry.SegmentNumber(record.Lsn);
            if (segment != _current.Segment)
            {
                (finished ??= []).Add(new FinishedSegment(_current, record.Lsn, record.Prev));
                _current = new SegmentIndex { Segment = segment };
            }
            _current.Add(record);
            RecordCount++;
            PrevRecordLsn = record.Lsn;
            IngestedLsn = _decoder.NextLsn;
        }
        if (_decoder.ReachedEndOfWal)
            throw new WalDecodeException(_decoder.NextLsn, $"committed WAL holds an empty record header at {_decoder.NextLsn}");
        return finished ?? (IReadOnlyList<FinishedSegment>)[];
    }
}
