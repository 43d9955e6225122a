using Storage.Core;
using Storage.Core.Errors;

namespace Storage.Safekeeper;

/// <summary>What a WAL reader needs of a timeline: the <see cref="Timeline"/> itself (a fake in unit tests).</summary>
internal interface IReadableWal
{
    /// <summary>Completes when the flush or commit LSN or the term changes.</summary>
    Task Changed { get; }
    (ulong Term, Lsn Flush, Lsn Commit, Lsn TimelineStart) Positions();
    /// <summary>The first LSN still on disk.</summary>
    Lsn LocalStartLsn { get; }
    /// <summary>Reads WAL below the flush LSN into <paramref name="buffer"/>; 0 at the flush LSN.</summary>
    int ReadWal(Lsn from, Span<byte> buffer);
}

/// <summary>One read of a <see cref="WalReadCursor"/>: <see cref="Length"/> bytes from <see cref="Start"/> (0: nothing yet; wait on <see cref="Changed"/>).</summary>
internal readonly record struct WalRead(Lsn Start, int Length, Lsn Commit, Task Changed);

/// <summary>
/// A reader's position in a timeline's WAL, shared by every way WAL leaves a safekeeper (gRPC
/// ReadWal, the replication protocol's walsender): it hands out committed WAL only, or, for the
/// proposer of the current term (<paramref name="proposerTerm"/> non-zero), flushed WAL; never
/// beyond <paramref name="end"/> when one is given.
/// </summary>
internal sealed class WalReadCursor(IReadableWal wal, Lsn position, ulong proposerTerm = 0, Lsn end = default)
{
    public Lsn Position { get; private set; } = position;

    /// <summary>True once the reader has everything up to its end (never without an end).</summary>
    public bool Finished => end.IsValid && Position >= end;

    /// <summary>Reads what may be read now, up to <paramref name="buffer"/>'s length, and moves past it.</summary>
    public WalRead Read(Span<byte> buffer)
    {
        // The signal is taken before the positions: a change after this look still wakes the reader.
        var changed = wal.Changed;
        var (term, flush, commit, _) = wal.Positions();
        Lsn limit = commit;
        if (proposerTerm != 0)
        {
            if (term != proposerTerm)
                throw new PreconditionFailedException($"safekeeper is at term {term}, not the reader's term {proposerTerm}");
            limit = flush;
        }
        if (end.IsValid) limit = Lsn.Min(limit, end);
        if (Position >= limit) return new WalRead(Position, 0, commit, changed);
        int n = wal.ReadWal(Position, buffer[..(int)Math.Min(buffer.Length, limit - Position)]);
        if (n <= 0) throw new DataLossException($"WAL at {Position} could not be read");
        var start = Position;
        Position += (ulong)n;
        return new WalRead(start, n, commit, changed);
    }
}
