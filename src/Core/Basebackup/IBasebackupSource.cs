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
    /// Returns the image it was built on.
    /// </summary>
    Task<ImageIdentity> FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct);

    /// <summary>
    /// Completes <paramref name="targetDirectory"/>, which holds the files of <paramref name="image"/>
    /// (a basebackup at the image's end, unpacked earlier), into the same data directory
    /// <see cref="FetchAsync"/> would give at <paramref name="lsn"/>: only its pg_wal is replaced.
    /// </summary>
    Task FetchWalSinceImageAsync(string tenantId, string timelineId, Lsn lsn, ImageIdentity image, string targetDirectory, CancellationToken ct);
}

/// <summary>A pageserver image: its end LSN and its tar's CRC-32C (an image rewritten at the same LSN differs in the CRC).</summary>
public readonly record struct ImageIdentity(Lsn End, uint Crc32C)
{
    public override string ToString() => $"{End} (CRC {Crc32C:X8})";
}
