using Microsoft.Extensions.Logging;

namespace Storage.Safekeeper.Trim;

/// <summary>
/// Deletes every timeline's local WAL segments that lie wholly below
/// min(remote_consistent_lsn, backup_lsn, commit_lsn) (see <see cref="Timeline.TrimAsync"/>).
/// </summary>
internal sealed class WalTrimmer(TimelineRegistry registry, ILogger logger, TimeSpan interval, TimeProvider time)
    : TimelineRounds(registry, logger, interval, "WAL trimming", time)
{
    protected override Task RunAsync(Timeline timeline, CancellationToken ct) => timeline.TrimAsync(ct);
}
