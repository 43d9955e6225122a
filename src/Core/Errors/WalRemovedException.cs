namespace Storage.Core.Errors;

/// <summary>
/// A safekeeper no longer holds the WAL a read asked for: it trimmed it (the WAL is in object
/// storage). Names the first LSN it still holds, which the proposer acts on (see its recovery).
/// </summary>
public sealed class WalRemovedException(Lsn requested, Lsn firstAvailable, ulong nodeId)
    : ServiceException(FailureKind.FailedPrecondition,
        $"WAL at {requested} was removed from safekeeper {nodeId} (it is in object storage); first available LSN {firstAvailable}")
{
    public const string FirstAvailableDetail = "first-available-lsn";

    public Lsn FirstAvailable { get; } = firstAvailable;

    public override IReadOnlyDictionary<string, string> Details =>
        new Dictionary<string, string> { [FirstAvailableDetail] = FirstAvailable.ToString() };
}
