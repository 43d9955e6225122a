using Storage.Core;
using Storage.Core.Wal;

namespace Storage.Compute;

/// <summary>
/// Passes on WAL only up to the end of the last complete record. PostgreSQL streams whatever it
/// has flushed, which may end inside a record; if the safekeepers' WAL could end there, the next
/// compute would start writing in the middle of a record. Cutting at record ends keeps every
/// flush LSN, and so every start LSN E, at a record boundary — and costs commits nothing, since a
/// commit waits for the end of its own (complete) record.
/// </summary>
internal sealed class CompleteRecordCutter
{
    private readonly WalDecoder _decoder;
    private byte[] _pending = new byte[256 * 1024];
    private int _pendingLength;
    private int _handedOut; // bytes at the front of _pending returned by the last Feed, dropped on the next

    public CompleteRecordCutter(Lsn start)
    {
        _decoder = new WalDecoder(start);
        PassedUpTo = start;
    }

    /// <summary>End of the WAL handed out so far (a record boundary).</summary>
    public Lsn PassedUpTo { get; private set; }

    /// <summary>End of the WAL received so far.</summary>
    public Lsn ReceivedUpTo => PassedUpTo + (ulong)(_pendingLength - _handedOut);

    /// <summary>
    /// Takes the next received bytes and returns the prefix of the pending WAL that ends at a
    /// record boundary (empty when no record was completed). The span is valid until the next call.
    /// Throws <see cref="WalDecodeException"/> for WAL that does not decode.
    /// </summary>
    public ReadOnlySpan<byte> Feed(ReadOnlySpan<byte> received)
    {
        if (_handedOut > 0)
        {
            _pending.AsSpan(_handedOut, _pendingLength - _handedOut).CopyTo(_pending);
            _pendingLength -= _handedOut;
            _handedOut = 0;
        }
        EnsureRoom(received.Length);
        received.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += received.Length;
        _decoder.Feed(received);
        while (_decoder.TryDecodeNext(out _)) { }
        if (_decoder.ReachedEndOfWal)
            throw new WalDecodeException(_decoder.NextLsn, $"PostgreSQL streamed an empty record header at {_decoder.NextLsn}");

        // After an XLOG_SWITCH the next record starts at the next segment: the switch record is
        // passed on together with all of its segment's padding, never part of it.
        var boundary = _decoder.NextLsn;
        if (boundary > ReceivedUpTo || boundary <= PassedUpTo) return ReadOnlySpan<byte>.Empty;
        int complete = (int)(boundary - PassedUpTo);
        PassedUpTo = boundary;
        _handedOut = complete;
        return _pending.AsSpan(0, complete);
    }

    private void EnsureRoom(int extra)
    {
        if (_pendingLength + extra <= _pending.Length) return;
        Array.Resize(ref _pending, Math.Max(_pending.Length * 2, _pendingLength + extra));
    }
}
