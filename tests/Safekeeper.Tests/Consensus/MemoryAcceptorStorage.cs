using Storage.Core;
using Storage.Safekeeper.Consensus;

namespace Storage.Safekeeper.Tests.Consensus;

/// <summary>
/// An in-memory <see cref="IAcceptorStorage"/> that models a disk: the state is durable at once,
/// WAL is durable only up to the last <see cref="Flush"/>, and <see cref="Crash"/> loses the rest.
/// </summary>
internal sealed class MemoryAcceptorStorage(Lsn timelineStart) : IAcceptorStorage
{
    private readonly List<byte> _wal = new();
    private int _flushed;

    public AcceptorState State { get; private set; } = AcceptorState.New(timelineStart);
    public Lsn Start { get; private set; } = timelineStart;
    public Lsn WriteLsn => Start + (ulong)_wal.Count;
    public Lsn FlushLsn => Start + (ulong)_flushed;

    public void Persist(AcceptorState state) => State = state;

    public void Write(Lsn begin, ReadOnlySpan<byte> data)
    {
        int at = (int)(begin - Start);
        if (at > _wal.Count) throw new InvalidOperationException($"gap: write at {begin}, WAL ends at {WriteLsn}");
        for (int i = 0; i < data.Length; i++)
        {
            if (at + i < _wal.Count) _wal[at + i] = data[i];
            else _wal.Add(data[i]);
        }
    }

    public void Truncate(Lsn end)
    {
        int n = (int)(end - Start);
        if (n < _wal.Count) _wal.RemoveRange(n, _wal.Count - n);
        _flushed = Math.Min(_flushed, n);
    }

    public void ResetWal(Lsn start)
    {
        _wal.Clear();
        _flushed = 0;
        Start = start;
    }

    public void Flush() => _flushed = _wal.Count;

    public void Crash()
    {
        if (_flushed < _wal.Count) _wal.RemoveRange(_flushed, _wal.Count - _flushed);
    }

    /// <summary>Durable WAL [Start, FlushLsn).</summary>
    public byte[] DurableWal() => _wal.Take(_flushed).ToArray();
}
