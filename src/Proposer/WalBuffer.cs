using Storage.Core;

namespace Storage.Proposer;

/// <summary>
/// The proposer's in-memory copy of WAL [Start, End): what it may still have to send to a
/// lagging acceptor. Appends at the end, trims at the start, can also grow at the start when
/// recovered WAL from a donor arrives.
/// </summary>
internal sealed class WalBuffer(Lsn start)
{
    private byte[] _data = new byte[64 * 1024];
    private int _offset; // where Start lives in _data
    private int _length;

    public Lsn Start { get; private set; } = start;
    public Lsn End => Start + (ulong)_length;
    public int Length => _length;

    public void Append(ReadOnlySpan<byte> bytes)
    {
        EnsureRoom(bytes.Length);
        bytes.CopyTo(_data.AsSpan(_offset + _length));
        _length += bytes.Length;
    }

    /// <summary>Puts WAL [from, Start) in front of the buffer.</summary>
    public void Prepend(Lsn from, ReadOnlySpan<byte> bytes)
    {
        if (from + (ulong)bytes.Length != Start)
            throw new InvalidOperationException($"recovered WAL [{from}, {from + (ulong)bytes.Length}) does not end at the buffer start {Start}");
        var fresh = new byte[Math.Max(_data.Length, bytes.Length + _length + 64 * 1024)];
        bytes.CopyTo(fresh);
        _data.AsSpan(_offset, _length).CopyTo(fresh.AsSpan(bytes.Length));
        _data = fresh;
        _offset = 0;
        _length += bytes.Length;
        Start = from;
    }

    /// <summary>Up to <paramref name="max"/> bytes starting at <paramref name="from"/> (a copy).</summary>
    public byte[] Read(Lsn from, int max)
    {
        if (from < Start || from > End) throw new ArgumentOutOfRangeException(nameof(from), $"{from} is outside the buffered WAL [{Start}, {End})");
        int skip = (int)(from - Start);
        int n = Math.Min(max, _length - skip);
        return _data.AsSpan(_offset + skip, n).ToArray();
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
