namespace Storage.Core.Basebackup;

/// <summary>
/// Where a compute gets its data directory: "a basebackup at LSN". The pageserver's Basebackup call
/// (<see cref="Api.PageserverBasebackupSource"/>).
/// </summary>
public interface IBasebackupSource
{
    /// <summary>
    /// Fills the empty <paramref name="targetDirectory"/> with a data directory of the timeline
    /// whose WAL ends exactly at <paramref name="lsn"/> (PostgreSQL resumes writing there).
    /// </summary>
    Task FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct);
}
