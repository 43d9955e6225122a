namespace Storage.Core.Basebackup;

/// <summary>
/// Where a compute gets its data directory: "a basebackup at LSN". Today an image from the image
/// store plus WAL from the safekeepers; once the pageserver exists, its Basebackup call.
/// </summary>
public interface IBasebackupSource
{
    /// <summary>
    /// Fills the empty <paramref name="targetDirectory"/> with a data directory of the timeline
    /// whose WAL ends exactly at <paramref name="lsn"/> (PostgreSQL resumes writing there).
    /// </summary>
    Task FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct);
}

/// <summary>Copies WAL [from, to) of a timeline into a stream.</summary>
public delegate Task WalCopier(Lsn from, Lsn to, Stream destination, CancellationToken ct);

/// <summary>
/// A basebackup assembled from the newest stored image at or below the LSN and the WAL from the
/// image's end up to the LSN. PostgreSQL replays that WAL as crash recovery on its first start.
/// </summary>
public sealed class ImagePlusWalSource(ImageStore images, WalCopier copyWal) : IBasebackupSource
{
    public async Task FetchAsync(string tenantId, string timelineId, Lsn lsn, string targetDirectory, CancellationToken ct)
    {
        var image = images.FindLatest(tenantId, timelineId, lsn)
            ?? throw new InvalidOperationException($"no image of timeline {tenantId}/{timelineId} at or below {lsn} in {images.Root}");
        await using (var tar = await images.OpenVerifiedAsync(image, ct))
            await DataDirectoryAssembler.ExtractImageAsync(tar, targetDirectory, ct);
        await DataDirectoryAssembler.AppendWalAndMarkForReplayAsync(targetDirectory, image.EndLsn, lsn,
            (dest, token) => copyWal(image.EndLsn, lsn, dest, token), ct);
    }
}
