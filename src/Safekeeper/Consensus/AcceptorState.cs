using Storage.Core.Errors;
using Storage.Core;
using Storage.Core.Consensus;

namespace Storage.Safekeeper.Consensus;

/// <summary>
/// What an acceptor must remember across restarts (it lives in the timeline's control file).
/// The WAL's own end (flush LSN) is not here: it is found from the WAL itself after a restart.
/// </summary>
public sealed record AcceptorState
{
    /// <summary>The highest term this acceptor has seen; it votes only for higher ones.</summary>
    public required ulong Term { get; init; }
    /// <summary>The history of the WAL this acceptor holds (set from the elected proposer).</summary>
    public required TermHistory History { get; init; }
    public required Lsn TimelineStartLsn { get; init; }
    /// <summary>WAL below this is committed (on a quorum). Persisted lazily, so it may lag.</summary>
    public Lsn CommitLsn { get; init; }
    /// <summary>WAL below this is in object storage (issue: pageserver/offload).</summary>
    public Lsn BackupLsn { get; init; }
    /// <summary>WAL below this is durable in a pageserver's remote copy.</summary>
    public Lsn RemoteConsistentLsn { get; init; }
    /// <summary>
    /// The first LSN still on this safekeeper's disk: WAL below it was trimmed (it is in object
    /// storage and the pageserver's copy) or never held (the safekeeper started late, see StartWalAt).
    /// </summary>
    public required Lsn LocalStartLsn { get; init; }
    /// <summary>The flush LSN when this state was saved: WAL found after a restart must reach it.</summary>
    public Lsn FlushLsnAtSave { get; init; }

    public static AcceptorState New(Lsn timelineStart) => new()
    {
        Term = 0,
        History = TermHistory.Empty,
        TimelineStartLsn = timelineStart,
        LocalStartLsn = timelineStart,
        CommitLsn = timelineStart,
        BackupLsn = timelineStart,
        RemoteConsistentLsn = Lsn.Zero, // no pageserver has reported yet
        FlushLsnAtSave = timelineStart,
    };
}

/// <summary>The durable storage an <see cref="Acceptor"/> works on: its state and its WAL.</summary>
public interface IAcceptorStorage
{
    AcceptorState State { get; }
    /// <summary>Replaces the state durably (returns only after it would survive a crash).</summary>
    void Persist(AcceptorState state);
    /// <summary>End of the WAL written so far (maybe not yet durable).</summary>
    Lsn WriteLsn { get; }
    /// <summary>End of the durable WAL.</summary>
    Lsn FlushLsn { get; }
    /// <summary>Writes WAL bytes at <paramref name="begin"/> (which must not be beyond WriteLsn); not yet durable.</summary>
    void Write(Lsn begin, ReadOnlySpan<byte> data);
    /// <summary>Durably cuts the WAL so it ends at <paramref name="end"/>.</summary>
    void Truncate(Lsn end);
    /// <summary>Drops all WAL; the (empty) WAL now begins and ends at <paramref name="start"/>.</summary>
    void ResetWal(Lsn start);
}

public enum RefusalKind
{
    /// <summary>The message's term is older than the acceptor's: that proposer is fenced.</summary>
    Superseded,
    /// <summary>The message does not fit the acceptor's state (no election yet, a gap, an unexpected truncation point).</summary>
    OutOfOrder,
    /// <summary>The message is malformed.</summary>
    Invalid,
}

/// <summary>
/// An acceptor refused a proposer message; nothing was changed. A superseded proposer learns the
/// acceptor's term (the <see cref="StaleTermException.TermDetail"/> detail), which fences it.
/// </summary>
public sealed class AcceptorRefusal(RefusalKind refusal, ulong acceptorTerm, string message)
    : ServiceException(refusal switch
    {
        RefusalKind.Superseded => FailureKind.Superseded,
        RefusalKind.Invalid => FailureKind.InvalidArgument,
        _ => FailureKind.FailedPrecondition,
    }, $"{message} (safekeeper term {acceptorTerm})")
{
    public RefusalKind Refusal { get; } = refusal;
    public ulong AcceptorTerm { get; } = acceptorTerm;

    public override IReadOnlyDictionary<string, string> Details =>
        new Dictionary<string, string> { [StaleTermException.TermDetail] = AcceptorTerm.ToString(System.Globalization.CultureInfo.InvariantCulture) };
}
