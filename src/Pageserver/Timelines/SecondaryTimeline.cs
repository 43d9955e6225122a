using Microsoft.Extensions.Logging;
using Storage.Pageserver.Remote;

namespace Storage.Pageserver.Timelines;

/// <summary>
/// A timeline this pageserver holds as the secondary: every refresh it downloads what the newest
/// manifest added (and drops what it removed), so that when the storage controller promotes it the
/// attach has little left to fetch. It ingests nothing, uploads nothing, serves no basebackups.
/// </summary>
internal sealed class SecondaryTimeline(TimelinePaths paths, RemoteTimeline remote, string tenantId, string timelineId, TimeSpan refresh, ILogger logger)
    : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _syncLock = new(1, 1);
    private Task _loop = Task.CompletedTask;

    public string TenantId => tenantId;
    public string TimelineId => timelineId;
    public TimelinePaths Paths => paths;
    /// <summary>The newest manifest synced: its generation and where it resumes ingest.</summary>
    public IndexPart? Synced { get; private set; }
    public DateTime? LastSyncUtc { get; private set; }

    public void Start() => _loop = Task.Run(LoopAsync);

    private async Task LoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try { await SyncAsync(ct); }
            catch (OperationCanceledException) when (ct.IsCancellationRequested) { return; }
            catch (Exception e) { logger.LogWarning("secondary {TenantId}/{TimelineId} could not sync from object storage, will retry: {Error}", tenantId, timelineId, e.Message); }
            try { await Task.Delay(refresh, ct); } catch (OperationCanceledException) { return; }
        }
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
            LastSyncUtc = DateTime.UtcNow;
            return index;
        }
        finally { _syncLock.Release(); }
    }

    /// <summary>Stops refreshing (before a promotion or a detach); a sync in progress finishes first.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _loop; } catch (OperationCanceledException) { }
        await _syncLock.WaitAsync();
        _syncLock.Release();
        _stop.Dispose();
    }
}
