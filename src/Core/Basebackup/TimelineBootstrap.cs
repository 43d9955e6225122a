using Microsoft.Extensions.Logging;
using Storage.Core.Api;
using Storage.Core.Grpc;
using Storage.Core.Postgres;
using Storage.Core.Wal;

namespace Storage.Core.Basebackup;

/// <summary>
/// Creates a brand-new timeline: initdb makes its first data directory, which is stored as the
/// timeline's first image, and every safekeeper learns the timeline with its WAL starting where
/// initdb's WAL ends (just after the shutdown checkpoint). The pageserver takes this job over later.
/// </summary>
public sealed class TimelineBootstrap(PostgresBinaries binaries, ImageStore images, ILogger logger)
{
    public async Task<ImageManifest> CreateAsync(string tenantId, string timelineId, IReadOnlyList<Uri> safekeepers, CancellationToken ct)
    {
        var scratch = Directory.CreateTempSubdirectory("initdb-").FullName;
        try
        {
            var dataDirectory = Path.Combine(scratch, "data");
            await OsUser.GiveToPostgresAsync(scratch, ct);
            var initdb = OsUser.StartInfoAsPostgres(binaries.InitDb,
                ["-D", dataDirectory, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                 "-E", "UTF8", "--locale=C", "--no-sync"]);
            (await ProcessRunner.RunAsync(initdb, TimeSpan.FromMinutes(2), ct)).ThrowIfFailed("initdb");

            var control = PgControlFile.ReadFromDataDirectory(dataDirectory);
            if (control.State != DatabaseState.ShutDown)
                throw new InvalidOperationException($"initdb left the cluster in state {control.State}, expected a clean shutdown");
            var end = FindEndOfWal(dataDirectory, control.Checkpoint);
            var image = await images.PutAsync(tenantId, timelineId, end, control.SystemIdentifier, dataDirectory, ct);
            logger.LogInformation("initdb image of {TenantId}/{TimelineId} stored: system id {SystemId}, WAL ends at {Lsn}",
                tenantId, timelineId, control.SystemIdentifier, end);

            var key = SafekeeperClient.Key(tenantId, timelineId);
            foreach (var safekeeper in safekeepers)
            {
                try { await SafekeeperClient.CreateTimelineAsync(safekeeper, key, end, control.SystemIdentifier, ct: ct); }
                catch (RpcException e) { throw new InvalidOperationException($"safekeeper {safekeeper} could not create timeline {tenantId}/{timelineId}: {e.Detail}", e); }
            }
            logger.LogInformation("timeline {TenantId}/{TimelineId} created on {Count} safekeepers at {Lsn}", tenantId, timelineId, safekeepers.Count, end);
            return image;
        }
        finally
        {
            try { Directory.Delete(scratch, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>The end of initdb's WAL: decode from its last checkpoint record onwards.</summary>
    private static Lsn FindEndOfWal(string dataDirectory, Lsn checkpoint)
    {
        var geometry = WalGeometry.Default;
        var segment = Path.Combine(dataDirectory, "pg_wal", geometry.SegmentFileName(1, geometry.SegmentNumber(checkpoint)));
        using var file = new FileStream(segment, FileMode.Open, FileAccess.Read);
        file.Seek(geometry.SegmentOffset(checkpoint), SeekOrigin.Begin);
        var scan = WalEnd.Scan(file, checkpoint);
        if (scan.RecordCount == 0)
            throw new InvalidOperationException($"initdb's checkpoint record at {checkpoint} does not decode: {scan.Detail}");
        return scan.EndLsn;
    }
}
