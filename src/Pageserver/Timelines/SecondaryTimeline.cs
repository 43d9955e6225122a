using Microsoft.Extensions.Logging;
using Storage.Pageserver.Remote;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// A timeline this pageserver holds as the secondary: every refresh it downloads what the newest
/// manifest added (and drops what it removed), so that when the storage controller promotes it the
/// attach has little left to fetch. It ingests nothing, uploads nothing, serves no basebackups.
/// </summary>
internal sealed class SecondaryTimeline(TimelinePaths paths, RemoteTimeline remote, string tenantId, string timelineId, TimeSpan refresh, ILogger logger,
    TimeProvider time) : IAsyncDisposable
{
    private readonly SemaphoreSlim _syncLock = new(1, 1);
    private TimelineJob? _refresh;

    public string TenantId => tenantId;
    public string TimelineId => timelineId;
    public TimelinePaths Paths => paths;
    /// <summary>The newest manifest synced: its generation and where it resumes ingest.</summary>
    public IndexPart? Synced { get; private set; }
    public DateTimeOffset? LastSync { get; private set; }

    /// <summary>Starts refreshing every <paramref name="refresh"/>.</summary>
    public void Start()
    {
        _refresh = new TimelineJob(async ct => await SyncAsync(ct), e =>
            logger.LogWarning("secondary {TenantId}/{TimelineId} could not sync from object storage, will retry: {Error}", tenantId, timelineId, e.Message),
            refresh, time);
        _ = _refresh.StartAsync(CancellationToken.None);
    }

    /// <summary>Downloads what the newest manifest has that the disk lacks; returns the manifest (null: none yet).</summary>
    public async Task<IndexPart?> SyncAsync(CancellationToken ct)
    {
        await _syncLock.WaitAsync(ct);
        try
        {
            var index = await RemoteTimeline.LatestIndexAsync(remote.Store, tenantId, timelineId, ct);
            if (index is null) return null;
            var downloaded = await new LayerMirror(paths, remote).SyncAsync(index, ct);
            if (downloaded > 0)
                logger.LogInformation("secondary {TenantId}/{TimelineId} downloaded {Count} layers of manifest generation {Generation} (remote consistent at {Lsn})",
                    tenantId, timelineId, downloaded, index.Generation, index.Metadata.RemoteConsistent);
            Synced = index;
            LastSync = time.GetUtcNow();
            return index;
        }
        finally { _syncLock.Release(); }
    }

    /// <summary>Stops refreshing (before a promotion or a detach); a sync in progress finishes first.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_refresh != null) await _refresh.StopAsync();
        await _syncLock.WaitAsync();
        _syncLock.Release();
    }
}
