using Storage.Core;

namespace Storage.Proposer;

/// <summary>
/// The proposer's in-memory copy of WAL [Start, End): what it may still have to send to a
/// lagging acceptor. Appends at the end, trims at the start, can also grow at the start when
/// recovered WAL from a donor arrives. It knows where records end inside it, so that WAL is only
/// ever sent in pieces that end at a record boundary (<see cref="SendableEnd"/>).
/// </summary>
internal sealed class WalBuffer(Lsn start)
{
    private byte[] _data = new byte[64 * 1024];
    private int _offset; // where Start lives in _data
    private int _length;
    // Record ends in (Start, End], ascending; End is always one of them (or End == Start).
    private readonly List<Lsn> _recordEnds = new();

    public Lsn Start { get; private set; } = start;
    public Lsn End => Start + (ulong)_length;
    public int Length => _length;

    /// <summary>
    /// Appends whole records; <paramref name="recordEnds"/> are record ends inside them (ascending,
    /// above <see cref="End"/>), and the end of <paramref name="bytes"/> is one as well.
    /// </summary>
    public void Append(ReadOnlySpan<byte> bytes, ReadOnlySpan<Lsn> recordEnds = default)
    {
        if (bytes.IsEmpty) return;
        var end = End + (ulong)bytes.Length;
        CheckRecordEnds(End, end, recordEnds);
        EnsureRoom(bytes.Length);
        bytes.CopyTo(_data.AsSpan(_offset + _length));
        _length += bytes.Length;
        foreach (var e in recordEnds) if (e < end) _recordEnds.Add(e);
        _recordEnds.Add(end);
    }

    /// <summary>Puts WAL [from, Start) in front of the buffer (<paramref name="recordEnds"/> as in <see cref="Append"/>).</summary>
    public void Prepend(Lsn from, ReadOnlySpan<byte> bytes, ReadOnlySpan<Lsn> recordEnds = default)
    {
        if (from + (ulong)bytes.Length != Start)
            throw new InvalidOperationException($"recovered WAL [{from}, {from + (ulong)bytes.Length}) does not end at the buffer start {Start}");
        CheckRecordEnds(from, Start, recordEnds);
        var ends = new List<Lsn>(recordEnds.Length + _recordEnds.Count);
        foreach (var e in recordEnds) if (e < Start) ends.Add(e);
        ends.Add(Start);
        ends.AddRange(_recordEnds);
        _recordEnds.Clear();
        _recordEnds.AddRange(ends);
        var fresh = new byte[Math.Max(_data.Length, bytes.Length + _length + 64 * 1024)];
        bytes.CopyTo(fresh);
        _data.AsSpan(_offset, _length).CopyTo(fresh.AsSpan(bytes.Length));
        _data = fresh;
        _offset = 0;
        _length += bytes.Length;
        Start = from;
    }

    /// <summary>
    /// Where a piece of WAL sent from <paramref name="from"/> (a record boundary) may end: the last
    /// record end within <paramref name="maxBytes"/>, or, when one record is longer than that, its end.
    /// A piece never ends inside a record, so no safekeeper's flush LSN (and no start LSN elected
    /// from it) ever does.
    /// </summary>
    public Lsn SendableEnd(Lsn from, int maxBytes)
    {
        if (from >= End) return End;
        var limit = from + (ulong)maxBytes;
        int i = _recordEnds.BinarySearch(limit);
        if (i < 0) i = ~i - 1; // the last end <= limit
        if (i >= 0 && _recordEnds[i] > from) return _recordEnds[i];
        int next = _recordEnds.BinarySearch(from + 1UL);
        return _recordEnds[next < 0 ? ~next : next]; // the first end after from: one long record
    }

    /// <summary>WAL [from, to) (a copy).</summary>
    public byte[] Read(Lsn from, Lsn to)
    {
        if (from < Start || to > End || to < from) throw new ArgumentOutOfRangeException(nameof(from), $"[{from}, {to}) is outside the buffered WAL [{Start}, {End})");
        return _data.AsSpan(_offset + (int)(from - Start), (int)(to - from)).ToArray();
    }

    /// <summary>Forgets WAL below <paramref name="lsn"/>.</summary>
    public void TrimTo(Lsn lsn)
    {
        if (lsn <= Start) return;
        if (lsn > End) lsn = End;
        int n = (int)(lsn - Start);
        _offset += n;
        _length -= n;
        Start = lsn;
        if (_length == 0) _offset = 0;
        int keep = _recordEnds.BinarySearch(lsn + 1UL);
        _recordEnds.RemoveRange(0, keep < 0 ? ~keep : keep);
    }

    private static void CheckRecordEnds(Lsn from, Lsn to, ReadOnlySpan<Lsn> recordEnds)
    {
        var previous = from;
        foreach (var e in recordEnds)
        {
            if (e <= previous || e > to)
                throw new ArgumentException($"record end {e} is not ascending inside the WAL [{from}, {to})");
            previous = e;
        }
    }

    private void EnsureRoom(int extra)
    {
        if (_offset + _length + extra <= _data.Length) return;
        if (_length + extra <= _data.Length / 2)
        {
            // Enough room once the trimmed front is reclaimed.
            _data.AsSpan(_offset, _length).CopyTo(_data);
            _offset = 0;
            return;
        }
        var bigger = new byte[Math.Max(_data.Length * 2, _length + extra)];
        _data.AsSpan(_offset, _length).CopyTo(bigger);
        _data = bigger;
        _offset = 0;
    }
}
