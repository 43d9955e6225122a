using Storage.Core;
using Storage.Core.Postgres.Replication;

namespace Storage.Safekeeper.Replication;

/// <summary>
/// What one streaming standby has been sent and says it has written, flushed and applied (its
/// status updates) and still needs (hot standby feedback), kept for the metrics and the log.
/// </summary>
internal sealed class StandbyProgress(SafekeeperMetrics metrics, StandbyLabel label) : IDisposable
{
    private readonly object _lock = new();
    public StandbyLabel Label { get; } = label;
    public Lsn Sent { get; private set; }
    public StandbyStatus? LastStatus { get; private set; }
    public HotStandbyFeedback? LastFeedback { get; private set; }

    public void WalSent(Lsn end)
    {
        lock (_lock) Sent = end;
        metrics.ReplicationSent(Label, end.Value);
    }

    public void StatusReceived(StandbyStatus status)
    {
        lock (_lock) LastStatus = status;
        metrics.StandbyReported(Label, status.Flush.Value, status.Apply.Value);
    }

    public void FeedbackReceived(HotStandbyFeedback feedback)
    {
        lock (_lock) LastFeedback = feedback;
    }

    public void Dispose() => metrics.StandbyGone(Label);
}
